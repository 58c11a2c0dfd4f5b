//! The synthetic scrape target. Series come in blocks of 100 per simulated host, the mix of a
//! node_exporter on a gateway plus a few kube-state and application families: per host 32 CPU
//! counters, network, disk and filesystem series, memory and load gauges, container and pod
//! series, an API request counter and two classic histograms of 11 buckets with `_sum` and
//! `_count`. Families are contiguous, as the text format requires.

use crate::{Opts, write_port};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const BLOCK: usize = 100;
const LE: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];

/// How a series' value moves and prints.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Integer counter.
    Count,
    /// Counter in thousandths, printed with three decimals.
    CountMilli,
    /// Integer gauge around a base value.
    Gauge(u64),
    /// Gauge in thousandths around a base value.
    GaugeMilli(u64),
    /// Cumulative bucket `i` of histogram `h`.
    Bucket(usize, usize),
    /// `_sum` of histogram `h`, in thousandths.
    Sum(usize),
    /// `_count` of histogram `h`.
    HistCount(usize),
}

#[derive(Debug)]
struct Series {
    prefix: String,
    kind: Kind,
    value: u64,
}

#[derive(Debug, Default, Clone)]
struct Hist {
    buckets: [u64; 11],
    sum_milli: u64,
}

/// All series and their state.
#[derive(Debug)]
struct Exposition {
    series: Vec<Series>,
    hists: Vec<Hist>,
    rng: u64,
    body: Vec<u8>,
}

impl Exposition {
    fn new(n: usize) -> Self {
        let hosts = n.div_ceil(BLOCK).max(1);
        let mut e = Self {
            series: Vec::with_capacity(hosts * BLOCK),
            hists: vec![Hist::default(); hosts * 2],
            rng: 0x9e37_79b9_7f4a_7c15,
            body: Vec::new(),
        };
        e.build(hosts);
        e
    }

    fn add(&mut self, prefix: String, kind: Kind) {
        self.series.push(Series {
            prefix,
            kind,
            value: 0,
        });
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // TYPE/HELP lines ride on the prefix of the family's first series.
        self.series.push(Series {
            prefix: format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"),
            kind: Kind::Count,
            value: u64::MAX,
        });
    }

    #[allow(clippy::too_many_lines)]
    fn build(&mut self, hosts: usize) {
        let base = |h: usize| format!("host=\"gw-{h:05}\",site=\"s{:02}\",env=\"prod\"", h % 16);
        let modes = [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ];
        self.family(
            "node_cpu_seconds_total",
            "counter",
            "Seconds the CPUs spent in each mode.",
        );
        for h in 0..hosts {
            for cpu in 0..4 {
                for m in modes {
                    let p = format!(
                        "node_cpu_seconds_total{{{},cpu=\"{cpu}\",mode=\"{m}\"}} ",
                        base(h)
                    );
                    self.add(p, Kind::CountMilli);
                }
            }
        }
        for dir in ["receive", "transmit"] {
            let name = format!("node_network_{dir}_bytes_total");
            self.family(&name, "counter", "Network device statistic.");
            for h in 0..hosts {
                for dev in ["eth0", "eth1", "wlan0"] {
                    self.add(
                        format!("{name}{{{},device=\"{dev}\"}} ", base(h)),
                        Kind::Count,
                    );
                }
            }
        }
        for dir in ["read", "written"] {
            let name = format!("node_disk_{dir}_bytes_total");
            self.family(&name, "counter", "The total number of bytes transferred.");
            for h in 0..hosts {
                for dev in ["mmcblk0", "sda"] {
                    self.add(
                        format!("{name}{{{},device=\"{dev}\"}} ", base(h)),
                        Kind::Count,
                    );
                }
            }
        }
        self.family(
            "node_filesystem_avail_bytes",
            "gauge",
            "Filesystem space available.",
        );
        for h in 0..hosts {
            for (dev, fs, mp) in [
                ("/dev/mmcblk0p2", "ext4", "/"),
                ("/dev/mmcblk0p1", "vfat", "/boot"),
                ("tmpfs", "tmpfs", "/run"),
            ] {
                let p = format!(
                    "node_filesystem_avail_bytes{{{},device=\"{dev}\",fstype=\"{fs}\",mountpoint=\"{mp}\"}} ",
                    base(h)
                );
                self.add(p, Kind::Gauge(12_000_000_000));
            }
        }
        for (name, kind) in [
            ("node_memory_MemAvailable_bytes", Kind::Gauge(700_000_000)),
            ("node_memory_MemFree_bytes", Kind::Gauge(200_000_000)),
            ("node_load1", Kind::GaugeMilli(1_500)),
            ("node_procs_running", Kind::Gauge(4)),
            ("node_timex_offset_seconds", Kind::GaugeMilli(1)),
        ] {
            self.family(name, "gauge", "Node statistic.");
            for h in 0..hosts {
                self.add(format!("{name}{{{}}} ", base(h)), kind);
            }
        }
        self.family(
            "node_context_switches_total",
            "counter",
            "Total number of context switches.",
        );
        for h in 0..hosts {
            self.add(
                format!("node_context_switches_total{{{}}} ", base(h)),
                Kind::Count,
            );
        }
        self.family(
            "node_hwmon_temp_celsius",
            "gauge",
            "Hardware monitor for temperature.",
        );
        for h in 0..hosts {
            for sensor in ["temp1", "temp2"] {
                let p = format!(
                    "node_hwmon_temp_celsius{{{},chip=\"thermal_zone0\",sensor=\"{sensor}\"}} ",
                    base(h)
                );
                self.add(p, Kind::GaugeMilli(48_000));
            }
        }
        let pods = [
            "ingest-7d9f",
            "mqtt-bridge-5c2a",
            "ota-agent-0",
            "edge-proxy-66b1",
        ];
        self.family(
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed.",
        );
        for h in 0..hosts {
            for pod in pods {
                let p = format!(
                    "container_cpu_usage_seconds_total{{{},namespace=\"edge\",pod=\"{pod}\",container=\"main\"}} ",
                    base(h)
                );
                self.add(p, Kind::CountMilli);
            }
        }
        self.family(
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set.",
        );
        for h in 0..hosts {
            for pod in pods {
                let p = format!(
                    "container_memory_working_set_bytes{{{},namespace=\"edge\",pod=\"{pod}\",container=\"main\"}} ",
                    base(h)
                );
                self.add(p, Kind::Gauge(60_000_000));
            }
        }
        self.family("kube_pod_status_phase", "gauge", "The pods current phase.");
        for h in 0..hosts {
            for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                let p = format!(
                    "kube_pod_status_phase{{{},namespace=\"edge\",pod=\"ingest-7d9f\",phase=\"{phase}\"}} ",
                    base(h)
                );
                self.add(p, Kind::Gauge(1));
            }
        }
        self.family(
            "apiserver_request_total",
            "counter",
            "Counter of apiserver requests.",
        );
        for h in 0..hosts {
            for verb in ["GET", "LIST", "WATCH", "POST"] {
                for resource in ["pods", "nodes"] {
                    let p = format!(
                        "apiserver_request_total{{{},verb=\"{verb}\",resource=\"{resource}\",code=\"200\"}} ",
                        base(h)
                    );
                    self.add(p, Kind::Count);
                }
            }
        }
        let name = "http_request_duration_seconds";
        self.family(name, "histogram", "Latency of HTTP requests.");
        for h in 0..hosts {
            for (c, code) in ["200", "500"].into_iter().enumerate() {
                let hist = h * 2 + c;
                let labels = format!(
                    "{},namespace=\"edge\",service=\"ingest\",code=\"{code}\"",
                    base(h)
                );
                for (i, le) in LE.iter().enumerate() {
                    self.add(
                        format!("{name}_bucket{{{labels},le=\"{le}\"}} "),
                        Kind::Bucket(hist, i),
                    );
                }
                self.add(format!("{name}_sum{{{labels}}} "), Kind::Sum(hist));
                self.add(format!("{name}_count{{{labels}}} "), Kind::HistCount(hist));
            }
        }
    }

    /// Samples per scrape (the TYPE/HELP carriers excluded).
    fn samples(&self) -> usize {
        self.series.iter().filter(|s| s.value != u64::MAX).count()
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: cheap and reproducible.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Moves every value and renders the body.
    fn scrape(&mut self) -> &[u8] {
        for i in 0..self.hists.len() {
            let n = self.next() % 40;
            for _ in 0..n {
                let r = self.next();
                let b = (r % 11) as usize;
                self.hists[i].buckets[b] += 1;
                self.hists[i].sum_milli += (r >> 16) % 5000;
            }
        }
        self.body.clear();
        let mut text = String::with_capacity(self.series.len() * 120);
        for idx in 0..self.series.len() {
            let r = self.next();
            let s = &mut self.series[idx];
            text.push_str(&s.prefix);
            if s.value == u64::MAX {
                continue;
            }
            let v = match s.kind {
                Kind::Count | Kind::CountMilli => {
                    s.value += r % 5000;
                    s.value
                }
                Kind::Gauge(base) | Kind::GaugeMilli(base) => base + r % (base / 10 + 3),
                Kind::Bucket(h, i) => self.hists[h].buckets[..=i].iter().sum(),
                Kind::Sum(h) => self.hists[h].sum_milli,
                Kind::HistCount(h) => self.hists[h].buckets.iter().sum(),
            };
            match s.kind {
                Kind::CountMilli | Kind::GaugeMilli(_) | Kind::Sum(_) => {
                    let _ = writeln!(text, "{}.{:03}", v / 1000, v % 1000);
                }
                _ => {
                    let _ = writeln!(text, "{v}");
                }
            }
        }
        self.body = text.into_bytes();
        &self.body
    }
}

/// Serves the exposition until killed.
pub fn serve(opts: &Opts) -> Result<(), String> {
    let expo = Exposition::new(opts.series);
    eprintln!("synth: serving {} samples per scrape", expo.samples());
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let log = match &opts.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("opening {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let shared = Arc::new(Mutex::new((expo, log)));
    write_port(opts, port)?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = handle(conn, &shared);
        });
    }
    Ok(())
}

type Shared = Mutex<(Exposition, Option<std::fs::File>)>;

fn handle(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("");
        if path.starts_with("/metrics") {
            let mut guard = shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (expo, log) = &mut *guard;
            if let Some(log) = log {
                let ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                writeln!(log, "{ms}")?;
            }
            let body = expo.scrape();
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            out.write_all(body)?;
        } else {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        }
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_one_hundred_with_coherent_histograms() {
        let mut e = Exposition::new(1000);
        assert_eq!(e.samples(), 1000);
        let body = String::from_utf8(e.scrape().to_vec()).unwrap();
        let samples: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 1000);
        let inf: Vec<u64> = samples
            .iter()
            .filter(|l| l.contains("le=\"+Inf\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        let count: Vec<u64> = samples
            .iter()
            .filter(|l| l.starts_with("http_request_duration_seconds_count"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(inf, count);
        let second = String::from_utf8(e.scrape().to_vec()).unwrap();
        assert_ne!(body, second, "values change on every scrape");
    }
}
