//! Whether a newly applied bundle works, from what the collector observes about itself:
//! every scrape job has scraped a target successfully since the bundle was applied, every
//! exporter has delivered since then, and no plugin is quarantined. A bundle that checks but
//! scrapes or delivers nothing fails this and is rolled back.

use magpie_export::ExporterCounters;
use magpie_host::metrics::PluginCounters;
use magpie_scrape::TargetState;

/// What the collector observed, read at one moment.
#[derive(Debug)]
pub struct Observed<'a> {
    pub targets: &'a [((String, String), TargetState)],
    pub exporters: &'a [(String, ExporterCounters)],
    pub plugins: &'a [(String, PluginCounters)],
}

/// `Ok` when the configuration with `jobs` and `exporters` has been healthy since `since_ms`;
/// else what is still missing.
pub fn verdict(
    since_ms: i64,
    jobs: &[String],
    exporters: &[String],
    seen: &Observed<'_>,
) -> Result<(), String> {
    if let Some((p, _)) = seen.plugins.iter().find(|(_, c)| c.quarantined) {
        return Err(format!("plugin `{p}` is quarantined"));
    }
    for job in jobs {
        let mut scraped = seen
            .targets
            .iter()
            .filter(|((j, _), s)| j == job && s.last_scrape_ms >= since_ms);
        if !scraped.clone().any(|(_, s)| s.up) {
            let why = scraped
                .find_map(|(_, s)| s.error.clone())
                .map_or_else(String::new, |e| format!(" (last error: {e})"));
            return Err(format!("scrape job `{job}` has no successful scrape{why}"));
        }
    }
    for name in exporters {
        let c = seen
            .exporters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c);
        let delivered = c.is_some_and(|c| {
            i64::try_from(c.last_success_ms).unwrap_or(i64::MAX) >= since_ms && c.sent > 0
        });
        if !delivered {
            let why = c
                .and_then(|c| c.last_error.as_ref())
                .map_or_else(String::new, |(_, e)| format!(" (last error: {e})"));
            return Err(format!("exporter `{name}` has delivered nothing{why}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(job: &str, at: i64, up: bool) -> ((String, String), TargetState) {
        (
            (job.into(), "i".into()),
            TargetState {
                up,
                last_scrape_ms: at,
                error: (!up).then(|| "refused".into()),
                ..TargetState::default()
            },
        )
    }

    #[test]
    fn healthy_needs_fresh_scrapes_deliveries_and_no_quarantine() {
        let jobs = ["a".to_string()];
        let exps = ["rw".to_string()];
        let delivered = ExporterCounters {
            sent: 5,
            last_success_ms: 2000,
            ..ExporterCounters::default()
        };
        let targets = [target("a", 1500, true)];
        let exporters = [("rw".to_string(), delivered.clone())];
        let ok = Observed {
            targets: &targets,
            exporters: &exporters,
            plugins: &[],
        };
        assert_eq!(verdict(1000, &jobs, &exps, &ok), Ok(()));
        // Before the bundle was applied does not count.
        assert!(
            verdict(1600, &jobs, &exps, &ok)
                .unwrap_err()
                .contains("job `a`")
        );
        let down = [target("a", 1500, false)];
        let e = verdict(
            1000,
            &jobs,
            &exps,
            &Observed {
                targets: &down,
                ..ok
            },
        )
        .unwrap_err();
        assert!(e.contains("refused"), "{e}");
        let failing = [(
            "rw".to_string(),
            ExporterCounters {
                last_error: Some((1, "connection refused".into())),
                ..ExporterCounters::default()
            },
        )];
        let e = verdict(
            1000,
            &jobs,
            &exps,
            &Observed {
                exporters: &failing,
                ..ok
            },
        )
        .unwrap_err();
        assert!(
            e.contains("exporter `rw`") && e.contains("connection refused"),
            "{e}"
        );
        let q = [(
            "p".to_string(),
            PluginCounters {
                quarantined: true,
                ..PluginCounters::default()
            },
        )];
        let e = verdict(1000, &jobs, &exps, &Observed { plugins: &q, ..ok }).unwrap_err();
        assert!(e.contains("quarantined"), "{e}");
    }
}
