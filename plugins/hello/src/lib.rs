//! The smallest magpie scraper: every scrape emits `hello_world{greeting="hello"} 1`.
//!
//! # Example
//!
//! ```toml
//! [[scrape]]
//! job = "hello"
//! plugin = "hello"
//! interval = "15s"
//! ```
#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{ScrapeRequest, Value};
    use magpie_sdk::guest::{Emitter, Error, Scraper};

    struct Hello;

    impl Scraper for Hello {
        fn init(_name: &str, _config: &Value) -> Result<Self, Error> {
            Ok(Self)
        }

        fn scrape(&mut self, _req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            out.sample("hello_world", [("greeting", "hello")], 1.0, None)?;
            Ok(())
        }
    }

    magpie_sdk::export_scraper!(Hello);
}
