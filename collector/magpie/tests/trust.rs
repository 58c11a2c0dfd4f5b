//! Signed plugins through the real binary: `key generate`, `plugin sign`, `plugin verify`, and
//! the `[trust]` policy at `check` and `run`.

mod common;

use common::{BIN, Magpie, plugin_dir};
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs the binary; (success, stderr + stdout).
fn magpie(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

fn ok(args: &[&std::ffi::OsStr]) -> String {
    let (ok, out) = magpie(args);
    assert!(ok, "magpie {args:?} failed: {out}");
    out
}

/// `magpie key generate --out <dir>/<name>`; the private key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    ok(&[
        "key".as_ref(),
        "generate".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    key
}

fn sign(key: &Path, file: &Path) {
    ok(&[
        "plugin".as_ref(),
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        file.as_os_str(),
    ]);
}

fn verify(public: &Path, file: &Path) -> (bool, String) {
    magpie(&[
        "plugin".as_ref(),
        "verify".as_ref(),
        "--key".as_ref(),
        public.as_os_str(),
        file.as_os_str(),
    ])
}

fn public(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

/// A config scraping plugin `hello` from `pd` every 200 ms, with `trust` as its `[trust]` body.
fn config(dir: &Path, pd: &Path, trust: &str) -> PathBuf {
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"200ms\"\n\
             timeout = \"200ms\"\n[trust]\n{trust}",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

fn keys(key: &Path) -> String {
    format!("keys = [\"{}\"]\n", public(key).display())
}

fn check(cfg: &Path) -> (bool, String) {
    magpie(&["check".as_ref(), cfg.as_os_str()])
}

/// `magpie run` on a config that does not load exits with the reasons; one that starts
/// (it logs `listen=`) is stopped and fails the test.
fn run_refused(cfg: &Path) -> String {
    use std::io::BufRead as _;
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(cfg)
        .env("MAGPIE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.contains("listen=") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run started: {out}{line}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert!(!child.wait().unwrap().success(), "run succeeded: {out}");
    out
}

/// `hello` precompiled for this machine as `<pd>/hello.cwasm`, with no `.wasm` beside it.
fn cwasm_plugin_dir(dir: &Path) -> (PathBuf, PathBuf) {
    let pd = plugin_dir(dir, &["hello"]);
    let wasm = pd.join("hello.wasm");
    let cwasm = pd.join("hello.cwasm");
    ok(&[
        "plugin".as_ref(),
        "compile".as_ref(),
        "--target".as_ref(),
        "x86_64-unknown-linux-gnu".as_ref(),
        wasm.as_os_str(),
        cwasm.as_os_str(),
    ]);
    std::fs::remove_file(wasm).unwrap();
    (pd, cwasm)
}

#[test]
fn generate_sign_verify_round_trip_and_files_are_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "fleet");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private key mode {mode:o}");
    let private = std::fs::read_to_string(&key).unwrap();
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private}"
    );
    let pubtext = std::fs::read_to_string(public(&key)).unwrap();
    let lines: Vec<_> = pubtext.lines().collect();
    assert_eq!(lines[0], "magpie ed25519 public key");
    assert_eq!(lines[1].len(), 44, "base64 of 32 bytes: {pubtext}");
    // A key is never overwritten.
    let (again, out) = magpie(&[
        "key".as_ref(),
        "generate".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    assert!(!again && out.contains("exists"), "{out}");

    let file = dir.path().join("hello.wasm");
    std::fs::copy(magpie_testkit::guest("hello"), &file).unwrap();
    sign(&key, &file);
    let sig = std::fs::read_to_string(dir.path().join("hello.wasm.sig")).unwrap();
    let lines: Vec<_> = sig.lines().collect();
    assert_eq!(lines[0], "magpie ed25519 signature");
    assert!(
        lines[1].starts_with("key ") && lines[1].len() == 20,
        "{sig}"
    );
    assert_eq!(lines[2].len(), 88, "base64 of 64 bytes: {sig}");
    let (good, out) = verify(&public(&key), &file);
    assert!(good && out.contains("good signature"), "{out}");

    let other = keygen(dir.path(), "other");
    let (good, out) = verify(&public(&other), &file);
    assert!(!good && out.contains("not a trusted key"), "{out}");

    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let (good, out) = verify(&public(&key), &file);
    assert!(!good && out.contains("bad signature"), "{out}");
}

#[test]
fn a_tampered_plugin_is_refused_at_check_and_run_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "fleet");
    let pd = plugin_dir(dir.path(), &["hello"]);
    let file = pd.join("hello.wasm");
    sign(&key, &file);
    let cfg = config(dir.path(), &pd, &keys(&key));
    let (good, out) = check(&cfg);
    assert!(good, "{out}");

    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    for out in [check(&cfg).1, run_refused(&cfg)] {
        assert!(out.contains("bad signature"), "{out}");
        assert!(out.contains(&file.display().to_string()), "{out}");
        assert!(out.contains(&public(&key).display().to_string()), "{out}");
    }
}

#[test]
fn wrong_key_missing_signature_and_unreadable_key_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = keygen(dir.path(), "fleet");
    let stranger = keygen(dir.path(), "stranger");
    let pd = plugin_dir(dir.path(), &["hello"]);
    let file = pd.join("hello.wasm");

    // Signed, by a key the config does not list.
    sign(&stranger, &file);
    let cfg = config(dir.path(), &pd, &keys(&trusted));
    let (good, out) = check(&cfg);
    assert!(!good, "{out}");
    assert!(out.contains("not a trusted key"), "{out}");
    assert!(
        out.contains(&public(&trusted).display().to_string()),
        "{out}"
    );
    assert!(out.contains(&file.display().to_string()), "{out}");

    // Unsigned, when signatures are required.
    std::fs::remove_file(format!("{}.sig", file.display())).unwrap();
    let cfg = config(
        dir.path(),
        &pd,
        &(keys(&trusted) + "require_signed_plugins = true\n"),
    );
    let (good, out) = check(&cfg);
    assert!(!good, "{out}");
    assert!(out.contains("missing signature"), "{out}");
    assert!(out.contains(&format!("{}.sig", file.display())), "{out}");

    // A key file that cannot be read, at its line.
    let cfg = config(dir.path(), &pd, "keys = [\"/nonexistent/fleet.pub\"]\n");
    let (good, out) = check(&cfg);
    assert!(!good, "{out}");
    assert!(out.contains(&format!("{}:11:", cfg.display())), "{out}");
    assert!(
        out.contains("cannot read key file /nonexistent/fleet.pub"),
        "{out}"
    );
}

#[test]
fn an_unknown_key_in_trust_is_a_config_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = config(dir.path(), &pd, "require_signed = true\n");
    let (good, out) = check(&cfg);
    assert!(!good, "{out}");
    assert!(out.contains(&format!("{}:11:1:", cfg.display())), "{out}");
    assert!(out.contains("unknown field `require_signed`"), "{out}");
}

#[test]
fn an_unsigned_cwasm_is_refused_unless_unsigned_plugins_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (pd, cwasm) = cwasm_plugin_dir(dir.path());
    let cfg = config(dir.path(), &pd, "");
    for out in [check(&cfg).1, run_refused(&cfg)] {
        assert!(out.contains("missing signature"), "{out}");
        assert!(out.contains(&cwasm.display().to_string()), "{out}");
    }
    let cfg = config(dir.path(), &pd, "require_signed_plugins = false\n");
    let (good, out) = check(&cfg);
    assert!(good, "{out}");
}

#[test]
fn a_signed_cwasm_loads_and_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "fleet");
    let (pd, cwasm) = cwasm_plugin_dir(dir.path());
    sign(&key, &cwasm);
    let cfg = config(dir.path(), &pd, &keys(&key));
    let (good, out) = check(&cfg);
    assert!(good, "{out}");
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrapes_total{job=\"hello\"}", 2.0);
    let body = m.metrics();
    assert_eq!(
        magpie_testkit::sample_value(&body, "magpie_scrape_failures_total{job=\"hello\"}"),
        Some(0.0),
        "{body}"
    );
}
