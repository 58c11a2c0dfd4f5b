//! `magpie-scrape`: the scrape pipeline, from a job's configuration to samples in the WAL.
//!
//! - [`clock`]: whether the wall clock is plausible enough to stamp samples (a device without
//!   a real-time clock boots at 1970 until NTP sets it).
//! - [`discovery`]: where targets come from (static lists; Prometheus' `file_sd`, `http_sd`,
//!   `dns_sd` and `kubernetes_sd` for the roles node, pod and service).
//! - [`target`]: Prometheus' target-label rules: `instance`, `job`, discovery labels, and
//!   `honor_labels` / `exported_*` on clashes.
//! - [`relabel`]: `metric_relabel_configs` with Prometheus' semantics.
//! - [`populate`]: `relabel_configs`: a discovered target's labels, relabeled into what to
//!   scrape (or a dropped target), as Prometheus' `PopulateLabels`.
//! - `series_cache`: per target, a scraped label set resolves to its final series once; later
//!   scrapes of it cost a hash and two look-ups.
//! - `target_loop`: one loop per target: run the scraper plugin, attach labels, add `up`,
//!   `scrape_duration_seconds`, `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
//!   `scrape_series_added`, write staleness markers for series
//!   that vanished, and append the scrape to the WAL whole or not at all.
//! - [`cost`]: what series cost in a target's series cache, for the cost benchmark.
//! - [`metadata`]: the `TYPE`/`HELP`/`UNIT` of every running target's families, in memory,
//!   for exporters that send metadata.
//! - [`job`]: a job's supervisor, starting and stopping target loops as discovery changes.
//! - [`fetch`]: the HTTP fetcher scraper plugins reach their granted URLs through.
//! - [`observe`]: what the pipeline reports to the collector's self-metrics.
//! - [`metrics`]: the scrape families of those self-metrics, per job and per target.
//!
//! # Invariants
//! - A scrape is appended whole or not at all; a failed scrape appends only `up` = 0 and the
//!   other synthetic series (and staleness markers for what the last good scrape had).
//! - A slow or failing target delays only itself.
//!
//! # Example
//! ```
//! use magpie_scrape::target::{target_labels, target_set};
//! // The target's own labels, then a scraped series with a clashing `job` label.
//! let target = target_set("node", "10.0.0.7:9100", &[("rack".into(), "r1".into())]);
//! let mut series = vec![("__name__".into(), "up".into()), ("job".into(), "x".into())];
//! target_labels(&mut series, &target, false);
//! let names: Vec<_> = series.iter().map(|(n, _)| n.as_str()).collect();
//! assert_eq!(names, ["__name__", "exported_job", "instance", "job", "rack"]);
//! ```
#![forbid(unsafe_code)]

pub mod clock;
pub mod cost;
pub mod discovery;
pub mod fetch;
pub mod job;
pub mod metadata;
pub mod metrics;
pub mod observe;
pub mod populate;
pub mod relabel;
mod series_cache;
pub mod target;
mod target_loop;
pub mod time;
pub mod units;

pub use job::{JobRun, run_job};
pub use observe::{Observer, TargetState};
pub use target::JobDef;
pub use target_loop::{Outputs, STALE_NAN};
