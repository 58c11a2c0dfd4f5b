//! A test guest with the right shape but ABI version 999, as a plugin built against a future
//! SDK would be. The host must refuse it at load.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![allow(unsafe_code)]

/// The version this guest claims.
pub const CLAIMED_ABI_VERSION: i32 = 999;

#[cfg(target_arch = "wasm32")]
mod exports {
    #[unsafe(no_mangle)]
    extern "C" fn magpie_abi_version() -> i32 {
        super::CLAIMED_ABI_VERSION
    }

    #[unsafe(no_mangle)]
    extern "C" fn magpie_init() -> i32 {
        0
    }

    #[unsafe(no_mangle)]
    extern "C" fn magpie_scrape() -> i32 {
        0
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        core::arch::wasm32::unreachable()
    }
}
