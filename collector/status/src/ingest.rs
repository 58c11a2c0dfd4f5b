//! The push ingest table: a row per `[[ingest]]` source of the running configuration, drawn
//! from the sources' snapshots ([`magpie_ingest::status::SourceSnapshot`]), the same values
//! `magpie_ingest_*` on /metrics encodes. Counts carry their exact value in `data-*`
//! attributes as well, for scripts and tests that read the page.
//!
//! A snapshot has no field for a secret, so no row can show one: a source with a bearer token
//! or a broker login says so, and no more.

use crate::{ago, h};
use magpie_ingest::Reason;
use magpie_ingest::status::{Endpoint, Link, SourceSnapshot};
use std::fmt::Write as _;

/// Appends the section to `o`.
pub(crate) fn table(o: &mut String, now: i64, sources: &[SourceSnapshot]) {
    o.push_str("<h2>Push ingest</h2><table id=\"ingest\"><tr><th>source</th><th>receives</th><th>state</th><th>messages</th><th>samples</th><th>refused</th><th>last accepted</th><th>rate limit</th><th>decoders</th><th>last error</th></tr>");
    if sources.is_empty() {
        o.push_str("<tr><td colspan=\"10\">none configured</td></tr>");
    }
    for s in sources {
        let (class, rate_over) = match &s.about.endpoint {
            Endpoint::Http { .. } => ("http", "429 beyond"),
            Endpoint::Mqtt { .. } => ("mqtt", "waits beyond"),
        };
        let state_class = match s.link {
            Link::Listening | Link::Connected => "up",
            Link::Reconnecting | Link::Stopped => "down",
            Link::Starting => "",
        };
        let _ = write!(
            o,
            "<tr class=\"ingest {class}\" data-source=\"{}\"><td>{}</td><td class=\"receives\">{}</td><td class=\"state {state_class}\">{}</td><td class=\"num messages\" data-value=\"{}\">{}</td><td class=\"num samples\" data-value=\"{}\">{}</td><td class=\"refused\" data-value=\"{}\">{}</td><td class=\"last\" data-ms=\"{}\">{}</td><td class=\"rate\">{}</td><td class=\"decoders\">{}</td><td class=\"err\">{}</td></tr>",
            h(&s.name),
            h(&s.name),
            receives(&s.about.endpoint),
            s.link.as_str(),
            s.messages,
            s.messages,
            s.samples,
            s.samples,
            s.refused(),
            refused(s),
            s.last_accepted_ms.unwrap_or(0),
            ago(now, s.last_accepted_ms.unwrap_or(0)),
            match s.about.max_messages_per_second {
                0 => "none".to_string(),
                n => format!("{n} messages/s, {rate_over}"),
            },
            decoders(s),
            s.last_error
                .as_ref()
                .map_or(String::new(), |(at, e)| format!(
                    "{} ({})",
                    h(e),
                    ago(now, *at)
                )),
        );
    }
    o.push_str("</table>");
}

/// Where a source takes messages from, in words.
fn receives(e: &Endpoint) -> String {
    match e {
        Endpoint::Http {
            listen,
            bearer_token,
        } => format!(
            "HTTP on {}{}",
            h(listen),
            if *bearer_token {
                ", bearer token required"
            } else {
                ""
            }
        ),
        Endpoint::Mqtt {
            broker,
            topics,
            qos,
            login,
        } => {
            let topics: Vec<String> = topics
                .iter()
                .map(|t| format!("<code>{}</code>", h(t)))
                .collect();
            format!(
                "MQTT {}{}, QoS {qos}: {}",
                h(broker),
                if *login { " with a login" } else { "" },
                topics.join(" ")
            )
        }
    }
}

/// The total and a count per reason that happened.
fn refused(s: &SourceSnapshot) -> String {
    if s.rejects.is_empty() {
        return "0".into();
    }
    let mut o = s.refused().to_string();
    o.push(':');
    for (reason, n) in &s.rejects {
        let _ = write!(
            o,
            " <span class=\"reject\" data-reason=\"{}\" data-value=\"{n}\">{} {n}</span>",
            reason.as_str(),
            words(*reason)
        );
    }
    o
}

/// A reason as an operator reads it; the `reason` label is in `data-reason`.
const fn words(r: Reason) -> &'static str {
    match r {
        Reason::Malformed => "malformed",
        Reason::TooLarge => "too large",
        Reason::TooManySamples => "too many samples",
        Reason::Unsupported => "unsupported path or method",
        Reason::Unauthorized => "unauthorized",
        Reason::DecoderFault => "decoder fault",
        Reason::DecoderUnavailable => "decoder unavailable",
        Reason::Wal => "WAL failure",
        Reason::RateLimited => "rate limited",
        Reason::UnsupportedEncoding => "unsupported Content-Encoding",
        Reason::TlsHandshake => "TLS handshake refused",
    }
}

/// Each decoder with its share of the accepted messages.
fn decoders(s: &SourceSnapshot) -> String {
    let mut o = String::new();
    for (i, d) in s.decoders.iter().enumerate() {
        if i > 0 {
            o.push_str("<br>");
        }
        let _ = write!(
            o,
            "<span class=\"decoder\" data-route=\"{}\" data-decoder=\"{}\" data-messages=\"{}\" data-samples=\"{}\">{}{}: {} messages, {} samples</span>",
            d.route.as_str(),
            h(&d.plugin),
            d.messages,
            d.samples,
            match s.about.endpoint {
                Endpoint::Http { .. } => format!("{} ", d.route.as_str()),
                Endpoint::Mqtt { .. } => String::new(),
            },
            h(&d.plugin),
            d.messages,
            d.samples,
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_ingest::status::{About, DecoderCounts, Route};

    const NOW: i64 = 1_700_000_000_000;

    fn http() -> SourceSnapshot {
        SourceSnapshot {
            name: "lan<1>".into(),
            about: About {
                endpoint: Endpoint::Http {
                    listen: "127.0.0.1:9091".into(),
                    bearer_token: true,
                },
                decoders: vec![],
                max_messages_per_second: 20,
            },
            link: Link::Listening,
            last_error: None,
            messages: 3,
            samples: 12,
            rejects: vec![(Reason::Malformed, 2), (Reason::Unauthorized, 1)],
            last_accepted_ms: Some(NOW - 4_000),
            decoders: vec![
                DecoderCounts {
                    route: Route::Pushgateway,
                    plugin: "prom-text".into(),
                    messages: 2,
                    samples: 2,
                },
                DecoderCounts {
                    route: Route::Influx,
                    plugin: "influx".into(),
                    messages: 1,
                    samples: 10,
                },
            ],
        }
    }

    fn mqtt() -> SourceSnapshot {
        SourceSnapshot {
            name: "plant".into(),
            about: About {
                endpoint: Endpoint::Mqtt {
                    broker: "mqtt://10.0.0.2:1883".into(),
                    topics: vec!["spBv1.0/#".into(), "meters/<x>".into()],
                    qos: 1,
                    login: true,
                },
                decoders: vec![],
                max_messages_per_second: 0,
            },
            link: Link::Reconnecting,
            last_error: Some((NOW - 2_000, "I/O: Connection refused <os error 111>".into())),
            messages: 0,
            samples: 0,
            rejects: vec![],
            last_accepted_ms: None,
            decoders: vec![DecoderCounts {
                route: Route::Mqtt,
                plugin: "sparkplug-b".into(),
                messages: 0,
                samples: 0,
            }],
        }
    }

    fn render(sources: &[SourceSnapshot]) -> String {
        let mut o = String::new();
        table(&mut o, NOW, sources);
        o
    }

    #[test]
    fn an_http_source_shows_its_counts_refusals_and_decoders() {
        let t = render(&[http()]);
        for want in [
            "<tr class=\"ingest http\" data-source=\"lan&lt;1&gt;\"><td>lan&lt;1&gt;</td>",
            "HTTP on 127.0.0.1:9091, bearer token required",
            "<td class=\"state up\">listening</td>",
            "<td class=\"num messages\" data-value=\"3\">3</td>",
            "<td class=\"num samples\" data-value=\"12\">12</td>",
            "<td class=\"refused\" data-value=\"3\">3: <span class=\"reject\" data-reason=\"malformed\" data-value=\"2\">malformed 2</span> <span class=\"reject\" data-reason=\"unauthorized\" data-value=\"1\">unauthorized 1</span></td>",
            "<td class=\"last\" data-ms=\"1699999996000\">4.0 s ago</td>",
            "<td class=\"rate\">20 messages/s, 429 beyond</td>",
            "data-route=\"pushgateway\" data-decoder=\"prom-text\" data-messages=\"2\" data-samples=\"2\">pushgateway prom-text: 2 messages, 2 samples</span><br>",
            "data-route=\"influx\" data-decoder=\"influx\" data-messages=\"1\" data-samples=\"10\">influx influx: 1 messages, 10 samples</span>",
        ] {
            assert!(t.contains(want), "{want}\nnot in\n{t}");
        }
    }

    #[test]
    fn an_mqtt_source_shows_its_broker_topics_and_last_error_escaped() {
        let t = render(&[mqtt()]);
        for want in [
            "MQTT mqtt://10.0.0.2:1883 with a login, QoS 1: <code>spBv1.0/#</code> <code>meters/&lt;x&gt;</code>",
            "<td class=\"state down\">reconnecting</td>",
            "<td class=\"refused\" data-value=\"0\">0</td>",
            "<td class=\"last\" data-ms=\"0\">never</td>",
            "<td class=\"rate\">none</td>",
            ">sparkplug-b: 0 messages, 0 samples</span>",
            "<td class=\"err\">I/O: Connection refused &lt;os error 111&gt; (2.0 s ago)</td>",
        ] {
            assert!(t.contains(want), "{want}\nnot in\n{t}");
        }
    }

    #[test]
    fn no_sources_say_so() {
        assert!(render(&[]).contains("<td colspan=\"10\">none configured</td>"));
        assert_eq!(
            render(&[http(), mqtt()])
                .matches("<tr class=\"ingest ")
                .count(),
            2
        );
    }
}
