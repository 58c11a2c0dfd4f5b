//! Influx line protocol end to end with the real binary: curl pushes Telegraf-style bodies to
//! `/write` (nanosecond timestamps) and `/api/v2/write?precision=s`, and they reach a real
//! Prometheus receiver with names, labels, values and timestamps exact; garbage, truncated and
//! oversized bodies are refused whole with the line at fault in the answer; and
//! `mosquitto_pub` publishes Telegraf mqtt-output payloads to a real Mosquitto. Last, the
//! per-source `max_messages_per_second`: HTTP answers 429 with `Retry-After`, MQTT slows down
//! and loses nothing.

mod common;

use common::{Magpie, Stored, plugin_dir, publish, read_wal};
use magpie_testkit::{Mosquitto, Prometheus, sample_value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A series' labels and its points, as the receiver must hold them.
type Expected<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn config(dir: &Path, pd: &Path, body: &str) -> PathBuf {
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n{body}",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// `curl -X POST` with a body; returns the status and the answer's body.
fn post(url: &str, body: &[u8]) -> (u16, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST", "--data-binary"])
        .arg(format!("@{}", f.path().display()))
        .args(["-H", "Content-Type: text/plain; charset=utf-8", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    v.sort();
    v
}

fn points(wal: &[Stored], labels: &[(&str, &str)]) -> Vec<(i64, f64)> {
    let want = sorted(labels);
    wal.iter()
        .filter(|(l, _, _)| *l == want)
        .map(|(_, t, v)| (*t, *v))
        .collect()
}

#[test]
fn telegraf_bodies_on_write_and_api_v2_write_reach_prometheus_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(
        dir.path(),
        &["prom-text", "remote-write-in", "influx", "remote-write"],
    );
    let prom = Prometheus::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // No [ingest.decoders]: `/write` and `/api/v2/write` get the influx decoder by default.
    let cfg = config(
        dir.path(),
        &pd,
        &format!(
            "[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"500ms\"\n\
             [[ingest]]\nname = \"telegraf\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = \"64KiB\"\n",
            prom.write_url()
        ),
    );
    let m = Magpie::start(&cfg);
    let t0 = (now_ms() - 10_000) / 1000 * 1000;
    let ns = i128::from(t0) * 1_000_000 + 123_456; // sub-millisecond digits round down

    // What Telegraf's influxdb output sends (v1 API, nanoseconds).
    let v1 = format!(
        "cpu,cpu=cpu-total,host=gw-1 usage_idle=97.5,usage_user=1.25 {ns}\n\
         mem,host=gw-1 available=123456789i,available_percent=45.5 {ns}\n\
         system,host=gw-1 uptime=3600u,load1=0.5,n_cpus=4i {ns}\n\
         system,host=gw-1 uptime_format=\" 1:00\" {ns}\n\
         net,host=gw-1,interface=eth0 up=true,err_in=0i {ns}\n\
         disk,host=gw-1,path=/mnt/my\\ disk,opts=rw\\,noatime used_percent=12.5 {ns}\n\
         room_temp,sensor=a value=21.5 {ns}\n"
    );
    let (status, body) = post(&format!("{base}/write?db=telegraf"), v1.as_bytes());
    assert_eq!(status, 204, "{body}");
    // InfluxDB 2.x clients: seconds, as the query says.
    let secs = t0 / 1000 + 1;
    let v2 = format!("cpu,cpu=cpu0,host=gw-1 usage_idle=99 {secs}\n");
    let (status, body) = post(
        &format!("{base}/api/v2/write?org=o&bucket=b&precision=s"),
        v2.as_bytes(),
    );
    assert_eq!(status, 204, "{body}");

    // Refused whole, with the line at fault in the answer.
    let (status, body) = post(
        &format!("{base}/write"),
        b"refused_ok f=1\nthis is not line protocol\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("line 2, column 8") && body.contains("`this is not line protocol`"),
        "{body}"
    );
    let (status, body) = post(
        &format!("{base}/api/v2/write?precision=s"),
        format!("refused_ok f=1 {secs}\nrefused_cut,host=gw-1 usage_id").as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line 2, column 31"), "{body}");
    let (status, body) = post(
        &format!("{base}/write?precision=fortnight"),
        b"refused_ok f=1\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("precision `fortnight`"), "{body}");
    let mut big = String::new();
    for i in 0..3000 {
        let _ = writeln!(big, "refused_big,host=gw-1,i={i} f=1");
    }
    let (status, body) = post(&format!("{base}/write"), big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_body_bytes"), "{body}");

    let metrics = m.wait_for("magpie_ingest_messages_total{source=\"telegraf\"}", 2.0);
    assert_eq!(
        sample_value(&metrics, "magpie_ingest_samples_total{source=\"telegraf\"}"),
        Some(12.0),
        "{metrics}"
    );
    assert_eq!(
        sample_value(
            &metrics,
            "magpie_ingest_rejects_total{source=\"telegraf\",reason=\"malformed\"}"
        ),
        Some(3.0),
        "{metrics}"
    );

    let gw = ("host", "gw-1");
    let t = t0;
    let expect: Vec<Expected<'_>> = vec![
        (
            vec![("__name__", "cpu_usage_idle"), ("cpu", "cpu-total"), gw],
            vec![(t, 97.5)],
        ),
        (
            vec![("__name__", "cpu_usage_user"), ("cpu", "cpu-total"), gw],
            vec![(t, 1.25)],
        ),
        (
            vec![("__name__", "mem_available"), gw],
            vec![(t, 123_456_789.0)],
        ),
        (
            vec![("__name__", "mem_available_percent"), gw],
            vec![(t, 45.5)],
        ),
        (vec![("__name__", "system_uptime"), gw], vec![(t, 3600.0)]),
        (vec![("__name__", "system_load1"), gw], vec![(t, 0.5)]),
        (vec![("__name__", "system_n_cpus"), gw], vec![(t, 4.0)]),
        (
            vec![("__name__", "net_up"), gw, ("interface", "eth0")],
            vec![(t, 1.0)],
        ),
        (
            vec![("__name__", "net_err_in"), gw, ("interface", "eth0")],
            vec![(t, 0.0)],
        ),
        (
            vec![
                ("__name__", "disk_used_percent"),
                gw,
                ("path", "/mnt/my disk"),
                ("opts", "rw,noatime"),
            ],
            vec![(t, 12.5)],
        ),
        (
            vec![("__name__", "room_temp"), ("sensor", "a")],
            vec![(t, 21.5)],
        ),
        (
            vec![("__name__", "cpu_usage_idle"), ("cpu", "cpu0"), gw],
            vec![(secs * 1000, 99.0)],
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_value(
        &m.metrics(),
        "magpie_exporter_backlog_samples{exporter=\"central\"}",
    ) != Some(0.0)
    {
        assert!(Instant::now() < deadline, "backlog did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (labels, want) in &expect {
        let selector = format!(
            "{{{}}}",
            labels
                .iter()
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let got = prom.samples(&selector, "1h");
        assert_eq!(got.len(), 1, "{selector}: {got:?}");
        assert_eq!(got[0].0, sorted(labels), "{selector}");
        assert_eq!(&got[0].1, want, "{selector}");
    }
    assert!(prom.samples("{__name__=~\"refused_.*\"}", "1h").is_empty());
    assert!(
        prom.samples("{__name__=~\"system_uptime_format.*\"}", "1h")
            .is_empty()
    );
    assert!(m.terminate().success());
}

#[test]
fn telegraf_mqtt_output_payloads_are_decoded_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["influx"]);
    let broker = Mosquitto::start();
    let cfg = config(
        dir.path(),
        &pd,
        &format!(
            "[[ingest]]\nname = \"telegraf\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"telegraf/#\"]\nqos = 1\nplugin = \"influx\"\n",
            broker.url()
        ),
    );
    let m = Magpie::start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        publish(&broker, "telegraf/probe", "probe f=1");
        std::thread::sleep(Duration::from_millis(200));
        if sample_value(
            &m.metrics(),
            "magpie_ingest_messages_total{source=\"telegraf\"}",
        )
        .is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    let t0 = (now_ms() - 10_000) / 1000 * 1000;
    // Telegraf's mqtt output: topic `telegraf/<host>/<plugin>`, nanosecond timestamps, one
    // metric per message or a batch of lines.
    publish(
        &broker,
        "telegraf/gw-1/cpu",
        &format!("cpu,cpu=cpu0,host=gw-1 usage_idle=98.5,usage_system=0.75 {t0}000000"),
    );
    publish(
        &broker,
        "telegraf/gw-1/sensors",
        &format!(
            "sensors,chip=coretemp,feature=core_0 temp_input=41,temp_crit=100i {0}000000\n\
             sensors,chip=coretemp,feature=core_1 temp_input=43.5 {0}000000\n",
            t0
        ),
    );
    publish(
        &broker,
        "telegraf/gw-1/broken",
        "broken_ok f=1\nbroken,host=gw-1 f=\"unterminated\n",
    );
    m.wait_for(
        "magpie_ingest_rejects_total{source=\"telegraf\",reason=\"malformed\"}",
        1.0,
    );
    m.wait_for("magpie_ingest_samples_total{source=\"telegraf\"}", 6.0);
    // The log is read from the child's stderr by a thread: it may lag the counter.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(m.log_text().contains("telegraf/gw-1/broken")
        && m.log_text().contains("line 2, column 20"))
    {
        assert!(
            Instant::now() < deadline,
            "the reject is logged with its topic and line:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(m.terminate().success());

    let wal = read_wal(&dir.path().join("data/wal"));
    let job = ("job", "telegraf");
    for (labels, want) in [
        (
            vec![
                ("__name__", "cpu_usage_idle"),
                ("cpu", "cpu0"),
                ("host", "gw-1"),
                job,
            ],
            98.5,
        ),
        (
            vec![
                ("__name__", "cpu_usage_system"),
                ("cpu", "cpu0"),
                ("host", "gw-1"),
                job,
            ],
            0.75,
        ),
        (
            vec![
                ("__name__", "sensors_temp_input"),
                ("chip", "coretemp"),
                ("feature", "core_0"),
                job,
            ],
            41.0,
        ),
        (
            vec![
                ("__name__", "sensors_temp_crit"),
                ("chip", "coretemp"),
                ("feature", "core_0"),
                job,
            ],
            100.0,
        ),
        (
            vec![
                ("__name__", "sensors_temp_input"),
                ("chip", "coretemp"),
                ("feature", "core_1"),
                job,
            ],
            43.5,
        ),
    ] {
        assert_eq!(
            points(&wal, &labels),
            vec![(t0, want)],
            "{labels:?}: {wal:?}"
        );
    }
    assert!(
        !wal.iter()
            .any(|(l, _, _)| l.iter().any(|(_, v)| v.starts_with("broken"))),
        "a refused payload left samples: {wal:?}"
    );
}

#[test]
fn max_messages_per_second_answers_429_over_http_and_slows_mqtt_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["influx"]);
    let broker = Mosquitto::start();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &pd,
        &format!(
            "[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nmax_messages_per_second = 2\n\
             [ingest.decoders]\ninflux = \"influx\"\n\
             [[ingest]]\nname = \"mq\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"telegraf/#\"]\nqos = 1\nplugin = \"influx\"\nmax_messages_per_second = 2\n",
            broker.url()
        ),
    );
    let m = Magpie::start(&cfg);

    // HTTP: a burst of 8; the bucket holds 2 and refills at 2/s.
    let mut accepted = Vec::new();
    let mut limited = 0;
    for i in 0..8 {
        let headers = tempfile::NamedTempFile::new().unwrap();
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-D"])
            .arg(headers.path())
            .args(["--data-binary", &format!("burst,i={i} f=1")])
            .arg(format!("http://127.0.0.1:{port}/write"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        let head = std::fs::read_to_string(headers.path())
            .unwrap()
            .to_lowercase();
        match code.trim() {
            "204" => accepted.push(i.to_string()),
            "429" => {
                limited += 1;
                assert!(body.contains("max_messages_per_second 2"), "{body}");
                let retry = head
                    .lines()
                    .find_map(|l| l.strip_prefix("retry-after:"))
                    .unwrap_or_else(|| panic!("no Retry-After: {head}"));
                assert_eq!(retry.trim(), "1", "{head}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(limited > 0, "a burst of 8 at 2/s was never refused");
    assert!(accepted.len() >= 2, "{accepted:?}");
    let metrics = m.metrics();
    assert_eq!(
        sample_value(
            &metrics,
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"rate_limited\"}"
        ),
        Some(f64::from(limited)),
        "{metrics}"
    );

    // MQTT: 10 messages published at once arrive at 2/s, all of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        publish(&broker, "telegraf/probe", "probe f=1");
        std::thread::sleep(Duration::from_millis(500));
        if sample_value(&m.metrics(), "magpie_ingest_messages_total{source=\"mq\"}").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    // Probes in flight settle; then count from here.
    std::thread::sleep(Duration::from_secs(1));
    let before = sample_value(&m.metrics(), "magpie_ingest_messages_total{source=\"mq\"}").unwrap();
    for i in 0..10 {
        publish(&broker, "telegraf/gw-1/seq", &format!("seq,i={i} f={i}"));
    }
    m.wait_for("magpie_ingest_messages_total{source=\"mq\"}", before + 10.0);
    assert!(m.terminate().success());
    let wal = read_wal(&dir.path().join("data/wal"));
    for i in 0..10 {
        let v = i.to_string();
        assert_eq!(
            points(&wal, &[("__name__", "seq_f"), ("i", &v), ("job", "mq")]).len(),
            1,
            "seq {i}"
        );
    }
    for i in &accepted {
        assert_eq!(
            points(&wal, &[("__name__", "burst_f"), ("i", i)]).len(),
            1,
            "burst {i}"
        );
    }
}
