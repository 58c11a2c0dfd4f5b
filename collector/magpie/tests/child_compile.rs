//! `magpie run` compiles `.wasm` plugins in a child process (`magpie plugin compile --target
//! native - -`), so that the compiler's memory leaves with the child.

mod common;

use common::{BIN, plugin_dir};
use magpie_testkit::guest;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

#[test]
fn plugin_compile_native_reads_stdin_and_prints_only_the_module() {
    let wasm = std::fs::read(guest("hello")).unwrap();
    let mut child = Command::new(BIN)
        .args(["plugin", "compile", "--target", "native", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&wasm).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A wasmtime artifact is an ELF object, and nothing else is on standard output: saved as
    // a `.cwasm`, it loads.
    assert_eq!(&out.stdout[..4], b"\x7fELF");
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("hello.cwasm");
    std::fs::write(&cwasm, &out.stdout).unwrap();
    let inspect = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(&cwasm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{text}");
    assert!(text.contains("role:        scraper"), "{text}");

    // Bad input is an error naming it, on standard error.
    let mut child = Command::new(BIN)
        .args(["plugin", "compile", "--target", "native", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"not wasm").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("compiling - for native"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_compiles_wasm_plugins_in_a_child_process() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"200ms\"\n",
            pd.display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // Debug level, which the shared `Magpie` helper overrides: read the log up to the line
    // saying it runs, then stop it.
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("MAGPIE_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("magpie is running") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        log.contains("plugin `hello`: compiled") && log.contains("in a child process"),
        "{log}"
    );
    assert!(!log.contains("compiling it in process"), "{log}");
}
