//! Helpers for `ci/bench.sh`, one binary with two commands:
//!
//! - `synth serve --series N --port-file F --log F`: a scrape target on loopback serving N
//!   series (node_exporter- and kube-style names, counters, gauges and histograms) whose values
//!   change on every scrape. The label part of each line is rendered once; a scrape only
//!   formats the numbers, so the target costs little next to the agents it feeds. Each scrape
//!   appends its Unix time in milliseconds to the log, which is how the bench counts the
//!   samples an agent scraped without trusting the agent's own counters.
//! - `synth proxy --upstream ADDR --port-file F --stats F --down-file F`: a TCP proxy that
//!   counts the bytes it forwards (the remote-write traffic on the wire, HTTP headers
//!   included) and writes the totals to the stats file. While the down file exists it closes
//!   its listener and every open connection, so the agent behind it sees its remote go away
//!   (connection refused) without the receiver being touched.

use std::path::PathBuf;
use std::process::ExitCode;

mod proxy;
mod target;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => Opts::parse(&args[1..]).and_then(|o| target::serve(&o)),
        Some("proxy") => Opts::parse(&args[1..]).and_then(|o| proxy::run(&o)),
        _ => Err("usage: synth serve --series N --port-file F [--log F] | synth proxy --upstream ADDR --port-file F --stats F --down-file F".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Options of both commands; each uses the ones it needs.
#[derive(Debug, Default)]
pub struct Opts {
    /// Series the target serves (rounded up to a whole block of 100).
    pub series: usize,
    /// Where the bound port is written once listening.
    pub port_file: Option<PathBuf>,
    /// Scrape log of the target.
    pub log: Option<PathBuf>,
    /// The proxy's upstream `host:port`.
    pub upstream: String,
    /// The proxy's byte counters.
    pub stats: Option<PathBuf>,
    /// While this file exists the proxy is down.
    pub down_file: Option<PathBuf>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            series: 1000,
            ..Self::default()
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .clone();
            match flag.as_str() {
                "--series" => {
                    o.series = value
                        .parse()
                        .map_err(|e| format!("--series {value}: {e}"))?;
                }
                "--port-file" => o.port_file = Some(value.into()),
                "--log" => o.log = Some(value.into()),
                "--upstream" => o.upstream = value,
                "--stats" => o.stats = Some(value.into()),
                "--down-file" => o.down_file = Some(value.into()),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(o)
    }
}

/// Writes `port` to the port file, atomically, so a reader never sees a partial number.
pub fn write_port(opts: &Opts, port: u16) -> Result<(), String> {
    if let Some(path) = &opts.port_file {
        write_atomic(path, &format!("{port}\n"))?;
    }
    Ok(())
}

/// Replaces `path` with `text` through a rename.
pub fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), String> {
    // Append, not replace, the extension: the port and stats files of one proxy share a stem.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}
