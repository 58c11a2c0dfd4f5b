//! Turning a reply's data into register values: bits unpacked low bit first, words big endian,
//! 32- and 64-bit values assembled in the register's word order, then scaled.

use crate::config::{Register, Type, WordOrder};
use crate::plan::Batch;

/// The value of `reg` in the data of `batch`'s reply, scaled; `None` when the data is short.
#[must_use]
pub fn value(reg: &Register, batch: &Batch, data: &[u8]) -> Option<f64> {
    let offset = usize::from(reg.address.checked_sub(batch.address)?);
    if reg.kind.is_bits() {
        let byte = data.get(offset / 8)?;
        let bit = (byte >> (offset % 8)) & 1;
        return Some(f64::from(bit) * reg.scale);
    }
    let words = usize::from(reg.ty.words());
    let bytes = data.get(offset * 2..(offset + words) * 2)?;
    Some(raw(reg.ty, reg.word_order, bytes) * reg.scale)
}

/// The value of `bytes` (its words in `order`) read as `ty`.
#[must_use]
#[allow(clippy::cast_precision_loss)] // 64-bit integers become f64 as Prometheus stores them.
pub fn raw(ty: Type, order: WordOrder, bytes: &[u8]) -> f64 {
    // Most significant word first, whatever the device's order.
    let mut be = [0u8; 8];
    let n = bytes.len().min(8);
    let words = n / 2;
    for w in 0..words {
        let src = match order {
            WordOrder::Big => w,
            WordOrder::Little => words - 1 - w,
        };
        be[w * 2..w * 2 + 2].copy_from_slice(&bytes[src * 2..src * 2 + 2]);
    }
    let b = &be[..n];
    match ty {
        Type::Int16 => f64::from(i16::from_be_bytes([b[0], b[1]])),
        Type::Uint16 => f64::from(u16::from_be_bytes([b[0], b[1]])),
        Type::Bool => f64::from(u8::from(b[0] != 0 || b[1] != 0)),
        Type::Int32 => f64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        Type::Uint32 => f64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        Type::Float32 => f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        Type::Int64 => i64::from_be_bytes(be) as f64,
        Type::Uint64 => u64::from_be_bytes(be) as f64,
        Type::Float64 => f64::from_be_bytes(be),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn words(ws: &[u16]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn every_type_in_both_word_orders() {
        use Type::*;
        use WordOrder::{Big, Little};
        assert_eq!(raw(Int16, Big, &words(&[0xFFFE])), -2.0);
        assert_eq!(raw(Uint16, Big, &words(&[0xFFFE])), 65534.0);
        assert_eq!(raw(Bool, Big, &words(&[0x0100])), 1.0);
        assert_eq!(raw(Bool, Big, &words(&[0])), 0.0);
        assert_eq!(raw(Int32, Big, &words(&[0xFFFF, 0xFFFE])), -2.0);
        assert_eq!(raw(Int32, Little, &words(&[0xFFFE, 0xFFFF])), -2.0);
        assert_eq!(raw(Uint32, Big, &words(&[0x0001, 0x0002])), 65538.0);
        assert_eq!(raw(Uint32, Little, &words(&[0x0002, 0x0001])), 65538.0);
        let f = 1234.5_f32.to_bits();
        let (hi, lo) = ((f >> 16) as u16, f as u16);
        assert_eq!(raw(Float32, Big, &words(&[hi, lo])), 1234.5);
        assert_eq!(raw(Float32, Little, &words(&[lo, hi])), 1234.5);
        let v = -5_000_000_000_i64 as u64;
        let w = [
            (v >> 48) as u16,
            (v >> 32) as u16,
            (v >> 16) as u16,
            v as u16,
        ];
        assert_eq!(raw(Int64, Big, &words(&w)), -5e9);
        let rev = [w[3], w[2], w[1], w[0]];
        assert_eq!(raw(Int64, Little, &words(&rev)), -5e9);
        assert_eq!(raw(Uint64, Big, &words(&[0, 0, 1, 0])), 65536.0);
        let d = (-0.125_f64).to_bits();
        let w = [
            (d >> 48) as u16,
            (d >> 32) as u16,
            (d >> 16) as u16,
            d as u16,
        ];
        assert_eq!(raw(Float64, Big, &words(&w)), -0.125);
        assert_eq!(
            raw(Float64, Little, &words(&[w[3], w[2], w[1], w[0]])),
            -0.125
        );
    }

    fn reg(kind: Kind, address: u16, ty: Type, scale: f64) -> Register {
        Register {
            name: String::from("r"),
            kind,
            address,
            ty,
            word_order: WordOrder::Big,
            scale,
            labels: Vec::new(),
        }
    }

    #[test]
    fn values_are_found_at_their_offset_and_scaled() {
        let batch = Batch {
            kind: Kind::Holding,
            address: 10,
            count: 3,
            registers: Vec::new(),
        };
        let data = words(&[1, 2, 3]);
        assert_eq!(
            value(&reg(Kind::Holding, 12, Type::Uint16, 0.5), &batch, &data),
            Some(1.5)
        );
        assert_eq!(
            value(&reg(Kind::Holding, 11, Type::Uint32, 1.0), &batch, &data),
            Some(131_075.0)
        );
        assert_eq!(
            value(&reg(Kind::Holding, 12, Type::Uint32, 1.0), &batch, &data),
            None
        );
        let coils = Batch {
            kind: Kind::Coil,
            address: 0,
            count: 10,
            registers: Vec::new(),
        };
        // Bits low first: coil 0 is bit 0 of the first byte, coil 9 bit 1 of the second.
        let data = [0b0000_0101, 0b0000_0010];
        let bit = |a| value(&reg(Kind::Coil, a, Type::Bool, 1.0), &coils, &data);
        assert_eq!(
            (bit(0), bit(1), bit(2), bit(9)),
            (Some(1.0), Some(0.0), Some(1.0), Some(1.0))
        );
    }
}
