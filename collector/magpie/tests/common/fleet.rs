//! Fleet test helpers: keys and signed plugins, bundles built with the CLI, published as an
//! operator would, and the device's `magpie_fleet_*` figures.

use super::{BIN, Magpie};
use magpie_testkit::{guest, http_get, sample_value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs the binary; (success, stderr + stdout).
pub fn magpie(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

pub fn ok(args: &[&str]) -> String {
    let (ok, out) = magpie(args);
    assert!(ok, "magpie {args:?} failed: {out}");
    out
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Keys, plugins precompiled for this machine and signed, and a place to build bundles.
pub struct Kit {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub public: PathBuf,
    pub plugins: PathBuf,
    pub triple: String,
}

impl Kit {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fleet");
        ok(&["key", "generate", "--out", s(&key)]);
        let public = dir.path().join("fleet.pub");
        // `magpie --version` names the target it was built for.
        let version = ok(&["--version"]);
        let triple = version.split(['(', ',']).nth(1).unwrap().trim().to_string();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let kit = Self {
            dir,
            key,
            public,
            plugins,
            triple,
        };
        for p in ["hello", "remote-write"] {
            kit.add_plugin(p);
        }
        kit
    }

    /// Precompiles and signs plugin `p` into the plugins every later bundle carries.
    pub fn add_plugin(&self, p: &str) {
        let out = self.plugins.join(format!("{p}.cwasm"));
        ok(&[
            "plugin",
            "compile",
            "--target",
            &self.triple,
            s(&guest(p)),
            s(&out),
        ]);
        ok(&["plugin", "sign", "--key", s(&self.key), s(&out)]);
    }

    /// Builds bundle `version` with configuration `config` into a fresh directory; `extra`
    /// are more `bundle build` arguments. Returns the directory.
    pub fn build(&self, version: &str, config: &str, extra: &[&str]) -> PathBuf {
        let out = self
            .dir
            .path()
            .join(format!("build-{version}-{}", extra.len()));
        let _ = std::fs::remove_dir_all(&out);
        let cfg = self.dir.path().join(format!("bundle-{version}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let mut args = vec![
            "bundle",
            "build",
            "--key",
            s(&self.key),
            "--config",
            s(&cfg),
            "--plugins",
            s(&self.plugins),
            "--target",
            &self.triple,
            "--version",
            version,
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        out
    }
}

/// Copies a built bundle into the served directory as an operator would: the version's files
/// first, then the signature, then the manifest.
pub fn publish(built: &Path, root: &Path) {
    for e in std::fs::read_dir(built).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &root.join(e.file_name()));
        }
    }
    for f in ["manifest.json.sig", "manifest.json"] {
        if built.join(f).exists() {
            let tmp = root.join(format!(".{f}"));
            std::fs::copy(built.join(f), &tmp).unwrap();
            // nginx's ETag is the file's mtime (in seconds) and size: two manifests of one
            // size published within a second would share it, and devices would be told
            // "unchanged". Publishing tools keep them a second apart; so does this.
            let older = std::fs::metadata(root.join(f))
                .and_then(|m| m.modified())
                .map(|t| t + Duration::from_secs(1));
            let at = older.map_or_else(
                |_| std::time::SystemTime::now(),
                |o| o.max(std::time::SystemTime::now()),
            );
            std::fs::File::options()
                .write(true)
                .open(&tmp)
                .unwrap()
                .set_modified(at)
                .unwrap();
            std::fs::rename(&tmp, root.join(f)).unwrap();
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A bundle configuration: the `hello` plugin every 300 ms, remote-written to `url`.
pub fn bundle_config(url: &str) -> String {
    format!(
        "[[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\n\
         [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{url}\"\nmax_backoff = \"300ms\"\n"
    )
}

/// A device's local file: its data directory, the fleet key, the fleet.
pub fn device_config(dir: &Path, kit: &Kit, url: &str, id: &str, window: &str) -> PathBuf {
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[collector]\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n\
             [trust]\nkeys = [\"{}\"]\n[fleet]\nurl = \"{url}\"\npoll = \"200ms\"\n\
             health_window = \"{window}\"\ndevice_id = \"{id}\"\n",
            dir.join(format!("data-{id}")).display(),
            kit.public.display()
        ),
    )
    .unwrap();
    cfg
}

/// The bundle version a device runs (`magpie_fleet_applied`), `""` for the local file alone.
pub fn applied(metrics: &str) -> Option<String> {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("magpie_fleet_applied{"))?;
    let v = line.split("version=\"").nth(1)?;
    Some(v[..v.find('"')?].to_string())
}

pub fn last_error(metrics: &str) -> String {
    metrics
        .lines()
        .find(|l| l.starts_with("magpie_fleet_last_error{"))
        .unwrap_or("")
        .to_string()
}

pub fn counter(metrics: &str, name: &str) -> f64 {
    sample_value(metrics, name).unwrap_or(0.0)
}

/// Polls the device's `/metrics` until `done` holds for it.
pub fn wait(m: &Magpie, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(&m.addr, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default();
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen:\n{body}\nlog:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the device has polled `n` more times, so it has seen what is published now.
pub fn polls(m: &Magpie, n: f64) {
    let from = counter(&m.metrics(), "magpie_fleet_polls_total");
    wait(m, "more polls", |b| {
        counter(b, "magpie_fleet_polls_total") >= from + n
    });
}

/// Publishes a built bundle's files into `root` and its manifest as if written within the
/// same second as the manifest there now (same modification time): nginx then serves it with
/// the old manifest's ETag when the sizes match.
pub fn publish_same_second(built: &Path, root: &Path) {
    let mtime = std::fs::metadata(root.join("manifest.json"))
        .and_then(|m| m.modified())
        .unwrap();
    for e in std::fs::read_dir(built).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &root.join(e.file_name()));
        }
    }
    for f in ["manifest.json.sig", "manifest.json"] {
        let tmp = root.join(format!(".{f}"));
        std::fs::copy(built.join(f), &tmp).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&tmp, root.join(f)).unwrap();
    }
}

/// The retained message for a built bundle whose files `base_url` serves
/// (`magpie bundle envelope`).
pub fn envelope(built: &Path, base_url: &str) -> String {
    ok(&["bundle", "envelope", "--base-url", base_url, s(built)])
}

/// Publishes `payload` as the retained message of `topic` with `mosquitto_pub`, as an operator
/// would.
pub fn publish_retained(broker: &str, topic: &str, payload: &str) {
    use std::io::Write as _;
    let port = broker.rsplit(':').next().unwrap();
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-t",
            topic,
            "-r",
            "-q",
            "1",
            "-s",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "mosquitto_pub failed");
}

/// Publishes a built bundle's envelope on `url` (`mqtt://host:port/topic`) with
/// `magpie bundle publish`; `base_url` as its `--base-url`.
pub fn publish_mqtt(built: &Path, url: &str, base_url: Option<&str>) -> String {
    let mut args = vec!["bundle", "publish", "--mqtt", url];
    if let Some(b) = base_url {
        args.extend(["--base-url", b]);
    }
    args.push(s(built));
    ok(&args)
}

/// The retained message of `topic` on the broker at `port` (a fresh `mosquitto_sub`), `None`
/// when there is none.
pub fn retained(port: u16, topic: &str) -> Option<String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic])
        .args(["-C", "1", "-W", "2", "--retained-only"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
