//! The wasm32 plugin: a UDP session per scrape over the host's `udp_connect` (v1/v2c with a
//! community, v3 with USM and engine discovery), retries within the call's deadline, and the
//! scrape loop over the modules.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use magpie_sdk::abi::{FamilyMeta, HostError, MetadataUpdate, ScrapeRequest, Value};
use magpie_sdk::guest::{self, Emitter, Error, Scraper, UdpSocket};

use crate::config::{Config, Security};
use crate::pdu::{self, Pdu, RESPONSE};
use crate::render::{self, Results, Sample};
use crate::usm::{self, Engine, User};
use crate::walk::{self, Exchange, Stats};

/// Largest datagram read (the most an agent may send over UDP/IPv4).
const MAX_DATAGRAM: usize = 65_535;
/// Answers to other requests skipped while waiting for ours.
const MAX_STALE: usize = 32;

struct Session<'a> {
    sock: &'a UdpSocket,
    security: &'a Security,
    engine: &'a mut Option<Engine>,
    retries: u32,
    timeout_ms: u32,
    msg_id: i32,
    salt: u64,
    sent: u32,
    buf: Vec<u8>,
}

impl Session<'_> {
    /// Sends `msg` up to `retries + 1` times; returns the first datagram `accept` takes.
    fn send_recv<T>(
        &mut self,
        msg: &[u8],
        mut accept: impl FnMut(&[u8]) -> Option<Result<T, String>>,
    ) -> Result<T, String> {
        let mut tries = 0;
        for _ in 0..=self.retries {
            self.sock.send(msg).map_err(|e| format!("send: {e}"))?;
            tries += 1;
            self.sent += 1;
            for _ in 0..MAX_STALE {
                match self.sock.recv(&mut self.buf) {
                    Ok(n) => {
                        if let Some(r) = accept(&self.buf[..n]) {
                            return r;
                        }
                    }
                    Err(HostError::Timeout) => break,
                    Err(e) => return Err(format!("receive: {e}")),
                }
            }
        }
        // The scrape's deadline may cut a wait short: say what was tried, not what was meant.
        Err(format!(
            "no answer after {tries} tries of at most {} ms each (timeout)",
            self.timeout_ms
        ))
    }

    fn next_msg_id(&mut self) -> i32 {
        self.msg_id = self.msg_id.wrapping_add(1) & 0x7fff_ffff;
        self.msg_id
    }

    fn discover(&mut self, user: &User) -> Result<(), String> {
        let id = self.next_msg_id();
        let probe = usm::encode(user, None, 0, id, &Pdu::get(id, &[]), 0);
        let inc = self.send_recv(&probe, |b| {
            usm::decode(user, None, b)
                .ok()
                .filter(|i| i.msg_id == id)
                .map(Ok)
        })?;
        if inc.engine_id.is_empty() {
            return Err("engine discovery: the agent sent no engine ID".into());
        }
        *self.engine = Some(Engine::new(
            user,
            inc.engine_id,
            inc.boots,
            inc.time,
            guest::now_ms(),
        ));
        Ok(())
    }

    fn v3(&mut self, user: &User, pdu: &Pdu) -> Result<Pdu, String> {
        if self.engine.is_none() {
            self.discover(user)?;
        }
        for round in 0..2 {
            let id = self.next_msg_id();
            self.salt = self.salt.wrapping_add(1);
            let eng = self.engine.as_ref().ok_or("no engine")?;
            let msg = usm::encode(user, Some(eng), guest::now_ms(), id, pdu, self.salt);
            let eng = eng.clone();
            let inc = self.send_recv(&msg, |b| match usm::decode(user, Some(&eng), b) {
                Ok(i) if i.msg_id == id => Some(Ok(i)),
                Ok(_) => None,
                // A datagram for this request that fails its checks is the answer.
                Err(e) => Some(Err(e)),
            })?;
            match usm::report_name(&inc.pdu) {
                None => return Ok(inc.pdu),
                Some("notInTimeWindows" | "unknownEngineIDs") if round == 0 => {
                    // The agent rebooted or our clock drifted: learn its clock again.
                    *self.engine = None;
                    self.discover(user)?;
                }
                Some(r) => {
                    return Err(format!(
                        "the agent answered with the USM report {r} (user `{}`)",
                        user.name
                    ));
                }
            }
        }
        Err("the agent keeps answering notInTimeWindows".into())
    }
}

impl Exchange for Session<'_> {
    fn exchange(&mut self, req: &Pdu) -> Result<Pdu, String> {
        let resp = match self.security {
            Security::Community { version, community } => {
                let msg = pdu::encode_community(*version, community, req);
                self.send_recv(&msg, |b| match pdu::decode_community(b) {
                    Ok((_, _, p)) if p.request_id == req.request_id => Some(Ok(p)),
                    _ => None,
                })?
            }
            Security::Usm(user) => self.v3(user, req)?,
        };
        if resp.kind != RESPONSE {
            return Err(format!(
                "the agent answered with PDU type 0x{:02x}",
                resp.kind
            ));
        }
        Ok(resp)
    }

    fn v1(&self) -> bool {
        matches!(self.security, Security::Community { version: 0, .. })
    }
}

struct Snmp {
    config: Config,
    index: Vec<BTreeMap<Vec<u32>, usize>>,
    /// Engines learnt per target (v3): their clocks and the keys localised to them.
    engines: BTreeMap<String, Engine>,
    /// Targets whose metadata was reported.
    described: BTreeSet<String>,
    msg_id: i32,
}

fn read_granted(path: &str) -> Result<Vec<u8>, String> {
    let mut f = guest::open(path).map_err(|e| match e {
        HostError::Denied => {
            format!("not granted; add it to the job's `files` (files = [\"{path}\"])")
        }
        e => e.to_string(),
    })?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

impl Snmp {
    fn scrape_module(
        &mut self,
        i: usize,
        target: &str,
        sock: &mut UdpSocket,
        out: &mut Vec<Sample>,
    ) -> Result<Stats, String> {
        let m = &self.config.modules[i];
        sock.set_read_timeout_ms(m.timeout_ms);
        let mut engine = self.engines.remove(target);
        let mut session = Session {
            sock,
            security: &self.config.security,
            engine: &mut engine,
            retries: m.retries,
            timeout_ms: m.timeout_ms,
            msg_id: self.msg_id,
            #[allow(clippy::cast_sign_loss)]
            salt: (guest::now_ms() as u64) << 16,
            sent: 0,
            buf: alloc::vec![0; MAX_DATAGRAM],
        };
        let mut results = Results::new();
        let mut stats = Stats::default();
        let mut id = self.msg_id;
        let run = (|| {
            walk::get(&mut session, &mut id, &m.get, &mut results, &mut stats)?;
            for root in &m.walk {
                walk::walk(
                    &mut session,
                    &mut id,
                    root,
                    m.max_repetitions,
                    &mut results,
                    &mut stats,
                )?;
            }
            Ok::<(), String>(())
        })();
        self.msg_id = session.msg_id.max(id);
        let sent = session.sent;
        if run.is_ok()
            && let Some(e) = engine
        {
            self.engines.insert(target.to_string(), e);
        }
        run?;
        render::render(m, &self.index[i], &results, out);
        stats.requests = sent;
        Ok(stats)
    }
}

impl Scraper for Snmp {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        let config = Config::from_table(config, &read_granted).map_err(Error::new)?;
        let index = config.modules.iter().map(render::by_oid).collect();
        Ok(Self {
            config,
            index,
            engines: BTreeMap::new(),
            described: BTreeSet::new(),
            msg_id: 0,
        })
    }

    fn scrape(&mut self, req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
        let target = req.target().to_string();
        let mut sock = UdpSocket::connect(&target)
            .map_err(|e| Error::new(format!("{target}: connect: {e}")))?;
        if self.msg_id == 0 {
            #[allow(clippy::cast_possible_truncation)]
            {
                self.msg_id = (guest::now_ms() as i32) & 0x00ff_ffff;
            }
        }
        if !self.described.contains(&target) {
            let mut changed = Vec::new();
            for m in &self.config.modules {
                for f in render::families(m) {
                    changed.push(FamilyMeta {
                        name: f.name.into(),
                        kind: f.kind,
                        help: f.help.into(),
                        unit: "".into(),
                    });
                }
            }
            changed.sort();
            changed.dedup_by(|a, b| a.name == b.name);
            out.metadata(&MetadataUpdate::V1 {
                changed,
                gone: Vec::new(),
            })
            .map_err(|e| Error::new(format!("{target}: metadata: {e}")))?;
            self.described.insert(target.clone());
        }
        for i in 0..self.config.modules.len() {
            let name = self.config.modules[i].name.clone();
            let mut samples = Vec::new();
            let stats = self
                .scrape_module(i, &target, &mut sock, &mut samples)
                .map_err(|e| Error::new(format!("{target}: module `{name}`: {e}")))?;
            for s in &mut samples {
                s.labels.retain(|(_, v)| !v.is_empty());
                s.labels.sort();
                let labels = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                out.sample(&s.name, labels, s.value, None)?;
            }
            #[allow(clippy::cast_precision_loss)]
            {
                out.sample(
                    "snmp_scrape_pdus_returned",
                    [("module", name.as_str())],
                    stats.pdus as f64,
                    None,
                )?;
                out.sample(
                    "snmp_scrape_packets_sent",
                    [("module", name.as_str())],
                    f64::from(stats.requests),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

magpie_sdk::export_scraper!(Snmp);
