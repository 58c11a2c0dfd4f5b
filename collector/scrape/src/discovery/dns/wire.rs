//! The few DNS messages DNS service discovery needs (RFC 1035, SRV from RFC 2782, EDNS0 from
//! RFC 6891): one question out, the answer records of that type back. Bytes in, values out;
//! no I/O, so every malformed message is a unit test away.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types asked for.
pub const TYPE_A: u16 = 1;
/// IPv6 address record.
pub const TYPE_AAAA: u16 = 28;
/// Service record.
pub const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// The UDP payload size advertised with EDNS0 (the DNS flag day 2020 recommendation).
pub const EDNS_SIZE: u16 = 1232;

/// Response codes that matter here.
pub const RCODE_OK: u8 = 0;
/// The name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;

/// One answer record of the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A service: target host name (rooted, with its final dot) and port.
    Srv {
        /// The host name, as `host.example.`.
        target: String,
        /// The port.
        port: u16,
    },
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response code (low 4 bits of the header; extended codes are not used here).
    pub rcode: u8,
    /// Whether the server truncated the answer (ask again over TCP).
    pub truncated: bool,
    /// The answers of the type asked for, in order; others (CNAME, ...) are skipped.
    pub records: Vec<Record>,
}

/// A query for `name` (dots between labels, a final dot optional) of type `qtype`, with an
/// EDNS0 record when `edns`.
///
/// # Errors
/// A name with an empty or over-long label, or over 255 bytes.
pub fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Result<Vec<u8>, String> {
    let mut m = Vec::with_capacity(name.len() + 32);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD: recursion desired
    m.extend_from_slice(&1u16.to_be_bytes()); // one question
    m.extend_from_slice(&[0, 0, 0, 0]); // no answers, no authority
    m.extend_from_slice(&u16::from(edns).to_be_bytes());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.len() > 253 {
        return Err(format!("`{name}` is longer than 253 bytes"));
    }
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))
                .ok_or_else(|| format!("`{name}` has an empty label or one over 63 bytes"))?;
            m.push(len);
            m.extend_from_slice(label.as_bytes());
        }
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    if edns {
        m.push(0); // root name
        m.extend_from_slice(&TYPE_OPT.to_be_bytes());
        m.extend_from_slice(&EDNS_SIZE.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // extended rcode and flags, no options
    }
    Ok(m)
}

struct Reader<'a> {
    msg: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.msg.len());
        let end =
            end.ok_or_else(|| format!("message ends at byte {} inside a field", self.msg.len()))?;
        let s = &self.msg[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A possibly compressed name, as `a.b.` (the root is `.`); the reader moves past it.
    fn name(&mut self) -> Result<String, String> {
        let (name, end) = read_name(self.msg, self.at)?;
        self.at = end;
        Ok(name)
    }
}

/// Reads the name at `at`; returns it and where the name's bytes end in place.
fn read_name(msg: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    // Each pointer must go backwards, so a loop of pointers ends.
    let mut limit = at;
    loop {
        let len = *msg
            .get(at)
            .ok_or("a name runs past the end of the message")?;
        match len & 0xC0 {
            0 if len == 0 => {
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0 => {
                let label = msg
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or("a name runs past the end of the message")?;
                name.push_str(&String::from_utf8_lossy(label));
                name.push('.');
                if name.len() > 255 {
                    return Err("a name is longer than 255 bytes".into());
                }
                at += 1 + usize::from(len);
            }
            0xC0 => {
                let low = *msg.get(at + 1).ok_or("a name pointer is cut off")?;
                let target = usize::from(len & 0x3F) << 8 | usize::from(low);
                if target >= limit {
                    return Err("a name pointer does not point backwards".into());
                }
                end.get_or_insert(at + 2);
                limit = target;
                at = target;
            }
            _ => return Err(format!("unknown name label type {len:#04x}")),
        }
    }
}

/// Parses the response to query `id` for type `qtype`.
///
/// # Errors
/// A message that is not that response, or is malformed.
pub fn parse(msg: &[u8], id: u16, qtype: u16) -> Result<Response, String> {
    let mut r = Reader { msg, at: 0 };
    if r.u16()? != id {
        return Err("the answer is to another query".into());
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("the message is a query, not a response".into());
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.take(4)?; // authority and additional counts
    let truncated = flags & 0x0200 != 0;
    #[allow(clippy::cast_possible_truncation)]
    let rcode = (flags & 0x000F) as u8;
    for _ in 0..questions {
        r.name()?;
        r.take(4)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        let parsed = (|| {
            r.name()?;
            let rtype = r.u16()?;
            let class = r.u16()?;
            r.take(4)?; // TTL
            let len = usize::from(r.u16()?);
            let start = r.at;
            let data = r.take(len)?;
            if class != CLASS_IN || rtype != qtype {
                return Ok(None);
            }
            let record = match rtype {
                TYPE_A => Record::A(Ipv4Addr::from(
                    <[u8; 4]>::try_from(data).map_err(|_| "an A record is not 4 bytes")?,
                )),
                TYPE_AAAA => Record::Aaaa(Ipv6Addr::from(
                    <[u8; 16]>::try_from(data).map_err(|_| "an AAAA record is not 16 bytes")?,
                )),
                TYPE_SRV => {
                    if len < 7 {
                        return Err("an SRV record is too short".to_string());
                    }
                    let port = u16::from_be_bytes([data[4], data[5]]);
                    let (target, end) = read_name(msg, start + 6)?;
                    if end > start + len {
                        return Err("an SRV target runs past its record".into());
                    }
                    Record::Srv { target, port }
                }
                _ => return Ok(None),
            };
            Ok(Some(record))
        })();
        if truncated && parsed.is_err() {
            // A truncated message may end mid-record; what came before stands.
            break;
        }
        records.extend(parsed?);
    }
    Ok(Response {
        rcode,
        truncated,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_in_bytes() {
        let q = query(0xBEEF, "_node._tcp.example.", TYPE_SRV, true).unwrap();
        let want: &[u8] = &[
            0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0,
            1, // header: RD, 1 question, 1 additional
            5, b'_', b'n', b'o', b'd', b'e', 4, b'_', b't', b'c', b'p', 7, b'e', b'x', b'a', b'm',
            b'p', b'l', b'e', 0, 0, 33, 0, 1, // SRV IN
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0, // OPT, 1232 bytes
        ];
        assert_eq!(q, want);
        assert!(query(1, "a..b", TYPE_A, false).is_err());
        assert!(query(1, &"x".repeat(64), TYPE_A, false).is_err());
    }

    /// A response to `_node._tcp.example` SRV: two SRV answers (the second target compressed
    /// against the first), and a CNAME that is skipped.
    fn srv_response() -> Vec<u8> {
        let mut m = vec![0xBE, 0xEF, 0x85, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        // question at 12
        m.extend_from_slice(&[5, b'_', b'n', b'o', b'd', b'e', 4, b'_', b't', b'c', b'p']);
        m.extend_from_slice(&[7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 33, 0, 1]);
        // answer 1: name pointer to 12, SRV IN ttl 60, rdata 0 0 / 0 5 / 0x23 0x8C (9100) / h1.example.
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 11]);
        m.extend_from_slice(&[0, 0, 0, 5, 0x23, 0x8C, 2, b'h', b'1', 0xC0, 23]);
        // answer 2: target "h2" + pointer to "example."
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 11]);
        m.extend_from_slice(&[0, 0, 0, 5, 0x23, 0x8D, 2, b'h', b'2', 0xC0, 23]);
        // answer 3: a CNAME, skipped
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 23]);
        m
    }

    #[test]
    fn srv_answers_with_compressed_names() {
        let r = parse(&srv_response(), 0xBEEF, TYPE_SRV).unwrap();
        assert_eq!(r.rcode, RCODE_OK);
        assert!(!r.truncated);
        assert_eq!(
            r.records,
            [
                Record::Srv {
                    target: "h1.example.".into(),
                    port: 9100
                },
                Record::Srv {
                    target: "h2.example.".into(),
                    port: 9101
                },
            ]
        );
    }

    #[test]
    fn a_and_aaaa_answers() {
        let mut m = vec![
            0, 7, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, 1, b'h', 0, 0, 1, 0, 1,
        ];
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 10, 0, 0, 7]);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 10, 0, 0, 8]);
        let r = parse(&m, 7, TYPE_A).unwrap();
        assert_eq!(
            r.records,
            [
                Record::A([10, 0, 0, 7].into()),
                Record::A([10, 0, 0, 8].into())
            ]
        );
        let mut m = vec![0, 7, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0, 0, 28, 0, 1, 0, 0, 0, 9, 0, 16]);
        m.extend_from_slice(&[0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let r = parse(&m, 7, TYPE_AAAA).unwrap();
        assert_eq!(r.records, [Record::Aaaa("fd00::1".parse().unwrap())]);
    }

    #[test]
    fn nxdomain_and_truncation() {
        let r = parse(&[0, 7, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0], 7, TYPE_A).unwrap();
        assert_eq!((r.rcode, r.records.len()), (RCODE_NXDOMAIN, 0));
        // Truncated mid-record: what came before stands.
        let mut m = srv_response();
        m[2] |= 0x02;
        m.truncate(m.len() - 20);
        let r = parse(&m, 0xBEEF, TYPE_SRV).unwrap();
        assert!(r.truncated);
        assert_eq!(r.records.len(), 1);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = srv_response();
        assert!(parse(&good, 1, TYPE_SRV).is_err(), "another id");
        let mut q = good.clone();
        q[2] &= 0x7F;
        assert!(parse(&q, 0xBEEF, TYPE_SRV).is_err(), "a query");
        for n in 0..good.len() {
            let _ = parse(&good[..n], 0xBEEF, TYPE_SRV);
        }
        for i in 0..good.len() {
            let mut m = good.clone();
            m[i] ^= 0xFF;
            let _ = parse(&m, 0xBEEF, TYPE_SRV);
        }
        // A pointer to itself.
        let mut m = vec![
            0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1,
        ];
        assert!(parse(&m, 7, TYPE_A).is_err());
        m[13] = 200;
        assert!(parse(&m, 7, TYPE_A).is_err());
    }
}
