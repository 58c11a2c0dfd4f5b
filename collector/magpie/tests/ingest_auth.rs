//! Who may push, and how: the HTTP ingest source behind basic auth, bearer tokens and HTTPS
//! with client certificates, pushed to by real curl; gzip bodies as Telegraf sends them,
//! made with Python's gzip. Refused pushes leave nothing in the WAL and are counted by reason;
//! certificates are read again on SIGHUP; `magpie check` names the source and key of a bad
//! file.

mod common;

use common::{Magpie, Stored, plugin_dir, read_wal};
use magpie_testkit::{TestCerts, sample_value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A config with one `[[ingest]]` section `ingest` and a long WAL sync interval.
fn config(dir: &Path, pd: &Path, ingest: &str) -> PathBuf {
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"1h\"\n{ingest}",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// What curl saw: the status (0 when no HTTP answer came), the `WWW-Authenticate` header and
/// curl's exit code.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: String,
    exit: i32,
}

/// `curl -X method --data-binary @body <args> url`.
fn curl(method: &str, url: &str, args: &[&str], body: &[u8]) -> Answer {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "20", "-X", method])
        .args(["-w", "%{http_code} %header{www-authenticate}"])
        .arg("--data-binary")
        .arg(format!("@{}", f.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, challenge) = text.split_once(' ').unwrap_or((&text, ""));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        challenge: challenge.to_string(),
        exit: out.status.code().unwrap_or(-1),
    }
}

/// `body` gzipped by Python's gzip module, as a file curl sends.
fn python_gzip(body: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gz) = (dir.path().join("body"), dir.path().join("body.gz"));
    std::fs::write(&plain, body).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg("import gzip, shutil, sys\nwith open(sys.argv[1], 'rb') as i, gzip.open(sys.argv[2], 'wb') as o: shutil.copyfileobj(i, o)")
        .arg(&plain)
        .arg(&gz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(gz).unwrap()
}

fn values(wal: &[Stored], name: &str) -> Vec<f64> {
    let mut v: Vec<f64> = wal
        .iter()
        .filter(|(l, _, _)| l.iter().any(|(n, v)| n == "__name__" && v == name))
        .map(|(_, _, v)| *v)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn rejects(m: &Magpie, reason: &str) -> f64 {
    sample_value(
        &m.metrics(),
        &format!("magpie_ingest_rejects_total{{source=\"lan\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

fn copy_certs(from: &TestCerts, to: &Path) {
    for f in ["ca.pem", "server.pem", "server.key"] {
        std::fs::copy(from.path(f), to.join(f)).unwrap();
    }
}

#[test]
fn https_with_client_certificates_and_credentials_takes_only_the_right_pushers() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in", "influx"]);
    let certs = TestCerts::generate();
    let other = TestCerts::generate();
    // The server's files live in a directory of their own, replaced before the SIGHUP.
    let served = dir.path().join("tls");
    std::fs::create_dir(&served).unwrap();
    copy_certs(&certs, &served);
    let secret = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let password = secret("telegraf.pass", "s3cret-pw\n");
    let users = secret("users", "# batch jobs\nbackup:b4ckup-pw\n");
    let token = secret("token", "t0ken-value\n");
    let port = free_port();
    let ingest = format!(
        "[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nbearer_token_file = \"{token}\"\nbasic_auth = {{ username = \"telegraf\", password_file = \"{password}\", users_file = \"{users}\" }}\ntls = {{ cert_file = \"{s}/server.pem\", key_file = \"{s}/server.key\", client_ca_file = \"{ca}\" }}\n",
        s = served.display(),
        ca = certs.path("ca.pem").display(),
    );
    let cfg = config(dir.path(), &pd, &ingest);
    let check = common::magpie().arg("check").arg(&cfg).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let m = Magpie::start(&cfg);
    let url = format!("https://127.0.0.1:{port}");
    let ca = certs.path("ca.pem").display().to_string();
    let cert = certs.path("client.pem").display().to_string();
    let key = certs.path("client.key").display().to_string();
    let tls: Vec<&str> = vec!["--cacert", &ca, "--cert", &cert, "--key", &key];
    let with = |extra: &[&str]| -> Vec<String> {
        tls.iter().chain(extra).map(|s| (*s).to_string()).collect()
    };
    let push = |path: &str, args: &[String], body: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl("POST", &format!("{url}{path}"), &args, body.as_bytes())
    };

    // The right pushers: the configured user, a user of the users file, the bearer token.
    let a = push(
        "/metrics/job/auth",
        &with(&["-u", "telegraf:s3cret-pw"]),
        "pushed_ok 1\n",
    );
    assert_eq!(a.status, 200, "{a:?}\n{}", m.log_text());
    let a = push(
        "/metrics/job/auth",
        &with(&["-u", "backup:b4ckup-pw"]),
        "pushed_ok 2\n",
    );
    assert_eq!(a.status, 200, "{a:?}");
    let a = push(
        "/write?precision=s",
        &with(&["-H", "Authorization: Bearer t0ken-value"]),
        "bearer,host=a ok=3\n",
    );
    assert_eq!(a.status, 204, "{a:?}");

    // The wrong ones: 401 with the challenge, counted, nothing appended.
    for args in [
        with(&["-u", "telegraf:wrong"]),
        with(&["-u", "backup:s3cret-pw"]),
        with(&["-u", "nobody:b4ckup-pw"]),
        with(&["-H", "Authorization: Bearer t0ken"]),
        with(&[]),
    ] {
        let a = push("/metrics/job/auth", &args, "pushed_refused 1\n");
        assert_eq!(a.status, 401, "{args:?}: {a:?}");
        assert!(
            a.challenge
                .contains("Basic realm=\"magpie ingest lan\", charset=\"UTF-8\""),
            "{a:?}"
        );
    }
    assert_eq!(rejects(&m, "unauthorized"), 5.0);

    // Without a client certificate, with one of another CA, or in plain HTTP: no handshake.
    let other_cert = other.path("client.pem").display().to_string();
    let other_key = other.path("client.key").display().to_string();
    let creds = ["-u", "telegraf:s3cret-pw"];
    for args in [
        vec!["--cacert", &ca, creds[0], creds[1]],
        vec![
            "--cacert",
            &ca,
            "--cert",
            &other_cert,
            "--key",
            &other_key,
            creds[0],
            creds[1],
        ],
    ] {
        let a = curl(
            "POST",
            &format!("{url}/metrics/job/auth"),
            &args,
            b"pushed_refused 2\n",
        );
        assert_eq!(a.status, 0, "{args:?}: {a:?}");
        assert_ne!(a.exit, 0, "{a:?}");
    }
    let a = curl(
        "POST",
        &format!("http://127.0.0.1:{port}/metrics/job/auth"),
        &creds,
        b"pushed_refused 3\n",
    );
    assert_ne!(a.status / 100, 2, "{a:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while rejects(&m, "tls_handshake") < 3.0 {
        assert!(Instant::now() < deadline, "{}", m.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A server certificate from another CA is refused by the client: nothing sent.
    let a = curl(
        "POST",
        &format!("{url}/metrics/job/auth"),
        &[
            "--cacert",
            &other.path("ca.pem").display().to_string(),
            "--cert",
            &cert,
            "--key",
            &key,
            creds[0],
            creds[1],
        ],
        b"pushed_refused 4\n",
    );
    assert_eq!(a.status, 0, "{a:?}");

    // New certificates (another CA) take effect on SIGHUP.
    copy_certs(&other, &served);
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(&ca, &other.path("ca.pem").display().to_string()),
    )
    .unwrap();
    m.signal(rustix::process::Signal::HUP);
    let other_ca = other.path("ca.pem").display().to_string();
    let mut new_tls = vec![
        "--cacert".to_string(),
        other_ca.clone(),
        "--cert".into(),
        other_cert.clone(),
        "--key".into(),
        other_key.clone(),
    ];
    new_tls.extend(creds.iter().map(|s| (*s).to_string()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = push("/metrics/job/auth", &new_tls, "pushed_ok 4\n");
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{a:?}\n{}", m.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let a = push(
        "/metrics/job/auth",
        &with(&["-u", "telegraf:s3cret-pw"]),
        "pushed_refused 5\n",
    );
    assert_eq!(a.status, 0, "the old certificates are gone: {a:?}");

    let log = m.log_text();
    assert!(m.terminate().success());
    for secret in ["s3cret-pw", "b4ckup-pw", "t0ken-value"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("source=lan context=tls handshake from 127.0.0.1"),
        "{log}"
    );
    let wal = read_wal(&dir.path().join("data/wal"));
    assert_eq!(values(&wal, "pushed_ok"), [1.0, 2.0, 4.0]);
    assert_eq!(values(&wal, "bearer_ok"), [3.0]);
    assert_eq!(values(&wal, "pushed_refused"), Vec::<f64>::new());
}

#[test]
fn gzip_bodies_on_influx_and_pushgateway_paths_are_inflated_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in", "influx"]);
    let port = free_port();
    let cfg = config(
        dir.path(),
        &pd,
        &format!(
            "[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = \"64KiB\"\n"
        ),
    );
    let m = Magpie::start(&cfg);
    let url = format!("http://127.0.0.1:{port}");
    let gz = ["-H", "Content-Encoding: gzip"];
    // Telegraf's influxdb_v2 output: gzip on /api/v2/write; and the v1 path.
    let lines: String = (0..200)
        .map(|i| format!("meter,id=m{i} reading={i} 1700000000\n"))
        .collect();
    for (path, body) in [
        ("/api/v2/write?precision=s&bucket=b", lines.as_str()),
        ("/write?precision=s", "door,room=a opens=7i 1700000000\n"),
    ] {
        let a = curl(
            "POST",
            &format!("{url}{path}"),
            &gz,
            &python_gzip(body.as_bytes()),
        );
        assert_eq!(a.status, 204, "{path}: {a:?}\n{}", m.log_text());
    }
    let a = curl(
        "PUT",
        &format!("{url}/metrics/job/backup"),
        &gz,
        &python_gzip(b"# TYPE backup_bytes gauge\nbackup_bytes 1234.5\n"),
    );
    assert_eq!(a.status, 200, "{a:?}");
    // `identity` is no encoding; others are 415; a body that is not gzip is 400; one that
    // inflates past max_body_bytes is 413 though it is small on the wire.
    let a = curl(
        "POST",
        &format!("{url}/write"),
        &["-H", "Content-Encoding: identity"],
        b"plain value=5 1700000000000000000\n",
    );
    assert_eq!(a.status, 204, "{a:?}");
    let a = curl(
        "POST",
        &format!("{url}/write"),
        &["-H", "Content-Encoding: br"],
        b"refused value=1\n",
    );
    assert_eq!(a.status, 415, "{a:?}");
    let a = curl("POST", &format!("{url}/write"), &gz, b"refused value=2\n");
    assert_eq!(a.status, 400, "{a:?}");
    let bomb = python_gzip(&"refused value=3\n".repeat(10_000).into_bytes());
    assert!(bomb.len() < 64 << 10);
    let a = curl("POST", &format!("{url}/api/v2/write"), &gz, &bomb);
    assert_eq!(a.status, 413, "{a:?}");
    let metrics = m.metrics();
    for (reason, n) in [
        ("unsupported_encoding", 1.0),
        ("malformed", 1.0),
        ("too_large", 1.0),
    ] {
        assert_eq!(
            sample_value(
                &metrics,
                &format!("magpie_ingest_rejects_total{{source=\"lan\",reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}:\n{metrics}"
        );
    }
    assert!(m.terminate().success());
    let wal = read_wal(&dir.path().join("data/wal"));
    let readings = values(&wal, "meter_reading");
    assert_eq!(readings, (0..200).map(f64::from).collect::<Vec<_>>());
    assert!(
        wal.iter()
            .filter(|(l, _, _)| l.iter().any(|(_, v)| v == "meter_reading"))
            .all(|(_, t, _)| *t == 1_700_000_000_000)
    );
    assert_eq!(values(&wal, "door_opens"), [7.0]);
    assert_eq!(values(&wal, "backup_bytes"), [1234.5]);
    assert_eq!(values(&wal, "plain"), [5.0]);
    assert_eq!(values(&wal, "refused"), Vec::<f64>::new());
}

#[test]
fn magpie_check_names_the_source_and_key_of_a_bad_credential_or_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in", "json"]);
    let certs = TestCerts::generate();
    let p = |n: &str| certs.path(n).display().to_string();
    let hashed = dir.path().join("hashed");
    std::fs::write(&hashed, "a:$apr1$xyz$abc\n").unwrap();
    let check = |ingest: &str| {
        let cfg = config(dir.path(), &pd, ingest);
        let out = common::magpie().arg("check").arg(&cfg).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout),
        )
    };
    let http = |name: &str, rest: &str| {
        format!(
            "[[ingest]]\nname = \"{name}\"\nsource = \"http\"\nlisten = \"127.0.0.1:9091\"\n{rest}\n"
        )
    };
    let (ok, text) = check(&http(
        "good",
        &format!(
            "tls = {{ cert_file = \"{}\", key_file = \"{}\", client_ca_file = \"{}\" }}",
            p("server.pem"),
            p("server.key"),
            p("ca.pem")
        ),
    ));
    assert!(ok, "{text}");
    let (ok, text) = check(
        &[
            http(
                "a",
                &format!("tls = {{ cert_file = \"{}\", key_file = \"{}\" }}", p("server.pem"), p("client.key")),
            ),
            http(
                "b",
                &format!(
                    "tls = {{ cert_file = \"{}\", key_file = \"{}\", client_ca_file = \"/nonexistent/ca.pem\" }}",
                    p("server.pem"),
                    p("server.key")
                ),
            ),
            http("c", &format!("tls = {{ cert_file = \"{}\" }}", p("server.pem"))),
            http("d", &format!("basic_auth = {{ users_file = \"{}\" }}", hashed.display())),
            http("e", "basic_auth = { username = \"u\" }"),
            http("f", "basic_auth = { username = \"u\", password_file = \"/nonexistent/pass\" }"),
            http("g", &format!("tls = {{ ca_file = \"{}\" }}", p("ca.pem"))),
            format!(
                "[[ingest]]\nname = \"h\"\nsource = \"mqtt\"\nurl = \"mqtts://127.0.0.1\"\ntopics = [\"t\"]\nplugin = \"json\"\ntls = {{ client_ca_file = \"{}\" }}\nbasic_auth = {{ users_file = \"/x\" }}\n",
                p("ca.pem")
            ),
        ]
        .concat(),
    );
    assert!(!ok);
    for want in [
        "ingest `a`: tls: TLS setup: ".to_string() + &p("client.key"),
        "ingest `b`: tls: TLS setup: /nonexistent/ca.pem".into(),
        "ingest `c`: tls needs cert_file and key_file".into(),
        format!(
            "ingest `d`: basic_auth.users_file {}: line 1: user `a` has a hashed password",
            hashed.display()
        ),
        "ingest `e`: basic_auth: username and password_file go together".into(),
        "ingest `f`: basic_auth.password_file: secret file /nonexistent/pass".into(),
        "ingest `g`: tls.ca_file".into(),
        "ingest `h`: tls.client_ca_file does not apply to a mqtt source".into(),
        "ingest `h`: basic_auth.users_file does not apply to a mqtt source".into(),
        "ingest `h`: basic_auth needs username and password_file".into(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("xyz$abc"), "{text}");
}
