//! The `magpie` command line: `run`, `check`, `plugin inspect`, `plugin compile`,
//! `plugin sign`, `plugin verify`, `key generate`, `wal inspect`.
#![forbid(unsafe_code)]

use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;
use magpie::{config, trust};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
magpie: an edge metrics collector

USAGE:
    magpie run [--config FILE] [--listen ADDR] [--remote-write URL]
                                        run the collector (built-in default without --config;
                                        --remote-write adds a remote-write exporter to it)
    magpie check FILE                   validate a configuration and load every plugin it names
                                        (magpie TOML, or a prometheus.yml)
    magpie config convert FILE          print a prometheus.yml as the equivalent magpie TOML
    magpie plugin inspect FILE          show a plugin's ABI version, role, imports and size
                                        (FILE.wasm, or FILE.cwasm made by plugin compile)
    magpie plugin compile --target TRIPLE IN.wasm OUT.cwasm
                                        precompile a plugin for a device; put it in the
                                        plugin directory as <name>.cwasm
    magpie key generate --out NAME      make an Ed25519 key pair: NAME (private, mode 0600)
                                        and NAME.pub (for [trust] keys)
    magpie plugin sign --key NAME FILE  write FILE.sig, FILE's signature by the private key NAME
    magpie plugin verify --key NAME.pub FILE
                                        check FILE.sig against FILE and the public key
    magpie wal inspect DIR              show a WAL's segments, series, samples and cursors
{BUNDLE}
    magpie --version | --help

Logging: MAGPIE_LOG=error|warn|info|debug|trace (default info).";

enum Cmd {
    Run {
        config: Option<PathBuf>,
        listen: Option<String>,
        remote_write: Option<String>,
    },
    Check {
        file: PathBuf,
    },
    Convert {
        file: PathBuf,
    },
    Inspect {
        file: PathBuf,
    },
    Compile {
        target: String,
        input: PathBuf,
        output: PathBuf,
    },
    WalInspect {
        dir: PathBuf,
    },
    KeyGenerate {
        out: PathBuf,
    },
    Sign {
        key: PathBuf,
        file: PathBuf,
    },
    Verify {
        key: PathBuf,
        file: PathBuf,
    },
    Bundle(Vec<std::ffi::OsString>),
    Help,
    Version,
}

fn parse_args() -> Result<Cmd> {
    let mut p = lexopt::Parser::from_env();
    let verb = match p.next()? {
        Some(Value(v)) => v.string()?,
        Some(Long("help") | Short('h')) | None => return Ok(Cmd::Help),
        Some(Long("version") | Short('V')) => return Ok(Cmd::Version),
        Some(other) => return Err(other.unexpected().into()),
    };
    if verb == "bundle" {
        return Ok(Cmd::Bundle(p.raw_args()?.collect()));
    }
    let mut positional = Vec::new();
    let mut config = None;
    let mut target = None;
    let mut listen = None;
    let mut remote_write = None;
    let mut key = None;
    let mut out = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("config") | Short('c') if verb == "run" => {
                config = Some(PathBuf::from(p.value()?))
            }
            Long("target") if verb == "plugin" => target = Some(p.value()?.string()?),
            Long("listen") if verb == "run" => listen = Some(p.value()?.string()?),
            Long("remote-write") if verb == "run" => remote_write = Some(p.value()?.string()?),
            Long("key") if verb == "plugin" => key = Some(PathBuf::from(p.value()?)),
            Long("out") if verb == "key" => out = Some(PathBuf::from(p.value()?)),
            Long("help") | Short('h') => return Ok(Cmd::Help),
            Value(v) => positional.push(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    let mut pos = positional.into_iter();
    let cmd = match (verb.as_str(), pos.next().as_deref()) {
        ("run", None) => Cmd::Run {
            config,
            listen,
            remote_write,
        },
        ("check", Some(f)) => Cmd::Check { file: f.into() },
        ("config", Some("convert")) => Cmd::Convert {
            file: pos
                .next()
                .context("config convert needs a prometheus.yml")?
                .into(),
        },
        ("plugin", Some("inspect")) => Cmd::Inspect {
            file: pos.next().context("plugin inspect needs FILE.wasm")?.into(),
        },
        ("plugin", Some("compile")) => Cmd::Compile {
            target: target.context("plugin compile needs --target TRIPLE")?,
            input: pos.next().context("plugin compile needs IN.wasm")?.into(),
            output: pos.next().context("plugin compile needs OUT")?.into(),
        },
        ("wal", Some("inspect")) => Cmd::WalInspect {
            dir: pos.next().context("wal inspect needs DIR")?.into(),
        },
        ("key", Some("generate")) => Cmd::KeyGenerate {
            out: out.context("key generate needs --out NAME")?,
        },
        ("plugin", Some("sign")) => Cmd::Sign {
            key: key.context("plugin sign needs --key NAME (a private key)")?,
            file: pos.next().context("plugin sign needs FILE")?.into(),
        },
        ("plugin", Some("verify")) => Cmd::Verify {
            key: key.context("plugin verify needs --key NAME.pub (a public key)")?,
            file: pos.next().context("plugin verify needs FILE")?.into(),
        },
        ("check", None) => bail!("check needs a configuration FILE"),
        _ => bail!("unknown command `{verb}`; see `magpie --help`"),
    };
    if let Some(extra) = pos.next() {
        bail!("unexpected argument `{extra}`");
    }
    Ok(cmd)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> ExitCode {
    magpie::logger::init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("magpie: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match parse_args()? {
        Cmd::Help => println!("{}", USAGE.replace("{BUNDLE}", magpie::fleet::cli::USAGE)),
        Cmd::Bundle(args) => magpie::fleet::cli::main(args)?,
        Cmd::Version => println!(
            "magpie {} ({}, {})",
            env!("CARGO_PKG_VERSION"),
            magpie_host::engine::BUILD_TARGET,
            if magpie_host::engine::HAS_COMPILER {
                "loads .wasm and precompiled .cwasm plugins"
            } else {
                "no compiler: loads precompiled .cwasm plugins only"
            }
        ),
        Cmd::Run {
            config,
            listen,
            remote_write,
        } => {
            let loaded = match (&config, &remote_write) {
                (Some(_), Some(_)) => bail!(
                    "--remote-write adds to the built-in default; with --config, add an [[export]] to the file"
                ),
                (Some(f), None) => config::load(f),
                (None, Some(url)) => config::builtin_with_remote_write(url),
                (None, None) => Ok(config::builtin()),
            };
            let mut loaded = match loaded {
                Ok(l) => l,
                Err(errs) => return Ok(report(&errs)),
            };
            if let Some(addr) = listen {
                loaded.config.collector.listen = addr;
            }
            runtime()?.block_on(magpie::run::run(loaded, config))?;
        }
        Cmd::Check { file } => {
            let loaded = match config::load(&file) {
                Ok(l) => l,
                Err(errs) => return Ok(report(&errs)),
            };
            let rt = runtime()?;
            let host = magpie_host::Host::new()
                .map_err(|e| anyhow::anyhow!("cannot set up the WebAssembly engine: {e:#}"))?;
            if let Err(errs) = rt.block_on(magpie::check::prepare(&loaded, &host)) {
                return Ok(report(&errs));
            }
            println!(
                "{}: ok ({} scrape jobs, {} exporters)",
                file.display(),
                loaded.config.scrape.len(),
                loaded.config.export.len()
            );
        }
        Cmd::Convert { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match config::prometheus::convert(&file, &text) {
                Ok(toml) => print!(
                    "# magpie configuration converted from {}\n{toml}",
                    file.display()
                ),
                Err(errs) => return Ok(report(&errs)),
            }
        }
        Cmd::Inspect { file } => {
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin")
                .to_string();
            let host = magpie_host::Host::new()
                .map_err(|e| anyhow::anyhow!("cannot set up the WebAssembly engine: {e:#}"))?;
            let plugin = runtime()?.block_on(host.load(&name, &file))?;
            println!(
                "plugin:      {name}\nfile:        {}\n{}",
                file.display(),
                plugin.info()
            );
        }
        Cmd::Compile {
            target,
            input,
            output,
        } => compile(&target, &input, &output)?,
        Cmd::KeyGenerate { out } => {
            let key = trust::generate(&out)?;
            println!(
                "{}: private key (keep it off devices)\n{}: public key {} (list it in [trust] keys)",
                out.display(),
                key.path.display(),
                key.id
            );
        }
        Cmd::Sign { key, file } => {
            let (sig, id) = trust::sign_file(&key, &file)?;
            println!("{}: signed by key {id}", sig.display());
        }
        Cmd::Verify { key, file } => {
            let public = trust::read_public(&key).map_err(anyhow::Error::msg)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let sig_path = trust::signature_path(&file);
            let sig = std::fs::read_to_string(&sig_path)
                .with_context(|| format!("reading {}", sig_path.display()))?;
            let keys = [public];
            let by = trust::verify(&keys, &sig_path, &sig, &bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}: good signature by {by}", file.display());
        }
        Cmd::WalInspect { dir } => {
            let report = magpie_wal::inspect(&dir)
                .with_context(|| format!("inspecting {}", dir.display()))?;
            println!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(errs: &[config::ConfigError]) -> ExitCode {
    for e in errs {
        eprintln!("{e}");
    }
    ExitCode::FAILURE
}

#[cfg(feature = "compiler")]
fn compile(target: &str, input: &std::path::Path, output: &std::path::Path) -> Result<()> {
    use std::io::{Read as _, Write as _};
    let stdio = std::path::Path::new("-");
    let mut wasm = Vec::new();
    if input == stdio {
        std::io::stdin()
            .read_to_end(&mut wasm)
            .context("reading the module from standard input")?;
    } else {
        wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    }
    // `native`: this machine with `magpie run`'s engine settings, for `run`'s child compiles.
    let bytes = if target == magpie_host::child_compile::NATIVE_TARGET {
        magpie_host::engine::precompile_native(&wasm)
    } else {
        magpie_host::engine::precompile(target, &wasm)
    }
    .map_err(|e| anyhow::anyhow!("compiling {} for {target}: {e:#}", input.display()))?;
    if output == stdio {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .context("writing the module to standard output")?;
        return Ok(());
    }
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "{} -> {} ({} bytes, engine target {})",
        input.display(),
        output.display(),
        bytes.len(),
        magpie_host::engine::engine_target(target)
    );
    Ok(())
}

#[cfg(not(feature = "compiler"))]
fn compile(_target: &str, _input: &std::path::Path, _output: &std::path::Path) -> Result<()> {
    bail!(
        "this build has no compiler, so it cannot precompile plugins; run `magpie plugin compile` \
         on a build host with the default build of the same magpie version"
    )
}
