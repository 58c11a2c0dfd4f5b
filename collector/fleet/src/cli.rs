//! `magpie bundle build`, `magpie bundle verify` and `magpie bundle envelope`.

use super::bundle::{BuildArgs, build, verify_dir};
use super::envelope::Envelope;
use super::manifest::Rollout;
use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

/// The usage lines of `magpie bundle`.
pub const USAGE: &str = "\
    magpie bundle build --key NAME --config FILE --version V --out DIR [--plugins DIR]
                        [--target TRIPLE] [--device ID]... [--label K=V]... [--percent N]
                                        write a signed configuration bundle into DIR (a
                                        directory a web server serves): DIR/V/ and
                                        DIR/manifest.json(.sig); --target names the triple
                                        .cwasm plugins were compiled for; --device, --label
                                        and --percent restrict which devices take it
    magpie bundle verify --key NAME.pub DIR
                                        check a bundle's signature and every file's hash
    magpie bundle envelope --base-url URL DIR
                                        print the retained MQTT message for a built bundle
                                        whose files are served at URL (publish it with
                                        mosquitto_pub -r -t TOPIC -s)";

/// Runs `magpie bundle ARGS...`.
///
/// # Errors
/// Bad arguments, and whatever building or verifying found.
pub fn main(args: Vec<OsString>) -> Result<()> {
    let mut p = lexopt::Parser::from_args(args);
    let mut positional = Vec::new();
    let mut a = BuildArgs::default();
    let mut rollout = Rollout::default();
    let mut restricted = false;
    let (mut key, mut config, mut version, mut out) = (None, None, None, None);
    let mut base_url = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("key") => key = Some(PathBuf::from(p.value()?)),
            Long("config") => config = Some(PathBuf::from(p.value()?)),
            Long("plugins") => a.plugins = Some(PathBuf::from(p.value()?)),
            Long("version") => version = Some(p.value()?.string()?),
            Long("out") => out = Some(PathBuf::from(p.value()?)),
            Long("target") => a.target = Some(p.value()?.string()?),
            Long("base-url") => base_url = Some(p.value()?.string()?),
            Long("device") => {
                rollout.devices.push(p.value()?.string()?);
                restricted = true;
            }
            Long("label") => {
                let kv = p.value()?.string()?;
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--label `{kv}`: use K=V"))?;
                rollout.labels.insert(k.into(), v.into());
                restricted = true;
            }
            Long("percent") => {
                let v = p.value()?.string()?;
                let n: u8 =
                    v.parse().ok().filter(|n| *n <= 100).with_context(|| {
                        format!("--percent `{v}`: a whole number from 0 to 100")
                    })?;
                rollout.percent = Some(n);
                restricted = true;
            }
            Value(v) => positional.push(PathBuf::from(v)),
            other => return Err(other.unexpected().into()),
        }
    }
    let mut pos = positional.into_iter();
    match pos.next().as_ref().and_then(|v| v.to_str()) {
        Some("build") => {
            a.key = key.context("bundle build needs --key NAME (a private key)")?;
            a.config = config.context("bundle build needs --config FILE")?;
            a.version = version.context("bundle build needs --version V")?;
            a.out = out.context("bundle build needs --out DIR")?;
            a.rollout = restricted.then_some(rollout);
            if let Some(x) = pos.next() {
                bail!("unexpected argument `{}`", x.display());
            }
            let m = build(&a)?;
            println!(
                "{}: bundle {} ({} plugin files), manifest signed",
                a.out.display(),
                m.version,
                m.plugins.len()
            );
        }
        Some("verify") => {
            let key = key.context("bundle verify needs --key NAME.pub (a public key)")?;
            let dir = pos.next().context("bundle verify needs DIR")?;
            let public = crate::trust::read_public(&key).map_err(anyhow::Error::msg)?;
            let m = verify_dir(&dir, std::slice::from_ref(&public))
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            println!(
                "{}: bundle {}: good signature by {public}, {} files match their hashes",
                dir.display(),
                m.version,
                1 + m.plugins.len()
            );
        }
        Some("envelope") => {
            let base = base_url.context("bundle envelope needs --base-url URL")?;
            let dir = pos.next().context("bundle envelope needs DIR")?;
            let e = Envelope::of_dir(&dir, &base).map_err(anyhow::Error::msg)?;
            println!("{}", e.to_json());
        }
        _ => bail!("bundle needs `build`, `verify` or `envelope`; see `magpie --help`"),
    }
    Ok(())
}
