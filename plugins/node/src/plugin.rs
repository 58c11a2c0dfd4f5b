//! The wasm32 plugin: [`Fs`] over the host's file calls, [`Sink`] into the SDK's [`Emitter`].
//!
//! Every path goes through the host, which checks it against the job's grants; a refusal comes
//! back as [`FsError::Denied`], which the collectors treat as "not available here". The scrape
//! itself fails only when the host stops taking samples.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use magpie_sdk::abi::{FsStat, HostError, Level, ScrapeRequest, Value};
use magpie_sdk::guest::{self, Emitter, Error, Scraper, Stopped};

use crate::{CollectError, Config, Fs, FsError, Sink, StatVfs, collect};

struct Node {
    config: Config,
}

impl Scraper for Node {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        Ok(Self {
            config: Config::from_table(config).map_err(Error::new)?,
        })
    }

    fn scrape(&mut self, _req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
        let mut sink = ToEmitter {
            out,
            stopped: false,
        };
        let report = collect(&self.config, &mut HostFs, &mut sink);
        if sink.stopped {
            return Err(Stopped.into());
        }
        for (which, e) in report.failures() {
            // The failure is in `node_scrape_collector_success` already; the log says why.
            // Refusals and absent sources are configuration or hardware, not faults.
            let level = match e {
                CollectError::Fs {
                    error: FsError::Denied | FsError::NotFound,
                    ..
                }
                | CollectError::NoData
                | CollectError::Stopped => Level::Debug,
                CollectError::Fs { .. } | CollectError::Parse { .. } => Level::Warn,
            };
            guest::log(level, &format!("collector {} failed: {e}", which.name()));
        }
        Ok(())
    }
}

magpie_sdk::export_scraper!(Node);

fn fs_error(e: HostError) -> FsError {
    match e {
        HostError::Denied => FsError::Denied,
        HostError::NotFound => FsError::NotFound,
        _ => FsError::Io,
    }
}

/// The host's files, as the grants allow.
struct HostFs;

impl Fs for HostFs {
    fn read(&mut self, path: &str, buf: &mut Vec<u8>) -> Result<(), FsError> {
        guest::open(path)
            .and_then(|mut file| file.read_to_end(buf))
            .map_err(fs_error)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        guest::read_dir(path).map_err(fs_error)
    }

    fn statvfs(&mut self, path: &str) -> Result<StatVfs, FsError> {
        let FsStat::V1 {
            block_size,
            blocks,
            blocks_free,
            blocks_avail,
            files,
            files_free,
            readonly,
        } = guest::statvfs(path).map_err(fs_error)?;
        Ok(StatVfs {
            block_size,
            blocks,
            blocks_free,
            blocks_avail,
            files,
            files_free,
            readonly,
        })
    }

    fn real_path(&mut self, path: &str) -> Result<String, FsError> {
        guest::real_path(path).map_err(fs_error)
    }
}

/// Samples to the host, timestamped by it. Once the host refuses more, the rest are dropped
/// and [`Sink::stopped`] ends the collection.
struct ToEmitter<'a> {
    out: &'a mut Emitter,
    stopped: bool,
}

impl Sink for ToEmitter<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if !self.stopped
            && self
                .out
                .sample(name, labels.iter().copied(), value, None)
                .is_err()
        {
            self.stopped = true;
        }
    }

    fn stopped(&self) -> bool {
        self.stopped
    }
}
