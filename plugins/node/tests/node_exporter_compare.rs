//! The plugin against the real node_exporter on this machine.
//!
//! Starts Debian's `prometheus-node-exporter` on an ephemeral loopback port with the collectors
//! this crate reimplements, scrapes it, runs [`node::collect`] over the real `/proc` and `/sys`,
//! scrapes it again, and checks that
//!
//! - both expose the same series (metric names and label sets), apart from the exceptions
//!   listed in [`ONLY_THEIRS`] and [`ONLY_OURS`];
//! - counters lie between node_exporter's readings before and after ours (with a small
//!   tolerance for counters the kernel lets step back);
//! - stable gauges (sizes, totals, info metrics) are equal within 1%, and fluctuating ones are
//!   within a family-specific bound.
//!
//! The binary is required: when it is missing the test fails and says how to install it. Set
//! `NODE_EXPORTER_BIN` to use another path.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use node::{Config, StdFs, VecSink, collect};

const DEFAULT_BIN: &str = "/usr/bin/prometheus-node-exporter";

/// node_exporter collectors this crate reimplements, enabled on both sides.
const COLLECTORS: &[&str] = &[
    "cpu",
    "meminfo",
    "loadavg",
    "diskstats",
    "netdev",
    "filesystem",
    "hwmon",
    "thermal_zone",
    "stat",
    "uname",
];

/// Metric names node_exporter exposes that the plugin intentionally does not, with why.
const ONLY_THEIRS: &[(&str, &str)] = &[
    (
        "node_scrape_collector_duration_seconds",
        "needs a clock, which the sandbox has not; the host times the whole call",
    ),
    (
        "node_exporter_build_info",
        "describes the node_exporter binary, not the host",
    ),
];

/// Series the plugin adds that node_exporter does not have: (name prefix, `collector` label
/// or "" for any, why).
const ONLY_OURS: &[(&str, &str, &str)] = &[
    (
        "node_rpi_throttled",
        "",
        "Raspberry Pi firmware flags, a magpie addition",
    ),
    (
        "node_scrape_collector_success",
        "rpi_throttled",
        "the success flag of that addition",
    ),
];

/// Gauges that do not move while the machine runs: equal within 1%.
const STABLE_GAUGES: &[&str] = &[
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_Hugepagesize_bytes",
    "node_memory_VmallocTotal_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_boot_time_seconds",
    "node_disk_info",
    "node_uname_info",
    "node_hwmon_chip_names",
    "node_hwmon_sensor_label",
    "node_cooling_device_max_state",
    "node_scrape_collector_success",
];

type Series = (String, Vec<(String, String)>);

/// Kills node_exporter when the test ends, also by panic.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn start(bin: &str, port: u16) -> ChildGuard {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults");
    for c in COLLECTORS {
        cmd.arg(format!("--collector.{c}"));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    ChildGuard(child)
}

/// One plain HTTP/1.0 GET of `/metrics`; `None` while the server is not listening yet.
fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "node_exporter answered {head}"
    );
    Some(body.to_string())
}

/// Polls until node_exporter answers; fails if it exits or never listens.
fn first_scrape(guard: &mut ChildGuard, port: u16) -> String {
    for _ in 0..400 {
        if let Some(body) = scrape(port) {
            return body;
        }
        if let Some(status) = guard.0.try_wait().expect("poll node_exporter") {
            panic!("node_exporter exited with {status} before listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("node_exporter never listened on 127.0.0.1:{port}");
}

/// Parses the text exposition format far enough for this test: one sample per line.
fn parse_exposition(body: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let (labels, rest) = parse_labels(&line[open + 1..]);
                (&line[..open], labels, rest)
            }
            None => {
                let (name, rest) = line.split_once(' ').expect("sample line");
                (name, Vec::new(), rest)
            }
        };
        let value = rest.split_whitespace().next().expect("sample value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        out.insert(key(name, labels), value);
    }
    out
}

/// Parses `a="x",b="y"} rest` into pairs and `rest`.
fn parse_labels(s: &str) -> (Vec<(String, String)>, &str) {
    let mut labels = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (name, after) = rest.split_once("=\"").expect("label name");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &after[end + 1..];
    }
}

fn key(name: &str, mut labels: Vec<(String, String)>) -> Series {
    labels.sort();
    (name.to_string(), labels)
}

fn ours() -> (BTreeMap<Series, f64>, node::Report) {
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), &mut StdFs, &mut sink);
    let samples = sink
        .samples
        .into_iter()
        .map(|s| (key(&s.name, s.labels), s.value))
        .collect();
    (samples, report)
}

fn only_theirs_reason(name: &str) -> Option<&'static str> {
    ONLY_THEIRS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}

fn only_ours_reason(series: &Series) -> Option<&'static str> {
    let collector = series
        .1
        .iter()
        .find(|(k, _)| k == "collector")
        .map_or("", |(_, v)| v.as_str());
    ONLY_OURS
        .iter()
        .find(|(prefix, label, _)| {
            series.0.starts_with(prefix) && (label.is_empty() || *label == collector)
        })
        .map(|(_, _, why)| *why)
}

fn show(series: &Series) -> String {
    let labels: Vec<String> = series.1.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", series.0, labels.join(","))
}

/// How far a fluctuating gauge may move between node_exporter's reading and ours.
fn fluctuation_bound(
    name: &str,
    theirs: &BTreeMap<Series, f64>,
    labels: &[(String, String)],
) -> f64 {
    let lookup = |n: &str| theirs.get(&(n.to_string(), labels.to_vec())).copied();
    if name.starts_with("node_memory_") {
        // Page cache and free memory move by megabytes between reads: 5% of RAM.
        let total = lookup("node_memory_MemTotal_bytes")
            .or_else(|| {
                theirs
                    .get(&key("node_memory_MemTotal_bytes", vec![]))
                    .copied()
            })
            .unwrap_or(0.0);
        return 0.05 * total;
    }
    if name.starts_with("node_filesystem_") {
        // Free space and inodes: 1% of the filesystem.
        let size = if name.contains("files") {
            lookup("node_filesystem_files")
        } else {
            lookup("node_filesystem_size_bytes")
        };
        return 0.01 * size.unwrap_or(0.0);
    }
    if name.contains("celsius") || name == "node_thermal_zone_temp" {
        return 10.0;
    }
    // Load averages, running processes, I/Os in flight, fan speeds: presence is checked,
    // values are too jumpy to compare.
    f64::INFINITY
}

#[test]
fn same_metrics_and_values_as_node_exporter() {
    let bin = std::env::var("NODE_EXPORTER_BIN").unwrap_or_else(|_| DEFAULT_BIN.to_string());
    assert!(
        std::path::Path::new(&bin).exists(),
        "node_exporter is required for this test but {bin} does not exist; install Debian's \
         `prometheus-node-exporter` package (CI does) or set NODE_EXPORTER_BIN"
    );
    let port = free_port();
    let mut guard = start(&bin, port);

    let before = parse_exposition(&first_scrape(&mut guard, port));
    let (ours, report) = ours();
    let after = parse_exposition(&scrape(port).expect("second scrape"));
    drop(guard);

    let theirs_node: BTreeMap<&Series, f64> = before
        .iter()
        .filter(|(s, _)| s.0.starts_with("node_"))
        .map(|(s, v)| (s, *v))
        .collect();
    let mut problems = Vec::new();

    // Every series of theirs is ours, unless listed.
    for series in theirs_node.keys() {
        if only_theirs_reason(&series.0).is_none() && !ours.contains_key(*series) {
            problems.push(format!("missing: {}", show(series)));
        }
    }
    // Every series of ours is theirs, unless it is our addition. A series of a device that
    // appeared in between would show up here, which on a test machine it does not.
    for series in ours.keys() {
        if only_ours_reason(series).is_none() && !before.contains_key(series) {
            problems.push(format!("extra: {}", show(series)));
        }
    }

    for (series, &value) in &ours {
        let (Some(&was), Some(&now)) = (before.get(series), after.get(series)) else {
            continue;
        };
        let name = series.0.as_str();
        if name.ends_with("_total") {
            // iowait and idle may step back slightly; the kernel documents it.
            let slack = |v: f64| {
                let abs = if name.ends_with("_seconds_total") {
                    0.5
                } else {
                    0.0
                };
                (v.abs() * 1e-3).max(abs)
            };
            if value < was - slack(was) || value > now + slack(now) {
                problems.push(format!(
                    "counter out of range: {} = {value}, node_exporter read {was} then {now}",
                    show(series)
                ));
            }
        } else if STABLE_GAUGES.contains(&name) {
            if (value - was).abs() > 0.01 * was.abs() {
                problems.push(format!(
                    "gauge differs: {} = {value}, node_exporter {was}",
                    show(series)
                ));
            }
        } else {
            let bound = fluctuation_bound(name, &before, &series.1);
            let low = was.min(now) - bound;
            let high = was.max(now) + bound;
            if value < low || value > high {
                problems.push(format!(
                    "gauge too far: {} = {value}, node_exporter {was} then {now}",
                    show(series)
                ));
            }
        }
    }

    // Sanity: the comparison covered the main families.
    for family in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_filesystem_size_bytes",
        "node_boot_time_seconds",
    ] {
        if !ours.keys().any(|s| s.0 == family) {
            problems.push(format!("no {family} at all"));
        }
    }

    assert!(
        problems.is_empty(),
        "{} differences from node_exporter ({} of its node_* series compared; report: {:?}):\n{}",
        problems.len(),
        theirs_node.len(),
        report.outcomes,
        problems.join("\n")
    );
}

#[test]
fn exposition_parser_handles_escapes() {
    let parsed = parse_exposition(
        "# HELP x y\nnode_a 1\nnode_b{l=\"a\\\"b\\\\c\",m=\"\"} 2.5e+09\nnode_c{l=\"}\"} NaN\n",
    );
    assert_eq!(parsed[&key("node_a", vec![])], 1.0);
    let b = key(
        "node_b",
        vec![("l".into(), "a\"b\\c".into()), ("m".into(), String::new())],
    );
    assert_eq!(parsed[&b], 2.5e9);
    assert!(parsed[&key("node_c", vec![("l".into(), "}".into())])].is_nan());
}
