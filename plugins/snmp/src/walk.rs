//! GET and walks over any [`Exchange`] (the v2c or v3 session of the wasm build, an
//! in-memory agent in tests): GETBULK with the module's max-repetitions (GETNEXT for v1),
//! stopping at the end of the subtree or at `endOfMibView`; an agent that answers an OID not
//! after the one asked is an error, so a broken agent cannot loop a walk forever.

use crate::pdu::{Pdu, Value, error_status_name};
use crate::render::Results;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Most OIDs in one GET request (as snmp_exporter's default `max_oids`... per request).
pub const MAX_GET_OIDS: usize = 60;

/// One request, its response: a session with retries and timeouts of its own.
pub trait Exchange {
    /// Sends `pdu` and returns the response PDU with the same request id.
    ///
    /// # Errors
    /// No answer within the retries, a USM report, a malformed answer.
    fn exchange(&mut self, pdu: &Pdu) -> Result<Pdu, String>;

    /// Whether walks use GETNEXT (SNMP v1 has no GETBULK).
    fn v1(&self) -> bool {
        false
    }
}

/// Counts what a scrape cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered.
    pub requests: u32,
    /// Variable bindings returned.
    pub pdus: u64,
}

fn check(resp: &Pdu) -> Result<(), String> {
    if resp.error_status == 0 {
        return Ok(());
    }
    let which = usize::try_from(resp.error_index)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| resp.varbinds.get(i))
        .map(|(oid, _)| format!(" at {}", crate::ber::oid_string(oid)))
        .unwrap_or_default();
    Err(format!(
        "agent answered {}{which}",
        error_status_name(resp.error_status)
    ))
}

/// GETs `oids` in requests of at most [`MAX_GET_OIDS`]; OIDs the agent lacks are left out.
///
/// # Errors
/// As [`Exchange::exchange`]; an error-status in the answer.
pub fn get(
    s: &mut impl Exchange,
    next_id: &mut i32,
    oids: &[Vec<u32>],
    out: &mut Results,
    stats: &mut Stats,
) -> Result<(), String> {
    for chunk in oids.chunks(MAX_GET_OIDS) {
        *next_id = next_id.wrapping_add(1) & 0x7fff_ffff;
        let resp = s.exchange(&Pdu::get(*next_id, chunk))?;
        stats.requests += 1;
        check(&resp)?;
        for (oid, v) in resp.varbinds {
            stats.pdus += 1;
            if !v.is_exception() {
                out.insert(oid, v);
            }
        }
    }
    Ok(())
}

/// Walks the subtree under `root`.
///
/// # Errors
/// As [`get`]; an agent answering OIDs out of order.
pub fn walk(
    s: &mut impl Exchange,
    next_id: &mut i32,
    root: &[u32],
    max_repetitions: u32,
    out: &mut Results,
    stats: &mut Stats,
) -> Result<(), String> {
    let mut cur = root.to_vec();
    loop {
        *next_id = next_id.wrapping_add(1) & 0x7fff_ffff;
        let req = if s.v1() {
            Pdu::get_next(*next_id, &cur)
        } else {
            Pdu::get_bulk(*next_id, &cur, max_repetitions)
        };
        let resp = s.exchange(&req)?;
        stats.requests += 1;
        if s.v1() && resp.error_status == 2 {
            // noSuchName: v1's end of the MIB view.
            return Ok(());
        }
        check(&resp)?;
        if resp.varbinds.is_empty() {
            return Ok(());
        }
        for (oid, v) in resp.varbinds {
            stats.pdus += 1;
            if v == Value::EndOfMibView || !oid.starts_with(root) {
                return Ok(());
            }
            if oid <= cur {
                return Err(format!(
                    "agent answered {} after {}: OIDs not increasing",
                    crate::ber::oid_string(&oid),
                    crate::ber::oid_string(&cur)
                ));
            }
            cur.clone_from(&oid);
            out.insert(oid, v);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pdu::{GET, GET_BULK, GET_NEXT, RESPONSE};
    use alloc::collections::BTreeMap;

    /// An agent over a sorted OID map, answering as RFC 3416 says.
    pub(crate) struct Agent {
        pub(crate) mib: BTreeMap<Vec<u32>, Value>,
        pub(crate) requests: Vec<u8>,
    }

    impl Exchange for Agent {
        fn exchange(&mut self, pdu: &Pdu) -> Result<Pdu, String> {
            self.requests.push(pdu.kind);
            let next = |oid: &Vec<u32>| {
                self.mib
                    .range::<Vec<u32>, _>((
                        core::ops::Bound::Excluded(oid),
                        core::ops::Bound::Unbounded,
                    ))
                    .next()
                    .map_or((oid.clone(), Value::EndOfMibView), |(k, v)| {
                        (k.clone(), v.clone())
                    })
            };
            let varbinds = match pdu.kind {
                GET => pdu
                    .varbinds
                    .iter()
                    .map(|(o, _)| {
                        (
                            o.clone(),
                            self.mib.get(o).cloned().unwrap_or(Value::NoSuchObject),
                        )
                    })
                    .collect(),
                GET_NEXT => alloc::vec![next(&pdu.varbinds[0].0)],
                GET_BULK => {
                    let mut cur = pdu.varbinds[0].0.clone();
                    let mut out = Vec::new();
                    for _ in 0..pdu.error_index {
                        let (o, v) = next(&cur);
                        let end = v == Value::EndOfMibView;
                        out.push((o.clone(), v));
                        if end {
                            break;
                        }
                        cur = o;
                    }
                    out
                }
                _ => return Err("unexpected PDU".into()),
            };
            Ok(Pdu {
                kind: RESPONSE,
                request_id: pdu.request_id,
                error_status: 0,
                error_index: 0,
                varbinds,
            })
        }
    }

    fn o(s: &str) -> Vec<u32> {
        crate::ber::parse_oid(s).unwrap()
    }

    fn agent() -> Agent {
        let mut mib = BTreeMap::new();
        mib.insert(o("1.3.6.1.2.1.1.1.0"), Value::Octets(b"box".to_vec()));
        for i in 1..=7 {
            mib.insert(o(&format!("1.3.6.1.2.1.2.2.1.1.{i}")), Value::Int(i));
        }
        mib.insert(o("1.3.6.1.2.1.3.1.0"), Value::Int(0));
        Agent {
            mib,
            requests: Vec::new(),
        }
    }

    #[test]
    fn a_bulk_walk_takes_the_subtree_in_max_repetitions_steps() {
        let mut a = agent();
        let (mut out, mut st, mut id) = (Results::new(), Stats::default(), 0);
        walk(&mut a, &mut id, &o("1.3.6.1.2.1.2"), 3, &mut out, &mut st).unwrap();
        assert_eq!(out.len(), 7);
        assert!(out.keys().all(|k| k.starts_with(&[1, 3, 6, 1, 2, 1, 2])));
        // 3 + 3 + (1 and the row past the subtree).
        assert_eq!(a.requests, [GET_BULK; 3]);
        assert_eq!(st.requests, 3);
    }

    #[test]
    fn a_walk_stops_at_the_end_of_the_mib_view() {
        let mut a = agent();
        let (mut out, mut st, mut id) = (Results::new(), Stats::default(), 0);
        walk(&mut a, &mut id, &o("1.3.6.1.2.1.3"), 25, &mut out, &mut st).unwrap();
        assert_eq!(out.len(), 1);
        walk(&mut a, &mut id, &o("1.3.6.1.9"), 25, &mut out, &mut st).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn get_leaves_out_what_the_agent_lacks() {
        let mut a = agent();
        let (mut out, mut st, mut id) = (Results::new(), Stats::default(), 0);
        get(
            &mut a,
            &mut id,
            &[o("1.3.6.1.2.1.1.1.0"), o("1.3.6.1.2.1.1.5.0")],
            &mut out,
            &mut st,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[&o("1.3.6.1.2.1.1.1.0")], Value::Octets(b"box".to_vec()));
    }

    /// A v1 agent: GETNEXT only, and noSuchName (2) past the end of its view.
    struct V1(Agent);

    impl Exchange for V1 {
        fn exchange(&mut self, pdu: &Pdu) -> Result<Pdu, String> {
            if pdu.kind != GET_NEXT {
                return Err("a v1 agent knows no such PDU".into());
            }
            let mut resp = self.0.exchange(pdu)?;
            if resp.varbinds.iter().any(|(_, v)| *v == Value::EndOfMibView) {
                resp.error_status = 2;
                resp.error_index = 1;
                resp.varbinds.clone_from(&pdu.varbinds);
            }
            Ok(resp)
        }

        fn v1(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_v1_walk_goes_by_getnext_and_ends_at_no_such_name() {
        let mut a = V1(agent());
        let (mut out, mut st, mut id) = (Results::new(), Stats::default(), 0);
        walk(&mut a, &mut id, &o("1.3.6.1.2.1.2"), 25, &mut out, &mut st).unwrap();
        assert_eq!(out.len(), 7);
        // One per row and the one past the subtree.
        assert_eq!(a.0.requests, [GET_NEXT; 8]);
        walk(&mut a, &mut id, &o("1.3.6.1.2.1.3"), 25, &mut out, &mut st).unwrap();
        assert_eq!(out.len(), 8);
        assert_eq!(st.requests, 10);
    }

    struct Looping;

    impl Exchange for Looping {
        fn exchange(&mut self, pdu: &Pdu) -> Result<Pdu, String> {
            Ok(Pdu {
                kind: RESPONSE,
                request_id: pdu.request_id,
                error_status: 0,
                error_index: 0,
                varbinds: alloc::vec![(o("1.3.6.1.2.1.2.1"), Value::Int(1))],
            })
        }
    }

    #[test]
    fn an_agent_answering_the_same_oid_cannot_loop_a_walk() {
        let (mut out, mut st, mut id) = (Results::new(), Stats::default(), 0);
        let e = walk(
            &mut Looping,
            &mut id,
            &o("1.3.6.1.2.1.2"),
            5,
            &mut out,
            &mut st,
        )
        .unwrap_err();
        assert!(e.contains("not increasing"), "{e}");
    }
}
