//! The status page on `/`: plain server-rendered HTML for an operator looking at one device.
//! Targets, push ingest sources, the WAL ring, exporters and plugins, from the snapshot `/metrics` is drawn from,
//! with sparklines of the last hour ([`history`]). No scripts; the page refreshes itself every
//! 10 s.
//!
//! The crate reads snapshots only: [`observed`] holds what the collector observes about
//! itself as plain values, [`history`] keeps their recent past, and [`page`] renders a
//! [`observed::View`]. The binary gathers the values and serves the page, so neither the page
//! nor `/metrics` reaches into private state of the other.
//!
//! # Example
//! ```
//! use magpie_status::observed::View;
//! // An empty collector still gets a whole page, with its values escaped.
//! let html = magpie_status::page(&View::default());
//! assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
//! assert_eq!(magpie_status::h("<a&b>"), "&lt;a&amp;b&gt;");
//! ```

pub mod history;
mod ingest;
pub mod observed;
mod sparkline;

use crate::observed::{Series, View};
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn h(s: &str) -> String {
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
.err{color:#b00;max-width:40em;word-break:break-word}.num{text-align:right}\
.note{color:#555}td.hist{padding:.1em .4em;vertical-align:middle}\
svg.spark{display:block}svg.spark polyline{fill:none;stroke:#2a6ebb;stroke-width:1.2}\
svg.spark circle{fill:#2a6ebb}";

/// Renders the page.
#[allow(clippy::too_many_lines)]
pub fn page(v: &View) -> String {
    let now = v.now_ms;
    let hist = &v.history;
    let mut o = String::with_capacity(16384);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"10\"><title>magpie</title><style>{STYLE}</style></head><body>\
<h1>magpie {}</h1><p>",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(rss) = v.resident_bytes {
        let _ = write!(o, "Resident memory {}. ", bytes(rss));
    }
    if let Some(why) = &v.clock_wait {
        let _ = write!(o, "<p class=\"err\" id=\"clock\">{}</p><p>", h(why));
    }
    if let Some(cause) = &v.unhealthy {
        let _ = write!(
            o,
            "<p class=\"err\" id=\"health\">Unhealthy: {}</p><p>",
            h(cause)
        );
    }
    if let Some(fleet) = &v.fleet {
        let _ = write!(o, "<p id=\"fleet\">{}</p><p>", h(fleet));
    }
    o.push_str(
        "<a href=\"/metrics\">/metrics</a> · <a href=\"/-/healthy\">/-/healthy</a> · \
<a href=\"/-/ready\">/-/ready</a></p>",
    );
    let window = history_window(hist.step, hist.points);
    let _ = write!(
        o,
        "<p class=\"note\">Sparklines: the last {window}, a point every {}.</p>",
        age(i64::try_from(hist.step.as_millis()).unwrap_or(0))
    );

    o.push_str("<h2>Targets</h2><table id=\"targets\"><tr><th>job</th><th>target</th><th>state</th><th>last scrape</th><th>duration</th><th>samples</th><th>error</th><th>samples per scrape</th><th>scrape duration</th></tr>");
    if v.targets.is_empty() {
        o.push_str("<tr><td colspan=\"9\">no scrapes yet</td></tr>");
    }
    let empty = Series::default();
    for ((job, instance), s) in &v.targets {
        let (class, state) = if s.up { ("up", "up") } else { ("down", "down") };
        let (samples, duration) = hist
            .targets
            .iter()
            .find(|(k, _, _)| k.0 == *job && k.1 == *instance)
            .map_or((&empty, &empty), |(_, a, b)| (a, b));
        let _ = write!(
            o,
            "<tr class=\"target {class}\"><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td class=\"num\">{:.3} s</td><td class=\"num\">{}</td><td class=\"err\">{}</td><td class=\"hist samples\">{}</td><td class=\"hist duration\">{}</td></tr>",
            h(job),
            h(instance),
            ago(now, s.last_scrape_ms),
            s.duration.as_secs_f64(),
            s.samples,
            h(s.error.as_deref().unwrap_or("")),
            sparkline::svg(
                &format!("{instance} samples per scrape"),
                samples,
                |x| format!("{x:.0}")
            ),
            sparkline::svg(
                &format!("{instance} scrape duration"),
                duration,
                |x| format!("{x:.3} s")
            ),
        );
    }
    o.push_str("</table>");
    if hist.targets_untracked > 0 {
        let _ = write!(
            o,
            "<p class=\"note\">{} targets have no sparklines: history is kept for {} targets at most.</p>",
            hist.targets_untracked, hist.max_targets
        );
    }

    ingest::table(&mut o, now, &v.ingest);

    o.push_str("<h2>WAL</h2>");
    match &v.delivery {
        Some(d) => {
            let w = &d.wal;
            let _ = write!(
                o,
                "<table id=\"wal\"><tr><th>fill</th><td class=\"num\">{:.1} % ({} of {})</td><td class=\"hist fill\">{}</td></tr>\
<tr><th>segments</th><td class=\"num\">{}</td></tr>\
<tr><th>samples held</th><td class=\"num\">{}</td></tr>\
<tr><th>oldest sample</th><td>{}</td></tr>\
<tr><th>segments dropped</th><td class=\"num\">{}</td></tr>\
<tr><th>samples refused (disk full)</th><td class=\"num\">{}</td></tr>\
<tr><th>unsynced data</th><td>{}</td></tr></table>",
                d.wal_fill_percent(),
                bytes(w.bytes_on_disk),
                bytes(w.max_bytes),
                sparkline::svg("WAL fill", &hist.wal_fill_percent, |x| format!("{x:.1} %")),
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
    let _ = write!(
        o,
        "<p id=\"series\">Live series {}, holding {} of memory (scrape caches, pushed series, metadata and the WAL series table).</p>",
        v.series.active,
        bytes(v.series.bytes)
    );

    o.push_str("<h2>Exporters</h2><table id=\"exporters\"><tr><th>exporter</th><th>backlog</th><th>oldest undelivered</th><th>sent</th><th>retries</th><th>failed sends</th><th>rejected</th><th>unencodable</th><th>dropped by the ring</th><th>last delivery</th><th>last error</th><th>backlog</th><th>oldest undelivered</th></tr>");
    let exporters = v.delivery.as_ref().map_or(&[][..], |d| &d.exporters[..]);
    if exporters.is_empty() {
        o.push_str("<tr><td colspan=\"13\">none configured</td></tr>");
    }
    for (name, s) in exporters {
        let c = v
            .delivery
            .as_ref()
            .and_then(|d| d.wal.consumers.iter().find(|c| &c.name == name));
        let (backlog, oldest) = hist
            .exporters
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or((&empty, &empty), |(_, a, b)| (a, b));
        let _ = write!(
            o,
            "<tr><td>{}{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"err\">{}</td><td class=\"hist backlog\">{}</td><td class=\"hist oldest\">{}</td></tr>",
            h(name),
            if s.fallback {
                " <span class=\"fallback\">(the receiver refused remote write 2.0: sending 1.0)</span>"
            } else {
                ""
            },
            c.map_or(0, |c| c.backlog_samples),
            c.and_then(|c| c.oldest_unacked_ms)
                .map_or("none".into(), |ms| age(now - ms)),
            s.sent,
            s.retries,
            s.failed_sends,
            s.rejected,
            s.poisoned,
            c.map_or(0, |c| c.dropped_samples),
            ago(now, i64::try_from(s.last_success_ms).unwrap_or(0)),
            s.last_error
                .as_ref()
                .map_or(String::new(), |(at, e)| format!(
                    "{} ({})",
                    h(e),
                    ago(now, *at)
                )),
            sparkline::svg(&format!("{name} backlog"), backlog, |x| format!(
                "{x:.0} samples"
            )),
            sparkline::svg(&format!("{name} oldest undelivered"), oldest, |x| age(
                (x * 1000.0) as i64
            )),
        );
    }
    o.push_str("</table>");

    o.push_str("<h2>Plugins</h2><table id=\"plugins\"><tr><th>plugin instance</th><th>calls</th><th>traps</th><th>timeouts</th><th>memory limit hits</th><th>ABI errors</th><th>reported failures</th><th>restarts</th><th>state</th></tr>");
    for (name, s) in &v.plugins {
        let q = s.quarantined;
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td></tr>",
            h(name),
            s.calls,
            s.traps,
            s.timeouts,
            s.memory_limits,
            s.abi_errors,
            s.failures,
            s.restarts,
            if q { "down" } else { "up" },
            if q { "quarantined" } else { "running" },
        );
    }
    o.push_str("</table></body></html>\n");
    o
}

/// How long the sparklines span once full: "1.0 h" for 120 points at 30 s.
fn history_window(step: std::time::Duration, points: usize) -> String {
    let ms = step.as_millis() * points.max(1) as u128;
    age(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{History, TargetState};
    use std::time::Duration;

    const NOW: i64 = 1_700_000_000_000;

    fn view() -> View {
        let target =
            |up: bool, ago_ms: i64, ms: u64, samples: usize, error: Option<&str>| TargetState {
                up,
                last_scrape_ms: NOW - ago_ms,
                duration: Duration::from_millis(ms),
                samples,
                error: error.map(Into::into),
            };
        View {
            now_ms: NOW,
            targets: vec![
                (
                    ("node".into(), "127.0.0.1:9100".into()),
                    target(false, 2000, 12, 0, Some("connection refused <b>")),
                ),
                (
                    ("node".into(), "127.0.0.1:9101".into()),
                    target(true, 0, 3, 42, None),
                ),
            ],
            ..View::default()
        }
    }

    #[test]
    fn targets_show_their_state_and_errors_escaped() {
        let p = page(&view());
        assert!(p.contains("<tr class=\"target down\"><td>node</td><td>127.0.0.1:9100</td><td class=\"down\">down</td><td>2."), "{p}");
        assert!(p.contains("connection refused &lt;b&gt;"), "{p}");
        assert!(p.contains("<td class=\"up\">up</td>"), "{p}");
        assert!(p.contains("<td class=\"num\">42</td>"), "{p}");
        assert!(p.contains("<p>not open yet</p>"), "{p}");
        // No history yet: empty sparklines, no lines.
        assert!(p.contains("samples per scrape: no data yet"), "{p}");
        assert!(!p.contains("<polyline"), "{p}");
    }

    #[test]
    fn targets_draw_their_history_and_the_cap_is_told() {
        let mut v = view();
        let series = |points: &[f64]| Series {
            points: points.to_vec(),
            capacity: 120,
        };
        v.history = History {
            step: Duration::from_secs(30),
            targets: vec![(
                ("node".into(), "127.0.0.1:9101".into()),
                series(&[40.0, 42.0]),
                series(&[0.003, 0.004]),
            )],
            points: 120,
            targets_untracked: 3,
            max_targets: 64,
            ..History::default()
        };
        v.history.wal_fill_percent = series(&[]);
        let p = page(&v);
        let row = p
            .split("<tr")
            .find(|r| r.contains("127.0.0.1:9101"))
            .unwrap();
        assert_eq!(row.matches("<polyline").count(), 2, "{row}");
        assert!(
            row.contains("samples per scrape: 40 to 42, now 42"),
            "{row}"
        );
        assert!(
            p.contains("Sparklines: the last 60 min, a point every 30.0 s."),
            "{p}"
        );
        assert!(
            p.contains("3 targets have no sparklines: history is kept for 64 targets at most."),
            "{p}"
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(4_200), "4.2 s");
        assert_eq!(age(600_000), "10 min");
        assert_eq!(age(3 * 3_600_000), "3.0 h");
        assert_eq!(ago(10, 0), "never");
    }

    #[test]
    fn live_series_and_their_memory_are_one_line() {
        let mut v = view();
        v.series = crate::observed::SeriesMemory {
            active: 1005,
            bytes: 3 * 1024 * 1024,
        };
        let p = page(&v);
        let line = p.split("<p id=\"series\">").nth(1).unwrap();
        let line = line.split("</p>").next().unwrap();
        assert!(line.starts_with("Live series 1005, holding 3"), "{line}");
    }
}
