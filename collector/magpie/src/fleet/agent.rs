//! The agent: polls the fleet server (or follows the fleet's MQTT topic), applies what it
//! may, watches it, commits or rolls back.
//!
//! It owns the fleet state (`<data_dir>/fleet/state.json`: the last-known-good version and the
//! versions marked bad) and the staged bundles; the run loop owns the running configuration
//! and swaps it when the agent sends an [`Apply`]. One bundle is in flight at a time: while a
//! candidate is watched the agent does not poll.

use super::bundle::{compose, verify_dir};
use super::envelope::Envelope;
use super::fetch::{self, Etag};
use super::follow::{Event, Follow};
use super::health::{self, Observed};
use super::manifest::{MANIFEST, Manifest, sha256_hex};
use super::stage::{remove_dir, stage};
use super::state::{State, load_state, save};
use super::status::Status;
use crate::check::{self, Plan};
use crate::config::{Fleet, Loaded};
use crate::telemetry::Telemetry;
use crate::trust::{self, PublicKey};
use magpie_host::Host;
use magpie_transport::clock::now_ms;
use magpie_transport::{HttpClient, TlsOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// The most a manifest or its signature may be.
const MANIFEST_LIMIT: u64 = 1 << 20;
/// How often a candidate's health is looked at.
const HEALTH_STEP: Duration = Duration::from_millis(200);

/// A configuration for the run loop to swap in, as a SIGHUP reload does; it answers on `done`
/// whether the new configuration started.
pub(crate) struct Apply {
    pub loaded: Loaded,
    pub plan: Plan,
    pub done: oneshot::Sender<Result<(), String>>,
}

fn fleet_dir(local: &Loaded) -> PathBuf {
    local.config.collector.data_dir.join("fleet")
}

/// The keys of the local `[trust]` (those that read; `magpie check` reports the others).
fn keys(local: &Loaded) -> Vec<PublicKey> {
    local
        .config
        .trust
        .keys
        .iter()
        .filter_map(|k| trust::read_public(k.get_ref()).ok())
        .collect()
}

fn describe(errs: &[crate::config::ConfigError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks the bundle staged in `dir` again and prepares it as `magpie check` would.
async fn prepare_bundle(
    local: &Loaded,
    dir: &Path,
    keys: &[PublicKey],
    host: &Host,
) -> Result<(Loaded, Plan, Manifest), String> {
    let (d, k) = (dir.to_path_buf(), keys.to_vec());
    let m = tokio::task::spawn_blocking(move || verify_dir(&d, &k))
        .await
        .map_err(|e| e.to_string())??;
    prepare_manifest(local, dir, &m, host)
        .await
        .map(|(l, p)| (l, p, m))
}

async fn prepare_manifest(
    local: &Loaded,
    dir: &Path,
    m: &Manifest,
    host: &Host,
) -> Result<(Loaded, Plan), String> {
    let ours = magpie_host::engine::engine_target(magpie_host::engine::BUILD_TARGET);
    for p in &m.plugins {
        if let Some(t) = &p.target
            && magpie_host::engine::engine_target(t) != ours
        {
            return Err(format!(
                "{} was precompiled for {t}; this magpie runs {}",
                p.path,
                magpie_host::engine::BUILD_TARGET
            ));
        }
    }
    let loaded = compose(local, &dir.join(&m.version))?;
    let plan = check::prepare(&loaded, host)
        .await
        .map_err(|errs| describe(&errs))?;
    Ok((loaded, plan))
}

/// At start: the last-known-good bundle joined with the local file, when there is one and it
/// still verifies and checks; `None` runs the local file alone.
pub(crate) async fn starting(local: &Loaded, host: &Host, status: &Status) -> Option<Loaded> {
    let f = local.config.fleet.as_ref()?;
    let dir = fleet_dir(local);
    let state = load_state(&dir);
    status.update(|s| {
        s.device = f.device_id();
        s.bad.clone_from(&state.bad);
    });
    let good = state.good?;
    match prepare_bundle(local, &dir.join("bundles").join(&good), &keys(local), host).await {
        Ok((loaded, _, _)) => {
            log::info!("applying the last-known-good bundle; version={good}");
            status.update(|s| s.applied = Some(good));
            Some(loaded)
        }
        Err(e) => {
            let e = format!("last-known-good bundle {good} does not load: {e}");
            log::error!("{e}; running the local configuration alone");
            status.update(|s| s.last_error = Some(e));
            None
        }
    }
}

/// Starts the agent when the local file has `[fleet]`; `applied` is what [`starting`] chose.
/// The run loop receives its [`Apply`] requests.
pub(crate) fn spawn(
    local: Loaded,
    applied: Option<String>,
    host: Host,
    telemetry: Arc<Telemetry>,
    stop: watch::Receiver<bool>,
) -> Option<(tokio::task::JoinHandle<()>, mpsc::Receiver<Apply>)> {
    let settings = local.config.fleet.clone()?;
    let client = match HttpClient::new(&TlsOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            log::error!("the fleet agent cannot start: no HTTP client; error={e}");
            return None;
        }
    };
    let follow = match Follow::start(&settings, &settings.device_id()) {
        Ok(f) => f,
        Err(e) => {
            log::error!(
                "the fleet agent cannot start; url={} error={e}",
                settings.url.get_ref()
            );
            return None;
        }
    };
    let (tx, rx) = mpsc::channel(1);
    let dir = fleet_dir(&local);
    let agent = Agent {
        device: settings.device_id(),
        base: if settings.url.get_ref().ends_with('/') {
            settings.url.get_ref().clone()
        } else {
            format!("{}/", settings.url.get_ref())
        },
        settings,
        keys: keys(&local),
        state: load_state(&dir),
        dir,
        local,
        host,
        client,
        telemetry,
        tx,
        applied,
        etag: Etag::default(),
        last: None,
        follow,
        pending: None,
    };
    Some((tokio::spawn(agent.run(stop)), rx))
}

struct Agent {
    settings: Fleet,
    device: String,
    /// The fleet URL, ending in `/`.
    base: String,
    local: Loaded,
    dir: PathBuf,
    keys: Vec<PublicKey>,
    state: State,
    host: Host,
    client: HttpClient,
    telemetry: Arc<Telemetry>,
    tx: mpsc::Sender<Apply>,
    /// The version running, `None` for the local file alone.
    applied: Option<String>,
    /// The ETag of the last manifest fetched, and whether it may be sent back.
    etag: Etag,
    /// The SHA-256 of the last manifest dealt with: the same bytes again are unchanged.
    last: Option<String>,
    /// The MQTT topic followed, when `url` names one.
    follow: Follow,
    /// An envelope whose files could not be fetched, tried again every `poll`.
    pending: Option<Envelope>,
}

/// What one poll came to.
enum Polled {
    Unchanged,
    /// Not for this device, or already decided: nothing to do.
    Skipped(String),
    /// A new version was applied and awaits its health verdict.
    Applied {
        version: String,
        loaded: Box<Loaded>,
    },
    /// The server could not be asked.
    Failed(String),
    /// The bundle is refused; nothing was applied.
    Refused(String),
}

impl Agent {
    fn status(&self) -> &Status {
        &self.telemetry.fleet
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        log::info!(
            "fleet agent started; url={} device={} poll={:?} health_window={:?}",
            self.base,
            self.device,
            self.settings.poll.0,
            self.settings.health_window.0
        );
        let mut tick = tokio::time::interval(self.settings.poll.0);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let outcome = tokio::select! {
                _ = tick.tick() => {
                    if self.follow.is_mqtt() {
                        match self.pending.take() {
                            Some(e) => self.envelope(e).await,
                            None => continue,
                        }
                    } else {
                        self.status().update(|s| s.polls += 1);
                        self.poll().await
                    }
                }
                event = self.follow.next() => {
                    self.status().update(|s| s.polls += 1);
                    match event {
                        Event::Down(e) => Polled::Failed(format!("{}: {e}", self.follow.url)),
                        Event::Message(b) if b.is_empty() => {
                            log::warn!("the retained bundle was cleared; the running configuration stays; url={}", self.follow.url);
                            continue;
                        }
                        Event::Message(b) => match Envelope::parse(&b) {
                            Ok(e) => {
                                self.pending = None;
                                self.envelope(e).await
                            }
                            Err(e) => Polled::Refused(format!("{}: {e}", self.follow.url)),
                        },
                    }
                }
                _ = stop.changed() => return,
            };
            match outcome {
                Polled::Unchanged => {}
                Polled::Skipped(why) => log::debug!("fleet: {why}"),
                Polled::Failed(e) => {
                    log::warn!(
                        "fleet server not reachable, the running configuration stays; error={e}"
                    );
                    self.status().update(|s| {
                        s.poll_failures += 1;
                        s.last_error = Some(e);
                    });
                }
                // A manifest refused for its signature is fetched again every poll (it may
                // be mid-upload); the same refusal is counted and logged once.
                Polled::Refused(e) if self.status().snapshot().last_error.as_ref() == Some(&e) => {
                    log::debug!("bundle still refused: {e}");
                }
                Polled::Refused(e) => {
                    log::error!("bundle refused, nothing applied: {e}");
                    self.status().update(|s| {
                        s.refused += 1;
                        s.last_error = Some(e);
                    });
                }
                Polled::Applied { version, loaded } => {
                    tokio::select! {
                        () = self.watch(version, &loaded) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    async fn poll(&mut self) -> Polled {
        let url = format!("{}{MANIFEST}", self.base);
        let at = Instant::now();
        let cond = self.etag.condition().map(str::to_string);
        let (bytes, etag) =
            match fetch::get(&self.client, &url, cond.as_deref(), MANIFEST_LIMIT).await {
                Ok(None) => return Polled::Unchanged,
                Ok(Some(r)) => r,
                Err(e) => return Polled::Failed(e.into()),
            };
        if self.last.as_deref() == Some(sha256_hex(&bytes).as_str()) {
            self.etag.seen(&etag, at);
            return Polled::Unchanged;
        }
        let sig_url = format!("{url}.sig");
        let sig = match fetch::get(&self.client, &sig_url, None, MANIFEST_LIMIT).await {
            Ok(Some((s, _))) => String::from_utf8_lossy(&s).into_owned(),
            Ok(None) => return Polled::Failed(format!("{sig_url}: unexpected 304")),
            // A manifest published without its signature, or a signature not there yet: not
            // remembered, so the next poll looks again.
            Err(e) => return Polled::Refused(format!("missing signature: {}", String::from(e))),
        };
        if let Err(e) = trust::verify(&self.keys, Path::new(&sig_url), &sig, &bytes) {
            return Polled::Refused(e);
        }
        let hash = sha256_hex(&bytes);
        let outcome = self.take(&url, None, bytes, sig).await;
        // The outcome holds for this manifest unless the server failed us: remember it.
        if !matches!(outcome, Polled::Failed(_)) {
            self.etag.seen(&etag, at);
            self.last = Some(hash);
        }
        outcome
    }

    /// Deals with a manifest that came over MQTT; the bundle's files come from its
    /// `base_url` (which must be the manifest's when that signs one).
    async fn envelope(&mut self, e: Envelope) -> Polled {
        // The unsigned `base_url` counts: the same manifest with it put right is news.
        let hash = sha256_hex(format!("{}\n{}", e.base_url, e.manifest).as_bytes());
        if self.last.as_deref() == Some(hash.as_str()) {
            return Polled::Unchanged;
        }
        let what = format!("{} ({MANIFEST})", self.follow.url);
        if let Err(err) = trust::verify(
            &self.keys,
            Path::new(&what),
            &e.signature,
            e.manifest.as_bytes(),
        ) {
            return Polled::Refused(err);
        }
        let outcome = self
            .take(
                &what,
                Some(&e.base_url),
                e.manifest.clone().into_bytes(),
                e.signature.clone(),
            )
            .await;
        if matches!(outcome, Polled::Failed(_)) {
            self.pending = Some(e);
        } else {
            self.last = Some(hash);
        }
        outcome
    }

    /// Deals with a manifest whose signature verified; `envelope` is the `base_url` of the
    /// MQTT message it came in.
    async fn take(
        &mut self,
        url: &str,
        envelope: Option<&str>,
        bytes: Vec<u8>,
        sig: String,
    ) -> Polled {
        let m = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(e) => return Polled::Refused(format!("{url}: {e}")),
        };
        let v = m.version.clone();
        let base = match m.files_base(&self.base, envelope) {
            Ok(b) => b,
            Err(e) => return Polled::Refused(format!("{url}: bundle {v}: {e}")),
        };
        if self.applied.as_deref() == Some(v.as_str()) {
            return Polled::Skipped(format!("bundle {v} is already running"));
        }
        if self.state.bad.contains(&v) {
            return Polled::Skipped(format!("bundle {v} was rolled back before; not retried"));
        }
        if !m.selects(&self.device, &self.settings.labels) {
            return Polled::Skipped(format!("bundle {v} is not for this device"));
        }
        log::info!("fetching bundle; version={v}");
        let mut files = Vec::new();
        for f in m.files() {
            let furl = format!("{base}{}", f.path);
            match fetch::get(&self.client, &furl, None, f.size.saturating_add(1)).await {
                Ok(Some((b, _))) => {
                    if let Err(e) = f.check(&b) {
                        return Polled::Refused(format!("bundle {v}: {e}"));
                    }
                    files.push((f.path.clone(), b));
                }
                Ok(None) => return Polled::Failed(format!("{furl}: unexpected 304")),
                Err(fetch::Failure::TooLarge(e)) => {
                    return Polled::Refused(format!(
                        "bundle {v}: {e}: not the {} bytes the manifest says",
                        f.size
                    ));
                }
                Err(fetch::Failure::Server(e)) => {
                    return Polled::Failed(format!("bundle {v}: {e}"));
                }
            }
        }
        let staged = self.dir.join("bundles").join(&v);
        let (s, sigb) = (staged.clone(), sig.into_bytes());
        let write = tokio::task::spawn_blocking(move || stage(&s, &bytes, &sigb, &files)).await;
        match write {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Polled::Refused(format!("bundle {v}: staging: {e}")),
            Err(e) => return Polled::Refused(format!("bundle {v}: staging: {e}")),
        }
        let (loaded, plan) = match prepare_manifest(&self.local, &staged, &m, &self.host).await {
            Ok(r) => r,
            Err(e) => {
                remove_dir(&staged).await;
                return Polled::Refused(format!("bundle {v} does not pass the checks: {e}"));
            }
        };
        self.status().update(|s| s.candidate = Some(v.clone()));
        if let Err(e) = self.apply(loaded.clone(), plan).await {
            self.rollback(&v, &format!("it did not start: {e}")).await;
            return Polled::Skipped(format!("bundle {v} rolled back"));
        }
        log::info!(
            "bundle applied, watching its health; version={v} health_window={:?}",
            self.settings.health_window.0
        );
        Polled::Applied {
            version: v,
            loaded: Box::new(loaded),
        }
    }

    async fn apply(&self, loaded: Loaded, plan: Plan) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Apply { loaded, plan, done })
            .await
            .map_err(|_| "the collector is stopping".to_string())?;
        answer
            .await
            .map_err(|_| "the collector is stopping".to_string())?
    }

    /// Watches a just-applied version until it proves healthy or the window closes.
    async fn watch(&mut self, version: String, loaded: &Loaded) {
        let since = now_ms();
        let deadline = Instant::now() + self.settings.health_window.0;
        let jobs: Vec<String> = loaded
            .config
            .scrape
            .iter()
            .map(|s| s.get_ref().job.get_ref().clone())
            .collect();
        let exporters: Vec<String> = loaded
            .config
            .export
            .iter()
            .map(|e| e.get_ref().name.get_ref().clone())
            .collect();
        loop {
            let view = self.telemetry.view(now_ms());
            let counters = self.telemetry.exporter_counters();
            let seen = Observed {
                targets: &view.targets,
                exporters: &counters,
                plugins: &view.plugins,
            };
            match health::verdict(since, &jobs, &exporters, &seen) {
                Ok(()) => return self.commit(version).await,
                Err(why) if Instant::now() >= deadline => {
                    let why = format!(
                        "not healthy within {:?}: {why}",
                        self.settings.health_window.0
                    );
                    return self.rollback(&version, &why).await;
                }
                Err(_) => tokio::time::sleep(HEALTH_STEP).await,
            }
        }
    }

    async fn commit(&mut self, version: String) {
        self.state.good = Some(version.clone());
        self.applied = Some(version.clone());
        if let Err(e) = self.save().await {
            log::error!(
                "the fleet state could not be saved; the bundle runs but is not last-known-good after a restart; error={e}"
            );
        }
        self.status().update(|s| {
            s.applied = Some(version.clone());
            s.candidate = None;
        });
        log::info!("bundle healthy, committed as last-known-good; version={version}");
        let (bundles, keep) = (self.dir.join("bundles"), version);
        let _ = tokio::task::spawn_blocking(move || {
            for e in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
                if e.file_name().to_str() != Some(keep.as_str()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        })
        .await;
    }

    /// Marks `version` bad and brings back what ran before it.
    async fn rollback(&mut self, version: &str, why: &str) {
        let e = format!("bundle {version} rolled back: {why}");
        log::error!("{e}");
        self.state.bad.push(version.to_string());
        if let Err(err) = self.save().await {
            log::error!("the fleet state could not be saved; error={err}");
        }
        self.status().update(|s| {
            s.rollbacks += 1;
            s.candidate = None;
            s.last_error = Some(e);
            s.bad.clone_from(&self.state.bad);
        });
        remove_dir(&self.dir.join("bundles").join(version)).await;
        let previous = match &self.state.good {
            Some(g) => {
                let dir = self.dir.join("bundles").join(g);
                match prepare_bundle(&self.local, &dir, &self.keys, &self.host).await {
                    Ok((l, p, _)) => Some((g.clone(), l, p)),
                    Err(err) => {
                        log::error!(
                            "the last-known-good bundle does not load, falling back to the local configuration; version={g} error={err}"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let restored = match previous {
            Some((g, l, p)) => self.apply(l, p).await.map(|()| Some(g)),
            None => match check::prepare(&self.local, &self.host).await {
                Ok(p) => self.apply(self.local.clone(), p).await.map(|()| None),
                Err(errs) => Err(describe(&errs)),
            },
        };
        match restored {
            Ok(v) => {
                log::info!(
                    "previous configuration restored; version={}",
                    v.as_deref().unwrap_or("local")
                );
                self.status().update(|s| s.applied.clone_from(&v));
                self.applied = v;
            }
            Err(err) => {
                log::error!("the previous configuration could not be restored; error={err}")
            }
        }
    }

    async fn save(&self) -> Result<(), String> {
        save(&self.dir, &self.state).await
    }
}

/// On SIGHUP: the re-read local file joined with the bundle running now (the candidate while
/// one is in its health window, which neither commits nor ends it), so a reload keeps the
/// fleet's jobs and exporters. (The agent keeps the local file it started with for the
/// bundles it applies later; `[fleet]` changes take effect at the next restart.)
///
/// # Errors
/// When the running bundle no longer joins with the new local file.
pub(crate) fn rejoin(local: Loaded, status: &Status) -> Result<Loaded, String> {
    // A bundle in its health window is what runs: the trial goes on with the new local file.
    let s = status.snapshot();
    let Some(v) = s
        .candidate
        .or(s.applied)
        .filter(|_| local.config.fleet.is_some())
    else {
        return Ok(local);
    };
    compose(&local, &fleet_dir(&local).join("bundles").join(&v).join(&v))
        .map_err(|e| format!("the running bundle {v} with the new local file: {e}"))
}
