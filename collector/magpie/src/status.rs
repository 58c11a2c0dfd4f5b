//! The status page on `/`: plain server-rendered HTML for an operator looking at one device.
//! Targets, the WAL ring, exporters and plugins, from the same state `/metrics` shows. No
//! scripts; the page refreshes itself every 10 s.

use crate::telemetry::{Telemetry, resident_bytes};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Escapes text for HTML element content and attribute values.
fn h(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// "4.2 s ago", "3 min ago", "never".
fn ago(now: i64, then_ms: i64) -> String {
    if then_ms <= 0 {
        return "never".into();
    }
    age(now.saturating_sub(then_ms)) + " ago"
}

#[allow(clippy::cast_precision_loss)]
fn age(ms: i64) -> String {
    let s = ms.max(0) as f64 / 1000.0;
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[allow(clippy::cast_precision_loss)]
fn bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.up{color:#080;font-weight:bold}td.down{color:#b00;font-weight:bold}\
.err{color:#b00;max-width:40em;word-break:break-word}.num{text-align:right}";

/// Renders the page.
#[allow(clippy::too_many_lines, clippy::cast_precision_loss)]
pub(crate) fn page(t: &Telemetry) -> String {
    let now = now_ms();
    let mut o = String::with_capacity(8192);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"10\"><title>magpie</title><style>{STYLE}</style></head><body>\
<h1>magpie {}</h1><p>",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(rss) = resident_bytes() {
        let _ = write!(o, "Resident memory {}. ", bytes(rss));
    }
    if let Some(why) = t
        .clock_wait
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_deref()
    {
        let _ = write!(o, "<p class=\"err\" id=\"clock\">{}</p><p>", h(why));
    }
    if let crate::health::Verdict::Unhealthy { cause } = t.health() {
        let _ = write!(
            o,
            "<p class=\"err\" id=\"health\">Unhealthy: {}</p><p>",
            h(&cause)
        );
    }
    o.push_str(
        "<a href=\"/metrics\">/metrics</a> · <a href=\"/-/healthy\">/-/healthy</a> · \
<a href=\"/-/ready\">/-/ready</a></p>",
    );

    o.push_str("<h2>Targets</h2><table id=\"targets\"><tr><th>job</th><th>target</th><th>state</th><th>last scrape</th><th>duration</th><th>samples</th><th>error</th></tr>");
    {
        let targets = t
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if targets.is_empty() {
            o.push_str("<tr><td colspan=\"7\">no scrapes yet</td></tr>");
        }
        for ((job, instance), s) in targets.iter() {
            let (class, state) = if s.up { ("up", "up") } else { ("down", "down") };
            let _ = write!(
                o,
                "<tr class=\"target {class}\"><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td class=\"num\">{:.3} s</td><td class=\"num\">{}</td><td class=\"err\">{}</td></tr>",
                h(job),
                h(instance),
                ago(now, s.last_scrape_ms),
                s.duration.as_secs_f64(),
                s.samples,
                h(s.error.as_deref().unwrap_or(""))
            );
        }
    }
    o.push_str("</table>");

    let wal = t.wal_stats();
    o.push_str("<h2>WAL</h2>");
    match &wal {
        Some(w) => {
            let fill = if w.max_bytes > 0 {
                w.bytes_on_disk as f64 * 100.0 / w.max_bytes as f64
            } else {
                0.0
            };
            let _ = write!(
                o,
                "<table id=\"wal\"><tr><th>fill</th><td class=\"num\">{fill:.1} % ({} of {})</td></tr>\
<tr><th>segments</th><td class=\"num\">{}</td></tr>\
<tr><th>samples held</th><td class=\"num\">{}</td></tr>\
<tr><th>oldest sample</th><td>{}</td></tr>\
<tr><th>segments dropped</th><td class=\"num\">{}</td></tr>\
<tr><th>samples refused (disk full)</th><td class=\"num\">{}</td></tr>\
<tr><th>unsynced data</th><td>{}</td></tr></table>",
                bytes(w.bytes_on_disk),
                bytes(w.max_bytes),
                w.segments,
                w.samples_in_ring,
                w.oldest_sample_ms.map_or("none".into(), |ms| ago(now, ms)),
                w.segments_dropped,
                w.samples_rejected,
                if w.unsynced { "yes" } else { "no" },
            );
        }
        None => o.push_str("<p>not open yet</p>"),
    }

    o.push_str("<h2>Exporters</h2><table id=\"exporters\"><tr><th>exporter</th><th>backlog</th><th>oldest undelivered</th><th>sent</th><th>retries</th><th>failed sends</th><th>rejected</th><th>dropped by the ring</th><th>last delivery</th><th>last error</th></tr>");
    {
        let exporters = t
            .exporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if exporters.is_empty() {
            o.push_str("<tr><td colspan=\"10\">none configured</td></tr>");
        }
        for (name, s) in exporters.iter() {
            let c = wal
                .as_ref()
                .and_then(|w| w.consumers.iter().find(|c| &c.name == name));
            let last_error = s
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"err\">{}</td></tr>",
                h(name),
                c.map_or(0, |c| c.backlog_samples),
                c.and_then(|c| c.oldest_unacked_ms)
                    .map_or("none".into(), |ms| age(now - ms)),
                s.sent.load(Ordering::Relaxed),
                s.retries.load(Ordering::Relaxed),
                s.failed_sends.load(Ordering::Relaxed),
                s.rejected.load(Ordering::Relaxed),
                c.map_or(0, |c| c.dropped_samples),
                ago(
                    now,
                    i64::try_from(s.last_success_ms.load(Ordering::Relaxed)).unwrap_or(0)
                ),
                last_error.map_or(String::new(), |(at, e)| format!(
                    "{} ({})",
                    h(&e),
                    ago(now, at)
                )),
            );
        }
    }
    o.push_str("</table>");

    o.push_str("<h2>Plugins</h2><table id=\"plugins\"><tr><th>plugin instance</th><th>calls</th><th>traps</th><th>timeouts</th><th>memory limit hits</th><th>ABI errors</th><th>reported failures</th><th>restarts</th><th>state</th></tr>");
    {
        let plugins = t
            .plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, s) in plugins.iter() {
            let q = s.quarantined.load(Ordering::Relaxed);
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td></tr>",
                h(name),
                s.calls.load(Ordering::Relaxed),
                s.traps.load(Ordering::Relaxed),
                s.timeouts.load(Ordering::Relaxed),
                s.memory_limits.load(Ordering::Relaxed),
                s.abi_errors.load(Ordering::Relaxed),
                s.failures.load(Ordering::Relaxed),
                s.restarts.load(Ordering::Relaxed),
                if q { "down" } else { "up" },
                if q { "quarantined" } else { "running" },
            );
        }
    }
    o.push_str("</table></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TargetState;
    use std::time::Duration;

    #[test]
    fn targets_show_their_state_and_errors_escaped() {
        let t = Telemetry::default();
        t.record_scrape(
            "node",
            "127.0.0.1:9100",
            TargetState {
                up: false,
                last_scrape_ms: now_ms() - 2000,
                duration: Duration::from_millis(12),
                samples: 0,
                error: Some("connection refused <b>".into()),
            },
            true,
        );
        t.record_scrape(
            "node",
            "127.0.0.1:9101",
            TargetState {
                up: true,
                last_scrape_ms: now_ms(),
                duration: Duration::from_millis(3),
                samples: 42,
                error: None,
            },
            true,
        );
        let p = page(&t);
        assert!(p.contains("<tr class=\"target down\"><td>node</td><td>127.0.0.1:9100</td><td class=\"down\">down</td><td>2."), "{p}");
        assert!(p.contains("connection refused &lt;b&gt;"), "{p}");
        assert!(p.contains("<td class=\"up\">up</td>"), "{p}");
        assert!(p.contains("<td class=\"num\">42</td>"), "{p}");
        assert!(p.contains("<p>not open yet</p>"), "{p}");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(4_200), "4.2 s");
        assert_eq!(age(600_000), "10 min");
        assert_eq!(age(3 * 3_600_000), "3.0 h");
        assert_eq!(ago(10, 0), "never");
    }
}
