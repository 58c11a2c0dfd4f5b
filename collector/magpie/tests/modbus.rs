//! The `modbus` plugin end to end against a real Modbus server (pymodbus, `tests/modbus/
//! server.py`): over TCP, every register type and word order reaches a real Prometheus
//! receiver exact, an address the server lacks is reported for that register by its exception
//! name while the others arrive, adjacent registers cost one request, and a stopped server
//! makes the target down with the reason. Over RTU, through a pty pair made by socat, with
//! the line (baud, parity) set by the host from the target URL.

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::Prometheus;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modbus/server.py")
}

/// Starts the pymodbus server with `args`; returns once it says it serves.
fn pymodbus(args: &[&str]) -> Proc {
    let mut child = Command::new("python3")
        .arg(server_script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with pymodbus (ci/setup.sh installs it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "serving", "the pymodbus server did not start");
    Proc(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The register map: every type and word order the server holds (see server.py), and one
/// address it does not have.
const REGISTERS: &str = r#"
[[scrape.config.registers]]
name = "mb_float32_big"
address = 0
type = "float32"
labels = { phase = "L1" }
[[scrape.config.registers]]
name = "mb_float32_little"
address = 2
type = "float32"
word_order = "little"
[[scrape.config.registers]]
name = "mb_int16"
address = 4
type = "int16"
[[scrape.config.registers]]
name = "mb_uint16"
address = 5
type = "uint16"
[[scrape.config.registers]]
name = "mb_int32_big"
address = 6
type = "int32"
[[scrape.config.registers]]
name = "mb_uint32_little"
address = 8
type = "uint32"
word_order = "little"
[[scrape.config.registers]]
name = "mb_int64_big"
address = 10
type = "int64"
[[scrape.config.registers]]
name = "mb_uint64_little"
address = 14
type = "uint64"
word_order = "little"
[[scrape.config.registers]]
name = "mb_float64_big"
address = 18
type = "float64"
[[scrape.config.registers]]
name = "mb_bool_register"
address = 22
type = "bool"
[[scrape.config.registers]]
name = "mb_voltage_volts"
address = 23
type = "uint16"
scale = 0.1
[[scrape.config.registers]]
name = "mb_input_uint16"
kind = "input"
address = 0
[[scrape.config.registers]]
name = "mb_input_int32"
kind = "input"
address = 1
type = "int32"
[[scrape.config.registers]]
name = "mb_coil_0"
kind = "coil"
address = 0
[[scrape.config.registers]]
name = "mb_coil_1"
kind = "coil"
address = 1
[[scrape.config.registers]]
name = "mb_coil_2"
kind = "coil"
address = 2
[[scrape.config.registers]]
name = "mb_discrete_0"
kind = "discrete"
address = 0
[[scrape.config.registers]]
name = "mb_discrete_1"
kind = "discrete"
address = 1
[[scrape.config.registers]]
name = "mb_missing"
address = 100
"#;

/// Every register's expected value, as the plugin computes it (`raw * scale`).
fn expected() -> Vec<(&'static str, f64)> {
    vec![
        ("mb_float32_big", 1234.5),
        ("mb_float32_little", -2.25),
        ("mb_int16", -7.0),
        ("mb_uint16", 65000.0),
        ("mb_int32_big", -100_000.0),
        ("mb_uint32_little", 3_000_000_000.0),
        ("mb_int64_big", -5_000_000_000.0),
        #[allow(clippy::cast_precision_loss)]
        ("mb_uint64_little", ((1_u64 << 40) + 5) as f64),
        ("mb_float64_big", 0.1),
        ("mb_bool_register", 1.0),
        ("mb_voltage_volts", 2305.0 * 0.1),
        ("mb_input_uint16", 42.0),
        ("mb_input_int32", 70000.0),
        ("mb_coil_0", 1.0),
        ("mb_coil_1", 0.0),
        ("mb_coil_2", 1.0),
        ("mb_discrete_0", 0.0),
        ("mb_discrete_1", 1.0),
    ]
}

fn config(dir: &Path, plugins: &Path, target: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n{extra}[[scrape]]\njob = \"inverter\"\nplugin = \"modbus\"\ninterval = \"1s\"\ntimeout = \"900ms\"\ntargets = [\"{target}\"]\n[scrape.config]\nunit_id = 1\n{REGISTERS}",
            plugins.display(),
            dir.join("data").display(),
        ),
    )
    .unwrap();
    cfg
}

/// The requests the server logged, as `(function, address, count)`.
fn requests(log: &Path) -> Vec<(u8, u16, u16)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ').map(str::parse::<u32>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(f)), Some(Ok(a)), Some(Ok(c))) => Some((
                    u8::try_from(f).ok()?,
                    u16::try_from(a).ok()?,
                    u16::try_from(c).ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// One scrape's requests: the holding registers 0..23 in one, input registers in one, coils
/// in one, discrete inputs in one, and the missing address alone.
const ONE_SCRAPE: [(u8, u16, u16); 5] = [(1, 0, 3), (2, 0, 2), (3, 0, 24), (3, 100, 1), (4, 0, 3)];

fn latest(prom: &Prometheus, selector: &str) -> Option<(Vec<(String, String)>, f64)> {
    prom.samples(selector, "5m")
        .into_iter()
        .next()
        .and_then(|(labels, points)| points.last().map(|p| (labels, p.1)))
}

#[test]
fn tcp_registers_of_every_type_arrive_exact_in_one_request_per_run_and_exceptions_per_register() {
    let started = Instant::now();
    let prom = Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["modbus", "remote-write"]);
    let port = free_port();
    let log = dir.path().join("requests.log");
    let server = pymodbus(&["tcp", &port.to_string(), log.to_str().unwrap()]);
    wait_listening(port);
    let target = format!("tcp://127.0.0.1:{port}");
    let export = format!(
        "[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\n",
        prom.write_url()
    );
    let m = Magpie::start(&config(dir.path(), &pd, &target, &export));

    // Every value, exact, in the receiver.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (name, want) in expected() {
        let got = loop {
            if let Some(v) = latest(&prom, name) {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never reached the receiver; log:\n{}",
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            got.1.to_bits(),
            want.to_bits(),
            "{name}: {} != {want}",
            got.1
        );
        assert!(
            got.0
                .contains(&("instance".into(), format!("127.0.0.1:{port}"))),
            "{got:?}"
        );
    }
    let (labels, _) = latest(&prom, "mb_float32_big").unwrap();
    assert!(
        labels.contains(&("phase".into(), "L1".into())),
        "{labels:?}"
    );

    // The missing address: its exception, by name, and the scrape is up.
    let (labels, code) = latest(&prom, "modbus_exception").expect("modbus_exception");
    assert_eq!(code, 2.0);
    assert!(
        labels.contains(&("register".into(), "mb_missing".into())),
        "{labels:?}"
    );
    assert!(
        labels.contains(&("exception".into(), "ILLEGAL DATA ADDRESS".into())),
        "{labels:?}"
    );
    assert_eq!(latest(&prom, "up").map(|v| v.1), Some(1.0));

    // Batching: every scrape is the same five requests, never one per register.
    let reqs = requests(&log);
    assert!(reqs.len() >= ONE_SCRAPE.len(), "{reqs:?}");
    let mut sorted = reqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, ONE_SCRAPE, "requests seen: {reqs:?}");
    println!(
        "modbus tcp: {} requests for {} scrapes of 19 registers",
        reqs.len(),
        reqs.len() / ONE_SCRAPE.len()
    );

    // A stopped server: the target goes down, with the reason in the log.
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if latest(&prom, "up").is_some_and(|v| v.1 == 0.0)
            && m.log_text().contains("Connection refused")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no up 0 with the reason; log:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("modbus tcp suite: {:?}", started.elapsed());
}

#[test]
fn rtu_over_a_serial_line_set_from_the_target_url() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("ttyA"), dir.path().join("ttyB"));
    let _socat = Proc(
        Command::new("socat")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (ci/setup.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.exists() && b.exists()) {
        assert!(Instant::now() < deadline, "socat made no pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = dir.path().join("requests.log");
    let _server = pymodbus(&["rtu", a.to_str().unwrap(), "19200", log.to_str().unwrap()]);
    let pd = plugin_dir(dir.path(), &["modbus"]);
    let target = format!(
        "rtu://{}?baud=19200&parity=N&stop_bits=1&data_bits=8",
        b.display()
    );
    let m = Magpie::start(&config(dir.path(), &pd, &target, ""));
    m.wait_for("magpie_scrapes_total{job=\"inverter\"}", 3.0);
    let text = m.log_text();
    assert!(m.terminate().success(), "{text}");
    let stored = read_wal(&dir.path().join("data/wal"));
    let value = |name: &str| {
        stored
            .iter()
            .rev()
            .find(|(labels, _, _)| label(labels, "__name__") == Some(name))
            .map(|s| s.2)
    };
    for (name, want) in expected() {
        let got = value(name).unwrap_or_else(|| {
            let names: Vec<_> = stored
                .iter()
                .filter_map(|(l, _, _)| label(l, "__name__"))
                .collect();
            panic!("{name} never arrived over RTU; stored {names:?}; log:\n{text}")
        });
        assert_eq!(got.to_bits(), want.to_bits(), "{name}: {got} != {want}");
    }
    assert_eq!(value("modbus_exception"), Some(2.0));
    assert_eq!(value("up"), Some(1.0), "{text}");
    let mut seen = requests(&log);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, ONE_SCRAPE);
    println!("modbus rtu suite: {:?}", started.elapsed());
}
