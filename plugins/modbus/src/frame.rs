//! Modbus framing: the read request PDU, the TCP MBAP header with its transaction id, the RTU
//! frame with its CRC-16, and the reply PDU (data or exception). Pure functions over bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Bytes of the MBAP header: transaction id, protocol id (0), length, unit id.
pub const MBAP_LEN: usize = 7;

/// The read request PDU: function code, start address, quantity.
#[must_use]
pub fn read_request(function: u8, address: u16, count: u16) -> [u8; 5] {
    let [a0, a1] = address.to_be_bytes();
    let [c0, c1] = count.to_be_bytes();
    [function, a0, a1, c0, c1]
}

/// A Modbus TCP frame: the MBAP header, then the PDU.
#[must_use]
pub fn tcp_frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MBAP_LEN + pdu.len());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    // The PDU's length fits: it is at most 253 bytes.
    let len = u16::try_from(pdu.len() + 1).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
    out
}

/// An MBAP header taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mbap {
    /// The transaction id the reply echoes.
    pub transaction: u16,
    /// Bytes that follow the header (the PDU).
    pub pdu_len: usize,
    /// The unit id.
    pub unit: u8,
}

/// Reads an MBAP header.
///
/// # Errors
/// A protocol id other than 0, or a length outside 2..=254 (a PDU holds 1 to 253 bytes).
pub fn parse_mbap(h: &[u8; MBAP_LEN]) -> Result<Mbap, String> {
    let protocol = u16::from_be_bytes([h[2], h[3]]);
    if protocol != 0 {
        return Err(format!("MBAP protocol id {protocol}, not Modbus (0)"));
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if !(2..=254).contains(&len) {
        return Err(format!("MBAP length {len} out of range"));
    }
    Ok(Mbap {
        transaction: u16::from_be_bytes([h[0], h[1]]),
        pdu_len: len - 1,
        unit: h[6],
    })
}

/// CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
#[must_use]
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFF_u16;
    for b in bytes {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A Modbus RTU frame: unit id, PDU, CRC (low byte first).
#[must_use]
pub fn rtu_frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + 3);
    out.push(unit);
    out.extend_from_slice(pdu);
    out.extend_from_slice(&crc16(&out).to_le_bytes());
    out
}

/// Bytes of an RTU reply still to read once its first three bytes (unit, function, and the
/// byte count or exception code) are in: the rest of the PDU and the CRC.
#[must_use]
pub fn rtu_rest_len(head: &[u8; 3]) -> usize {
    if head[1] & 0x80 != 0 {
        2
    } else {
        usize::from(head[2]) + 2
    }
}

/// Checks an RTU reply's CRC and unit, and returns its PDU.
///
/// # Errors
/// A CRC that does not match, or a reply from another unit.
pub fn rtu_pdu(frame: &[u8], unit: u8) -> Result<&[u8], String> {
    if frame.len() < 4 {
        return Err(format!("RTU reply of {} bytes is too short", frame.len()));
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let want = crc16(body);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    if want != got {
        return Err(format!("RTU reply CRC {got:#06x}, computed {want:#06x}"));
    }
    if body[0] != unit {
        return Err(format!("RTU reply from unit {}, asked {unit}", body[0]));
    }
    Ok(&body[1..])
}

/// A reply PDU to a read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The data bytes (registers big endian, or bits packed low bit first).
    Data(&'a [u8]),
    /// The device refused the request with this exception code.
    Exception(u8),
}

/// Takes apart the reply PDU to a request with `function`, which asked for `expect_bytes` of
/// data.
///
/// # Errors
/// Another function code, or a byte count that is not the one asked for.
pub fn parse_reply(pdu: &[u8], function: u8, expect_bytes: usize) -> Result<Reply<'_>, String> {
    match pdu {
        [f, code, ..] if *f == function | 0x80 => Ok(Reply::Exception(*code)),
        [f, n, data @ ..] if *f == function => {
            if usize::from(*n) != expect_bytes || data.len() != expect_bytes {
                return Err(format!(
                    "reply holds {} bytes (count byte {n}), asked for {expect_bytes}",
                    data.len()
                ));
            }
            Ok(Reply::Data(data))
        }
        [f, ..] => Err(format!(
            "reply with function code {f}, asked with {function}"
        )),
        [] => Err("empty reply".into()),
    }
}

/// The name of an exception code, as the Modbus application protocol specification gives it.
#[must_use]
pub const fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "ILLEGAL FUNCTION",
        2 => "ILLEGAL DATA ADDRESS",
        3 => "ILLEGAL DATA VALUE",
        4 => "SERVER DEVICE FAILURE",
        5 => "ACKNOWLEDGE",
        6 => "SERVER DEVICE BUSY",
        8 => "MEMORY PARITY ERROR",
        10 => "GATEWAY PATH UNAVAILABLE",
        11 => "GATEWAY TARGET DEVICE FAILED TO RESPOND",
        _ => "UNKNOWN EXCEPTION",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_specification_example() {
        // Read holding registers 0..2 of unit 1: the frame every Modbus guide shows.
        assert_eq!(
            rtu_frame(1, &read_request(3, 0, 2)),
            [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B]
        );
        // CRC-16/MODBUS check value.
        assert_eq!(crc16(b"123456789"), 0x4B37);
    }

    #[test]
    fn rtu_replies_are_checked() {
        let mut reply = alloc::vec![0x01, 0x03, 0x02, 0x12, 0x34];
        reply.extend_from_slice(&crc16(&reply).to_le_bytes());
        assert_eq!(rtu_rest_len(&[1, 3, 2]), 4);
        assert_eq!(rtu_pdu(&reply, 1).unwrap(), &[0x03, 0x02, 0x12, 0x34]);
        assert!(rtu_pdu(&reply, 2).unwrap_err().contains("unit 1"));
        let mut bad = reply.clone();
        bad[3] ^= 1;
        assert!(rtu_pdu(&bad, 1).unwrap_err().contains("CRC"));
        assert_eq!(rtu_rest_len(&[1, 0x83, 2]), 2);
    }

    #[test]
    fn tcp_frames_carry_the_transaction_and_length() {
        let f = tcp_frame(0x1234, 9, &read_request(4, 10, 3));
        assert_eq!(f, [0x12, 0x34, 0, 0, 0, 6, 9, 4, 0, 10, 0, 3]);
        let h = parse_mbap(&[0x12, 0x34, 0, 0, 0, 5, 9]).unwrap();
        assert_eq!(
            h,
            Mbap {
                transaction: 0x1234,
                pdu_len: 4,
                unit: 9
            }
        );
        assert!(parse_mbap(&[0, 1, 0, 1, 0, 5, 9]).is_err());
        assert!(parse_mbap(&[0, 1, 0, 0, 1, 0, 9]).is_err());
    }

    #[test]
    fn replies_give_data_or_the_exception() {
        assert_eq!(
            parse_reply(&[3, 2, 0xAB, 0xCD], 3, 2),
            Ok(Reply::Data(&[0xAB, 0xCD]))
        );
        assert_eq!(parse_reply(&[0x83, 2], 3, 2), Ok(Reply::Exception(2)));
        assert_eq!(exception_name(2), "ILLEGAL DATA ADDRESS");
        assert!(parse_reply(&[3, 4, 0, 0], 3, 4).is_err());
        assert!(parse_reply(&[4, 2, 0, 0], 3, 2).is_err());
    }
}
