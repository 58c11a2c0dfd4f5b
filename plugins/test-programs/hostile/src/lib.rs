//! A test guest whose `behavior` config key picks how it misbehaves during a scrape:
//! `ok` (one sample), `loop` (spins forever), `bomb` (allocates until stopped), `trap`
//! (panics), `fetch` (fetches the URL in `arg`), `read` (reads the file in `arg`),
//! `trap-if` (panics while the file `arg` exists), `flood` (emits `arg` samples), `init-fail` (rejects its config).
#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(target_arch = "wasm32")]
mod guest {
    extern crate alloc;
    use alloc::string::String;
    use alloc::vec::Vec;
    use magpie_sdk::abi::{ScrapeRequest, Value};
    use magpie_sdk::guest::{self, Emitter, Error, Scraper};

    struct Hostile {
        behavior: String,
        arg: String,
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
