//! `magpie bundle build`, `verify`, `envelope` and `publish`.

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
                        [--base-url URL]
                                        write a signed configuration bundle into DIR (a
                                        directory a web server serves): DIR/V/ and
                                        DIR/manifest.json(.sig); --target names the triple
                                        .cwasm plugins were compiled for; --device, --label
                                        and --percent restrict which devices take it;
                                        --base-url signs where devices fetch the files
    magpie bundle verify --key NAME.pub DIR
                                        check a bundle's signature and every file's hash
    magpie bundle envelope [--base-url URL] DIR
                                        print the retained MQTT message for a built bundle
                                        whose files are served at URL (default: the URL
                                        signed with bundle build --base-url)
    magpie bundle publish --mqtt mqtt[s]://BROKER[:PORT]/TOPIC [--base-url URL] DIR
                        [--mqtt-config FILE] [--username U --password-file F]
                        [--ca-file F] [--cert-file F --key-file F] [--client-id ID]
                                        publish that message, retained with QoS 1, and wait
                                        for the broker's acknowledgement; FILE holds url,
                                        basic_auth and tls as an [[export]] takes them";

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
    let mut mqtt = MqttFlags::default();
    while let Some(arg) = p.next()? {
        let broker_flag = match &arg {
            Long(name) if MqttFlags::NAMES.contains(name) => Some((*name).to_string()),
            _ => None,
        };
        if let Some(name) = broker_flag {
            mqtt.take(&name, p.value()?)?;
            continue;
        }
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
    let verb = pos.next();
    let verb = verb.as_ref().and_then(|v| v.to_str());
    if mqtt.given && verb != Some("publish") {
        bail!("--mqtt, --mqtt-config and the broker's credentials are for `bundle publish`");
    }
    match verb {
        Some("build") => {
            a.key = key.context("bundle build needs --key NAME (a private key)")?;
            a.config = config.context("bundle build needs --config FILE")?;
            a.version = version.context("bundle build needs --version V")?;
            a.out = out.context("bundle build needs --out DIR")?;
            a.rollout = restricted.then_some(rollout);
            a.base_url = base_url;
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
            let dir = pos.next().context("bundle envelope needs DIR")?;
            let e = Envelope::of_dir(&dir, base_url.as_deref()).map_err(anyhow::Error::msg)?;
            println!("{}", e.to_json());
        }
        Some("publish") => {
            let dir = pos.next().context("bundle publish needs DIR")?;
            if let Some(x) = pos.next() {
                bail!("unexpected argument `{}`", x.display());
            }
            println!("{}", mqtt.publish(&dir, base_url.as_deref())?);
        }
        _ => bail!("bundle needs `build`, `verify`, `envelope` or `publish`; see `magpie --help`"),
    }
    Ok(())
}

/// The broker flags of `bundle publish`.
#[derive(Default)]
struct MqttFlags {
    config: Option<PathBuf>,
    #[cfg(feature = "mqtt")]
    flags: crate::publish::Flags,
    given: bool,
}

impl MqttFlags {
    /// The flags `bundle publish` takes for its broker.
    const NAMES: [&str; 8] = [
        "mqtt",
        "mqtt-config",
        "username",
        "password-file",
        "ca-file",
        "cert-file",
        "key-file",
        "client-id",
    ];

    /// Takes broker flag `--name value`.
    fn take(&mut self, name: &str, value: OsString) -> Result<()> {
        self.given = true;
        if name == "mqtt-config" {
            self.config = Some(PathBuf::from(value));
            return Ok(());
        }
        #[cfg(feature = "mqtt")]
        {
            let f = &mut self.flags;
            match name {
                "mqtt" => f.url = Some(value.string()?),
                "username" => f.username = Some(value.string()?),
                "client-id" => f.client_id = Some(value.string()?),
                "password-file" => f.password_file = Some(PathBuf::from(value)),
                "ca-file" => f.ca_file = Some(PathBuf::from(value)),
                "cert-file" => f.cert_file = Some(PathBuf::from(value)),
                _ => f.key_file = Some(PathBuf::from(value)),
            }
        }
        #[cfg(not(feature = "mqtt"))]
        drop(value);
        Ok(())
    }

    #[cfg(feature = "mqtt")]
    fn publish(self, dir: &std::path::Path, base_url: Option<&str>) -> Result<String> {
        let target = match &self.config {
            Some(path) => crate::publish::Target::read(path)?,
            None => crate::publish::Target::default(),
        }
        .with_flags(self.flags);
        crate::publish::publish(dir, base_url, &target)
    }

    #[cfg(not(feature = "mqtt"))]
    fn publish(self, _dir: &std::path::Path, _base_url: Option<&str>) -> Result<String> {
        let _ = self.config;
        bail!("bundle publish: this build has no MQTT support (cargo feature `mqtt`)")
    }
}
