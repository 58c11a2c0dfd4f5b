//! The `[scrape.config]` table. Files (the module file, the community and password files) are
//! read through a function the caller passes: the host's granted `open` in the plugin, the
//! file system or a map in tests. A secret's content never appears in an error; its path
//! does.

use crate::module::{self, Module};
use crate::usm::{AuthProtocol, Level, User};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use magpie_sdk::abi::Value;

/// Keys of `[scrape.config]`.
pub const CONFIG_KEYS: &[&str] = &[
    "version",
    "community_file",
    "modules_file",
    "modules",
    "max_repetitions",
    "retries",
    "timeout_ms",
    "username",
    "security_level",
    "auth_protocol",
    "auth_password_file",
    "priv_protocol",
    "priv_password_file",
    "context_name",
];

/// How the plugin talks to the agent.
#[derive(Debug, Clone)]
pub enum Security {
    /// v1 or v2c with a community.
    Community {
        /// 0 for v1, 1 for v2c (the message's version field).
        version: i64,
        /// The community.
        community: Vec<u8>,
    },
    /// v3 with a USM user.
    Usm(User),
}

/// The plugin's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Version and credentials.
    pub security: Security,
    /// The modules, read from the module file.
    pub modules: Vec<Module>,
}

fn secret(
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    key: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let mut s = read(path).map_err(|e| format!("config key `{key}`: {path}: {e}"))?;
    while matches!(s.last(), Some(b'\n' | b'\r')) {
        s.pop();
    }
    if s.is_empty() {
        return Err(format!("config key `{key}`: {path} is empty"));
    }
    Ok(s)
}

impl Config {
    /// Reads the table; `read` returns a file's bytes.
    ///
    /// # Errors
    /// A message naming the key (and file) at fault.
    pub fn from_table(
        table: &Value,
        read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Self, String> {
        let Value::Table(entries) = table else {
            return Err("[scrape.config] must be a table".into());
        };
        for (k, _) in entries {
            if !CONFIG_KEYS.contains(&k.as_str()) {
                return Err(format!(
                    "config key `{k}`: unknown (known: {})",
                    CONFIG_KEYS.join(", ")
                ));
            }
        }
        let text = |key: &str| -> Result<Option<&str>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .map(Some)
                    .ok_or_else(|| format!("config key `{key}`: must be a string")),
            }
        };
        let uint = |key: &str, max: i64| -> Result<Option<u32>, String> {
            table
                .get(key)
                .map(|v| {
                    v.as_int()
                        .filter(|i| (0..=max).contains(i))
                        .and_then(|i| u32::try_from(i).ok())
                        .ok_or_else(|| {
                            format!("config key `{key}`: must be an integer from 0 to {max}")
                        })
                })
                .transpose()
        };
        let version = text("version")?.unwrap_or("2c");
        let v3_keys = [
            "username",
            "security_level",
            "auth_protocol",
            "auth_password_file",
            "priv_protocol",
            "priv_password_file",
            "context_name",
        ];
        let security = match version {
            "1" | "2c" | "2" => {
                if let Some(k) = v3_keys.iter().find(|k| table.get(k).is_some()) {
                    return Err(format!("config key `{k}`: only for version = \"3\""));
                }
                let community = match text("community_file")? {
                    None => b"public".to_vec(),
                    Some(path) => secret(read, "community_file", path)?,
                };
                Security::Community {
                    version: if version == "1" { 0 } else { 1 },
                    community,
                }
            }
            "3" => {
                if table.get("community_file").is_some() {
                    return Err("config key `community_file`: v3 has users, not communities".into());
                }
                Security::Usm(user(&text)?.finish(read)?)
            }
            v => {
                return Err(format!(
                    "config key `version`: `{v}` is not one of 1, 2c, 3"
                ));
            }
        };
        let path = text("modules_file")?
            .ok_or("config key `modules_file`: missing; name snmp_exporter's generated snmp.yml")?;
        let names: Vec<String> = match table.get("modules") {
            None => return Err(
                "config key `modules`: missing; list the modules to walk (such as [\"if_mib\"])"
                    .into(),
            ),
            Some(v) => v
                .as_list()
                .and_then(|l| {
                    l.iter()
                        .map(|m| m.as_str().map(ToString::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .filter(|l| !l.is_empty())
                .ok_or("config key `modules`: must be a non-empty list of module names")?,
        };
        let bytes = read(path).map_err(|e| format!("config key `modules_file`: {path}: {e}"))?;
        let body = core::str::from_utf8(&bytes)
            .map_err(|_| format!("config key `modules_file`: {path}: not UTF-8"))?;
        let mut modules = module::load(body, &names).map_err(|e| format!("{path}: {e}"))?;
        let max_rep = uint("max_repetitions", 65_535)?;
        let retries = uint("retries", 10)?;
        let timeout = uint("timeout_ms", i64::from(u32::MAX))?;
        for m in &mut modules {
            if let Some(r) = max_rep.filter(|r| *r > 0) {
                m.max_repetitions = r;
            }
            if let Some(r) = retries {
                m.retries = r;
            }
            if let Some(t) = timeout.filter(|t| *t > 0) {
                m.timeout_ms = t;
            }
        }
        Ok(Self { security, modules })
    }
}

struct PendingUser<'a> {
    name: &'a str,
    level: Level,
    auth: Option<(AuthProtocol, &'a str)>,
    privacy: Option<&'a str>,
    context: &'a str,
}

fn user<'a>(
    text: &dyn Fn(&str) -> Result<Option<&'a str>, String>,
) -> Result<PendingUser<'a>, String> {
    let name = text("username")?.ok_or("config key `username`: missing (version 3)")?;
    let level = match text("security_level")?.unwrap_or("noAuthNoPriv") {
        "noAuthNoPriv" => Level::NoAuthNoPriv,
        "authNoPriv" => Level::AuthNoPriv,
        "authPriv" => Level::AuthPriv,
        l => {
            return Err(format!(
                "config key `security_level`: `{l}` is not one of noAuthNoPriv, authNoPriv, authPriv"
            ));
        }
    };
    let auth = if level == Level::NoAuthNoPriv {
        None
    } else {
        let p = text("auth_protocol")?.unwrap_or("MD5");
        let proto = AuthProtocol::parse(p).ok_or_else(|| {
            let names: Vec<&str> = AuthProtocol::NAMES.iter().map(|(n, _)| *n).collect();
            format!(
                "config key `auth_protocol`: `{p}` is not one of {}",
                names.join(", ")
            )
        })?;
        let file = text("auth_password_file")?.ok_or(
            "config key `auth_password_file`: missing (security_level needs authentication)",
        )?;
        Some((proto, file))
    };
    let privacy = if level == Level::AuthPriv {
        let p = text("priv_protocol")?.unwrap_or("AES");
        if !matches!(p, "AES" | "AES128" | "AES-128") {
            return Err(format!(
                "config key `priv_protocol`: `{p}` is not supported (AES is)"
            ));
        }
        Some(
            text("priv_password_file")?
                .ok_or("config key `priv_password_file`: missing (security_level authPriv)")?,
        )
    } else {
        None
    };
    Ok(PendingUser {
        name,
        level,
        auth,
        privacy,
        context: text("context_name")?.unwrap_or(""),
    })
}

impl PendingUser<'_> {
    fn finish(self, read: &dyn Fn(&str) -> Result<Vec<u8>, String>) -> Result<User, String> {
        let auth = match self.auth {
            None => None,
            Some((p, path)) => {
                let pw = secret(read, "auth_password_file", path)?;
                if pw.len() < 8 {
                    return Err(format!(
                        "config key `auth_password_file`: {path}: USM passwords have at least 8 characters"
                    ));
                }
                Some((p, p.password_key(&pw)))
            }
        };
        let privacy = match (self.privacy, &auth) {
            (Some(path), Some((p, _))) => {
                let pw = secret(read, "priv_password_file", path)?;
                if pw.len() < 8 {
                    return Err(format!(
                        "config key `priv_password_file`: {path}: USM passwords have at least 8 characters"
                    ));
                }
                Some(p.password_key(&pw))
            }
            _ => None,
        };
        Ok(User {
            name: self.name.to_string(),
            level: self.level,
            auth,
            privacy,
            context: self.context.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entries: &[(&str, Value)]) -> Value {
        Value::Table(
            entries
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn files(path: &str) -> Result<Vec<u8>, String> {
        match path {
            "/etc/snmp.yml" => Ok(include_bytes!("../testdata/snmp.yml").to_vec()),
            "/etc/community" => Ok(b"s3cret-community\n".to_vec()),
            "/etc/auth" => Ok(b"alicepass1\n".to_vec()),
            "/etc/short" => Ok(b"short\n".to_vec()),
            _ => Err("not found".into()),
        }
    }

    fn base() -> Vec<(&'static str, Value)> {
        alloc::vec![
            ("modules_file", s("/etc/snmp.yml")),
            ("modules", Value::List(alloc::vec![s("if_mib")])),
        ]
    }

    #[test]
    fn the_documented_v2c_example_reads() {
        let mut e = base();
        e.push(("version", s("2c")));
        e.push(("community_file", s("/etc/community")));
        e.push(("max_repetitions", Value::Int(10)));
        let c = Config::from_table(&t(&e), &files).unwrap();
        let Security::Community { version, community } = &c.security else {
            panic!()
        };
        assert_eq!(
            (*version, community.as_slice()),
            (1, b"s3cret-community".as_slice())
        );
        assert_eq!(c.modules[0].max_repetitions, 10);
    }

    #[test]
    fn errors_name_the_key_and_file_but_never_a_secret() {
        let mut e = base();
        e.push(("community_file", s("/etc/missing")));
        let err = Config::from_table(&t(&e), &files).unwrap_err();
        assert!(
            err.contains("`community_file`: /etc/missing: not found"),
            "{err}"
        );
        let mut e = base();
        e.push(("version", s("3")));
        e.push(("username", s("alice")));
        e.push(("security_level", s("authPriv")));
        e.push(("auth_protocol", s("SHA3")));
        e.push(("auth_password_file", s("/etc/auth")));
        let err = Config::from_table(&t(&e), &files).unwrap_err();
        assert!(err.contains("`auth_protocol`: `SHA3`"), "{err}");
        let mut e = base();
        e.push(("version", s("3")));
        e.push(("username", s("alice")));
        e.push(("security_level", s("authNoPriv")));
        e.push(("auth_password_file", s("/etc/short")));
        let err = Config::from_table(&t(&e), &files).unwrap_err();
        assert!(
            err.contains("at least 8") && !err.contains("short\n"),
            "{err}"
        );
        let mut e = base();
        e.push(("modules", Value::List(alloc::vec![s("if_mob")])));
        let err = Config::from_table(&t(&[e[0].clone(), e[2].clone()]), &files).unwrap_err();
        assert!(err.contains("/etc/snmp.yml: module `if_mob`"), "{err}");
        let err = Config::from_table(
            &t(&[("modules_file", s("/etc/snmp.yml")), ("colour", s("red"))]),
            &files,
        )
        .unwrap_err();
        assert!(err.contains("config key `colour`: unknown"), "{err}");
        for err in [
            Config::from_table(
                &t(&[("version", s("3")), ("community_file", s("/etc/community"))]),
                &files,
            )
            .unwrap_err(),
            Config::from_table(&t(&[("username", s("bob"))]), &files).unwrap_err(),
        ] {
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("config key"), "{err}");
        }
    }
}
