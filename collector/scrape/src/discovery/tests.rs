//! `file_sd` against real files in a temporary directory: files appear, change, break, get
//! fixed and disappear, in both formats.

use super::{
    DEFAULT_REFRESH_INTERVAL, FILEPATH_LABEL, FileSd, FileSdConfig, TargetGroup, target_url,
};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn config(toml_text: &str) -> FileSdConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

fn sd(base: &Path, files: &[&str]) -> FileSd {
    let c = FileSdConfig {
        files: files.iter().map(ToString::to_string).collect(),
        refresh_interval: None,
    };
    FileSd::new(&c, base).unwrap_or_else(|e| panic!("{e:?}"))
}

/// `(source, targets, public labels)` of each group, for compact assertions.
fn summary(groups: &[TargetGroup]) -> Vec<(String, Vec<String>, Vec<String>)> {
    groups
        .iter()
        .map(|g| {
            let labels = g.public_labels().map(|(n, v)| format!("{n}={v}")).collect();
            (g.source.clone(), g.targets.clone(), labels)
        })
        .collect()
}

/// The groups a refresh reports as changed; fails on an error or on "no change".
#[track_caller]
fn changed(sd: &mut FileSd) -> Vec<TargetGroup> {
    match sd.refresh() {
        Ok(Some(g)) => g,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[track_caller]
fn unchanged(sd: &mut FileSd) {
    assert_eq!(sd.refresh(), Ok(None));
}

#[track_caller]
fn failed(sd: &mut FileSd) -> String {
    match sd.refresh() {
        Err(errors) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors[0].clone()
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// An old modification time: a file dated so is not read again unless its stamp changes.
fn settled() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Writes `text` and dates the file `mtime`.
fn write_dated(path: &Path, text: &str, mtime: SystemTime) {
    fs::write(path, text).unwrap();
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

fn write_settled(path: &Path, text: &str) {
    write_dated(path, text, settled());
}

#[test]
fn json_file_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("targets")).unwrap();
    let mut sd = sd(dir.path(), &["targets/*.json"]);
    // The first refresh reports the (empty) initial set; then nothing changes.
    assert_eq!(changed(&mut sd), []);
    unchanged(&mut sd);

    let file = dir.path().join("targets/pis.json");
    let shown = file.display().to_string();
    fs::write(
        &file,
        r#"[{"targets": ["10.0.0.7:9100", "sensor-2:9100"], "labels": {"room": "attic"}},
            {"targets": ["10.0.0.8:9100"]}]"#,
    )
    .unwrap();
    let groups = changed(&mut sd);
    assert_eq!(
        summary(&groups),
        [
            (
                format!("{shown}:0"),
                vec!["10.0.0.7:9100".to_string(), "sensor-2:9100".to_string()],
                vec!["room=attic".to_string()],
            ),
            (
                format!("{shown}:1"),
                vec!["10.0.0.8:9100".to_string()],
                vec![]
            ),
        ]
    );
    assert_eq!(groups[1].labels.get(FILEPATH_LABEL), Some(&shown));
    unchanged(&mut sd);

    // Rewriting the same groups in another layout is no change.
    fs::write(
        &file,
        "[\n {\"labels\": {\"room\": \"attic\"}, \"targets\": [\"10.0.0.7:9100\", \"sensor-2:9100\"]},\n {\"targets\": [\"10.0.0.8:9100\"]}\n]\n",
    )
    .unwrap();
    unchanged(&mut sd);

    fs::write(
        &file,
        r#"[{"targets": ["10.0.0.9:9100"], "labels": {"room": "cellar"}}]"#,
    )
    .unwrap();
    let groups = changed(&mut sd);
    assert_eq!(
        summary(&groups),
        [(
            format!("{shown}:0"),
            vec!["10.0.0.9:9100".to_string()],
            vec!["room=cellar".to_string()]
        )]
    );

    // Broken: the error names file, line and column; the last good groups stay.
    fs::write(
        &file,
        "[{\"targets\": [\"10.0.0.9:9100\"],\n  \"labels\": {\"room\": }}]",
    )
    .unwrap();
    let e = failed(&mut sd);
    assert!(e.starts_with(&format!("{shown}:2:")), "{e}");
    assert!(
        !e.contains(" at line "),
        "the location is not repeated: {e}"
    );
    assert_eq!(sd.groups(), groups);
    // Still broken, same error: retried but not reported again.
    unchanged(&mut sd);
    assert_eq!(sd.groups(), groups);

    // Fixed.
    fs::write(&file, r#"[{"targets": ["10.0.0.10:9100"]}]"#).unwrap();
    let fixed = changed(&mut sd);
    assert_eq!(fixed[0].targets, ["10.0.0.10:9100"]);

    // Removed: its groups go.
    fs::remove_file(&file).unwrap();
    assert_eq!(changed(&mut sd), []);
    unchanged(&mut sd);
}

#[test]
fn yaml_file_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.yml");
    let shown = file.display().to_string();
    let mut sd = sd(dir.path(), &["nodes.yml"]);
    assert_eq!(changed(&mut sd), []);

    fs::write(
        &file,
        "# provisioned\n- targets: ['pi-1:9100', 'pi-2:9100']\n  labels:\n    rack: 3\n    env: lab\n- targets: [ 'pi-3:9100' ]\n",
    )
    .unwrap();
    let groups = changed(&mut sd);
    assert_eq!(
        summary(&groups),
        [
            (
                format!("{shown}:0"),
                vec!["pi-1:9100".to_string(), "pi-2:9100".to_string()],
                // A YAML number is taken as its text, as Prometheus does.
                vec!["env=lab".to_string(), "rack=3".to_string()],
            ),
            (format!("{shown}:1"), vec!["pi-3:9100".to_string()], vec![]),
        ]
    );

    fs::write(&file, "- targets: ['pi-1:9100']\n  lables:\n    rack: 3\n").unwrap();
    let e = failed(&mut sd);
    assert!(e.starts_with(&format!("{shown}:2:3: ")), "{e}");
    assert!(e.contains("unknown field `lables`"), "{e}");
    assert_eq!(sd.groups(), groups);

    // Broken differently: reported again.
    fs::write(&file, "- targets: ['pi-1:9100'\n").unwrap();
    let e = failed(&mut sd);
    assert!(e.starts_with(&format!("{shown}:2:")), "{e}");

    fs::write(&file, "- targets: ['pi-1:9100']\n").unwrap();
    assert_eq!(changed(&mut sd)[0].targets, ["pi-1:9100"]);
    // An empty YAML file holds no groups.
    fs::write(&file, "").unwrap();
    assert_eq!(changed(&mut sd), []);
    fs::remove_file(&file).unwrap();
    unchanged(&mut sd);
}

#[test]
fn patterns_pick_files_and_both_formats_mix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_settled(&d.join("a.json"), r#"[{"targets": ["a:1"]}]"#);
    write_settled(&d.join("b.yaml"), "- targets: ['b:1']\n");
    write_settled(&d.join("c.YML"), "- targets: ['c:1']\n");
    // Not matched: other extensions, editor leftovers.
    write_settled(&d.join("d.txt"), "not targets");
    write_settled(&d.join("a.json.swp"), "junk");
    let mut sd = sd(
        d,
        &["*.json", "*.yaml", "*.YML", "absent/*.json", "absent.json"],
    );
    let targets: Vec<_> = changed(&mut sd)
        .into_iter()
        .flat_map(|g| g.targets)
        .collect();
    assert_eq!(targets, ["a:1", "b:1", "c:1"], "in path order");
    assert_eq!(sd.reads, 3);
    // Settled files whose stamp stays are not read again.
    unchanged(&mut sd);
    assert_eq!(sd.reads, 3);
    // A directory that appears later is picked up.
    fs::create_dir(d.join("absent")).unwrap();
    write_settled(&d.join("absent/e.json"), r#"[{"targets": ["e:1"]}]"#);
    let targets: Vec<_> = changed(&mut sd)
        .into_iter()
        .flat_map(|g| g.targets)
        .collect();
    assert_eq!(targets, ["a:1", "e:1", "b:1", "c:1"]);
    assert_eq!(sd.reads, 4);
    // Same length, and a modification time that is not recent (as `rsync -t` leaves it).
    write_dated(
        &d.join("a.json"),
        r#"[{"targets": ["z:1"]}]"#,
        settled() + Duration::from_secs(1),
    );
    let targets: Vec<_> = changed(&mut sd)
        .into_iter()
        .flat_map(|g| g.targets)
        .collect();
    assert_eq!(targets, ["z:1", "e:1", "b:1", "c:1"]);
}

#[test]
fn a_change_found_with_an_error_is_delivered_next() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sd = sd(d, &["*.json"]);
    assert_eq!(changed(&mut sd), []);
    fs::write(d.join("good.json"), r#"[{"targets": ["g:1"]}]"#).unwrap();
    fs::write(d.join("bad.json"), "[{").unwrap();
    let e = failed(&mut sd);
    assert!(e.contains("bad.json:1:"), "{e}");
    // The good file's groups are already current, and the next refresh delivers them.
    assert_eq!(sd.groups()[0].targets, ["g:1"]);
    let groups = changed(&mut sd);
    assert_eq!(summary(&groups).len(), 1);
    assert_eq!(groups[0].targets, ["g:1"]);
    unchanged(&mut sd);
}

#[test]
fn content_errors_name_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sd = sd(d, &["t.json"]);
    for (text, want) in [
        (
            r#"[{"targets": ["http://h:9100/metrics"]}]"#,
            "group 0: targets: `http://h:9100/metrics` is not a host:port",
        ),
        (
            r#"[{"targets": ["h:1"]}, {"targets": [""]}]"#,
            "group 1: targets: `` is not a host:port",
        ),
        (
            r#"[{"targets": ["h:1"], "labels": {"a-b": "x"}}]"#,
            "group 0: labels: `a-b` is not a valid label name",
        ),
        (
            r#"[{"targets": ["h:1"], "labels": {"__scheme__": "ftp"}}]"#,
            "__scheme__ `ftp` is not http or https",
        ),
        (r#"[null]"#, "invalid type: null"),
        (
            r#"[{"targets": ["h:1"], "labels": {"a": 1}}]"#,
            "invalid type: integer",
        ),
        (
            r#"{"targets": ["h:1"]}"#,
            "invalid type: map, expected a sequence",
        ),
        ("", "EOF while parsing"),
        (
            "[{\"targets\": [\"h:1\"]},\n {\"targets\": [\"h:2\", \"scraper:hunter2@h:3\"]}]",
            ":2:23: group 1: targets: `<redacted>@h:3`: credentials do not belong",
        ),
        (
            r#"[{"targets": ["http://u:hunter2@h:9100/metrics"]}]"#,
            "`<redacted>@h:9100/metrics`: credentials",
        ),
    ] {
        fs::write(d.join("t.json"), text).unwrap();
        let e = failed(&mut sd);
        assert!(
            e.starts_with(&d.join("t.json").display().to_string()),
            "{e}"
        );
        assert!(e.contains(want), "{text}: got {e}, want {want}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn config_keys_defaults_and_validation() {
    let c = config("files = [\"/etc/magpie/targets/*.json\"]\nrefresh_interval = \"30s\"\n");
    assert_eq!(c.refresh_interval(), Duration::from_secs(30));
    assert_eq!(c.validate(), Ok(()));
    let c = config("files = [\"t.yml\"]\n");
    assert_eq!(c.refresh_interval(), DEFAULT_REFRESH_INTERVAL);
    assert_eq!(DEFAULT_REFRESH_INTERVAL, Duration::from_secs(300));
    let e = toml::from_str::<FileSdConfig>("files = []\nrefresh = \"1m\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `refresh`"), "{e}");
    let e = toml::from_str::<FileSdConfig>("files = [\"a.json\"]\nrefresh_interval = \"soon\"\n")
        .unwrap_err();
    assert!(e.to_string().contains("`soon` is not a duration"), "{e}");

    let c = config(
        "files = [\"a.txt\", \"/etc/*/t.json\", \"[a.json\", \"dir/\"]\nrefresh_interval = \"0s\"\n",
    );
    let errors = c.validate().unwrap_err();
    let want = [
        "files: `a.txt` must end in .json, .yml or .yaml",
        "files: `/etc/*/t.json`: only the file name may be a pattern",
        "files: `[a.json`: unbalanced",
        "files: `dir/` must end in .json, .yml or .yaml",
        "refresh_interval: must be longer than 0s",
    ];
    assert_eq!(errors.len(), want.len(), "{errors:?}");
    for (e, w) in errors.iter().zip(want) {
        assert!(e.starts_with(w), "got {e}, want {w}");
    }
    assert_eq!(
        config("files = []\n").validate(),
        Err(vec![
            "files: must list at least one file or pattern".to_string()
        ])
    );
    assert!(FileSd::new(&config("files = []\n"), Path::new("/")).is_err());
}

#[test]
fn urls_from_addresses_and_labels() {
    assert_eq!(
        target_url("http", "10.0.0.7:9100", "/metrics"),
        "http://10.0.0.7:9100/metrics"
    );
    assert_eq!(
        target_url("https", "[::1]:443", "metrics"),
        "https://[::1]:443/metrics"
    );
    assert_eq!(target_url("http", "h:1", ""), "http://h:1");
    assert_eq!(
        target_url("http", "h:1", "/a b?c#d%"),
        "http://h:1/a%20b%3Fc%23d%25"
    );
    assert_eq!(
        target_url("http", "h:1", "/ünï"),
        "http://h:1/%C3%BCn%C3%AF"
    );
    assert_eq!(
        target_url("http", "h:1", "/probe;x=1@a:b"),
        "http://h:1/probe;x=1@a:b"
    );

    let mut g = TargetGroup {
        targets: vec!["h:1".into()],
        labels: [("room", "attic"), ("__meta_filepath", "/t.json")]
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        source: "/t.json:0".into(),
    };
    assert_eq!(g.url("h:1", "http", "/metrics"), "http://h:1/metrics");
    g.labels.insert("__scheme__".into(), "https".into());
    g.labels.insert("__metrics_path__".into(), "/probe".into());
    assert_eq!(g.url("h:1", "http", "/metrics"), "https://h:1/probe");
    assert_eq!(g.public_labels().collect::<Vec<_>>(), [("room", "attic")]);
}

#[test]
fn a_file_replaced_by_rename_with_its_old_date_is_seen() {
    // As `rsync -t` or an atomic deploy does: same size, same modification time, new inode.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_settled(&d.join("t.json"), r#"[{"targets": ["a:1"]}]"#);
    let mut sd = sd(d, &["t.json"]);
    assert_eq!(changed(&mut sd)[0].targets, ["a:1"]);
    write_settled(&d.join("t.json.tmp"), r#"[{"targets": ["b:1"]}]"#);
    fs::rename(d.join("t.json.tmp"), d.join("t.json")).unwrap();
    assert_eq!(changed(&mut sd)[0].targets, ["b:1"]);
}

#[test]
fn a_recently_modified_file_is_read_again_even_if_its_stamp_stays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (recent, old) = (d.join("recent.json"), d.join("old.json"));
    // Dated ahead of the clock, so it counts as recent however slowly the test runs.
    let ahead = SystemTime::now() + Duration::from_secs(3600);
    write_dated(&recent, r#"[{"targets": ["a:1"]}]"#, ahead);
    write_settled(&old, r#"[{"targets": ["c:1"]}]"#);
    let mut sd = sd(d, &["*.json"]);
    changed(&mut sd);
    // Second writes that leave the stamps as they were (a write within the file system's
    // timestamp granularity): stand for it by putting the new stamps in the state.
    write_dated(&recent, r#"[{"targets": ["b:1"]}]"#, ahead);
    write_settled(&old, r#"[{"targets": ["d:1"]}]"#);
    for path in [&recent, &old] {
        let stamp = super::Stamp::of(&fs::metadata(path).unwrap());
        sd.files.get_mut(path).unwrap().stamp = Some(stamp);
    }
    let reads = sd.reads;
    // Only the file modified recently when read is read again.
    let targets: Vec<_> = changed(&mut sd)
        .into_iter()
        .flat_map(|g| g.targets)
        .collect();
    assert_eq!(targets, ["c:1", "b:1"]);
    assert_eq!(sd.reads, reads + 1);
}

#[test]
fn racy_stamps() {
    let now = SystemTime::now();
    let stamp = |modified| super::Stamp {
        modified,
        len: 0,
        #[cfg(unix)]
        unix: (0, 0, 0),
    };
    assert!(stamp(Some(now)).racy(now));
    assert!(stamp(Some(now - Duration::from_secs(1))).racy(now));
    assert!(
        stamp(Some(now + Duration::from_secs(60))).racy(now),
        "a clock step back"
    );
    assert!(stamp(None).racy(now));
    assert!(!stamp(Some(now - Duration::from_secs(3))).racy(now));
}
