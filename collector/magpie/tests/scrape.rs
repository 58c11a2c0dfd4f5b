//! Scraping end to end: the real binary, the prom-scrape plugin, real HTTP targets (a real
//! `prometheus-node-exporter` among them), samples read back from the WAL on disk.

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{Behavior, TargetServer, sample_value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const EXPOSITION: &str = "# HELP temp_celsius A temperature.\n# TYPE temp_celsius gauge\ntemp_celsius{room=\"a\"} 21.5\ntemp_celsius{room=\"b\"} 19\n# TYPE door_opens_total counter\ndoor_opens_total 7 1700000000000\n";

fn config(
    dir: &Path,
    plugins: &Path,
    job: &str,
    targets: &[String],
    extra: &str,
) -> std::path::PathBuf {
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"{job}\"\nplugin = \"prom-scrape\"\ninterval = \"1s\"\ntimeout = \"800ms\"\ntargets = [{}]\n{extra}",
            plugins.display(),
            dir.join("data").display(),
            list.join(", ")
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn misbehaving_targets_are_down_and_the_others_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let good = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let bad: Vec<(&str, TargetServer)> = [
        ("garbage", Behavior::Garbage),
        ("endless", Behavior::Endless),
        ("hang", Behavior::Hang),
        ("error", Behavior::Status(500)),
    ]
    .into_iter()
    .map(|(n, b)| (n, TargetServer::start(vec![("/metrics".into(), b)])))
    .collect();
    let mut targets = vec![good.url("/metrics")];
    targets.extend(bad.iter().map(|(_, s)| s.url("/metrics")));
    let cfg = config(
        dir.path(),
        &pd,
        "mixed",
        &targets,
        "body_size_limit = \"1MiB\"\n",
    );
    let m = Magpie::start(&cfg);
    let body = m.wait_for("magpie_scrapes_total{job=\"mixed\"}", 20.0);
    let up = |addr: &str| {
        sample_value(
            &body,
            &format!("magpie_target_up{{job=\"mixed\",instance=\"{addr}\"}}"),
        )
    };
    assert_eq!(up(good.addr()), Some(1.0), "{body}");
    for (name, s) in &bad {
        assert_eq!(up(s.addr()), Some(0.0), "{name}: {body}");
    }
    let log = m.log_text();
    for (name, s) in &bad {
        let line = log
            .lines()
            .find(|l| l.contains("scrape failed") && l.contains(&s.url("/metrics")));
        assert!(line.is_some(), "no log line for the {name} target:\n{log}");
    }
    // A target that hangs is the target's failure, not the plugin's: no fault, no restart.
    assert!(
        !log.contains("wall time limit") && !log.contains("restarting after a fault"),
        "{log}"
    );
    assert!(
        log.contains("HTTP status 500") || log.contains("500"),
        "{log}"
    );
    assert!(m.terminate().success());

    let samples = read_wal(&dir.path().join("data/wal"));
    let ups = |addr: &str| -> Vec<f64> {
        samples
            .iter()
            .filter(|(l, _, _)| {
                label(l, "__name__") == Some("up") && label(l, "instance") == Some(addr)
            })
            .map(|(_, _, v)| *v)
            .collect()
    };
    let good_ups = ups(good.addr());
    assert!(
        good_ups.len() >= 3 && good_ups.iter().all(|v| *v == 1.0),
        "{good_ups:?}"
    );
    for (name, s) in &bad {
        let v = ups(s.addr());
        assert!(
            !v.is_empty() && v.iter().all(|v| *v == 0.0),
            "{name}: {v:?}"
        );
    }
    // The good target's samples arrive with target labels and exposition timestamps kept.
    let door: Vec<_> = samples
        .iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("door_opens_total"))
        .collect();
    assert!(!door.is_empty());
    assert!(
        door.iter().all(|(l, t, v)| *t == 1_700_000_000_000
            && *v == 7.0
            && label(l, "job") == Some("mixed"))
    );
    let rooms: BTreeSet<_> = samples
        .iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("temp_celsius"))
        .filter_map(|(l, _, _)| label(l, "room"))
        .collect();
    assert_eq!(rooms, BTreeSet::from(["a", "b"]));
}

struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_exporter() -> (Exporter, String) {
    let bin = std::env::var("NODE_EXPORTER_BIN")
        .unwrap_or_else(|_| "/usr/bin/prometheus-node-exporter".into());
    assert!(
        Path::new(&bin).exists(),
        "{bin} is missing: install Debian's prometheus-node-exporter (ci/setup.sh does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .args([
            "--collector.disable-defaults",
            "--collector.meminfo",
            "--collector.uname",
            "--collector.netdev",
            "--collector.cpu",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let exporter = Exporter(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while magpie_testkit::http_get(&addr, "/metrics").is_err() {
        assert!(
            Instant::now() < deadline,
            "node_exporter did not come up on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (exporter, addr)
}

/// Series identities of an exposition: sorted `name{labels}` strings, through the same
/// parser library the plugin is built from.
fn series_of(exposition: &str) -> BTreeSet<String> {
    struct Names(BTreeSet<String>);
    impl prom_scrape::Sink for Names {
        fn sample(
            &mut self,
            name: &str,
            labels: &[(&str, &str)],
            _v: f64,
            _t: Option<i64>,
        ) -> Result<(), prom_scrape::SinkError> {
            let mut l: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
            l.sort();
            self.0.insert(format!("{name}{{{}}}", l.join(",")));
            Ok(())
        }
    }
    let mut names = Names(BTreeSet::new());
    prom_scrape::parse_slice(
        exposition.as_bytes(),
        prom_scrape::ParseOptions::new(prom_scrape::Format::PrometheusText),
        &mut names,
    )
    .unwrap();
    names.0
}

#[test]
fn a_real_node_exporter_is_scraped_whole() {
    let (_exporter, addr) = node_exporter();
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let cfg = config(
        dir.path(),
        &pd,
        "node",
        &[format!("http://{addr}/metrics")],
        "",
    );
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrapes_total{job=\"node\"}", 3.0);
    assert!(m.terminate().success());
    let (_, text) = magpie_testkit::http_get(&addr, "/metrics").unwrap();
    let expected = series_of(&text);

    let samples = read_wal(&dir.path().join("data/wal"));
    let last = samples
        .iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("up"))
        .map(|(_, t, _)| *t)
        .max()
        .unwrap();
    let synthetic = [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ];
    let got: BTreeSet<String> = samples
        .iter()
        .filter(|(l, t, v)| {
            *t == last && !v.is_nan() && !synthetic.contains(&label(l, "__name__").unwrap())
        })
        .map(|(l, _, _)| {
            assert_eq!(label(l, "job"), Some("node"));
            assert_eq!(label(l, "instance"), Some(addr.as_str()));
            let mut rest: Vec<String> = l
                .iter()
                .filter(|(n, _)| !["__name__", "job", "instance"].contains(&n.as_str()))
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            rest.sort();
            format!("{}{{{}}}", label(l, "__name__").unwrap(), rest.join(","))
        })
        .collect();
    assert!(expected.len() > 50, "{expected:?}");
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    // A value that does not move between scrapes arrives exactly.
    let memtotal = |text: &str| sample_value(text, "node_memory_MemTotal_bytes");
    let stored = samples
        .iter()
        .find(|(l, t, _)| *t == last && label(l, "__name__") == Some("node_memory_MemTotal_bytes"))
        .map(|(_, _, v)| *v);
    assert_eq!(stored, memtotal(&text));
}

#[test]
fn file_sd_targets_come_and_go_and_relabel_rules_apply() {
    let exposition = || Behavior::Serve {
        content_type: "text/plain; version=0.0.4".into(),
        body: EXPOSITION.into(),
    };
    let first = TargetServer::start(vec![("/metrics".into(), exposition())]);
    let second = TargetServer::start(vec![("/metrics".into(), exposition())]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(
            "[{{\"targets\": [\"{}\"], \"labels\": {{\"rack\": \"r1\"}}}}]",
            first.addr()
        ),
    )
    .unwrap();
    let extra = "[[scrape.file_sd_configs]]\nfiles = [\"targets.json\"]\nrefresh_interval = \"200ms\"\n[[scrape.metric_relabel_configs]]\nsource_labels = [\"__name__\"]\nregex = \"door_.*\"\naction = \"drop\"\n";
    let cfg = config(dir.path(), &pd, "sd", &[], extra);
    let m = Magpie::start(&cfg);
    let up = |addr: &str| format!("magpie_target_up{{job=\"sd\",instance=\"{addr}\"}}");
    m.wait_for(&up(first.addr()), 1.0);
    std::fs::write(
        &sd,
        format!(
            "[{{\"targets\": [\"{}\", \"{}\"], \"labels\": {{\"rack\": \"r1\"}}}}]",
            first.addr(),
            second.addr()
        ),
    )
    .unwrap();
    m.wait_for(&up(second.addr()), 1.0);
    assert!(m.terminate().success());

    let samples = read_wal(&dir.path().join("data/wal"));
    let temps: Vec<_> = samples
        .iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("temp_celsius"))
        .collect();
    let instances: BTreeSet<_> = temps
        .iter()
        .filter_map(|(l, _, _)| label(l, "instance"))
        .collect();
    assert_eq!(instances, BTreeSet::from([first.addr(), second.addr()]));
    assert!(
        temps
            .iter()
            .all(|(l, _, _)| label(l, "rack") == Some("r1") && label(l, "job") == Some("sd"))
    );
    assert!(
        samples
            .iter()
            .all(|(l, _, _)| label(l, "__name__") != Some("door_opens_total")),
        "a dropped series reached the WAL"
    );
}

#[test]
fn vanished_series_and_a_down_target_get_staleness_markers() {
    const STALE: u64 = 0x7ff0_0000_0000_0002;
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, "a_total 1\nb_total 2\n").unwrap();
    let target = TargetServer::start(vec![("/metrics".into(), Behavior::File(page.clone()))]);
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let cfg = config(dir.path(), &pd, "st", &[target.url("/metrics")], "");
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrapes_total{job=\"st\"}", 2.0);
    std::fs::write(&page, "a_total 1\n").unwrap();
    let before = sample_value(&m.metrics(), "magpie_scrapes_total{job=\"st\"}").unwrap();
    m.wait_for("magpie_scrapes_total{job=\"st\"}", before + 2.0);
    std::fs::remove_file(&page).unwrap();
    m.wait_for("magpie_scrape_failures_total{job=\"st\"}", 1.0);
    assert!(m.terminate().success());

    let samples = read_wal(&dir.path().join("data/wal"));
    let series = |name: &str| -> Vec<(i64, u64)> {
        samples
            .iter()
            .filter(|(l, _, _)| label(l, "__name__") == Some(name))
            .map(|(_, t, v)| (*t, v.to_bits()))
            .collect()
    };
    // b vanished from the page: its last sample is a staleness marker, written once.
    let b = series("b_total");
    assert_eq!(b.last().map(|x| x.1), Some(STALE), "{b:?}");
    assert_eq!(b.iter().filter(|x| x.1 == STALE).count(), 1, "{b:?}");
    assert!(b.iter().rev().skip(1).all(|x| x.1 == 2f64.to_bits()));
    // The target went down: a, still present until then, is marked stale too, and up is 0.
    let a = series("a_total");
    assert_eq!(a.last().map(|x| x.1), Some(STALE), "{a:?}");
    let up = series("up");
    assert_eq!(up.last().map(|x| f64::from_bits(x.1)), Some(0.0));
    assert_eq!(
        a.last().map(|x| x.0),
        up.iter().find(|x| f64::from_bits(x.1) == 0.0).map(|x| x.0)
    );
}

/// Scrapes after the first send each line whose series text did not move as a repeat of the
/// last scrape's series at its position: every value must still land on its own series, as
/// lines keep, change and shift their series between scrapes.
#[test]
fn values_land_on_their_series_as_lines_change_and_move() {
    values_land_on_their_series(
        "page.txt",
        [
            "a_total{x=\"1\"} 1\nb_total 2\nc{y=\"q\"} 3\n",
            // Kept; a bare name now with labels; a label value of the same length.
            "a_total{x=\"1\"} 10\nb_total{z=\"9\"} 20\nc{y=\"r\"} 30\n",
            // Every line moves up one place; the first has the length of the old first.
            "b_total{z=\"9\"} 200\nc{y=\"r\"} 300\n",
        ],
    );
}

/// The same in OpenMetrics, where a line repeats only in the family it was read in last time:
/// `a` is a counter (its line continues the family its `TYPE` opened), the other lines open
/// families of their own.
#[test]
fn openmetrics_values_land_on_their_series_as_lines_change_and_move() {
    values_land_on_their_series(
        "page.om",
        [
            "# TYPE a counter\na_total{x=\"1\"} 1\nb_total 2\nc{y=\"q\"} 3\n# EOF\n",
            "# TYPE a counter\na_total{x=\"1\"} 10\nb_total{z=\"9\"} 20\nc{y=\"r\"} 30\n# EOF\n",
            "b_total{z=\"9\"} 200\nc{y=\"r\"} 300\n# EOF\n",
        ],
    );
}

/// Serves `pages` in turn from a file named `file` (its extension picks the format), each
/// for at least three scrapes, and checks where every value landed in the WAL.
fn values_land_on_their_series(file: &str, pages: [&str; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(file);
    std::fs::write(&page, pages[0]).unwrap();
    let target = TargetServer::start(vec![("/metrics".into(), Behavior::File(page.clone()))]);
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let cfg = config(dir.path(), &pd, "mv", &[target.url("/metrics")], "");
    let m = Magpie::start(&cfg);
    let mut scrapes = 0.0;
    for p in pages {
        std::fs::write(&page, p).unwrap();
        // The page may change under a scrape: skip one, then take three of this page.
        scrapes += 4.0;
        m.wait_for("magpie_scrapes_total{job=\"mv\"}", scrapes);
    }
    assert!(m.terminate().success());
    let samples = read_wal(&dir.path().join("data/wal"));
    let values = |series: &str| -> Vec<f64> {
        (samples.iter())
            .filter(|(l, _, _)| {
                let mut s = label(l, "__name__").unwrap_or_default().to_string();
                let mut pairs: Vec<String> = (l.iter())
                    .filter(|(n, _)| !["__name__", "job", "instance"].contains(&n.as_str()))
                    .map(|(n, v)| format!("{n}=\"{v}\""))
                    .collect();
                pairs.sort();
                if !pairs.is_empty() {
                    s = format!("{s}{{{}}}", pairs.join(","));
                }
                s == series
            })
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_nan())
            .collect()
    };
    let expect = [
        ("a_total{x=\"1\"}", &[1.0, 10.0][..]),
        ("b_total", &[2.0]),
        ("b_total{z=\"9\"}", &[20.0, 200.0]),
        ("c{y=\"q\"}", &[3.0]),
        ("c{y=\"r\"}", &[30.0, 300.0]),
    ];
    for (series, allowed) in expect {
        let got = values(series);
        // Each page was scraped at least twice whole.
        for v in allowed {
            assert!(
                got.iter().filter(|g| *g == v).count() >= 2,
                "{series}: {got:?}"
            );
        }
        assert!(got.iter().all(|g| allowed.contains(g)), "{series}: {got:?}");
        // A page's values never come back once the next page was served.
        let mut sorted = got.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(got, sorted, "{series}");
    }
}
