//! The `modbus` scraper: reads a register map from Modbus devices over TCP
//! (`tcp://10.0.0.5:502`) or a serial line (`rtu:///dev/ttyUSB0?baud=9600&parity=E`) and
//! emits one sample per register.
//!
//! ```toml
//! [[scrape]]
//! job = "inverter"
//! plugin = "modbus"
//! targets = ["tcp://127.0.0.1:5020"]
//! [scrape.config]
//! unit_id = 1
//! [[scrape.config.registers]]
//! name = "inverter_power_watts"
//! kind = "holding"       # holding | input | coil | discrete
//! address = 0
//! type = "float32"       # int16 uint16 int32 uint32 int64 uint64 float32 float64 bool
//! word_order = "big"     # big | little
//! scale = 1.0
//! labels = { phase = "L1" }
//! ```
//!
//! The unit id is the job's `unit_id` (1 when absent), or the target's own `?unit=N`.
//! Registers of one kind whose addresses touch are read with one request
//! ([`plan`]: at most 125 registers or 2000 coils a request), so a map of 40 adjacent
//! registers costs one round trip. The line itself (baud, parity, stop bits) is the host's,
//! from the target URL.
//!
//! A device that answers a request with an exception (ILLEGAL DATA ADDRESS, ...) fails only
//! the registers it covers: a batch that draws an exception is asked again register by
//! register, and each register still refused becomes
//! `modbus_exception{register="...",exception="ILLEGAL DATA ADDRESS"} <code>`; the other
//! registers arrive as usual and the scrape succeeds. A device that cannot be reached, does
//! not answer in time or answers garbage fails the scrape (`up` 0, with the reason).
//!
//! The framing ([`frame`]), batching ([`plan`]), decoding ([`decode`]) and configuration
//! ([`config`]) are plain code, tested natively; the wasm32 build adds the transport over the
//! host's `tcp_connect` and `serial_open`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod config;
pub mod decode;
pub mod frame;
pub mod plan;
#[cfg(target_arch = "wasm32")]
mod plugin;

pub use config::{Config, Kind, Register, Type, WordOrder};
