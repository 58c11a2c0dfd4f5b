//! DNS service discovery with Prometheus' `dns_sd_configs` semantics: targets from SRV
//! records, or from A/AAAA records and a fixed port.
//!
//! ```toml
//! [[scrape.dns_sd_configs]]
//! names = ["_node._tcp.site.example"]
//! type = "SRV"                 # default; or "A", "AAAA" (then `port` is required)
//! refresh_interval = "30s"     # default
//! # port = 9100
//! # server = "127.0.0.1:53"    # default: the nameservers of /etc/resolv.conf
//! ```
//!
//! Each name gives one group per record with `__address__` (`host:port`; for SRV the record's
//! target without its final dot and the record's port, for AAAA `[addr]:port`) and
//! `__meta_dns_name` (the configured name), `__meta_dns_srv_record_target` (with its final
//! dot) and `__meta_dns_srv_record_port` (both empty for A/AAAA), as Prometheus sets them.
//!
//! # Resolution
//! As Prometheus' own lookup (`discovery/dns/dns.go`): names are tried with the search
//! domains of `/etc/resolv.conf` as its `ndots` rule says; each is asked of each server in
//! turn, over UDP with EDNS0 and again over TCP when the answer is truncated. An answer
//! (records, none of that type, or NXDOMAIN) settles the name; a name that no server
//! answers keeps the targets of its last good answer, and the failure is reported naming it.
//! NXDOMAIN everywhere means no targets. `server` points discovery at one resolver instead
//! of `/etc/resolv.conf` (a local `dnsmasq`, a split-horizon server); there is no search
//! path then.
//!
//! # Why no resolver crate
//! The messages needed are one question and its answer records (`dns/wire.rs`, a few hundred
//! lines with tests). The usual crate, `hickory-resolver`, is a whole caching resolver with
//! several transports; `docs/design.md` ("Dependencies") has what this choice costs.

mod wire;

use super::TargetGroup;
use crate::units::Dur;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire::{RCODE_NXDOMAIN, RCODE_OK, Record};

/// How often names are resolved when the configuration does not say.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The label holding the configured name a target came from.
pub const NAME_LABEL: &str = "__meta_dns_name";
/// The label holding an SRV record's target.
pub const SRV_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
/// The label holding an SRV record's port.
pub const SRV_PORT_LABEL: &str = "__meta_dns_srv_record_port";
/// How long one server gets to answer one question.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The record type asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordType {
    /// Service records: host and port.
    #[default]
    Srv,
    /// IPv4 addresses, with the configured port.
    A,
    /// IPv6 addresses, with the configured port.
    Aaaa,
}

impl<'de> Deserialize<'de> for RecordType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_uppercase().as_str() {
            "SRV" => Ok(Self::Srv),
            "A" => Ok(Self::A),
            "AAAA" => Ok(Self::Aaaa),
            _ => Err(serde::de::Error::custom(format!(
                "invalid DNS-SD records type `{s}` (expected SRV, A or AAAA)"
            ))),
        }
    }
}

impl RecordType {
    const fn code(self) -> u16 {
        match self {
            Self::Srv => wire::TYPE_SRV,
            Self::A => wire::TYPE_A,
            Self::Aaaa => wire::TYPE_AAAA,
        }
    }
}

/// `dns_sd_configs`: names to resolve into targets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// The names to resolve.
    pub names: Vec<String>,
    /// `SRV` (default), `A` or `AAAA`.
    #[serde(default, rename = "type")]
    pub kind: RecordType,
    /// The port of A and AAAA targets (required for them).
    #[serde(default)]
    pub port: Option<u16>,
    /// How often names are resolved. Default 30s.
    #[serde(default)]
    pub refresh_interval: Option<Dur>,
    /// A resolver `ip:port` to ask instead of those of `/etc/resolv.conf`.
    #[serde(default)]
    pub server: Option<String>,
}

impl DnsSdConfig {
    /// The refresh interval in effect.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
            .map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// Every problem found, each naming the key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.names.is_empty() {
            errors.push("names: must list at least one name".into());
        }
        for n in &self.names {
            if let Err(e) = wire::query(0, n, wire::TYPE_A, false) {
                errors.push(format!("names: {e}"));
            }
        }
        if self.kind != RecordType::Srv && self.port.is_none_or(|p| p == 0) {
            errors.push(
                "port: a port is required in DNS-SD configs for all record types except SRV".into(),
            );
        }
        if self.refresh_interval.is_some_and(|d| d.0.is_zero()) {
            errors.push("refresh_interval: must be longer than 0s".into());
        }
        if let Some(s) = &self.server
            && s.parse::<std::net::SocketAddr>().is_err()
        {
            errors.push(format!("server: `{s}` is not an ip:port"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Where and how names are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolver {
    servers: Vec<std::net::SocketAddr>,
    search: Vec<String>,
    ndots: usize,
}

impl Resolver {
    /// The nameservers, search domains and `ndots` of a `resolv.conf`.
    fn from_resolv_conf(text: &str) -> Self {
        let mut r = Self {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        r.servers.push(std::net::SocketAddr::new(ip, 53));
                    }
                }
                Some("search" | "domain") => {
                    r.search = words.map(ToString::to_string).collect();
                }
                Some("options") => {
                    for w in words {
                        if let Some(n) = w.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                            r.ndots = n;
                        }
                    }
                }
                _ => {}
            }
        }
        if r.servers.is_empty() {
            r.servers.push(([127, 0, 0, 1], 53).into());
        }
        r
    }

    /// The names to try for `name`, in order (`miekg/dns` `ClientConfig.NameList`).
    fn names(&self, name: &str) -> Vec<String> {
        let fqdn = |n: &str| {
            if n.ends_with('.') {
                n.to_string()
            } else {
                format!("{n}.")
            }
        };
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let searched = self
            .search
            .iter()
            .map(|d| fqdn(&format!("{name}.{}", d.trim_end_matches('.'))));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(fqdn(name)).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(fqdn(name))).collect()
        }
    }
}

/// Discovery from DNS names; see the module documentation.
#[derive(Debug)]
pub struct DnsSd {
    config: DnsSdConfig,
    /// Per configured name, the groups of its last good answer.
    found: BTreeMap<String, Vec<TargetGroup>>,
    /// The groups changed since a caller last got them from `refresh`.
    pending: bool,
    next_id: u16,
}

impl DnsSd {
    /// Discovery for `config`.
    ///
    /// # Errors
    /// What [`DnsSdConfig::validate`] finds.
    pub fn new(config: &DnsSdConfig) -> Result<Self, Vec<String>> {
        config.validate()?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        Ok(Self {
            config: config.clone(),
            found: BTreeMap::new(),
            pending: true,
            #[allow(clippy::cast_possible_truncation)]
            next_id: (seed ^ (seed >> 16)) as u16,
        })
    }

    /// Time between refreshes.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        self.config.refresh_interval()
    }

    /// Resolves every name. Returns every group when anything changed since the last
    /// `Ok(Some(_))`, `Ok(None)` when nothing did.
    ///
    /// # Errors
    /// Names that could not be resolved, each named; they keep their last good groups, and
    /// the changes of the others are returned by the next call.
    pub async fn refresh(&mut self) -> Result<Option<Vec<TargetGroup>>, Vec<String>> {
        let resolver = match &self.config.server {
            Some(s) => Resolver {
                servers: s.parse().into_iter().collect(),
                search: Vec::new(),
                ndots: 1,
            },
            None => Resolver::from_resolv_conf(
                &std::fs::read_to_string(RESOLV_CONF).unwrap_or_default(),
            ),
        };
        let mut errors = Vec::new();
        for name in self.config.names.clone() {
            match self.lookup(&resolver, &name).await {
                Ok(records) => {
                    let groups = self.groups_of(&name, &records);
                    if self.found.get(&name) != Some(&groups) {
                        self.found.insert(name, groups);
                        self.pending = true;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(std::mem::take(&mut self.pending).then(|| self.groups()))
    }

    /// The groups of every name as of the last refresh.
    #[must_use]
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.found.values().flatten().cloned().collect()
    }

    fn groups_of(&self, name: &str, records: &[Record]) -> Vec<TargetGroup> {
        let port = self.config.port.unwrap_or(0);
        records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (address, srv_target, srv_port) = match r {
                    Record::Srv { target, port } => (
                        format!("{}:{port}", target.trim_end_matches('.')),
                        target.clone(),
                        port.to_string(),
                    ),
                    Record::A(ip) => (format!("{ip}:{port}"), String::new(), String::new()),
                    Record::Aaaa(ip) => (format!("[{ip}]:{port}"), String::new(), String::new()),
                };
                let labels = BTreeMap::from([
                    (NAME_LABEL.to_string(), name.to_string()),
                    (SRV_TARGET_LABEL.to_string(), srv_target),
                    (SRV_PORT_LABEL.to_string(), srv_port),
                ]);
                TargetGroup {
                    targets: vec![address],
                    labels,
                    source: format!("{name}:{i}"),
                }
            })
            .collect()
    }

    /// The records of `name`, following Prometheus' outcomes: an answer for one of the
    /// names tried, or NXDOMAIN for all of them (no records), or an error.
    async fn lookup(&mut self, resolver: &Resolver, name: &str) -> Result<Vec<Record>, String> {
        let mut all_answered = true;
        let mut failures = Vec::new();
        for candidate in resolver.names(name) {
            let mut answered = false;
            for &server in &resolver.servers {
                match self.ask(server, &candidate).await {
                    Ok(r) if r.rcode == RCODE_OK => return Ok(r.records),
                    Ok(r) if r.rcode == RCODE_NXDOMAIN => {
                        answered = true;
                        break;
                    }
                    Ok(r) => failures.push(format!("{server}: {candidate}: rcode {}", r.rcode)),
                    Err(e) => failures.push(format!("{server}: {candidate}: {e}")),
                }
            }
            all_answered &= answered;
        }
        if all_answered {
            return Ok(Vec::new());
        }
        Err(format!(
            "could not resolve `{name}` (its targets stay as they were): {}",
            failures.join("; ")
        ))
    }

    /// One question to one server: UDP, then TCP if the answer was truncated.
    async fn ask(
        &mut self,
        server: std::net::SocketAddr,
        name: &str,
    ) -> Result<wire::Response, String> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let qtype = self.config.kind.code();
        let q = wire::query(id, name, qtype, true)?;
        let udp = async {
            let bind: std::net::SocketAddr = if server.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let sock = tokio::net::UdpSocket::bind(bind)
                .await
                .map_err(|e| e.to_string())?;
            sock.connect(server).await.map_err(|e| e.to_string())?;
            sock.send(&q).await.map_err(|e| e.to_string())?;
            let mut buf = vec![0; usize::from(wire::EDNS_SIZE).max(4096)];
            loop {
                let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
                // A stray datagram (another id) is not the answer; keep waiting.
                match wire::parse(&buf[..n], id, qtype) {
                    Err(e) if e.contains("another query") => {}
                    other => return other,
                }
            }
        };
        let r = tokio::time::timeout(QUERY_TIMEOUT, udp)
            .await
            .map_err(|_| format!("no answer within {QUERY_TIMEOUT:?}"))??;
        if !r.truncated {
            return Ok(r);
        }
        let q = wire::query(id, name, qtype, false)?;
        let tcp = async {
            let mut s = tokio::net::TcpStream::connect(server)
                .await
                .map_err(|e| e.to_string())?;
            let len = u16::try_from(q.len()).map_err(|e| e.to_string())?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            s.write_all(&framed).await.map_err(|e| e.to_string())?;
            let mut len = [0; 2];
            s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
            let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            wire::parse(&buf, id, qtype)
        };
        let r = tokio::time::timeout(QUERY_TIMEOUT, tcp)
            .await
            .map_err(|_| format!("no answer over TCP within {QUERY_TIMEOUT:?}"))??;
        if r.truncated {
            return Err("got a truncated message over TCP".into());
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_search_names() {
        let r = Resolver::from_resolv_conf(
            "# comment\nnameserver 10.0.0.53\nnameserver ::1\nsearch a.example b.example.\noptions ndots:2 timeout:1\n",
        );
        assert_eq!(
            r.servers,
            ["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        assert_eq!(r.ndots, 2);
        assert_eq!(r.names("x.y."), ["x.y."]);
        assert_eq!(r.names("x"), ["x.a.example.", "x.b.example.", "x."]);
        assert_eq!(
            r.names("x.y.z"),
            ["x.y.z.", "x.y.z.a.example.", "x.y.z.b.example."]
        );
        assert_eq!(
            Resolver::from_resolv_conf("").servers,
            ["127.0.0.1:53".parse().unwrap()]
        );
    }

    #[test]
    fn settings() {
        let c: DnsSdConfig = toml::from_str("names = [\"_n._tcp.x\"]").unwrap();
        assert_eq!(
            (c.kind, c.refresh_interval()),
            (RecordType::Srv, DEFAULT_REFRESH_INTERVAL)
        );
        assert!(c.validate().is_ok());
        let c: DnsSdConfig = toml::from_str("names = [\"h\"]\ntype = \"aaaa\"").unwrap();
        assert_eq!(c.kind, RecordType::Aaaa);
        assert!(c.validate().unwrap_err()[0].contains("port is required"));
        let c: DnsSdConfig =
            toml::from_str("names = []\nserver = \"localhost\"\nrefresh_interval = \"0s\"")
                .unwrap();
        assert_eq!(c.validate().unwrap_err().len(), 3);
        let e = toml::from_str::<DnsSdConfig>("names = [\"h\"]\ntype = \"MX\"").unwrap_err();
        assert!(
            e.to_string().contains("invalid DNS-SD records type `MX`"),
            "{e}"
        );
    }

    #[test]
    fn targets_and_labels_of_records() {
        let c: DnsSdConfig =
            toml::from_str("names = [\"n\"]\ntype = \"AAAA\"\nport = 9100").unwrap();
        let sd = DnsSd::new(&c).unwrap();
        let g = sd.groups_of(
            "n",
            &[
                Record::Aaaa("fd00::1".parse().unwrap()),
                Record::A([10, 0, 0, 1].into()),
                Record::Srv {
                    target: "h.example.".into(),
                    port: 81,
                },
            ],
        );
        let t: Vec<_> = g.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(t, ["[fd00::1]:9100", "10.0.0.1:9100", "h.example:81"]);
        assert_eq!(g[2].labels[SRV_TARGET_LABEL], "h.example.");
        assert_eq!(g[2].labels[SRV_PORT_LABEL], "81");
        assert_eq!(g[0].labels[SRV_PORT_LABEL], "");
        assert_eq!(g[0].labels[NAME_LABEL], "n");
    }
}
