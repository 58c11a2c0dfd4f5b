//! `magpie-sdk`: the contract between the magpie collector and its WebAssembly plugins.
//!
//! - [`abi`] holds the wire types that cross the sandbox boundary (postcard-encoded), the ABI
//!   version, and the names and signatures of exports and imports. The host and every guest
//!   use these same definitions.
//! - `guest` (only on `wasm32`) is the API plugin authors use: implement
//!   [`guest::Scraper`], [`guest::Exporter`] or [`guest::Decoder`] and export it with
//!   [`export_scraper!`], [`export_exporter!`] or [`export_decoder!`].
//!
//! `no_std` + `alloc`. With feature `guest-runtime` the SDK also provides the global allocator
//! and a panic handler that reports the panic message to the host before trapping.
//!
//! ```text
//! use magpie_sdk::abi::{ScrapeRequest, Value};
//! use magpie_sdk::guest::{Emitter, Error, Scraper};
//!
//! struct Hello;
//! impl Scraper for Hello {
//!     fn init(_name: &str, _config: &Value) -> Result<Self, Error> { Ok(Hello) }
//!     fn scrape(&mut self, _req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
//!         out.sample("hello_world", [("greeting", "hi")], 1.0, None)?;
//!         Ok(())
//!     }
//! }
//! magpie_sdk::export_scraper!(Hello);
//! ```
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod abi;
#[cfg(target_arch = "wasm32")]
pub mod guest;

/// The exports every plugin has (`magpie_abi_version`, `magpie_init`) plus those of its role,
/// over one static slot; the role macros below are this with their entry points.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($ty:ty, $init:ident, $($export:ident => $run:ident),+) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            static SLOT: $crate::guest::Slot<$ty> = $crate::guest::Slot::new();

            #[unsafe(no_mangle)]
            extern "C" fn magpie_abi_version() -> i32 {
                $crate::abi::ABI_VERSION as i32
            }

            #[unsafe(no_mangle)]
            extern "C" fn magpie_init() -> i32 {
                $crate::guest::$init::<$ty>(&SLOT)
            }

            $(
                #[unsafe(no_mangle)]
                extern "C" fn $export() -> i32 {
                    $crate::guest::$run::<$ty>(&SLOT)
                }
            )+
        };
    };
}

/// Exports a [`guest::Scraper`] implementation as this module's plugin.
#[macro_export]
macro_rules! export_scraper {
    ($ty:ty) => {
        $crate::__export_plugin!($ty, run_init_scraper, magpie_scrape => run_scrape);
    };
}

/// Exports a [`guest::Exporter`] implementation as this module's plugin.
#[macro_export]
macro_rules! export_exporter {
    ($ty:ty) => {
        $crate::__export_plugin!(
            $ty,
            run_init_exporter,
            magpie_export => run_export,
            magpie_export_metadata => run_export_metadata,
            magpie_outcome => run_outcome
        );
    };
}

/// Exports a [`guest::Decoder`] implementation as this module's plugin.
#[macro_export]
macro_rules! export_decoder {
    ($ty:ty) => {
        $crate::__export_plugin!($ty, run_init_decoder, magpie_decode => run_decode);
    };
}
