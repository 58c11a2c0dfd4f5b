//! A logger for stderr that journald understands: under systemd (`JOURNAL_STREAM` set) each
//! line carries its syslog priority as a `<N>` prefix and no timestamp, since the journal adds
//! one; elsewhere lines carry a UTC timestamp and the level.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write as _;

struct Logger {
    journal: bool,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
            && !metadata.target().starts_with("wasmtime")
            && !metadata.target().starts_with("cranelift")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            let prio = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            writeln!(err, "<{prio}>{}", record.args())
        } else {
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
            writeln!(err, "{now} {:<5} {}", record.level(), record.args())
        };
    }

    fn flush(&self) {}
}

/// Installs the logger. The level comes from `MAGPIE_LOG` (`error` … `trace`), default `info`.
pub fn init() {
    let level = std::env::var("MAGPIE_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(LevelFilter::Info);
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    if log::set_boxed_logger(Box::new(Logger { journal, level })).is_ok() {
        log::set_max_level(level);
    }
}
