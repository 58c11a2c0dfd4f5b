//! The wasm32 plugin: the transport over the host's `tcp_connect` / `serial_open`, one
//! request at a time, and the scrape loop over the batches of the register map.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use embedded_io::{Read, ReadExactError, Write};
use magpie_sdk::abi::{HostError, Level, ScrapeRequest, Value};
use magpie_sdk::guest::{self, Emitter, Error, Scraper, Serial, TcpStream};

use crate::config::{Config, target_unit};
use crate::frame::{self, Reply};
use crate::plan::{self, Batch};

/// Replies with another transaction id skipped before giving up (late answers to a request
/// that timed out in an earlier scrape cannot arrive: the connection is new each scrape).
const MAX_STALE: usize = 4;

enum Link {
    Tcp { s: TcpStream, transaction: u16 },
    Rtu(Serial),
}

fn io(e: HostError) -> String {
    String::from(e.as_str())
}

fn exact<E: core::fmt::Display>(e: ReadExactError<E>) -> String {
    match e {
        ReadExactError::UnexpectedEof => "the device closed the connection".into(),
        ReadExactError::Other(e) => format!("{e}"),
    }
}

impl Link {
    fn open(target: &str, timeout_ms: u32) -> Result<Self, String> {
        if target.starts_with("tcp://") {
            let mut s = TcpStream::connect(target).map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout_ms(timeout_ms);
            Ok(Self::Tcp { s, transaction: 0 })
        } else if target.starts_with("rtu://") {
            let mut s = Serial::open(target).map_err(|e| format!("open: {e}"))?;
            s.set_read_timeout_ms(timeout_ms);
            Ok(Self::Rtu(s))
        } else {
            Err(format!("{target}: not a tcp:// or rtu:// target"))
        }
    }

    /// Sends one request PDU and returns the reply PDU.
    fn exchange(&mut self, unit: u8, pdu: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Self::Tcp { s, transaction } => {
                *transaction = transaction.wrapping_add(1);
                let t = *transaction;
                s.write_all(&frame::tcp_frame(t, unit, pdu)).map_err(io)?;
                for _ in 0..=MAX_STALE {
                    let mut head = [0u8; frame::MBAP_LEN];
                    s.read_exact(&mut head).map_err(exact)?;
                    let h = frame::parse_mbap(&head)?;
                    let mut body = alloc::vec![0u8; h.pdu_len];
                    s.read_exact(&mut body).map_err(exact)?;
                    if h.transaction == t {
                        return Ok(body);
                    }
                }
                Err(format!("no reply with transaction id {t}"))
            }
            Self::Rtu(s) => {
                s.write_all(&frame::rtu_frame(unit, pdu)).map_err(io)?;
                let mut reply = alloc::vec![0u8; 3];
                s.read_exact(&mut reply).map_err(exact)?;
                let rest = frame::rtu_rest_len(&[reply[0], reply[1], reply[2]]);
                reply.resize(3 + rest, 0);
                s.read_exact(&mut reply[3..]).map_err(exact)?;
                frame::rtu_pdu(&reply, unit).map(<[u8]>::to_vec)
            }
        }
    }

    /// Reads one batch.
    fn read(&mut self, unit: u8, b: &Batch) -> Result<Result<Vec<u8>, u8>, String> {
        let f = b.kind.function();
        let pdu = self.exchange(unit, &frame::read_request(f, b.address, b.count))?;
        Ok(match frame::parse_reply(&pdu, f, b.reply_bytes())? {
            Reply::Data(d) => Ok(d.to_vec()),
            Reply::Exception(code) => Err(code),
        })
    }
}

struct Modbus {
    config: Config,
    batches: Vec<Batch>,
}

impl Scraper for Modbus {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        let config = Config::from_table(config).map_err(Error::new)?;
        let batches = plan::plan(&config.registers);
        Ok(Self { config, batches })
    }

    fn scrape(&mut self, req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
        let target = req.target();
        let unit = target_unit(target, self.config.unit_id).map_err(Error::new)?;
        let mut link = Link::open(target, self.config.timeout_ms)
            .map_err(|e| Error::new(format!("{target}: {e}")))?;
        let regs = &self.config.registers;
        for b in &self.batches {
            let fail = |e: String| {
                Error::new(format!(
                    "{target}: reading {} registers from address {} (function {}): {e}",
                    b.count,
                    b.address,
                    b.kind.function()
                ))
            };
            let answers: Vec<(Batch, Result<Vec<u8>, u8>)> =
                match link.read(unit, b).map_err(fail)? {
                    Ok(data) => alloc::vec![(b.clone(), Ok(data))],
                    Err(code) if b.registers.len() == 1 => alloc::vec![(b.clone(), Err(code))],
                    // Ask again one register at a time: the exception is about some of them.
                    Err(_) => plan::singles(regs, b)
                        .into_iter()
                        .map(|one| link.read(unit, &one).map_err(fail).map(|r| (one, r)))
                        .collect::<Result<_, _>>()?,
                };
            for (batch, answer) in answers {
                match answer {
                    Ok(data) => {
                        for &i in &batch.registers {
                            let r = &regs[i];
                            let v = crate::decode::value(r, &batch, &data)
                                .ok_or_else(|| fail(format!("short reply for {}", r.name)))?;
                            let labels = r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                            out.sample(&r.name, labels, v, None)?;
                        }
                    }
                    Err(code) => {
                        let name = frame::exception_name(code);
                        for &i in &batch.registers {
                            let r = &regs[i];
                            guest::log(
                                Level::Warn,
                                &format!(
                                    "{target}: register {} (address {}): exception {code} {name}",
                                    r.name, r.address
                                ),
                            );
                            out.sample(
                                "modbus_exception",
                                [("register", r.name.as_str()), ("exception", name)],
                                f64::from(code),
                                None,
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

magpie_sdk::export_scraper!(Modbus);
