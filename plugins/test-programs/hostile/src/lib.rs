//! A test guest whose `behavior` config key picks how it misbehaves during a scrape:
//! `ok` (one sample), `loop` (spins forever), `bomb` (allocates until stopped), `trap`
//! (panics), `fetch` (fetches the URL in `arg`), `read` (reads the file in `arg`),
//! `trap-if` (panics while the file `arg` exists), `flood` (emits `arg` samples), `init-fail` (rejects its config).
//! Device links to the target in `arg`: `tcp` (sends `ping`, reads the answer), `tcp-wait`
//! (reads without a timeout of its own: only the call's deadline ends it), `udp` (one
//! datagram each way), `serial` (opens the line), `udp-as-tcp` (a `udp://` target through
//! `tcp_connect`), `open-flood` (opens without closing until refused), `reopen-flood` (opens
//! and closes until refused), `keep` (keeps a connection for the next call, which writes to
//! it).
#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(target_arch = "wasm32")]
mod guest {
    extern crate alloc;
    use alloc::string::String;
    use alloc::vec::Vec;
    use embedded_io::{Read, Write};
    use magpie_sdk::abi::HostError;
    use magpie_sdk::abi::{ScrapeRequest, Value};
    use magpie_sdk::guest::{self, Emitter, Error, Scraper, Serial, TcpStream, UdpSocket};

    struct Hostile {
        behavior: String,
        arg: String,
        kept: Option<TcpStream>,
    }

    fn fail(what: &str, target: &str, e: HostError) -> Error {
        Error::new(alloc::format!("{what} {target}: {e}"))
    }

    impl Scraper for Hostile {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            let get = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or_default();
            let behavior = String::from(get("behavior"));
            if behavior == "init-fail" {
                return Err(Error::new("config key `behavior`: init-fail asked for"));
            }
            Ok(Self {
                behavior,
                arg: get("arg").into(),
                kept: None,
            })
        }

        fn scrape(&mut self, _req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            match self.behavior.as_str() {
                "loop" => {
                    let mut n = 0u64;
                    loop {
                        n = core::hint::black_box(n.wrapping_add(1));
                    }
                }
                "bomb" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(core::hint::black_box(alloc::vec![7u8; 1 << 20]));
                    }
                }
                "trap" => panic!("boom"),
                "fetch" => {
                    let r = guest::fetch(&self.arg, &[])
                        .map_err(|e| Error::new(alloc::format!("fetch {}: {e}", self.arg)))?;
                    out.sample("hostile_fetched", [], f64::from(r.status), None)?;
                }
                "read" => {
                    let mut buf = Vec::new();
                    guest::open(&self.arg)
                        .and_then(|mut f| f.read_to_end(&mut buf))
                        .map_err(|e| Error::new(alloc::format!("read {}: {e}", self.arg)))?;
                    #[allow(clippy::cast_precision_loss)]
                    out.sample("hostile_read_bytes", [], buf.len() as f64, None)?;
                }
                "trap-if" => {
                    if guest::open(&self.arg).is_ok() {
                        panic!("{} exists", self.arg);
                    }
                    out.sample("hostile_ok", [("behavior", "trap-if")], 1.0, None)?;
                }
                "flood" => {
                    let n: u32 = self.arg.parse().unwrap_or(1000);
                    for i in 0..n {
                        out.sample("hostile_flood", [], f64::from(i), None)?;
                    }
                }
                "tcp" | "tcp-wait" => {
                    let t = self.arg.as_str();
                    let mut s = TcpStream::connect(t).map_err(|e| fail("connect", t, e))?;
                    if self.behavior == "tcp" {
                        s.set_read_timeout_ms(5000);
                    }
                    s.write_all(b"ping").map_err(|e| fail("write", t, e))?;
                    let mut buf = [0u8; 4];
                    s.read_exact(&mut buf)
                        .map_err(|e| Error::new(alloc::format!("read {t}: {e:?}")))?;
                    out.sample(
                        "hostile_answer",
                        [("answer", core::str::from_utf8(&buf).unwrap_or("?"))],
                        1.0,
                        None,
                    )?;
                }
                "udp" => {
                    let t = self.arg.as_str();
                    let mut s = UdpSocket::connect(t).map_err(|e| fail("connect", t, e))?;
                    s.set_read_timeout_ms(5000);
                    s.send(b"ping").map_err(|e| fail("send", t, e))?;
                    let mut buf = [0u8; 16];
                    let n = s.recv(&mut buf).map_err(|e| fail("recv", t, e))?;
                    let answer = core::str::from_utf8(&buf[..n]).unwrap_or("?");
                    out.sample("hostile_answer", [("answer", answer)], 1.0, None)?;
                }
                "serial" => {
                    let t = self.arg.as_str();
                    Serial::open(t).map_err(|e| fail("open", t, e))?;
                    out.sample("hostile_opened", [], 1.0, None)?;
                }
                "udp-as-tcp" => {
                    let t = self.arg.as_str();
                    TcpStream::connect(t).map_err(|e| fail("connect", t, e))?;
                }
                "open-flood" | "reopen-flood" => {
                    let mut held = Vec::new();
                    let mut refused = HostError::Invalid;
                    for _ in 0..1000 {
                        match TcpStream::connect(&self.arg) {
                            Ok(s) if self.behavior == "open-flood" => held.push(s),
                            Ok(s) => drop(s),
                            Err(e) => {
                                refused = e;
                                break;
                            }
                        }
                    }
                    let opened = if self.behavior == "open-flood" {
                        held.len()
                    } else {
                        0
                    };
                    #[allow(clippy::cast_precision_loss)]
                    out.sample(
                        "hostile_held",
                        [("refused", refused.as_str())],
                        opened as f64,
                        None,
                    )?;
                }
                "keep" => match self.kept.take() {
                    None => {
                        let t = self.arg.as_str();
                        self.kept = Some(TcpStream::connect(t).map_err(|e| fail("connect", t, e))?);
                        out.sample("hostile_kept", [], 1.0, None)?;
                    }
                    Some(mut s) => {
                        let e = s.write_all(b"late").err();
                        let e = e.map_or("written", HostError::as_str);
                        out.sample("hostile_stale_write", [("result", e)], 1.0, None)?;
                    }
                },
                _ => out.sample(
                    "hostile_ok",
                    [("behavior", self.behavior.as_str())],
                    1.0,
                    None,
                )?,
            }
            Ok(())
        }
    }

    magpie_sdk::export_scraper!(Hostile);
}
