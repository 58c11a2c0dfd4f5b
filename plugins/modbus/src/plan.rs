//! Batching: registers of one table whose addresses touch or overlap are read with one
//! request, up to the protocol's limit per request (125 registers, 2000 bits). Registers with
//! a hole between them are not joined: the hole may be an address the device does not have.

use crate::config::{Kind, Register};
use alloc::vec::Vec;

/// One read request and the registers (indices into the map) it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The table read.
    pub kind: Kind,
    /// First address.
    pub address: u16,
    /// Items (registers or bits) asked for.
    pub count: u16,
    /// Indices of the registers it covers, in the map.
    pub registers: Vec<usize>,
}

impl Batch {
    /// Data bytes the reply carries.
    #[must_use]
    pub fn reply_bytes(&self) -> usize {
        if self.kind.is_bits() {
            usize::from(self.count).div_ceil(8)
        } else {
            usize::from(self.count) * 2
        }
    }
}

/// The requests that read `registers`, by table then address.
#[must_use]
pub fn plan(registers: &[Register]) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..registers.len()).collect();
    order.sort_by_key(|&i| (registers[i].kind, registers[i].address));
    let mut out: Vec<Batch> = Vec::new();
    for i in order {
        let r = &registers[i];
        let start = u32::from(r.address);
        let end = start + u32::from(r.width());
        if let Some(b) = out.last_mut() {
            let b_start = u32::from(b.address);
            let b_end = b_start + u32::from(b.count);
            let new_end = b_end.max(end);
            if b.kind == r.kind
                && start <= b_end
                && new_end - b_start <= u32::from(r.kind.max_per_request())
            {
                b.count = u16::try_from(new_end - b_start).unwrap_or(u16::MAX);
                b.registers.push(i);
                continue;
            }
        }
        out.push(Batch {
            kind: r.kind,
            address: r.address,
            count: r.width(),
            registers: alloc::vec![i],
        });
    }
    out
}

/// One request per register: how a batch that drew an exception is asked again, so the
/// exception lands on the registers it is about.
#[must_use]
pub fn singles(registers: &[Register], batch: &Batch) -> Vec<Batch> {
    batch
        .registers
        .iter()
        .map(|&i| Batch {
            kind: registers[i].kind,
            address: registers[i].address,
            count: registers[i].width(),
            registers: alloc::vec![i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Type, WordOrder};
    use alloc::string::String;

    fn reg(kind: Kind, address: u16, ty: Type) -> Register {
        Register {
            name: String::from("r"),
            kind,
            address,
            ty,
            word_order: WordOrder::Big,
            scale: 1.0,
            labels: Vec::new(),
        }
    }

    #[test]
    fn adjacent_registers_share_a_request_and_holes_split() {
        let regs = [
            reg(Kind::Holding, 2, Type::Float32),
            reg(Kind::Holding, 0, Type::Uint16),
            reg(Kind::Holding, 1, Type::Int16),
            reg(Kind::Holding, 10, Type::Uint64),
            reg(Kind::Input, 4, Type::Uint16),
            reg(Kind::Coil, 3, Type::Bool),
            reg(Kind::Coil, 4, Type::Bool),
        ];
        let p = plan(&regs);
        let shape: Vec<_> = p.iter().map(|b| (b.kind, b.address, b.count)).collect();
        assert_eq!(
            shape,
            [
                (Kind::Coil, 3, 2),
                (Kind::Holding, 0, 4),
                (Kind::Holding, 10, 4),
                (Kind::Input, 4, 1),
            ]
        );
        assert_eq!(p[1].registers, [1, 2, 0]);
        assert_eq!(p[0].reply_bytes(), 1);
        assert_eq!(p[1].reply_bytes(), 8);
    }

    #[test]
    fn requests_stay_within_the_protocol_limits() {
        let regs: Vec<_> = (0..130)
            .map(|a| reg(Kind::Input, a, Type::Uint16))
            .collect();
        let p = plan(&regs);
        assert_eq!(p.iter().map(|b| b.count).collect::<Vec<_>>(), [125, 5]);
        let bits: Vec<_> = (0..2001)
            .map(|a| reg(Kind::Discrete, a, Type::Bool))
            .collect();
        let p = plan(&bits);
        assert_eq!(p.iter().map(|b| b.count).collect::<Vec<_>>(), [2000, 1]);
        // A 64-bit value that would cross the limit starts the next request.
        let mut regs: Vec<_> = (0..123)
            .map(|a| reg(Kind::Holding, a, Type::Uint16))
            .collect();
        regs.push(reg(Kind::Holding, 123, Type::Uint64));
        let p = plan(&regs);
        assert_eq!(p.iter().map(|b| b.count).collect::<Vec<_>>(), [123, 4]);
    }

    #[test]
    fn overlapping_registers_are_read_once() {
        let regs = [
            reg(Kind::Holding, 0, Type::Uint32),
            reg(Kind::Holding, 1, Type::Uint16),
        ];
        let p = plan(&regs);
        assert_eq!((p.len(), p[0].count), (1, 2));
        assert_eq!(singles(&regs, &p[0]).len(), 2);
    }
}
