//! Sparkplug B topics: `spBv1.0/<group>/<message type>/<edge node>[/<device>]`, and the
//! host applications' `spBv1.0/STATE/<host id>`.

/// The message types of a Sparkplug topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An edge node's birth certificate: its metrics, aliases and types, and their values.
    NBirth,
    /// An edge node's values.
    NData,
    /// An edge node went away (its MQTT will, or a clean disconnect).
    NDeath,
    /// A device's birth certificate.
    DBirth,
    /// A device's values.
    DData,
    /// A device went away.
    DDeath,
    /// Commands to edge nodes or devices (NCMD, DCMD) and host states (STATE): nothing to
    /// measure.
    Ignored,
}

/// A parsed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic<'t> {
    /// The message type.
    pub kind: Kind,
    /// `group_id`.
    pub group: &'t str,
    /// `edge_node_id`.
    pub edge_node: &'t str,
    /// `device_id`, for device messages.
    pub device: Option<&'t str>,
}

/// The namespace of Sparkplug B.
pub const NAMESPACE: &str = "spBv1.0";

/// Parses `topic`.
///
/// # Errors
/// What does not fit the topic's shape, in words.
pub fn parse(topic: &str) -> Result<Topic<'_>, String> {
    let mut parts = topic.split('/');
    if parts.next() != Some(NAMESPACE) {
        return Err(format!(
            "topic `{topic}` is not in the Sparkplug B namespace `{NAMESPACE}/`"
        ));
    }
    let group = parts.next().unwrap_or_default();
    if group == "STATE" {
        return Ok(Topic {
            kind: Kind::Ignored,
            group,
            edge_node: "",
            device: None,
        });
    }
    let kind = parts.next().unwrap_or_default();
    let edge_node = parts.next().unwrap_or_default();
    let device = parts.next();
    let rest = parts.next();
    let (kind, device_level) = match kind {
        "NBIRTH" => (Kind::NBirth, false),
        "NDATA" => (Kind::NData, false),
        "NDEATH" => (Kind::NDeath, false),
        "DBIRTH" => (Kind::DBirth, true),
        "DDATA" => (Kind::DData, true),
        "DDEATH" => (Kind::DDeath, true),
        "NCMD" | "DCMD" => (Kind::Ignored, device.is_some()),
        other => {
            return Err(format!(
                "topic `{topic}`: `{other}` is not a Sparkplug B message type"
            ));
        }
    };
    if group.is_empty() || edge_node.is_empty() || rest.is_some() {
        return Err(format!(
            "topic `{topic}` is not `{NAMESPACE}/<group>/<type>/<edge node>[/<device>]`"
        ));
    }
    match (device_level, device) {
        (true, Some(d)) if !d.is_empty() => {}
        (false, None) => {}
        (true, _) => {
            return Err(format!("topic `{topic}`: a device message names no device"));
        }
        (false, Some(_)) => {
            return Err(format!(
                "topic `{topic}`: an edge node message has a device level"
            ));
        }
    }
    Ok(Topic {
        kind,
        group,
        edge_node,
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_or_say_why_not() {
        assert_eq!(
            parse("spBv1.0/plant/DDATA/gw1/pump-3").unwrap(),
            Topic {
                kind: Kind::DData,
                group: "plant",
                edge_node: "gw1",
                device: Some("pump-3")
            }
        );
        assert_eq!(
            parse("spBv1.0/plant/NBIRTH/gw1").unwrap().kind,
            Kind::NBirth
        );
        assert_eq!(parse("spBv1.0/STATE/scada").unwrap().kind, Kind::Ignored);
        assert_eq!(
            parse("spBv1.0/plant/DCMD/gw1/d").unwrap().kind,
            Kind::Ignored
        );
        for (bad, why) in [
            ("spAv1.0/plant/NDATA/gw1", "namespace"),
            ("spBv1.0/plant/NOPE/gw1", "not a Sparkplug B message type"),
            ("spBv1.0/plant/DDATA/gw1", "names no device"),
            ("spBv1.0/plant/NDATA/gw1/d", "device level"),
            ("spBv1.0//NDATA/gw1", "is not `spBv1.0/"),
            ("spBv1.0/plant/DDATA/gw1/d/x", "is not `spBv1.0/"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
