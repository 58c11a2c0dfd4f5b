//! `kubernetes_sd_configs` and the cargo feature `kubernetes`: the default build accepts them;
//! a build without the feature (the device build, `--no-default-features --features mqtt`)
//! refuses them in `magpie check`, naming the file and line (TOML and `prometheus.yml`) and
//! saying the build lacks them.

mod common;

use common::{magpie, plugin_dir};
use std::path::Path;

/// `magpie check` of a TOML and a `prometheus.yml` file with Kubernetes discovery: success
/// and the output of each.
fn check_both(dir: &Path) -> [(bool, String); 2] {
    let pd = plugin_dir(dir, &["prom-scrape"]);
    let toml = dir.join("m.toml");
    std::fs::write(
        &toml,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\n\n[[scrape]]\njob = \"k8s\"\nplugin = \"prom-scrape\"\n\n[[scrape.kubernetes_sd_configs]]\nrole = \"ingress\"\napi_server = \"http://127.0.0.1:1\"\n",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    let yml = dir.join("p.yml");
    std::fs::write(
        &yml,
        "scrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs:\n      - role: pod\n        api_server: http://127.0.0.1:1\n",
    )
    .unwrap();
    [toml, yml].map(|f| {
        let out = magpie().arg("check").arg(&f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    })
}

#[cfg(not(feature = "kubernetes"))]
#[test]
fn a_build_without_kubernetes_refuses_its_discovery_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let [(toml_ok, toml), (yml_ok, yml)] = check_both(dir.path());
    assert!(!toml_ok && !yml_ok, "{toml}\n{yml}");
    for (text, at) in [(&toml, "m.toml:9:"), (&yml, "p.yml:3:")] {
        let line = text
            .lines()
            .find(|l| l.contains("lacks Kubernetes discovery"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains(at) && line.contains("kubernetes_sd_configs"),
            "{line}"
        );
        assert!(line.contains("cargo feature `kubernetes`"), "{line}");
    }
}

#[cfg(feature = "kubernetes")]
#[test]
fn the_default_build_accepts_kubernetes_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let [(toml_ok, toml), (_, yml)] = check_both(dir.path());
    assert!(toml_ok, "{toml}");
    assert!(!toml.contains("lacks Kubernetes discovery"), "{toml}");
    assert!(!yml.contains("lacks Kubernetes discovery"), "{yml}");
}
