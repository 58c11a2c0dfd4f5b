//! Compiling a plugin in a child process, so that the collector's own memory never holds the
//! compiler's working set.
//!
//! Cranelift touches a few MiB of the binary's code and leaves several MiB of freed heap that
//! glibc keeps: measured on x86-64, a default `magpie run` idles at 20.4 MiB after compiling
//! the node plugin in process and at 9.4 MiB loading the same plugin precompiled
//! (docs/benchmarks.md, "Idle cost"). A host given the path of the magpie binary
//! ([`crate::Host::with_compile_process`]) runs `magpie plugin compile --target native - -`
//! on the module's bytes and deserializes the artifact the child prints; the child exits, and
//! its memory with it.
//!
//! The child is this same executable, with the same wasmtime version and engine settings, so
//! its artifact is exactly what compiling in process would give. Any failure (the binary was
//! replaced by an upgrade, the process limit, a crash) is returned as a reason, and the caller
//! compiles in process instead: the plugin loads either way.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The `--target` value that makes `magpie plugin compile` use this machine's own engine
/// settings, as [`crate::Host::new`] does.
pub const NATIVE_TARGET: &str = "native";

/// Runs `exe plugin compile --target native - -` with `wasm` on its standard input and returns
/// what it printed: the precompiled module, checked to be one. The error is a sentence for the
/// log.
pub(crate) fn compile_in_child(exe: &Path, wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(exe)
        .args(["plugin", "compile", "--target", NATIVE_TARGET, "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    // The child reads all of its input before it writes anything, so writing it all first
    // cannot block on a full output pipe. A child that exits early breaks the pipe: its exit
    // status says why.
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(wasm));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {}: {e}", exe.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} plugin compile failed ({}): {}",
            exe.display(),
            out.status,
            stderr.trim()
        ));
    }
    if wasmtime::Engine::detect_precompiled(&out.stdout) != Some(wasmtime::Precompiled::Module) {
        return Err(format!(
            "{} plugin compile printed {} bytes that are not a precompiled module",
            exe.display(),
            out.stdout.len()
        ));
    }
    if let Some(Err(e)) = written {
        return Err(format!("writing the module to {}: {e}", exe.display()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_a_reason_naming_it() {
        let e = compile_in_child(Path::new("/nonexistent/magpie"), b"\0asm").unwrap_err();
        // Natively the spawn itself fails. Under qemu-user the exec failure is only seen as
        // the child's exit status 127 (the shell convention for "command not found").
        assert!(
            e.contains("cannot start /nonexistent/magpie")
                || e.contains("/nonexistent/magpie plugin compile failed (exit status: 127)"),
            "{e}"
        );
    }

    #[test]
    fn a_failing_child_is_a_reason_with_its_status() {
        let e = compile_in_child(Path::new("/bin/false"), b"\0asm").unwrap_err();
        assert!(e.contains("plugin compile failed (exit status: 1)"), "{e}");
    }

    #[test]
    fn output_that_is_not_a_module_is_refused() {
        // `echo` succeeds and prints its arguments.
        let e = compile_in_child(Path::new("/bin/echo"), b"\0asm").unwrap_err();
        assert!(
            e.contains("printed 35 bytes that are not a precompiled module"),
            "{e}"
        );
    }
}
