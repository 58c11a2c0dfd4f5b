//! `mqtt://host[:port]` and `mqtts://host[:port]` broker addresses.

use crate::Error;

/// Where a broker listens and whether to speak TLS to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// TCP port; 1883 for `mqtt://`, 8883 for `mqtts://` when absent.
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses a broker URL. A trailing `/` is allowed; a path, query, or user info is not
    /// (credentials come from `basic_auth`, topics from `topic`).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming the URL and what is wrong.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: url.into(),
            reason: reason.into(),
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(bad("the scheme must be mqtt:// or mqtts://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad(
                "a broker URL has no path or query; put the topic in `topic`",
            ));
        }
        if rest.contains('@') {
            return Err(bad(
                "credentials do not belong in the URL; use basic_auth with a password_file",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` in the host"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            (h, port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
        };
        Ok(Self {
            host: host.into(),
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16, bool) {
        let b = BrokerUrl::parse(url).unwrap();
        (b.host, b.port, b.tls)
    }

    #[test]
    fn schemes_hosts_and_ports() {
        assert_eq!(
            ok("mqtt://127.0.0.1:1884"),
            ("127.0.0.1".into(), 1884, false)
        );
        assert_eq!(ok("mqtt://broker.lan"), ("broker.lan".into(), 1883, false));
        assert_eq!(ok("mqtts://broker.lan/"), ("broker.lan".into(), 8883, true));
        assert_eq!(ok("mqtts://[::1]:9999"), ("::1".into(), 9999, true));
        assert_eq!(ok("mqtt://[::1]"), ("::1".into(), 1883, false));
    }

    #[test]
    fn refusals_say_why() {
        for (url, why) in [
            ("http://x", "scheme"),
            ("mqtt://", "host"),
            ("mqtt://:1883", "host"),
            ("mqtt://x:0", "port"),
            ("mqtt://x:99999", "port"),
            ("mqtt://x:abc", "port"),
            ("mqtt://x/topic", "topic"),
            ("mqtt://u:p@x", "password_file"),
            ("mqtt://[::1", "`[`"),
        ] {
            let e = BrokerUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(e.contains(&*crate::redact_url(url)), "{url}: {e}");
            assert!(!e.contains("u:p@"), "credentials shown: {e}");
        }
    }
}
