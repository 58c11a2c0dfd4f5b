//! The push ingest table of the status page, with the real binary: curl pushes to two HTTP
//! sources and `mosquitto_pub` publishes to a real Mosquitto with a login, then every figure
//! a source's row shows (messages, samples, refusals per reason, per decoder, the last
//! accepted time, the state) must equal what `/metrics` says, no secret may appear, and an
//! MQTT source whose broker goes away shows `reconnecting` with the error, then `connected`.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Mosquitto, MosquittoOptions, http_get, sample_value};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "tok-en-only-in-a-file-41";
const MQTT_PASSWORD: &str = "pass-word-only-in-a-file-97";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// `curl -X method` with a body and headers; returns the status code.
fn curl(method: &str, url: &str, headers: &[&str], body: &[u8]) -> u16 {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        .arg("--data-binary")
        .arg(format!("@{}", f.path().display()));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The `<tr>` of source `name` on the page.
fn row<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!("data-source=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name}:\n{page}"));
    let rest = &page[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// The value of attribute `attr` in the first tag that contains `marker`.
fn attr(html: &str, marker: &str, attr: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in\n{html}"));
    let tag_start = html[..at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let key = format!("{attr}=\"");
    let v = &tag[tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {tag}"))
        + key.len()..];
    v[..v.find('"').unwrap()].to_string()
}

/// A count in a row, by the marker of its element.
fn count(row: &str, marker: &str, name: &str) -> f64 {
    attr(row, marker, name).parse().unwrap()
}

/// The text of the first cell in `row` whose classes start with `class`.
fn cell<'a>(row: &'a str, class: &str) -> &'a str {
    let m = format!("<td class=\"{class}");
    let s = &row[row
        .find(&m)
        .unwrap_or_else(|| panic!("no {class} cell in\n{row}"))..];
    let s = &s[s.find('>').unwrap() + 1..];
    &s[..s.find("</td>").unwrap()]
}

fn metric(body: &str, series: &str) -> f64 {
    sample_value(body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

/// Checks that every figure of `name`'s row equals `/metrics`; returns the row.
fn row_equals_metrics(page: &str, metrics: &str, name: &str) -> String {
    let r = row(page, name).to_string();
    let src = format!("source=\"{name}\"");
    assert_eq!(
        count(&r, "class=\"num messages\"", "data-value"),
        metric(metrics, &format!("magpie_ingest_messages_total{{{src}}}")),
        "{r}"
    );
    assert_eq!(
        count(&r, "class=\"num samples\"", "data-value"),
        metric(metrics, &format!("magpie_ingest_samples_total{{{src}}}")),
        "{r}"
    );
    // Every refusal reason on /metrics is on the page with the same count, and no other.
    let mut total = 0.0;
    let prefix = format!("magpie_ingest_rejects_total{{{src},reason=\"");
    for line in metrics.lines().filter(|l| l.starts_with(&prefix)) {
        let reason = &line[prefix.len()..line[prefix.len()..].find('"').unwrap() + prefix.len()];
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        total += n;
        assert_eq!(
            count(&r, &format!("data-reason=\"{reason}\""), "data-value"),
            n,
            "{reason}: {r}"
        );
    }
    assert_eq!(count(&r, "class=\"refused\"", "data-value"), total, "{r}");
    assert_eq!(
        r.matches("class=\"reject\"").count(),
        metrics.lines().filter(|l| l.starts_with(&prefix)).count(),
        "{r}"
    );
    // Each decoder's share.
    for rest in r.split("<span class=\"decoder\"").skip(1) {
        let span = &format!("<span class=\"decoder\"{rest}");
        let route = attr(span, "data-route", "data-route");
        let decoder = attr(span, "data-decoder", "data-decoder");
        let labels = format!("{src},route=\"{route}\",decoder=\"{decoder}\"");
        let on =
            |family: &str| sample_value(metrics, &format!("{family}{{{labels}}}")).unwrap_or(0.0);
        assert_eq!(
            count(span, "data-messages", "data-messages"),
            on("magpie_ingest_decoder_messages_total"),
            "{span}"
        );
        assert_eq!(
            count(span, "data-samples", "data-samples"),
            on("magpie_ingest_decoder_samples_total"),
            "{span}"
        );
    }
    // The last accepted message, to the millisecond.
    let last_ms = count(&r, "class=\"last\"", "data-ms");
    assert_eq!(
        last_ms / 1000.0,
        metric(
            metrics,
            &format!("magpie_ingest_last_accepted_timestamp_seconds{{{src}}}")
        ),
        "{r}"
    );
    // The state, and whether it counts as up.
    let state = cell(&r, "state").to_string();
    let up = state == "listening" || state == "connected";
    assert_eq!(
        metric(
            metrics,
            &format!("magpie_ingest_source_up{{{src},state=\"{state}\"}}")
        ),
        f64::from(u8::from(up)),
        "{r}"
    );
    r
}

#[test]
fn http_sources_show_the_figures_of_metrics_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in", "influx"]);
    let token = dir.path().join("lan.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let (lan, slow) = (free_port(), free_port());
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{lan}\"\nmax_body_bytes = \"1KiB\"\nbearer_token_file = \"{}\"\n\
             [[ingest]]\nname = \"slow\"\nsource = \"http\"\nlisten = \"127.0.0.1:{slow}\"\nmax_messages_per_second = 1\n",
            pd.display(),
            dir.path().join("data").display(),
            token.display(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    let lan_url = |p: &str| format!("http://127.0.0.1:{lan}{p}");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let auth = [auth.as_str()];
    // Before any push: listening, nothing taken, "never".
    let page = wait_state(&m, "lan", "listening");
    let r = row(&page, "lan");
    assert_eq!(cell(r, "state up"), "listening", "{r}");
    assert_eq!(cell(r, "last"), "never", "{r}");
    assert!(r.contains("HTTP on 127.0.0.1:"), "{r}");
    assert!(r.contains("bearer token required"), "{r}");

    assert_eq!(
        curl("PUT", &lan_url("/metrics/job/a"), &auth, b"x 1\ny 2\n"),
        200
    );
    assert_eq!(
        curl("POST", &lan_url("/metrics/job/b"), &auth, b"z 3\n"),
        200
    );
    assert_eq!(
        curl(
            "POST",
            &lan_url("/write"),
            &auth,
            b"cpu,host=a usage=1,idle=2\n"
        ),
        204
    );
    // Refused: no token, a body the decoder rejects, too large, a path nobody serves.
    assert_eq!(curl("PUT", &lan_url("/metrics/job/a"), &[], b"x 1\n"), 401);
    assert_eq!(
        curl("PUT", &lan_url("/metrics/job/a"), &auth, b"x{{{ 1\n"),
        400
    );
    assert_eq!(
        curl("PUT", &lan_url("/metrics/job/a"), &auth, &[b'#'; 2048]),
        413
    );
    assert_eq!(curl("POST", &lan_url("/graphite"), &auth, b"x 1"), 404);
    // One message per second, a burst of one: pushes back to back are refused until the
    // next second. Push until both answers were seen (a stalled machine may refill the bucket
    // between two pushes, so no fixed count is assumed).
    let mut codes: Vec<u16> = Vec::new();
    while codes.len() < 50 && !(codes.contains(&429) && codes.contains(&200)) {
        codes.push(curl(
            "PUT",
            &format!("http://127.0.0.1:{slow}/metrics/job/s"),
            &[],
            b"s 1\n",
        ));
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.contains(&200), "{codes:?}");

    let (_, page) = http_get(&m.addr, "/").unwrap();
    let metrics = m.metrics();
    let r = row_equals_metrics(&page, &metrics, "lan");
    // The figures themselves, so that equal cannot mean equally wrong.
    assert_eq!(
        count(&r, "class=\"num messages\"", "data-value"),
        3.0,
        "{r}"
    );
    assert_eq!(count(&r, "class=\"num samples\"", "data-value"), 5.0, "{r}");
    for (reason, n) in [
        ("unauthorized", 1.0),
        ("malformed", 1.0),
        ("too_large", 1.0),
        ("unsupported", 1.0),
    ] {
        assert_eq!(
            count(&r, &format!("data-reason=\"{reason}\""), "data-value"),
            n,
            "{reason}: {r}"
        );
    }
    assert!(
        r.contains(">pushgateway prom-text: 2 messages, 3 samples<"),
        "{r}"
    );
    assert!(r.contains(">influx influx: 1 messages, 2 samples<"), "{r}");
    assert!(
        r.contains(">remote_write remote-write-in: 0 messages, 0 samples<"),
        "{r}"
    );
    assert!(cell(&r, "last").ends_with(" ago"), "{r}");
    assert_eq!(cell(&r, "rate"), "none", "{r}");

    let s = row_equals_metrics(&page, &metrics, "slow");
    assert_eq!(cell(&s, "rate"), "1 messages/s, 429 beyond", "{s}");
    let limited = codes.iter().filter(|c| **c == 429).count() as f64;
    assert_eq!(
        count(&s, "data-reason=\"rate_limited\"", "data-value"),
        limited,
        "{s}"
    );
    assert!(!page.contains(TOKEN), "the token is on the page:\n{page}");
    assert!(m.terminate().success());
}

/// One QoS 1 message through `mosquitto_pub`, logged in.
fn publish(broker: &Mosquitto, topic: &str, payload: &str) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-u", "gw", "-P", MQTT_PASSWORD])
        .args(["-q", "1", "-t", topic, "-m", payload])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls the page until `name`'s state cell reads `state`; returns the page.
fn wait_state(m: &Magpie, name: &str, state: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = http_get(&m.addr, "/").unwrap();
        if row(&page, name).contains(&format!("\">{state}</td>")) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not {state}:\n{page}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_mqtt_source_shows_its_figures_and_its_reconnection() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["json"]);
    let mut broker = Mosquitto::start_with(&MosquittoOptions {
        user: Some(("gw".into(), MQTT_PASSWORD.into())),
        ..MosquittoOptions::default()
    });
    let pass = dir.path().join("mqtt.pass");
    std::fs::write(&pass, MQTT_PASSWORD).unwrap();
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[ingest]]\nname = \"plant\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"meters/+\", \"probe\"]\nqos = 1\nplugin = \"json\"\nmax_messages_per_second = 500\n\
             [ingest.basic_auth]\nusername = \"gw\"\npassword_file = \"{}\"\n[ingest.config]\nmetric_prefix = \"meter\"\n",
            pd.display(),
            dir.path().join("data").display(),
            broker.url(),
            pass.display(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    wait_state(&m, "plant", "connected");
    // Connected is not yet subscribed: probe until a message lands.
    let messages = "magpie_ingest_messages_total{source=\"plant\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_value(&m.metrics(), messages).is_none() {
        publish(&broker, "probe", "{\"probe\": 1}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    let probes = metric(&m.metrics(), messages);
    publish(&broker, "meters/m1", "{\"reading\": 1, \"volts\": 230}");
    publish(&broker, "meters/m2", "{\"reading\": 2}");
    publish(&broker, "meters/m2", "not json");
    m.wait_for(
        "magpie_ingest_rejects_total{source=\"plant\",reason=\"malformed\"}",
        1.0,
    );
    m.wait_for(messages, probes + 2.0);

    let (_, page) = http_get(&m.addr, "/").unwrap();
    let metrics = m.metrics();
    let r = row_equals_metrics(&page, &metrics, "plant");
    assert_eq!(
        count(&r, "class=\"num messages\"", "data-value"),
        probes + 2.0,
        "{r}"
    );
    assert_eq!(
        count(&r, "data-reason=\"malformed\"", "data-value"),
        1.0,
        "{r}"
    );
    assert!(
        r.contains(&format!(
            "MQTT mqtt://127.0.0.1:{} with a login, QoS 1: <code>meters/+</code> <code>probe</code>",
            broker.port()
        )),
        "{r}"
    );
    assert!(r.contains(">json: "), "{r}");
    assert_eq!(cell(&r, "rate"), "500 messages/s, waits beyond", "{r}");
    assert_eq!(cell(&r, "err"), "", "{r}");

    // The broker goes away: reconnecting, with the error, and /metrics agrees.
    broker.stop();
    let page = wait_state(&m, "plant", "reconnecting");
    let r = row_equals_metrics(&page, &m.metrics(), "plant");
    assert!(!cell(&r, "err").is_empty(), "{r}");
    assert!(cell(&r, "state down").contains("reconnecting"), "{r}");
    // And it comes back.
    broker.resume();
    let page = wait_state(&m, "plant", "connected");
    assert!(
        !page.contains(MQTT_PASSWORD),
        "the password is on the page:\n{page}"
    );
    assert!(m.terminate().success());
}
