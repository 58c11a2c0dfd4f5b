//! Test support shared by magpie's crates: building plugin guests for wasm32 from source,
//! locating the workspace, real servers (Prometheus, Mosquitto, nginx) and a fault proxy to put in
//! front of them. Never shipped.
//!
//! # Example
//! ```
//! use magpie_testkit::{Behavior, TargetServer};
//! // A scrape target on a loopback port, serving a fixed exposition.
//! let target = TargetServer::start(vec![(
//!     "/metrics".into(),
//!     Behavior::Serve { content_type: "text/plain".into(), body: "up 1\n".into() },
//! )]);
//! assert!(target.url("/metrics").starts_with("http://127.0.0.1:"));
//! ```
#![forbid(unsafe_code)]

mod agent;
mod exemplars;
mod fault;
mod mosquitto;
mod nginx;
mod prometheus;
mod receiver;
mod target;
mod tls;

pub use agent::{LabelSet, PrometheusAgent, series};
pub use exemplars::QueriedExemplar;
pub use fault::{Fault, FaultProxy, Handled};
pub use mosquitto::{Message, Mosquitto, MosquittoOptions, Subscriber};
pub use nginx::Nginx;
pub use prometheus::Prometheus;
pub use receiver::{Answer, Received, ScriptedReceiver};
pub use target::{Behavior, TargetServer};
pub use tls::TestCerts;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A loopback port nobody listens on right now, for a server a test starts.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The workspace root.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the plugin crate `package` for `wasm32-unknown-unknown` (release profile) and returns
/// the path of its `.wasm`. Built once per test process; cargo's own lock serialises builds
/// across processes. Guests live in a target directory of their own so the build never waits
/// on the lock of the `cargo test` that runs this.
///
/// # Panics
/// When the build fails: a test cannot go on without its guest.
#[must_use]
pub fn guest(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = workspace_root();
    let target_dir = root.join("target").join("guests");
    let artifact = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                package,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build a wasm guest");
        assert!(
            status.success(),
            "building guest `{package}` for wasm32 failed (is the wasm32-unknown-unknown target installed?)"
        );
        built.push(package.into());
    }
    assert!(
        artifact.exists(),
        "guest `{package}` built but {} is missing",
        artifact.display()
    );
    artifact
}

/// A command running `exe`, through the emulator in `MAGPIE_TEST_RUNNER` (for example
/// `qemu-arm -L /usr/arm-linux-gnueabihf`) when set: a test binary cross-compiled for another
/// architecture cannot start binaries of its own target without binfmt support.
#[must_use]
pub fn runner_command(exe: &std::path::Path) -> Command {
    match std::env::var("MAGPIE_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap_or_default());
            c.args(parts).arg(exe);
            c
        }
        _ => Command::new(exe),
    }
}

/// A plain HTTP/1.0 GET on loopback: `(status, body)`. Enough for `/metrics` and health checks
/// without an HTTP client dependency in tests.
///
/// # Errors
/// Connection or protocol errors.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line")
        })?;
    Ok((status, body.to_string()))
}

/// The value of the first sample of `metric` (exact name and labels as written, e.g.
/// `magpie_scrapes_total{job="hello"}`) in a Prometheus text exposition.
#[must_use]
pub fn sample_value(exposition: &str, metric: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(metric)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}
