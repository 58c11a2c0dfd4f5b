//! Running the real `magpie` binary in tests.
#![allow(dead_code)]

pub mod fleet;

use magpie_testkit::{guest, http_get, sample_value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_magpie");

/// A small exposition to scrape: two gauges and a counter.
pub const EXPOSITION: &str = "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\nroom_temp_celsius{room=\"b\"} 19.25\n# TYPE door_opens_total counter\ndoor_opens_total 7\n";

/// A command running the magpie binary (through the emulator of `MAGPIE_TEST_RUNNER`, if set).
pub fn magpie() -> Command {
    magpie_testkit::runner_command(Path::new(BIN))
}

/// A plugin directory holding the given plugins, built from source.
pub fn plugin_dir(dir: &Path, plugins: &[&str]) -> PathBuf {
    let pd = dir.join("plugins");
    std::fs::create_dir_all(&pd).unwrap();
    for p in plugins {
        std::fs::copy(guest(p), pd.join(format!("{p}.wasm"))).unwrap();
    }
    pd
}

/// A running `magpie run`; killed when dropped.
pub struct Magpie {
    pub child: std::process::Child,
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Magpie {
    /// Starts `magpie run --config <config>`; `listen` in it must be `127.0.0.1:0`.
    pub fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[])
    }

    /// As [`Magpie::start`], with extra environment variables.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = magpie();
        cmd.args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied());
        Self::spawn(cmd)
    }

    /// Starts `magpie run <args>` in `cwd`; the args must make it listen on `127.0.0.1:0`.
    pub fn start_args(args: &[&str], cwd: &Path) -> Self {
        let mut cmd = magpie();
        cmd.arg("run").args(args).current_dir(cwd);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("MAGPIE_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "magpie did not report it was running; log: {:?}",
                        log.lock().unwrap()
                    )
                });
            if let Some(rest) = line.split("listen=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Self { child, addr, log }
    }

    pub fn metrics(&self) -> String {
        http_get(&self.addr, "/metrics").unwrap().1
    }

    /// Polls `/metrics` until `metric` reaches `at_least`.
    pub fn wait_for(&self, metric: &str, at_least: f64) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = self.metrics();
            if sample_value(&body, metric).is_some_and(|v| v >= at_least) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{metric} did not reach {at_least}:\n{body}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a signal.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Magpie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sample read back: (labels, t, value).
pub type Stored = (Vec<(String, String)>, i64, f64);

/// Every sample in a WAL directory, read as a new consumer.
pub fn read_wal(dir: &Path) -> Vec<Stored> {
    let mut wal = magpie_wal::Wal::open(dir, magpie_wal::Options::default()).unwrap();
    let id = wal.consumer("test-reader").unwrap();
    let mut out = Vec::new();
    while let Some(batch) = wal.read(id, 10_000).unwrap() {
        for s in &batch.samples {
            let labels = batch.series[s.series as usize]
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            out.push((labels, s.t_ms, s.value));
        }
    }
    out
}

pub fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// One QoS 1 message through `mosquitto_pub`.
pub fn publish(broker: &magpie_testkit::Mosquitto, topic: &str, payload: &str) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-q", "1", "-t", topic, "-m", payload])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
