//! The `snmp` plugin end to end against a real agent (Debian's net-snmp `snmpd`, run by the
//! test on an ephemeral loopback port with a persistent directory of its own): the if_mib
//! module of snmp_exporter's generated snmp.yml walked over v2c gives the interface table
//! `snmpwalk` prints (descriptions, types, MTUs, indexes; counters that only grow); v1 (GETNEXT
//! walks), v3 noAuthNoPriv, authNoPriv with MD5 and SHA-256, authPriv with SHA/AES and
//! SHA-512/AES users give the same table; a wrong password and an unknown user
//! make the target down with the USM report named, a silent port by timeout, while the
//! other target of the same job stays up; no secret reaches the log.

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{Prometheus, ScriptedReceiver};
use prost::Message as _;
use remote_write::proto::v1::MetadataWriteRequest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const COMMUNITY: &str = "magpie-c0mmunity";
/// A community snmpd honours over v1 only (its security model), so a v1 job that sent v2c
/// messages would get nothing.
const V1_COMMUNITY: &str = "magpie-v1-only";
const ALICE_AUTH: &str = "alice-auth-pass";
const ALICE_PRIV: &str = "alice-priv-pass";
const CAROL_AUTH: &str = "carol-auth-pass-512";
const CAROL_PRIV: &str = "carol-priv-pass-512";
const BOB_AUTH: &str = "bob-auth-pass-256";
const ERIN_AUTH: &str = "erin-auth-pass-md5";
const SYS_NAME: &str = "gw-7.plant.example";
const SYS_LOCATION: &str = "Hall 3, rack 2 \"north\"";
const SYS_CONTACT: &str = "ops@plant.example";
const SYS_DESCR: &str = "Packaging line gateway";

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/snmp/testdata/snmp.yml")
}

/// Starts snmpd on `port` with a community, v3 users of every security level and the
/// system group set; returns once it answers.
fn snmpd(dir: &Path, port: u16) -> Proc {
    let conf = dir.join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "rocommunity {COMMUNITY} 127.0.0.1\n\
             com2sec v1only 127.0.0.1 {V1_COMMUNITY}\ngroup v1group v1 v1only\n\
             view everything included .1\n\
             access v1group \"\" v1 noauth exact everything none none\n\
             createUser alice SHA \"{ALICE_AUTH}\" AES \"{ALICE_PRIV}\"\n\
             createUser carol SHA-512 \"{CAROL_AUTH}\" AES \"{CAROL_PRIV}\"\n\
             createUser bob SHA-256 \"{BOB_AUTH}\"\n\
             createUser erin MD5 \"{ERIN_AUTH}\"\n\
             createUser dave\n\
             rouser alice priv\nrouser carol priv\nrouser bob auth\nrouser erin auth\n\
             rouser dave noauth\n\
             sysName {SYS_NAME}\nsysLocation {SYS_LOCATION}\nsysContact {SYS_CONTACT}\n\
             sysDescr {SYS_DESCR}\nsysServices 72\n"
        ),
    )
    .unwrap();
    let persist = dir.join("snmpd-state");
    std::fs::create_dir_all(&persist).unwrap();
    let child = Command::new("snmpd")
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .arg(format!("udp:127.0.0.1:{port}"))
        .env("SNMP_PERSISTENT_DIR", &persist)
        .env("MIBS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd (ci/setup.sh installs Debian's snmpd)");
    let agent = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while snmpwalk(port, "1.3.6.1.2.1.1.1").is_empty() {
        assert!(Instant::now() < deadline, "snmpd did not answer on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    agent
}

/// `snmpwalk -v2c` of `oid`, as (last sub-identifier, value without quotes).
fn snmpwalk(port: u16, oid: &str) -> Vec<(String, String)> {
    let out = Command::new("snmpwalk")
        .args([
            "-v2c", "-c", COMMUNITY, "-On", "-Oq", "-Oe", "-t", "1", "-r", "0",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg(oid)
        .env("MIBS", "")
        .output()
        .expect("snmpwalk (ci/setup.sh installs Debian's snmp)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (o, v) = l.split_once(' ')?;
            let index = o.rsplit('.').next()?.to_string();
            Some((index, v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// `snmpget -v2c` of `oid`: the value as a string (quotes and escapes removed, an OID without
/// its leading dot, time ticks as a number).
fn snmpget(port: u16, oid: &str) -> String {
    let out = Command::new("snmpget")
        .args([
            "-v2c", "-c", COMMUNITY, "-On", "-Oq", "-Ot", "-Oe", "-t", "1", "-r", "0",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg(oid)
        .env("MIBS", "")
        .output()
        .expect("snmpget (ci/setup.sh installs Debian's snmp)");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, v) = text
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("snmpget {oid}: {text}"));
    unquote(v)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        inner.replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        v.trim_start_matches('.').to_string()
    }
}

/// A job as the README writes it: no `files`, so the plugin may read the files its
/// configuration names and nothing else.
fn job(name: &str, targets: &[String], dir: &Path, config: &str) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "[[scrape]]\njob = \"{name}\"\nplugin = \"snmp\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         targets = [{}]\n[scrape.config]\nmodules_file = \"{}\"\nmodules = [\"if_mib\"]\n{config}\n",
        targets.join(", "),
        dir.join("snmp.yml").display(),
    )
}

fn secret(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{content}\n")).unwrap();
    p.display().to_string()
}

fn up_of(stored: &[common::Stored], job: &str, instance: &str) -> Option<f64> {
    stored
        .iter()
        .rev()
        .find(|(l, _, _)| {
            label(l, "__name__") == Some("up")
                && label(l, "job") == Some(job)
                && label(l, "instance") == Some(instance)
        })
        .map(|s| s.2)
}

#[test]
fn if_mib_over_v2c_and_v3_as_snmpwalk_sees_it_and_failures_by_name() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(testdata(), d.join("snmp.yml")).unwrap();
    let port = free_udp_port();
    let _agent = snmpd(d, port);
    // A port that takes datagrams and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let agent = format!("udp://127.0.0.1:{port}");
    let quiet = format!("udp://{}", silent.local_addr().unwrap());

    let community = secret(d, "community", COMMUNITY);
    let v1_community = secret(d, "v1-community", V1_COMMUNITY);
    let alice_auth = secret(d, "alice-auth", ALICE_AUTH);
    let alice_priv = secret(d, "alice-priv", ALICE_PRIV);
    let carol_auth = secret(d, "carol-auth", CAROL_AUTH);
    let carol_priv = secret(d, "carol-priv", CAROL_PRIV);
    let bob_auth = secret(d, "bob-auth", BOB_AUTH);
    let erin_auth = secret(d, "erin-auth", ERIN_AUTH);
    let wrong = secret(d, "wrong", "not-alices-password");
    let v3 = |user: &str, auth_proto: &str, auth: &str, privacy: &str| {
        format!(
            "version = \"3\"\nusername = \"{user}\"\nsecurity_level = \"authPriv\"\n\
             auth_protocol = \"{auth_proto}\"\nauth_password_file = \"{auth}\"\n\
             priv_protocol = \"AES\"\npriv_password_file = \"{privacy}\"\n"
        )
    };
    let short = "timeout_ms = 150\nretries = 1\n";
    let jobs = [
        job(
            "v2c",
            &[agent.clone(), quiet.clone()],
            d,
            &format!("version = \"2c\"\ncommunity_file = \"{community}\"\n{short}"),
        ),
        job(
            "v3",
            std::slice::from_ref(&agent),
            d,
            &v3("alice", "SHA", &alice_auth, &alice_priv),
        ),
        job(
            "v3sha512",
            std::slice::from_ref(&agent),
            d,
            &v3("carol", "SHA512", &carol_auth, &carol_priv),
        ),
        job(
            "v3authnopriv",
            std::slice::from_ref(&agent),
            d,
            &format!(
                "version = \"3\"\nusername = \"bob\"\nsecurity_level = \"authNoPriv\"\n\
                 auth_protocol = \"SHA256\"\nauth_password_file = \"{bob_auth}\"\n"
            ),
        ),
        job(
            "v1",
            std::slice::from_ref(&agent),
            d,
            &format!("version = \"1\"\ncommunity_file = \"{v1_community}\"\n"),
        ),
        job(
            "v3noauth",
            std::slice::from_ref(&agent),
            d,
            "version = \"3\"\nusername = \"dave\"\nsecurity_level = \"noAuthNoPriv\"\n",
        ),
        job(
            "v3md5",
            std::slice::from_ref(&agent),
            d,
            &format!(
                "version = \"3\"\nusername = \"erin\"\nsecurity_level = \"authNoPriv\"\n\
                 auth_protocol = \"MD5\"\nauth_password_file = \"{erin_auth}\"\n"
            ),
        ),
        job(
            "wrongpass",
            std::slice::from_ref(&agent),
            d,
            &v3("alice", "SHA", &wrong, &alice_priv),
        ),
        job(
            "nouser",
            std::slice::from_ref(&agent),
            d,
            &v3("mallory", "SHA", &alice_auth, &alice_priv),
        ),
    ];
    let cfg = d.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n{}",
            plugin_dir(d, &["snmp"]).display(),
            d.join("data").display(),
            jobs.concat()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    for j in [
        "v2c",
        "v1",
        "v3",
        "v3sha512",
        "v3authnopriv",
        "v3noauth",
        "v3md5",
        "wrongpass",
        "nouser",
    ] {
        m.wait_for(&format!("magpie_scrapes_total{{job=\"{j}\"}}"), 3.0);
    }
    let log = m.log_text();
    assert!(m.terminate().success(), "{log}");
    let stored = read_wal(&d.join("data/wal"));

    // What snmpwalk prints, per ifIndex.
    let descr: BTreeMap<String, String> =
        snmpwalk(port, "1.3.6.1.2.1.2.2.1.2").into_iter().collect();
    let types: BTreeMap<String, String> =
        snmpwalk(port, "1.3.6.1.2.1.2.2.1.3").into_iter().collect();
    let mtus: BTreeMap<String, String> =
        snmpwalk(port, "1.3.6.1.2.1.2.2.1.4").into_iter().collect();
    assert!(descr.values().any(|d| d == "lo"), "{descr:?}");
    let instance = format!("127.0.0.1:{port}");
    for j in [
        "v2c",
        "v1",
        "v3",
        "v3sha512",
        "v3authnopriv",
        "v3noauth",
        "v3md5",
    ] {
        assert_eq!(up_of(&stored, j, &instance), Some(1.0), "{j}: {log}");
        let of = |name: &str| -> BTreeMap<String, (Vec<(String, String)>, f64)> {
            stored
                .iter()
                .filter(|(l, _, _)| {
                    label(l, "__name__") == Some(name) && label(l, "job") == Some(j)
                })
                .map(|(l, _, v)| (label(l, "ifIndex").unwrap().to_string(), (l.clone(), *v)))
                .collect()
        };
        let index = of("ifIndex");
        assert_eq!(
            index.keys().collect::<BTreeSet<_>>(),
            descr.keys().collect::<BTreeSet<_>>(),
            "{j}: interfaces"
        );
        for (i, (labels, v)) in &index {
            assert_eq!(v.to_string(), *i, "{j}: ifIndex value");
            assert_eq!(
                label(labels, "ifDescr"),
                Some(descr[i].as_str()),
                "{j}: ifDescr of {i}"
            );
        }
        for (i, (labels, v)) in of("ifMtu") {
            assert_eq!(v.to_string(), mtus[&i], "{j}: ifMtu of {i}");
            assert_eq!(label(&labels, "ifDescr"), Some(descr[&i].as_str()));
        }
        for (i, (labels, v)) in of("ifType_info") {
            assert_eq!(v, 1.0);
            let want = if types[&i] == "24" {
                "softwareLoopback"
            } else {
                "ethernetCsmacd"
            };
            if types[&i] == "24" || types[&i] == "6" {
                assert_eq!(label(&labels, "ifType"), Some(want), "{j}: ifType of {i}");
            }
        }
    }
    // v1 has no Counter64: the 64-bit columns of ifXTable are not there, the 32-bit are.
    let has_series = |job: &str, name: &str| {
        stored
            .iter()
            .any(|(l, _, _)| label(l, "__name__") == Some(name) && label(l, "job") == Some(job))
    };
    assert!(has_series("v1", "ifInOctets") && has_series("v2c", "ifHCInOctets"));
    assert!(!has_series("v1", "ifHCInOctets"), "v1 got a Counter64");

    // Counters only grow between scrapes.
    let lo = descr.iter().find(|(_, d)| *d == "lo").unwrap().0.clone();
    let series: Vec<f64> = stored
        .iter()
        .filter(|(l, _, _)| {
            label(l, "__name__") == Some("ifHCInOctets")
                && label(l, "job") == Some("v2c")
                && label(l, "ifIndex") == Some(lo.as_str())
        })
        .map(|s| s.2)
        .collect();
    assert!(series.len() >= 2, "{series:?}");
    assert!(series.windows(2).all(|w| w[0] <= w[1]), "{series:?}");

    // Failures: down, with the reason, and the other target of the job unaffected.
    let quiet_instance = quiet.trim_start_matches("udp://");
    assert_eq!(up_of(&stored, "v2c", quiet_instance), Some(0.0), "{log}");
    assert!(
        log.contains("no answer after 2 tries of at most 150 ms each"),
        "{log}"
    );
    assert_eq!(up_of(&stored, "wrongpass", &instance), Some(0.0), "{log}");
    assert!(log.contains("USM report wrongDigests"), "{log}");
    assert_eq!(up_of(&stored, "nouser", &instance), Some(0.0), "{log}");
    assert!(log.contains("USM report unknownUserNames"), "{log}");
    for s in [
        COMMUNITY,
        V1_COMMUNITY,
        ALICE_AUTH,
        ALICE_PRIV,
        CAROL_AUTH,
        ERIN_AUTH,
        "not-alices-password",
    ] {
        assert!(!log.contains(s), "a secret reached the log");
    }
    println!("snmp suite: {:?}", started.elapsed());
}

/// (family, type) of every metadata entry the recording receiver got.
fn metadata_types(r: &ScriptedReceiver) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    for req in r.received() {
        let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&req.body) else {
            continue;
        };
        let Ok(m) = MetadataWriteRequest::decode(raw.as_slice()) else {
            continue;
        };
        for f in m.metadata {
            out.insert(f.metric_family_name, f.r#type);
        }
    }
    out
}

/// Labels and values of a series.
type Points = (Vec<(String, String)>, Vec<f64>);

/// The points of the one series `selector` matches in Prometheus, with its labels.
fn series(prom: &Prometheus, selector: &str) -> Option<Points> {
    let mut all = prom.samples(selector, "5m");
    assert!(all.len() <= 1, "{selector}: {all:?}");
    all.pop()
        .map(|(l, points)| (l, points.into_iter().map(|p| p.1).collect()))
}

fn has(labels: &[(String, String)], name: &str, value: &str) -> bool {
    labels.iter().any(|(k, v)| k == name && v == value)
}

/// Remote write 1.0 metadata types.
const COUNTER: i32 = 1;
const GAUGE: i32 = 2;

#[test]
fn system_and_if_mib_reach_prometheus_as_snmpget_reads_them() {
    let started = Instant::now();
    let prom = Prometheus::start();
    let recorder = ScriptedReceiver::start(Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(testdata(), d.join("snmp.yml")).unwrap();
    let port = free_udp_port();
    let _agent = snmpd(d, port);
    let community = secret(d, "community", COMMUNITY);
    let uptime_before: f64 = snmpget(port, "1.3.6.1.2.1.1.3.0").parse().unwrap();
    let cfg = d.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[scrape]]\njob = \"gateway\"\nplugin = \"snmp\"\ninterval = \"1s\"\n\
             targets = [\"udp://127.0.0.1:{port}\"]\n[scrape.config]\nversion = \"2c\"\n\
             community_file = \"{community}\"\nmodules_file = \"{}\"\n\
             modules = [\"system\", \"if_mib\"]\n\
             [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\n\
             [[export]]\nname = \"recorder\"\nplugin = \"remote-write\"\nurl = \"{}\"\n\
             metadata = {{ send = true, send_interval = \"1s\" }}\n",
            plugin_dir(d, &["snmp", "remote-write"]).display(),
            d.join("data").display(),
            d.join("snmp.yml").display(),
            prom.write_url(),
            recorder.url(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    let instance = format!("127.0.0.1:{port}");
    let sel = |name: &str| format!("{name}{{job=\"gateway\",instance=\"{instance}\"}}");

    // Three scrapes of sysUpTime in Prometheus and the counters' metadata at the recorder;
    // the deadline only bounds a failing run.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let uptimes = series(&prom, &sel("sysUpTime")).map_or(0, |s| s.1.len());
        if uptimes >= 3 && metadata_types(&recorder).contains_key("ifInOctets") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{uptimes} sysUpTime samples in Prometheus; log:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let uptime_after: f64 = snmpget(port, "1.3.6.1.2.1.1.3.0").parse().unwrap();

    // The system group's strings: a label of the metric's name on a sample of value 1, the
    // text snmpget prints, quotes included.
    for (name, oid, want) in [
        ("sysDescr", "1.3.6.1.2.1.1.1.0", SYS_DESCR),
        ("sysContact", "1.3.6.1.2.1.1.4.0", SYS_CONTACT),
        ("sysName", "1.3.6.1.2.1.1.5.0", SYS_NAME),
        ("sysLocation", "1.3.6.1.2.1.1.6.0", SYS_LOCATION),
    ] {
        assert_eq!(snmpget(port, oid), want, "{name} as snmpget prints it");
        let (labels, values) = series(&prom, &sel(name)).unwrap_or_else(|| panic!("{name}"));
        assert!(has(&labels, name, want), "{name}: {labels:?}");
        assert!(values.iter().all(|v| *v == 1.0), "{name}: {values:?}");
    }
    // sysObjectID: an OID value, dotted without the leading dot, as snmp_exporter writes it.
    let object_id = snmpget(port, "1.3.6.1.2.1.1.2.0");
    assert!(object_id.starts_with("1.3.6.1.4.1.8072."), "{object_id}");
    let (labels, _) = series(&prom, &sel("sysObjectID")).expect("sysObjectID");
    assert!(has(&labels, "sysObjectID", &object_id), "{labels:?}");
    let (_, services) = series(&prom, &sel("sysServices")).expect("sysServices");
    let want: f64 = snmpget(port, "1.3.6.1.2.1.1.7.0").parse().unwrap();
    assert_eq!(services.last(), Some(&want));
    // sysUpTime (hundredths of a second): between the readings snmpget took before magpie
    // started and after the samples arrived, and never going back.
    let (_, uptimes) = series(&prom, &sel("sysUpTime")).unwrap();
    assert!(
        uptimes
            .iter()
            .all(|u| (uptime_before..=uptime_after).contains(u)),
        "{uptime_before} .. {uptime_after}: {uptimes:?}"
    );
    assert!(uptimes.windows(2).all(|w| w[0] < w[1]), "{uptimes:?}");

    // The sysORTable: one row per sysORIndex, the ID and description snmpwalk prints.
    let ids: BTreeMap<String, String> = snmpwalk(port, "1.3.6.1.2.1.1.9.1.2").into_iter().collect();
    let descrs: BTreeMap<String, String> =
        snmpwalk(port, "1.3.6.1.2.1.1.9.1.3").into_iter().collect();
    assert!(ids.len() >= 5, "{ids:?}");
    let rows = prom.samples(&sel("sysORID"), "5m");
    assert_eq!(rows.len(), ids.len(), "{rows:?}");
    for (labels, _) in rows {
        let index = &labels.iter().find(|(k, _)| k == "sysORIndex").unwrap().1;
        assert!(
            has(&labels, "sysORID", ids[index].trim_start_matches('.')),
            "{labels:?}"
        );
        assert!(has(&labels, "sysORDescr", &descrs[index]), "{labels:?}");
    }

    // if_mib beside it: lo's octets counter, named as in the module, only growing, not past
    // what snmpget reads afterwards; the interface labelled by its description.
    let descr: BTreeMap<String, String> =
        snmpwalk(port, "1.3.6.1.2.1.2.2.1.2").into_iter().collect();
    let lo = descr.iter().find(|(_, d)| *d == "lo").unwrap().0.clone();
    let in_octets = |name: &str| format!("{name}{{job=\"gateway\",ifIndex=\"{lo}\"}}");
    let (labels, octets) = series(&prom, &in_octets("ifInOctets")).expect("ifInOctets");
    assert!(has(&labels, "ifDescr", "lo"), "{labels:?}");
    assert!(has(&labels, "instance", &instance), "{labels:?}");
    assert!(octets.windows(2).all(|w| w[0] <= w[1]), "{octets:?}");
    let now: f64 = snmpget(port, &format!("1.3.6.1.2.1.2.2.1.10.{lo}"))
        .parse()
        .unwrap();
    assert!(octets.iter().all(|o| *o <= now), "{octets:?} > {now}");
    assert_eq!(
        series(&prom, &sel("up")).map(|s| s.1.last().copied()),
        Some(Some(1.0))
    );

    // Counters go out as counters, everything else as gauges.
    let meta = metadata_types(&recorder);
    for (family, kind) in [
        ("ifInOctets", COUNTER),
        ("ifHCInOctets", COUNTER),
        ("sysUpTime", GAUGE),
        ("sysName", GAUGE),
        ("ifMtu", GAUGE),
    ] {
        assert_eq!(meta.get(family), Some(&kind), "{family}: {meta:?}");
    }
    assert!(m.terminate().success());
    println!("snmp to prometheus: {:?}", started.elapsed());
}
