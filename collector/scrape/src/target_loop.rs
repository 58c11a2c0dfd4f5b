//! One scrape loop per (job, target): runs the job's scraper plugin every interval, applies
//! Prometheus' target labels and synthetic series, writes staleness markers for series that
//! disappear, and appends the result to the WAL. A slow or failing target only delays itself;
//! a scrape is committed or discarded as a whole.

use crate::metadata::{MetadataStore, TargetMetadata};
use crate::observe::{Observer, TargetState};
use crate::series_cache::{Key, SeriesCache, key_heap, key_of};
use crate::target::{JobDef, Labels, Target, instance_of, offset, target_labels, target_set};
use crate::time::now_ms;
use magpie_host::{RawSampleBatch, Runner, SampleSink};
use magpie_sdk::abi::{
    EmitStatus, ExemplarReport, Grants as AbiGrants, MetadataUpdate, SampleBatch, ScrapeRequest,
};
use magpie_wal::OwnedExemplar;
use magpie_wal::Stats;
use magpie_wal::owner::{OwnedSample, WalHandle};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

/// The NaN Prometheus writes to mark a series stale.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The series every scrape adds, in this order (Prometheus' set).
const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

struct Buffer {
    /// Series slot, exposition timestamp, value.
    samples: Vec<(u32, Option<i64>, f64)>,
    /// Samples received, relabeled away or not.
    received: usize,
    limit: u32,
    exceeded: bool,
    /// A series over the label limits: the scrape fails with this reason.
    failure: Option<String>,
    series: SeriesCache,
    target: Arc<Target>,
    /// The target's metadata in the shared store; dropped with the loop.
    metadata: TargetMetadata,
    /// The scrape's exemplars: series slot, labels sorted by name, value, timestamp.
    exemplars: Vec<ScrapedExemplar>,
    /// Exemplars the scrape left out (over the cap, or on a series relabeling dropped).
    exemplars_dropped: u64,
    /// The target's part of `magpie_series_*`; dropped with the loop.
    memory: magpie_metrics::memory::Share,
}

type ScrapedExemplar = (u32, Vec<(String, String)>, f64, Option<i64>);

/// Collects a scrape's samples; the scrape commits or is discarded as a whole.
struct Collect(Arc<Mutex<Buffer>>);

impl Buffer {
    /// Takes one received sample, interned as `slot`; `false` when the scrape stops here.
    fn take(&mut self, slot: Result<Option<u32>, String>, t: Option<i64>, v: f64) -> bool {
        self.received += 1;
        match slot {
            Err(why) => {
                self.failure = Some(why);
                false
            }
            // As Prometheus: the limit counts samples that metric relabeling keeps.
            Ok(Some(_)) if self.limit > 0 && self.samples.len() >= self.limit as usize => {
                self.exceeded = true;
                false
            }
            Ok(Some(slot)) => {
                self.samples.push((slot, t, v));
                true
            }
            Ok(None) => true,
        }
    }
}

impl SampleSink for Collect {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut guard = self.0.lock();
        let b = &mut *guard;
        for (s, labels) in batch.iter() {
            let slot = if s.is_repeat() {
                b.series.intern_repeat(b.received)
            } else {
                b.series.intern(&s.name, labels, &b.target)
            };
            if !b.take(slot, s.timestamp_ms, s.value) {
                return EmitStatus::Stop;
            }
        }
        EmitStatus::Continue
    }

    /// Series seen before cost a hash of their bytes: no decoding, no UTF-8 check.
    fn push_raw(&mut self, batch: &RawSampleBatch<'_>) -> Result<EmitStatus, String> {
        let mut guard = self.0.lock();
        let b = &mut *guard;
        for s in batch.iter() {
            let slot = if s.is_repeat() {
                b.series.intern_repeat(b.received)
            } else {
                (b.series.intern_raw(&s, &b.target))
                    .map_err(|_| "a metric name or label is not UTF-8".to_string())?
            };
            if !b.take(slot, s.timestamp_ms, s.value) {
                return Ok(EmitStatus::Stop);
            }
        }
        Ok(EmitStatus::Continue)
    }

    fn metadata(&mut self, update: &MetadataUpdate<'_>) {
        self.0.lock().metadata.apply(update);
    }

    fn exemplars(&mut self, report: &ExemplarReport<'_>) {
        let ExemplarReport::V1 { exemplars, dropped } = report;
        let mut guard = self.0.lock();
        let b = &mut *guard;
        b.exemplars_dropped += u64::from(*dropped);
        for e in exemplars {
            let Some(slot) = b.series.find(&e.series_name, &e.series_labels) else {
                b.exemplars_dropped += 1;
                continue;
            };
            let mut labels: Vec<(String, String)> = (e.labels.iter())
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.sort();
            b.exemplars.push((slot, labels, e.value, e.timestamp_ms));
        }
    }
}

/// A target loop's view of the clock policy.
#[derive(Debug, Default)]
struct ClockWait {
    gate: crate::clock::Gate,
    /// Whether a wait was logged (and so its end is logged too).
    reported: bool,
}

struct TargetLoop {
    clock: ClockWait,
    def: Arc<JobDef>,
    target: String,
    instance: String,
    runner: Runner,
    wal: WalHandle,
    /// The WAL's latest statistics, published by its owner.
    wal_stats: watch::Receiver<Arc<Stats>>,
    observer: Arc<dyn Observer>,
    /// Exporters waiting for new samples.
    wake: Arc<tokio::sync::Notify>,
    /// The target's series and the samples of the scrape under way; the sink holds a clone.
    buf: Arc<Mutex<Buffer>>,
    /// Keys of the [`SYNTHETIC`] series.
    synthetic: [Key; 5],
    /// Set while the job is over its `target_limit`: every scrape fails with it, unattempted.
    forced: Option<String>,
    /// The WAL's series ids of the last append's samples, by position, which the WAL's owner
    /// hands back: the next scrape's hints ([`WalHandle::append_hinted_then`]). Empty until
    /// the owner has appended the last scrape.
    wal_ids: Arc<Mutex<Vec<u32>>>,
}

/// Where a target loop's results go.
#[derive(Clone)]
pub struct Outputs {
    /// The WAL scrapes append to: they hand their samples to its owner and go on.
    pub wal: WalHandle,
    /// Told about every scrape and every plugin instance started.
    pub observer: Arc<dyn Observer>,
    /// Exporters waiting for new samples.
    pub wake: Arc<tokio::sync::Notify>,
    /// Where targets keep their metric metadata.
    pub metadata: MetadataStore,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs").finish_non_exhaustive()
    }
}

/// Runs one target until `stop` turns true.
pub(crate) async fn run_target(
    def: Arc<JobDef>,
    target: String,
    group: Labels,
    runner: Runner,
    out: Outputs,
    forced: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
    let Outputs {
        wal,
        observer,
        wake,
        metadata,
    } = out;
    let labels = target_set(&def.job, &instance_of(&target), &group);
    // Relabeling may have named the instance otherwise.
    let instance = labels
        .iter()
        .find(|(n, _)| n == "instance")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut next = Instant::now() + offset(&def.job, &target, def.interval);
    let synthetic = SYNTHETIC.map(|name| {
        let mut l = vec![("__name__".to_string(), name.to_string())];
        target_labels(&mut l, &labels, false);
        key_of(&l)
    });
    let buf = Arc::new(Mutex::new(Buffer {
        samples: Vec::new(),
        received: 0,
        limit: def.sample_limit,
        exceeded: false,
        failure: None,
        series: SeriesCache::new(),
        target: Arc::new(Target {
            def: Arc::clone(&def),
            labels,
        }),
        metadata: metadata.register(),
        exemplars: Vec::new(),
        exemplars_dropped: 0,
        memory: observer.series_share(),
    }));
    let mut t = TargetLoop {
        clock: ClockWait::default(),
        def,
        target,
        instance,
        runner,
        wal_stats: wal.stats(),
        wal,
        observer,
        wake,
        buf,
        synthetic,
        forced,
        wal_ids: Arc::default(),
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if t.clock_plausible() {
            t.scrape_once().await;
        }
        next += t.def.interval;
        let now = Instant::now();
        if next < now {
            // A scrape ran past its slot (a suspended device): skip the missed slots.
            let behind = (now - next).as_nanos() / t.def.interval.as_nanos().max(1) + 1;
            next += t.def.interval * u32::try_from(behind).unwrap_or(u32::MAX);
        }
    }
}

impl TargetLoop {
    /// Whether the wall clock may stamp samples ([`crate::clock`]); while it may not, the
    /// slot is skipped, and the first skip is logged and reported.
    fn clock_plausible(&mut self) -> bool {
        if self.clock.gate.is_open() {
            return true;
        }
        let newest_wal_ms = self.wal_stats.borrow().newest_sample_ms;
        let readings = crate::clock::Readings {
            now_ms: now_ms(),
            build_ms: crate::clock::BUILD_EPOCH_MS,
            newest_wal_ms,
            synced: crate::clock::system_synced(),
        };
        match self.clock.gate.check(&readings) {
            crate::clock::Verdict::Plausible => {
                if self.clock.reported {
                    log::info!(
                        "the clock is plausible now; scrapes start. job={} target={}",
                        self.def.job,
                        self.display_target()
                    );
                    self.observer.clock_waiting(None);
                }
                true
            }
            why => {
                if !self.clock.reported {
                    self.clock.reported = true;
                    log::warn!(
                        "{why}. job={} target={}",
                        self.def.job,
                        self.display_target()
                    );
                }
                self.observer.clock_waiting(Some(&why.to_string()));
                false
            }
        }
    }

    /// Has the plugin scrape the target into the buffer.
    async fn call_plugin(&mut self, ts: i64) -> Result<(), magpie_host::PluginError> {
        let replay = self.buf.lock().series.replay();
        let req = ScrapeRequest::V2 {
            replay,
            target: self.target.as_str().into(),
            scrape_time_ms: ts,
            timeout_ms: u32::try_from(self.def.timeout.as_millis()).unwrap_or(u32::MAX),
            body_size_limit: self.def.body_size_limit,
            // The plugin may stop parsing at the limit only when no metric relabeling can
            // drop samples: Prometheus counts the samples relabeling keeps.
            sample_limit: if self.def.relabel.is_empty() {
                self.def.sample_limit
            } else {
                0
            },
            grants: AbiGrants {
                urls: if self.target.is_empty() {
                    Vec::new()
                } else {
                    vec![self.target.as_str().into()]
                },
                file_prefixes: self
                    .def
                    .file_prefixes
                    .iter()
                    .map(|p| p.as_str().into())
                    .collect(),
            },
        };
        let (_, result) = self
            .runner
            .scrape(&req, Box::new(Collect(Arc::clone(&self.buf))))
            .await;
        result
    }

    async fn scrape_once(&mut self) {
        let start = Instant::now();
        let ts = now_ms();
        {
            let mut b = self.buf.lock();
            b.series.begin();
            b.samples.clear();
            b.received = 0;
            b.exceeded = false;
            b.failure = None;
            b.exemplars.clear();
            b.exemplars_dropped = 0;
        }
        let result = if let Some(why) = &self.forced {
            self.buf.lock().failure = Some(why.clone());
            Ok(())
        } else {
            self.call_plugin(ts).await
        };
        let duration = start.elapsed();
        let (out, refused, error, scraped) = self.collect_scrape(ts, result, duration);
        let exemplars = self.collect_exemplars(ts, error.is_none() && refused.is_none());
        if let Some(e) = &error {
            log::warn!(
                "scrape failed; job={} target={} error={e}",
                self.def.job,
                self.display_target()
            );
        }
        let state = TargetState {
            up: error.is_none(),
            last_scrape_ms: ts,
            duration,
            samples: scraped,
            error,
        };
        self.append(out, refused, state).await;
        if let Some((exemplars, dropped)) = exemplars {
            self.append_exemplars(exemplars, dropped).await;
        }
    }

    /// The scrape's exemplars, ready for the WAL, with the count it left out; `None` when it
    /// had none. A failed scrape keeps none.
    fn collect_exemplars(&self, ts: i64, ok: bool) -> Option<(Vec<OwnedExemplar>, u64)> {
        let mut guard = self.buf.lock();
        let b = &mut *guard;
        if b.exemplars.is_empty() && b.exemplars_dropped == 0 {
            return None;
        }
        let mut dropped = b.exemplars_dropped;
        let mut out = Vec::with_capacity(b.exemplars.len());
        for (slot, labels, value, t) in b.exemplars.drain(..) {
            match b.series.key(slot) {
                Some(Ok(key)) if ok => out.push(OwnedExemplar {
                    key: key.clone(),
                    labels,
                    // As Prometheus: an exemplar without a timestamp gets the scrape's.
                    t_ms: t.unwrap_or(ts),
                    value,
                }),
                _ => dropped += 1,
            }
        }
        b.exemplars_dropped = 0;
        Some((out, dropped))
    }

    /// Hands the scrape's exemplars to the WAL's owner after its samples.
    async fn append_exemplars(&mut self, exemplars: Vec<OwnedExemplar>, dropped: u64) {
        let job = Arc::clone(&self.def);
        let report = move |r: Result<u64, magpie_wal::Error>| {
            if let Err(e) = r {
                log::warn!(
                    "WAL append of a scrape's exemplars failed; they are lost. job={} error={e}",
                    job.job
                );
            }
        };
        if (self
            .wal
            .append_exemplars_then(exemplars, dropped, report)
            .await)
            .is_err()
        {
            log::warn!(
                "the WAL is closed; a scrape's exemplars were not appended. job={}",
                self.def.job
            );
        }
    }

    /// The scrape's samples, staleness markers and synthetic series, ready for the WAL, with
    /// the refusal that ended them early, the scrape's error and the samples it kept.
    fn collect_scrape(
        &self,
        ts: i64,
        result: Result<(), magpie_host::PluginError>,
        duration: std::time::Duration,
    ) -> (Vec<OwnedSample>, Option<String>, Option<String>, usize) {
        let buf = Arc::clone(&self.buf);
        let mut guard = buf.lock();
        let b = &mut *guard;
        let error = match (result, b.exceeded) {
            _ if b.failure.is_some() => b.failure.clone(),
            (_, true) => Some(format!(
                "sample_limit of {} exceeded",
                self.def.sample_limit
            )),
            (Err(e), _) => Some(e.to_string()),
            (Ok(()), false) => None,
        };
        let kept = b.samples.len();
        if error.is_some() {
            b.samples.clear();
        }
        let mut added = 0usize;
        for &(slot, _, _) in &b.samples {
            added += usize::from(b.series.written(slot));
        }
        let stale = b.series.sweep(error.is_none());
        let scraped = b.samples.len();
        let up = if error.is_none() { 1.0 } else { 0.0 };
        #[allow(clippy::cast_precision_loss)]
        let synthetic = [
            up,
            duration.as_secs_f64(),
            b.received as f64,
            kept as f64,
            added as f64,
        ];
        let honor = self.def.honor_timestamps;
        let samples = b.samples.iter().filter_map(|&(slot, t, v)| {
            let t = t.filter(|_| honor).unwrap_or(ts);
            b.series.key(slot).map(|k| (k, t, v))
        });
        let markers = stale.iter().map(|k| (k, ts, f64::from_bits(STALE_NAN)));
        let own = self
            .synthetic
            .iter()
            .zip(synthetic)
            .map(|(k, v)| (k, ts, v));
        // A series whose labels the WAL refuses ends the append there, as the WAL does.
        let mut refused: Option<String> = None;
        let out: Vec<OwnedSample> = samples
            .chain(markers)
            .chain(own)
            .map_while(|(k, t_ms, value)| match k {
                Ok(key) => Some(OwnedSample {
                    key: key.clone(),
                    t_ms,
                    value,
                }),
                Err(e) => {
                    refused = Some(e.clone());
                    None
                }
            })
            .collect();
        b.samples.clear();
        if b.samples.capacity() > 2 * scraped + 1024 {
            b.samples.shrink_to_fit();
        }
        // No slot is held outside the cache now: it may compact.
        b.series.release();
        let synthetic_bytes: usize = self.synthetic.iter().map(key_heap).sum();
        let ids_bytes = self.wal_ids.lock().capacity() * size_of::<u32>();
        b.memory.set(
            b.series.live() + SYNTHETIC.len(),
            b.series.heap_bytes()
                + b.samples.capacity() * size_of::<(u32, Option<i64>, f64)>()
                + synthetic_bytes
                + ids_bytes,
        );
        (out, refused, error, scraped)
    }

    fn display_target(&self) -> &str {
        if self.target.is_empty() {
            &self.instance
        } else {
            &self.target
        }
    }

    /// Hands the scrape's samples to the WAL's owner without waiting for it to append them
    /// (it may be in a sync); the scrape is reported, and the exporters woken, once the owner
    /// has appended them.
    async fn append(
        &mut self,
        samples: Vec<OwnedSample>,
        refused: Option<String>,
        state: TargetState,
    ) {
        let observer = Arc::clone(&self.observer);
        let wake = Arc::clone(&self.wake);
        let def = Arc::clone(&self.def);
        let instance = self.instance.clone();
        // A scrape repeats the last one's series in the same order: the ids they got are
        // its hints.
        let hints = std::mem::take(&mut *self.wal_ids.lock());
        let ids_back = Arc::clone(&self.wal_ids);
        let report = move |r: Result<(), magpie_wal::Error>, ids: Vec<u32>| {
            *ids_back.lock() = ids;
            let failed = match (r, refused) {
                (Err(e @ magpie_wal::Error::InvalidLabels(_)), _) => Some(e.to_string()),
                (Err(e), _) => {
                    let e = e.to_string();
                    observer.wal_append(Some(&e));
                    Some(e)
                }
                (Ok(()), Some(e)) => Some(e),
                (Ok(()), None) => {
                    observer.wal_append(None);
                    None
                }
            };
            if let Some(e) = &failed {
                log::error!(
                    "WAL append failed, samples of this scrape lost; job={} error={e}",
                    def.job
                );
            }
            wake.notify_waiters();
            observer.scraped(&def.job, &instance, state, failed.is_none());
        };
        if self
            .wal
            .append_hinted_then(samples, hints, report)
            .await
            .is_err()
        {
            log::warn!(
                "the WAL is closed; a scrape's samples were not appended. job={}",
                self.def.job
            );
        }
    }
}
