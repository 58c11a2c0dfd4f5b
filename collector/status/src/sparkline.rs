//! Sparklines as inline SVG, drawn on the server: no script, no external file. A series is
//! scaled to its own minimum and maximum (a constant one is a flat line across the middle),
//! `NaN` points leave a gap, and the newest point sits at the right edge with a dot, so a
//! short history grows from the right as the page is reloaded.

use super::h;
use crate::observed::Series;
use std::fmt::Write as _;

const W: f64 = 120.0;
const H: f64 = 24.0;
/// Room above and below the line, so the stroke and the dot are not clipped.
const PAD: f64 = 2.5;

/// An `<svg class="spark">` of `series`; `title` (escaped here) is shown on hover with the
/// range of the values, formatted by `fmt`.
#[allow(clippy::cast_precision_loss)]
pub fn svg(title: &str, series: &Series, fmt: impl Fn(f64) -> String) -> String {
    let finite = series.points.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let mut o = String::with_capacity(256);
    let _ = write!(
        o,
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    if lo > hi {
        let _ = write!(o, "<title>{}: no data yet</title></svg>", h(title));
        return o;
    }
    let last = series.points.iter().rev().find(|v| v.is_finite()).copied();
    let _ = write!(
        o,
        "<title>{}: {} to {}, now {}</title>",
        h(title),
        h(&fmt(lo)),
        h(&fmt(hi)),
        last.map_or_else(|| "unknown".into(), |v| h(&fmt(v)))
    );
    let n = series.points.len();
    // Slots for the ring's capacity, so the x scale does not change as the ring fills.
    let slots = series.capacity.max(n).max(2);
    let dx = W / (slots - 1) as f64;
    let x = |i: usize| W - (n - 1 - i) as f64 * dx;
    let y = |v: f64| {
        if hi > lo {
            H - PAD - (v - lo) / (hi - lo) * (H - 2.0 * PAD)
        } else {
            H / 2.0
        }
    };
    let mut run = String::new();
    let flush = |o: &mut String, run: &mut String| {
        if !run.is_empty() {
            let _ = write!(o, "<polyline points=\"{}\"/>", run.trim_end());
            run.clear();
        }
    };
    let mut newest = None;
    for (i, v) in series.points.iter().enumerate() {
        if v.is_finite() {
            let _ = write!(run, "{:.1},{:.1} ", x(i), y(*v));
            newest = Some((x(i), y(*v)));
        } else {
            flush(&mut o, &mut run);
        }
    }
    flush(&mut o, &mut run);
    if let Some((cx, cy)) = newest {
        let _ = write!(o, "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"1.8\"/>");
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[f64]) -> Series {
        Series {
            points: points.to_vec(),
            capacity: 5,
        }
    }

    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline points=\"")
            .skip(1)
            .map(|p| {
                p.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    #[test]
    fn a_rising_series_rises_and_ends_at_the_right_edge() {
        let out = svg("backlog", &s(&[1.0, 2.0, 4.0]), plain);
        let lines = polylines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        let pts = &lines[0];
        assert_eq!(pts.len(), 3);
        // Right-aligned on a 5-slot scale: x = 60, 90, 120.
        assert_eq!(
            pts.iter().map(|p| p.0).collect::<Vec<_>>(),
            [60.0, 90.0, 120.0]
        );
        // Higher values are drawn higher (smaller y), spanning the padded height.
        assert_eq!(pts[0].1, H - PAD);
        assert_eq!(pts[2].1, PAD);
        assert!(pts[1].1 < pts[0].1 && pts[1].1 > pts[2].1);
        assert!(
            out.contains("<title>backlog: 1 to 4, now 4</title>"),
            "{out}"
        );
        assert!(out.contains("<circle cx=\"120.0\" cy=\"2.5\""), "{out}");
    }

    #[test]
    fn an_empty_series_draws_no_line() {
        for points in [&[][..], &[f64::NAN, f64::NAN]] {
            let out = svg("x", &s(points), plain);
            assert!(!out.contains("<polyline"), "{out}");
            assert!(out.contains("no data yet"), "{out}");
            assert!(out.starts_with("<svg") && out.ends_with("</svg>"), "{out}");
        }
    }

    #[test]
    fn a_constant_series_is_a_flat_line_in_the_middle() {
        let out = svg("x", &s(&[3.0, 3.0, 3.0, 3.0]), plain);
        let pts = &polylines(&out)[0];
        assert!(pts.iter().all(|p| p.1 == H / 2.0), "{out}");
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
    }

    #[test]
    fn nan_leaves_a_gap() {
        let out = svg("x", &s(&[1.0, 2.0, f64::NAN, 3.0, f64::INFINITY]), plain);
        let lines = polylines(&out);
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0].len(), 2);
        assert_eq!(lines[1].len(), 1);
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
        // The dot marks the newest known value.
        assert!(out.contains("now 3</title>"), "{out}");
    }

    #[test]
    fn the_title_is_escaped() {
        let out = svg("job <a href=\"x\">&'", &s(&[1.0]), |_| "<b>".into());
        assert!(
            out.contains("<title>job &lt;a href=&quot;x&quot;&gt;&amp;&#39;: &lt;b&gt; to &lt;b&gt;, now &lt;b&gt;</title>"),
            "{out}"
        );
        assert_eq!(out.matches('<').count(), out.matches('>').count());
    }

    #[test]
    fn a_single_point_is_a_dot_at_the_right_edge() {
        let out = svg("x", &s(&[7.0]), plain);
        assert!(out.contains("<circle cx=\"120.0\" cy=\"12.0\""), "{out}");
    }
}
