//! The raw host imports. Pointers and lengths are 32-bit on wasm32; every call is checked by
//! the host, which never writes outside the `(ptr, cap)` range it is given.

#[link(wasm_import_module = "magpie")]
unsafe extern "C" {
    pub(super) fn log(level: i32, ptr: *const u8, len: usize);
    pub(super) fn now_ms() -> i64;
    pub(super) fn input(ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn output(ptr: *const u8, len: usize) -> i32;
    pub(super) fn set_error(ptr: *const u8, len: usize);
    pub(super) fn emit(ptr: *const u8, len: usize) -> i32;
    pub(super) fn emit_metadata(ptr: *const u8, len: usize) -> i32;
    pub(super) fn emit_exemplars(ptr: *const u8, len: usize) -> i32;
    pub(super) fn http_fetch(ptr: *const u8, len: usize) -> i32;
    pub(super) fn http_response(handle: i32, ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn file_open(ptr: *const u8, len: usize) -> i32;
    pub(super) fn dir_list(path: *const u8, path_len: usize, ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn statvfs(path: *const u8, path_len: usize, ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn real_path(path: *const u8, path_len: usize, ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn stream_read(handle: i32, ptr: *mut u8, cap: usize) -> i32;
    pub(super) fn stream_close(handle: i32);
    pub(super) fn tcp_connect(ptr: *const u8, len: usize) -> i32;
    pub(super) fn udp_connect(ptr: *const u8, len: usize) -> i32;
    pub(super) fn serial_open(ptr: *const u8, len: usize) -> i32;
    pub(super) fn stream_write(handle: i32, ptr: *const u8, len: usize) -> i32;
    pub(super) fn stream_recv(handle: i32, ptr: *mut u8, cap: usize, timeout_ms: u32) -> i32;
}
