//! Allocator and panic handler for `no_std` guests (feature `guest-runtime`).

use core::fmt::Write as _;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Reports the panic message as the call's error, then traps: the host sees a trap whose
/// reason names the panic, and recreates the instance.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut msg = heapless::String::<512>::new();
    let _ = write!(msg, "panic: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(msg, " at {}:{}", loc.file(), loc.line());
    }
    super::set_error(&msg);
    core::arch::wasm32::unreachable()
}
