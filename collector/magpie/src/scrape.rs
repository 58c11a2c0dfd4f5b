//! One scrape loop per (job, target): runs the job's scraper plugin every interval, applies
//! Prometheus' target labels and synthetic series, writes staleness markers for series that
//! disappear, and appends the result to the WAL. A slow or failing target only delays itself.

use crate::telemetry::{TargetState, Telemetry};
use magpie_host::{Runner, SampleSink};
use magpie_sdk::abi::{EmitStatus, Grants as AbiGrants, Label, SampleBatch, ScrapeRequest};
use magpie_wal::{KeyedSample, SeriesKey, Wal};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

/// The NaN Prometheus writes to mark a series stale.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

type Labels = Vec<(String, String)>;

/// What a scrape job needs to run its targets.
#[derive(Debug, Clone)]
pub(crate) struct JobDef {
    pub job: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    pub sample_limit: u32,
    pub body_size_limit: u64,
    pub file_prefixes: Vec<String>,
    pub relabel: crate::relabel::Relabeler,
}

/// Hasher for maps keyed by a fingerprint that is already a keyed hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

type Prehash = BuildHasherDefault<Prehashed>;

/// A series' key for the WAL, or why its labels cannot be stored.
type Key = Result<SeriesKey, String>;

fn key_of(labels: &Labels) -> Key {
    let refs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    SeriesKey::new(&refs).map_err(|e| e.to_string())
}

/// A series a target wrote, by its final labels.
struct Written {
    fingerprint: u128,
    key: Key,
    /// The scrape that last wrote it; 0 for none yet.
    scrape: u64,
}

/// A label set as scraped, before target labels and relabeling.
struct Scraped {
    /// Its series in `Series::slots`; `None` when relabeling drops it.
    slot: Option<u32>,
    /// The last scrape that saw it.
    scrape: u64,
}

/// A target's series, kept across scrapes: a label set seen before costs a hash and two map
/// look-ups instead of owned copies of its labels, relabeling and encoding. Label sets are
/// known by 128-bit fingerprints (two randomly keyed SipHashes), so equal fingerprints are
/// taken as equal labels. Holds the series of the last scrape only, as staleness needs.
struct Series {
    keys: (RandomState, RandomState),
    scraped: HashMap<u128, Scraped, Prehash>,
    by_labels: HashMap<u128, u32, Prehash>,
    slots: Vec<Option<Written>>,
    free: Vec<u32>,
    /// Number of the scrape under way, from 1.
    scrape: u64,
}

impl Series {
    fn new() -> Self {
        Self {
            keys: (RandomState::new(), RandomState::new()),
            scraped: HashMap::default(),
            by_labels: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            scrape: 0,
        }
    }

    fn fingerprint(&self, feed: impl Fn(&mut std::hash::DefaultHasher)) -> u128 {
        let mut a = self.keys.0.build_hasher();
        let mut b = self.keys.1.build_hasher();
        feed(&mut a);
        feed(&mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    /// The slot of a scraped sample's series, `None` when relabeling drops it.
    fn intern(&mut self, name: &str, labels: &[Label<'_>], target: &Target) -> Option<u32> {
        let fp = self.fingerprint(|h| {
            name.hash(h);
            for l in labels {
                l.name.hash(h);
                l.value.hash(h);
            }
        });
        let scrape = self.scrape;
        if let Some(s) = self.scraped.get_mut(&fp) {
            s.scrape = scrape;
            return s.slot;
        }
        let mut l: Labels = Vec::with_capacity(labels.len() + 1 + target.labels.len());
        l.push(("__name__".into(), name.to_string()));
        l.extend(
            labels
                .iter()
                .map(|x| (x.name.to_string(), x.value.to_string())),
        );
        target_labels(&mut l, &target.labels, target.def.honor_labels);
        let slot = if target.def.relabel.apply(&mut l) {
            Some(self.slot_of(&l))
        } else {
            None
        };
        self.scraped.insert(fp, Scraped { slot, scrape });
        slot
    }

    /// The slot of the series with these final labels, made if new.
    fn slot_of(&mut self, labels: &Labels) -> u32 {
        let fp = self.fingerprint(|h| labels.hash(h));
        if let Some(&i) = self.by_labels.get(&fp) {
            return i;
        }
        let w = Written {
            fingerprint: fp,
            key: key_of(labels),
            scrape: 0,
        };
        let i = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(w);
            i
        } else {
            self.slots.push(Some(w));
            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
        };
        self.by_labels.insert(fp, i);
        i
    }

    fn key(&self, slot: u32) -> Option<&Key> {
        self.slots.get(slot as usize)?.as_ref().map(|w| &w.key)
    }

    /// Marks a series written by this scrape.
    fn written(&mut self, slot: u32) {
        if let Some(Some(w)) = self.slots.get_mut(slot as usize) {
            w.scrape = self.scrape;
        }
    }

    /// Ends a scrape: forgets the series it did not write, returning the keys of those an
    /// earlier scrape wrote (they get staleness markers).
    fn sweep(&mut self, ok: bool) -> Vec<Key> {
        let now = self.scrape;
        let mut stale = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.as_ref().is_some_and(|w| w.scrape != now)
                && let Some(w) = s.take()
            {
                self.by_labels.remove(&w.fingerprint);
                self.free.push(u32::try_from(i).unwrap_or(u32::MAX));
                if w.scrape != 0 {
                    stale.push(w.key);
                }
            }
        }
        let slots = &self.slots;
        self.scraped.retain(|_, s| {
            s.scrape == now && s.slot.is_none_or(|i| ok && slots[i as usize].is_some())
        });
        if self.scraped.capacity() > 2 * self.scraped.len() + 64 {
            self.scraped.shrink_to_fit();
            self.by_labels.shrink_to_fit();
        }
        stale
    }
}

/// What the sink needs to turn scraped label sets into series.
struct Target {
    def: Arc<JobDef>,
    labels: Labels,
}

struct Buffer {
    /// Series slot, exposition timestamp, value.
    samples: Vec<(u32, Option<i64>, f64)>,
    /// Samples received, relabeled away or not.
    received: usize,
    limit: u32,
    exceeded: bool,
    series: Series,
    target: Arc<Target>,
}

/// Collects a scrape's samples; the scrape commits or is discarded as a whole.
struct Collect(Arc<Mutex<Buffer>>);

impl SampleSink for Collect {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = &mut *guard;
        for (s, labels) in batch.iter() {
            if b.limit > 0 && b.received >= b.limit as usize {
                b.exceeded = true;
                return EmitStatus::Stop;
            }
            b.received += 1;
            if let Some(slot) = b.series.intern(&s.name, labels, &b.target) {
                b.samples.push((slot, s.timestamp_ms, s.value));
            }
        }
        EmitStatus::Continue
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `instance` label: the target's `host:port`, or this host's name for targetless jobs.
pub(crate) fn instance_of(target: &str) -> String {
    if target.is_empty() {
        return std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
    }
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

/// Where in the interval a target is scraped: a stable hash spreads targets so a gateway
/// with many of them does not scrape all at once.
pub(crate) fn offset(job: &str, target: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (job, target).hash(&mut h);
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(h.finish() % ms)
}

/// A target's own labels as Prometheus builds them: its discovery group's labels, then `job`
/// and `instance` unless the group set them.
pub(crate) fn target_set(job: &str, instance: &str, group: &[(String, String)]) -> Labels {
    let mut t: Labels = group
        .iter()
        .filter(|(n, _)| !n.starts_with("__"))
        .cloned()
        .collect();
    for (name, value) in [("job", job), ("instance", instance)] {
        if !t.iter().any(|(n, _)| n == name) {
            t.push((name.into(), value.into()));
        }
    }
    t.sort_unstable();
    t
}

/// Attaches target labels as Prometheus does: with `honor_labels`, scraped labels win;
/// otherwise clashing scraped labels are kept as `exported_<name>`.
pub(crate) fn target_labels(labels: &mut Labels, target: &[(String, String)], honor: bool) {
    for (name, value) in target {
        if let Some(i) = labels.iter().position(|(n, _)| n == name) {
            if honor {
                continue;
            }
            labels[i].0 = format!("exported_{name}");
        }
        labels.push((name.clone(), value.clone()));
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|a, b| a.0 == b.0);
}

/// The series every scrape adds, in this order.
const SYNTHETIC: [&str; 3] = ["up", "scrape_duration_seconds", "scrape_samples_scraped"];

struct TargetLoop {
    def: Arc<JobDef>,
    target: String,
    instance: String,
    runner: Runner,
    wal: Arc<Mutex<Wal>>,
    telemetry: Arc<Telemetry>,
    /// Exporters waiting for new samples.
    wake: Arc<tokio::sync::Notify>,
    /// The target's series and the samples of the scrape under way; the sink holds a clone.
    buf: Arc<Mutex<Buffer>>,
    /// Keys of `up`, `scrape_duration_seconds` and `scrape_samples_scraped`.
    synthetic: [Key; 3],
}

/// Runs one target until `stop` turns true.
/// Where a target loop's results go.
#[derive(Clone)]
pub(crate) struct Outputs {
    pub wal: Arc<Mutex<Wal>>,
    pub telemetry: Arc<Telemetry>,
    /// Exporters waiting for new samples.
    pub wake: Arc<tokio::sync::Notify>,
}

pub(crate) async fn run_target(
    def: Arc<JobDef>,
    target: String,
    group: Labels,
    runner: Runner,
    out: Outputs,
    mut stop: watch::Receiver<bool>,
) {
    let Outputs {
        wal,
        telemetry,
        wake,
    } = out;
    let instance = instance_of(&target);
    let labels = target_set(&def.job, &instance, &group);
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
        series: Series::new(),
        target: Arc::new(Target {
            def: Arc::clone(&def),
            labels,
        }),
    }));
    let mut t = TargetLoop {
        def,
        target,
        instance,
        runner,
        wal,
        telemetry,
        wake,
        buf,
        synthetic,
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        t.scrape_once().await;
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
    async fn scrape_once(&mut self) {
        let start = Instant::now();
        let ts = now_ms();
        {
            let mut b = self
                .buf
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            b.series.scrape += 1;
            b.samples.clear();
            b.received = 0;
            b.exceeded = false;
        }
        let req = ScrapeRequest::V1 {
            target: self.target.as_str().into(),
            scrape_time_ms: ts,
            timeout_ms: u32::try_from(self.def.timeout.as_millis()).unwrap_or(u32::MAX),
            body_size_limit: self.def.body_size_limit,
            sample_limit: self.def.sample_limit,
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
        let duration = start.elapsed();
        let buf = Arc::clone(&self.buf);
        let mut guard = buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = &mut *guard;
        let error = match (result, b.exceeded) {
            (_, true) => Some(format!(
                "sample_limit of {} exceeded",
                self.def.sample_limit
            )),
            (Err(e), _) => Some(e.to_string()),
            (Ok(()), false) => None,
        };
        if error.is_some() {
            b.samples.clear();
        }
        for &(slot, _, _) in &b.samples {
            b.series.written(slot);
        }
        let stale = b.series.sweep(error.is_none());
        let scraped = b.samples.len();
        let up = if error.is_none() { 1.0 } else { 0.0 };
        #[allow(clippy::cast_precision_loss)]
        let synthetic = [up, duration.as_secs_f64(), scraped as f64];
        let samples = b
            .samples
            .iter()
            .filter_map(|&(slot, t, v)| b.series.key(slot).map(|k| (k, t.unwrap_or(ts), v)));
        let markers = stale.iter().map(|k| (k, ts, f64::from_bits(STALE_NAN)));
        let own = self
            .synthetic
            .iter()
            .zip(synthetic)
            .map(|(k, v)| (k, ts, v));
        let appended = self.append(samples.chain(markers).chain(own));
        b.samples.clear();
        if b.samples.capacity() > 2 * scraped + 1024 {
            b.samples.shrink_to_fit();
        }
        drop(guard);
        self.wake.notify_waiters();
        if let Some(e) = &error {
            log::warn!(
                "scrape failed; job={} target={} error={e}",
                self.def.job,
                self.display_target()
            );
        }
        self.telemetry.record_scrape(
            &self.def.job,
            &self.instance,
            TargetState {
                up: error.is_none(),
                last_scrape_ms: ts,
                duration,
                samples: scraped,
                error,
            },
            appended,
        );
    }

    fn display_target(&self) -> &str {
        if self.target.is_empty() {
            &self.instance
        } else {
            &self.target
        }
    }

    /// Appends samples in order; a series whose labels the WAL refuses ends the append
    /// there, as the WAL does.
    fn append<'a>(&self, out: impl Iterator<Item = (&'a Key, i64, f64)>) -> bool {
        let mut refused: Option<&String> = None;
        let mut wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = wal.append_keyed(out.map_while(|(k, t_ms, value)| match k {
            Ok(key) => Some(KeyedSample { key, t_ms, value }),
            Err(e) => {
                refused = Some(e);
                None
            }
        }));
        // Only the WAL's own errors count against its health, not a refused label set.
        let op = crate::health::WalOp::Append;
        let e = match (r, refused) {
            (Err(e @ magpie_wal::Error::InvalidLabels(_)), _) => e.to_string(),
            (Err(e), _) => {
                let e = e.to_string();
                self.telemetry.wal_outcome(op, Some(&e));
                e
            }
            (Ok(()), Some(e)) => e.clone(),
            (Ok(()), None) => {
                self.telemetry.wal_outcome(op, None);
                return true;
            }
        };
        log::error!(
            "WAL append failed, samples of this scrape lost; job={} error={e}",
            self.def.job
        );
        false
    }
}

/// What a scrape job's supervisor needs to start target loops.
pub(crate) struct JobRun {
    pub def: Arc<JobDef>,
    pub plugin: magpie_host::Plugin,
    pub spec: magpie_host::InstanceSpec,
    pub host: magpie_host::Host,
    pub file_grants: Vec<std::path::PathBuf>,
    pub scheme: String,
    pub metrics_path: String,
    pub out: Outputs,
}

type Running = HashMap<(String, Labels), (watch::Sender<bool>, tokio::task::JoinHandle<()>)>;

impl JobRun {
    fn spawn(
        &self,
        url: &str,
        group: &Labels,
    ) -> Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
        let urls = if url.is_empty() {
            Vec::new()
        } else {
            vec![url.to_string()]
        };
        let grants = match magpie_host::Grants::new(urls, &self.file_grants) {
            Ok(g) => g,
            Err(e) => {
                log::error!(
                    "scrape job `{}`: target {url} not started: {e}",
                    self.def.job
                );
                return None;
            }
        };
        let spec = magpie_host::InstanceSpec {
            grants: Arc::new(grants),
            ..self.spec.clone()
        };
        let runner = Runner::new(self.host.clone(), self.plugin.clone(), spec);
        self.out.telemetry.add_plugin(runner.name(), runner.stats());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_target(
            Arc::clone(&self.def),
            url.to_string(),
            group.clone(),
            runner,
            self.out.clone(),
            rx,
        ));
        Some((tx, task))
    }

    /// Brings the running target loops in line with `desired`.
    async fn converge(&self, running: &mut Running, desired: &[(String, Labels)]) {
        let gone: Vec<_> = running
            .keys()
            .filter(|k| !desired.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some((tx, task)) = running.remove(&k) {
                let _ = tx.send(true);
                let _ = task.await;
                log::info!("scrape job `{}`: target {} removed", self.def.job, k.0);
            }
        }
        for k in desired {
            if !running.contains_key(k)
                && let Some(r) = self.spawn(&k.0, &k.1)
            {
                running.insert(k.clone(), r);
            }
        }
    }
}

fn discovered(
    groups: &[crate::discovery::TargetGroup],
    scheme: &str,
    path: &str,
) -> Vec<(String, Labels)> {
    let mut out = Vec::new();
    for g in groups {
        let labels: Labels = g
            .public_labels()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        for address in &g.targets {
            out.push((g.url(address, scheme, path), labels.clone()));
        }
    }
    out
}

/// Runs a scrape job: its static targets, and targets from `file_sd_configs`, re-read every
/// refresh interval; target loops start and stop as the files change.
pub(crate) async fn run_job(
    job: JobRun,
    static_targets: Vec<String>,
    mut sds: Vec<crate::discovery::FileSd>,
    interval: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let fixed: Vec<(String, Labels)> = static_targets
        .into_iter()
        .map(|t| (t, Labels::new()))
        .collect();
    let mut found: Vec<Vec<(String, Labels)>> = vec![Vec::new(); sds.len()];
    let mut running = Running::new();
    loop {
        for (i, sd) in sds.iter_mut().enumerate() {
            match sd.refresh() {
                Ok(Some(groups)) => found[i] = discovered(&groups, &job.scheme, &job.metrics_path),
                Ok(None) => {}
                Err(errors) => {
                    for e in errors {
                        log::warn!("scrape job `{}`: file_sd: {e}", job.def.job);
                    }
                    found[i] = discovered(&sd.groups(), &job.scheme, &job.metrics_path);
                }
            }
        }
        let mut desired = fixed.clone();
        for f in &found {
            for t in f {
                if !desired.contains(t) {
                    desired.push(t.clone());
                }
            }
        }
        job.converge(&mut running, &desired).await;
        let wait = interval.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, task)) in running {
        let _ = tx.send(true);
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_is_the_authority() {
        assert_eq!(
            instance_of("http://127.0.0.1:9100/metrics"),
            "127.0.0.1:9100"
        );
        assert_eq!(instance_of("https://[::1]:443/m?x=1"), "[::1]:443");
        assert!(!instance_of("").is_empty());
    }

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let i = Duration::from_secs(15);
        let a = offset("node", "http://a/metrics", i);
        assert_eq!(a, offset("node", "http://a/metrics", i));
        assert!(a < i);
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|n| offset("node", &format!("http://h{n}/metrics"), i))
            .collect();
        assert!(spread.len() > 40, "targets should spread over the interval");
    }

    #[test]
    fn discovery_labels_come_first_then_job_and_instance() {
        let group = vec![
            ("rack".into(), "r1".into()),
            ("job".into(), "from-sd".into()),
            ("__meta_x".into(), "y".into()),
        ];
        let t = target_set("node", "h:1", &group);
        let names: Vec<_> = t.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(names, ["instance=h:1", "job=from-sd", "rack=r1"]);
    }

    #[test]
    fn clashing_labels_are_exported_unless_honored() {
        let t = target_set("node", "h:1", &[]);
        let mut l = vec![
            ("__name__".into(), "m".into()),
            ("job".into(), "scraped".into()),
        ];
        target_labels(&mut l, &t, false);
        let names: Vec<_> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [
                "__name__=m",
                "exported_job=scraped",
                "instance=h:1",
                "job=node"
            ]
        );
        let mut l = vec![
            ("__name__".into(), "m".into()),
            ("job".into(), "scraped".into()),
        ];
        target_labels(&mut l, &t, true);
        let names: Vec<_> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(names, ["__name__=m", "instance=h:1", "job=scraped"]);
    }
}
