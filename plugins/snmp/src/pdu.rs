//! SNMP PDUs (RFC 3416) and the v2c message around them (RFC 1901): GetRequest and
//! GetBulkRequest out, Response and Report in, and the values a variable binding carries.

use crate::ber::{self, Error, Reader};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// GetRequest-PDU.
pub const GET: u8 = 0xa0;
/// GetNextRequest-PDU.
pub const GET_NEXT: u8 = 0xa1;
/// Response-PDU.
pub const RESPONSE: u8 = 0xa2;
/// GetBulkRequest-PDU.
pub const GET_BULK: u8 = 0xa5;
/// Report-PDU (v3).
pub const REPORT: u8 = 0xa8;

/// A variable binding's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// INTEGER / Integer32 (enumerations too).
    Int(i64),
    /// OCTET STRING (DisplayString, PhysAddress, ...).
    Octets(Vec<u8>),
    /// NULL, as sent in requests.
    Null,
    /// OBJECT IDENTIFIER.
    Oid(Vec<u32>),
    /// IpAddress.
    IpAddress(Vec<u8>),
    /// Counter32.
    Counter32(u64),
    /// Gauge32 / Unsigned32.
    Gauge32(u64),
    /// TimeTicks (hundredths of a second).
    TimeTicks(u64),
    /// Opaque.
    Opaque(Vec<u8>),
    /// Counter64.
    Counter64(u64),
    /// The agent has no such object.
    NoSuchObject,
    /// The object has no such instance.
    NoSuchInstance,
    /// A walk ran past the agent's last object.
    EndOfMibView,
}

impl Value {
    /// Whether the value is one of the three exceptions (no data).
    #[must_use]
    pub const fn is_exception(&self) -> bool {
        matches!(
            self,
            Self::NoSuchObject | Self::NoSuchInstance | Self::EndOfMibView
        )
    }

    /// The value as a number, as snmp_exporter reads numbers (strings are 0).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> f64 {
        match self {
            Self::Int(i) => *i as f64,
            Self::Counter32(u) | Self::Gauge32(u) | Self::TimeTicks(u) | Self::Counter64(u) => {
                *u as f64
            }
            _ => 0.0,
        }
    }

    /// The value as an integer (enumerations, lookup keys).
    #[must_use]
    #[allow(clippy::cast_possible_wrap)]
    pub const fn as_i64(&self) -> i64 {
        match self {
            Self::Int(i) => *i,
            Self::Counter32(u) | Self::Gauge32(u) | Self::TimeTicks(u) | Self::Counter64(u) => {
                *u as i64
            }
            _ => 0,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        #[allow(clippy::cast_possible_wrap)]
        match self {
            Self::Int(i) => ber::int(out, ber::INTEGER, *i),
            Self::Octets(b) => ber::tlv(out, ber::OCTET_STRING, b),
            Self::Null => ber::tlv(out, ber::NULL, &[]),
            Self::Oid(o) => ber::oid(out, o),
            Self::IpAddress(b) => ber::tlv(out, 0x40, b),
            Self::Counter32(u) => unsigned(out, 0x41, *u),
            Self::Gauge32(u) => unsigned(out, 0x42, *u),
            Self::TimeTicks(u) => unsigned(out, 0x43, *u),
            Self::Opaque(b) => ber::tlv(out, 0x44, b),
            Self::Counter64(u) => unsigned(out, 0x46, *u),
            Self::NoSuchObject => ber::tlv(out, 0x80, &[]),
            Self::NoSuchInstance => ber::tlv(out, 0x81, &[]),
            Self::EndOfMibView => ber::tlv(out, 0x82, &[]),
        }
    }

    fn decode(tag: u8, c: &[u8]) -> Result<Self, Error> {
        let uint = |c: &[u8]| ber::unsigned(c).ok_or_else(|| Error("bad unsigned value".into()));
        Ok(match tag {
            ber::INTEGER => Self::Int(ber::signed(c).ok_or_else(|| Error("bad integer".into()))?),
            ber::OCTET_STRING => Self::Octets(c.to_vec()),
            ber::NULL => Self::Null,
            ber::OID => Self::Oid(ber::decode_oid(c)?),
            0x40 => Self::IpAddress(c.to_vec()),
            0x41 => Self::Counter32(uint(c)?),
            0x42 => Self::Gauge32(uint(c)?),
            0x43 => Self::TimeTicks(uint(c)?),
            0x44 => Self::Opaque(c.to_vec()),
            0x46 => Self::Counter64(uint(c)?),
            0x80 => Self::NoSuchObject,
            0x81 => Self::NoSuchInstance,
            0x82 => Self::EndOfMibView,
            t => return Err(Error(format!("unknown value tag 0x{t:02x}"))),
        })
    }
}

fn unsigned(out: &mut Vec<u8>, tag: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    ber::tlv(out, tag, &content);
}

/// One PDU. For GetBulkRequest, `error_status` is non-repeaters and `error_index`
/// max-repetitions (RFC 3416 shares the layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// Its tag ([`GET`], [`GET_BULK`], [`RESPONSE`], [`REPORT`]...).
    pub kind: u8,
    /// Matches a response to its request.
    pub request_id: i32,
    /// Error status (or non-repeaters).
    pub error_status: i64,
    /// Error index (or max-repetitions).
    pub error_index: i64,
    /// The variable bindings.
    pub varbinds: Vec<(Vec<u32>, Value)>,
}

impl Pdu {
    /// A GetRequest for `oids`.
    #[must_use]
    pub fn get(request_id: i32, oids: &[Vec<u32>]) -> Self {
        Self {
            kind: GET,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: oids.iter().map(|o| (o.clone(), Value::Null)).collect(),
        }
    }

    /// A GetBulkRequest from `oid` (no non-repeaters).
    #[must_use]
    pub fn get_bulk(request_id: i32, oid: &[u32], max_repetitions: u32) -> Self {
        Self {
            kind: GET_BULK,
            request_id,
            error_status: 0,
            error_index: i64::from(max_repetitions),
            varbinds: alloc::vec![(oid.to_vec(), Value::Null)],
        }
    }

    /// A GetNextRequest from `oid` (v1-style walks).
    #[must_use]
    pub fn get_next(request_id: i32, oid: &[u32]) -> Self {
        Self {
            kind: GET_NEXT,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: alloc::vec![(oid.to_vec(), Value::Null)],
        }
    }

    /// Appends the PDU's encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        ber::nested(out, self.kind, |o| {
            ber::int(o, ber::INTEGER, i64::from(self.request_id));
            ber::int(o, ber::INTEGER, self.error_status);
            ber::int(o, ber::INTEGER, self.error_index);
            ber::nested(o, ber::SEQUENCE, |o| {
                for (oid, v) in &self.varbinds {
                    ber::nested(o, ber::SEQUENCE, |o| {
                        ber::oid(o, oid);
                        v.encode(o);
                    });
                }
            });
        });
    }

    /// Reads a PDU from `r`.
    ///
    /// # Errors
    /// A malformed PDU.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (kind, content) = r.read_tlv()?;
        if !matches!(kind, GET | GET_NEXT | RESPONSE | GET_BULK | REPORT) {
            return Err(Error(format!(
                "PDU tag 0x{kind:02x} is not one this client reads"
            )));
        }
        let mut p = Reader::new(content);
        let request_id = i32::try_from(p.int("request-id")?)
            .map_err(|_| Error("request-id out of range".into()))?;
        let error_status = p.int("error-status")?;
        let error_index = p.int("error-index")?;
        let mut list = p.enter(ber::SEQUENCE, "variable bindings")?;
        let mut varbinds = Vec::new();
        while !list.is_empty() {
            let mut vb = list.enter(ber::SEQUENCE, "variable binding")?;
            let oid = ber::decode_oid(vb.expect(ber::OID, "variable binding name")?)?;
            let (tag, c) = vb.read_tlv()?;
            varbinds.push((oid, Value::decode(tag, c)?));
        }
        Ok(Self {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }
}

/// The name of an error-status (RFC 3416).
#[must_use]
pub fn error_status_name(code: i64) -> &'static str {
    const NAMES: [&str; 19] = [
        "noError",
        "tooBig",
        "noSuchName",
        "badValue",
        "readOnly",
        "genErr",
        "noAccess",
        "wrongType",
        "wrongLength",
        "wrongEncoding",
        "wrongValue",
        "noCreation",
        "inconsistentValue",
        "resourceUnavailable",
        "commitFailed",
        "undoFailed",
        "authorizationError",
        "notWritable",
        "inconsistentName",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown error-status")
}

/// Encodes a v1 (`version` 0) or v2c (`version` 1) message.
#[must_use]
pub fn encode_community(version: i64, community: &[u8], pdu: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    ber::nested(&mut out, ber::SEQUENCE, |o| {
        ber::int(o, ber::INTEGER, version);
        ber::tlv(o, ber::OCTET_STRING, community);
        pdu.encode(o);
    });
    out
}

/// Decodes a v1/v2c message: its version, community and PDU.
///
/// # Errors
/// A malformed message.
pub fn decode_community(bytes: &[u8]) -> Result<(i64, Vec<u8>, Pdu), Error> {
    let mut m = Reader::new(bytes).enter(ber::SEQUENCE, "message")?;
    let version = m.int("version")?;
    let community = m.expect(ber::OCTET_STRING, "community")?.to_vec();
    let pdu = Pdu::decode(&mut m)?;
    Ok((version, community, pdu))
}

/// The text of an OCTET STRING, as snmp_exporter shows a DisplayString (invalid UTF-8
/// replaced).
#[must_use]
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A GetRequest for sysDescr.0 with community "public", as `snmpget -v2c` sends it
    /// (request id 0x1234).
    const GET_SYSDESCR: [u8; 41] = [
        0x30, 0x27, // message
        0x02, 0x01, 0x01, // version 2c
        0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
        0xa0, 0x1a, // GetRequest
        0x02, 0x02, 0x12, 0x34, // request-id
        0x02, 0x01, 0x00, // error-status
        0x02, 0x01, 0x00, // error-index
        0x30, 0x0e, 0x30, 0x0c, // varbinds, varbind
        0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, // 1.3.6.1.2.1.1.1.0
        0x05, 0x00, // NULL
    ];

    #[test]
    fn a_get_request_encodes_as_net_snmp_sends_it() {
        let pdu = Pdu::get(0x1234, &[ber::parse_oid("1.3.6.1.2.1.1.1.0").unwrap()]);
        assert_eq!(encode_community(1, b"public", &pdu), GET_SYSDESCR);
        let (v, c, back) = decode_community(&GET_SYSDESCR).unwrap();
        assert_eq!((v, c.as_slice(), back), (1, b"public".as_slice(), pdu));
    }

    #[test]
    fn every_value_type_round_trips() {
        let values = [
            Value::Int(-5),
            Value::Octets(b"eth0".to_vec()),
            Value::Oid(alloc::vec![1, 3, 6]),
            Value::IpAddress(alloc::vec![127, 0, 0, 1]),
            Value::Counter32(u64::from(u32::MAX)),
            Value::Gauge32(1_000_000_000),
            Value::TimeTicks(5),
            Value::Counter64(u64::MAX),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ];
        let pdu = Pdu {
            kind: RESPONSE,
            request_id: -7,
            error_status: 0,
            error_index: 0,
            varbinds: values
                .iter()
                .map(|v| (alloc::vec![1, 3, 6, 1], v.clone()))
                .collect(),
        };
        let bytes = encode_community(1, b"c", &pdu);
        assert_eq!(decode_community(&bytes).unwrap().2, pdu);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_community(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(i in 0usize..41, b in any::<u8>()) {
            let mut m = GET_SYSDESCR;
            m[i] = b;
            let _ = decode_community(&m);
        }
    }
}
