//! The node plugin, built for wasm32 and run by the host against this machine's `/proc` and
//! `/sys` through file grants.

mod support;

use magpie_host::{Grants, Host, PluginError};
use magpie_sdk::abi::Value;
use magpie_testkit::guest;
use prom_scrape::OwnedSample;
use std::path::PathBuf;
use support::*;

fn node_grants(prefixes: &[&str]) -> Grants {
    let prefixes: Vec<PathBuf> = prefixes.iter().map(PathBuf::from).collect();
    Grants::new(vec![], &prefixes).unwrap()
}

fn value(samples: &[OwnedSample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
}

fn success(samples: &[OwnedSample], collector: &str) -> Option<f64> {
    value(
        samples,
        "node_scrape_collector_success",
        &[("collector", collector)],
    )
}

/// Collectors that read only procfs.
const PROC_COLLECTORS: [&str; 5] = ["cpu", "stat", "meminfo", "loadavg", "uname"];

#[tokio::test]
async fn node_reports_host_metrics_from_granted_proc_and_sys() {
    let host = Host::new().unwrap();
    // Every mount point except /dev's, whatever its type: the grants cover /proc and /sys, so
    // their mounts are the ones `statvfs` may reach.
    let config = table(vec![
        ("mount_points_exclude", strings(&["/dev", "/dev/*"])),
        ("fs_types_exclude", strings(&[])),
    ]);
    let spec = spec("node", config, node_grants(&["/proc", "/sys"]));
    let (r, samples) = scrape(&host, "node", &spec, &request("", 0, 0), None).await;
    r.unwrap();

    let names: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    for family in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_filesystem_size_bytes",
        "node_scrape_collector_success",
        "node_boot_time_seconds",
        "node_uname_info",
    ] {
        assert!(names.contains(family), "{family} missing from {names:?}");
    }
    assert!(value(&samples, "node_memory_MemTotal_bytes", &[]).unwrap() > 0.0);
    assert!(samples.iter().all(|s| s.timestamp_ms.is_none()));
    assert!(
        samples
            .iter()
            .filter(|s| s.name == "node_cpu_seconds_total")
            .any(|s| s.labels.contains(&("mode".into(), "idle".into())))
    );
    // /proc is a granted mount point; the root file system is not granted for reading, but as
    // a mount point in the table the plugin may read, its sizes may be asked.
    let fs = |mountpoint: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == "node_filesystem_size_bytes"
                    && s.labels.contains(&("mountpoint".into(), mountpoint.into()))
            })
            .map(|s| s.labels.clone())
    };
    let proc_labels = fs("/proc").expect("/proc reported");
    assert!(proc_labels.contains(&("fstype".into(), "proc".into())));
    assert!(fs("/").is_some(), "the root file system is missing");

    for collector in PROC_COLLECTORS {
        assert_eq!(success(&samples, collector), Some(1.0), "{collector}");
    }
    // Absent on most machines, and absence is not a failure.
    assert_eq!(success(&samples, "rpi_throttled"), Some(1.0));
    assert_eq!(success(&samples, "filesystem"), Some(1.0));
}

#[tokio::test]
async fn node_with_its_default_config_and_grants_reports_the_root_file_system() {
    let host = Host::new().unwrap();
    let spec = spec("node", Value::default(), node_grants(&["/proc", "/sys"]));
    let (r, samples) = scrape(&host, "node", &spec, &request("", 0, 0), None).await;
    r.unwrap();
    let size = samples
        .iter()
        .find(|s| {
            s.name == "node_filesystem_size_bytes"
                && s.labels.contains(&("mountpoint".into(), "/".into()))
        })
        .map(|s| s.value);
    assert!(
        size.is_some_and(|v| v > 0.0),
        "no size for /: {:?}",
        samples
            .iter()
            .filter(|s| s.name.starts_with("node_filesystem"))
            .collect::<Vec<_>>()
    );
    assert_eq!(success(&samples, "filesystem"), Some(1.0));
}

#[tokio::test]
async fn node_without_a_sys_grant_fails_only_the_sysfs_collectors() {
    let host = Host::new().unwrap();
    let spec = spec("node", Value::default(), node_grants(&["/proc"]));
    let (r, samples) = scrape(&host, "node", &spec, &request("", 0, 0), None).await;
    r.unwrap();
    for collector in ["hwmon", "thermal_zone", "rpi_throttled"] {
        assert_eq!(success(&samples, collector), Some(0.0), "{collector}");
    }
    for collector in PROC_COLLECTORS {
        assert_eq!(success(&samples, collector), Some(1.0), "{collector}");
    }
    assert!(!samples.iter().any(|s| s.name.starts_with("node_hwmon_")));
    assert!(value(&samples, "node_load1", &[]).is_some());
}

#[tokio::test]
async fn node_rejects_unknown_keys_and_wrong_types_at_instantiate() {
    let host = Host::new().unwrap();
    let plugin = host.load("node", &guest("node")).await.unwrap();
    for (config, needle) in [
        (
            table(vec![("colectors", strings(&["cpu"]))]),
            "config key `colectors`: unknown key",
        ),
        (
            table(vec![("collectors", Value::Str("cpu".into()))]),
            "config key `collectors`: expected an array of strings, found a string",
        ),
        (
            table(vec![("collectors", strings(&["cpu", "gpu"]))]),
            "config key `collectors`: unknown collector \"gpu\"",
        ),
        (
            table(vec![("procfs", Value::Str("proc".into()))]),
            "config key `procfs`",
        ),
    ] {
        let spec = spec("node", config, node_grants(&["/proc"]));
        let err = host.instantiate(&plugin, &spec).await.unwrap_err();
        assert!(!err.is_fault(), "{err}");
        match &err {
            PluginError::Failed { plugin, reason } => {
                assert_eq!(plugin, "node:node");
                assert!(reason.contains(needle), "{reason}");
            }
            other => panic!("expected a config failure, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn node_ends_collection_when_the_host_takes_no_more_samples() {
    let host = Host::new().unwrap();
    let spec = spec("node", Value::default(), node_grants(&["/proc", "/sys"]));
    let (r, samples) = scrape(&host, "node", &spec, &request("", 0, 0), Some(1)).await;
    let reason = failure(r);
    assert!(reason.contains("stopped"), "{reason}");
    // The first batch went out; nothing after it did. 512 is the SDK's `Emitter::BATCH_SAMPLES`,
    // which only guests can name.
    assert!(!samples.is_empty());
    assert!(samples.len() <= 512, "{}", samples.len());
}

// ---------------------------------------------------------------------------------------------
// prom-scrape against a real HTTP server
