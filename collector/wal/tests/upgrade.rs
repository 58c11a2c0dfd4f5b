//! Opening a directory written by the format-1 release (`tests/data/format1/`, made by
//! `examples/format1_fixture.rs`): its segments are read in place, its cursors keep their
//! meaning, and new data goes to format-2 segments beside them.

use std::path::Path;

use magpie_wal::{Options, SampleRef, Wal};

const SERIES: usize = 20;
const SAMPLES: usize = 600;

/// Value of sample `k`, as the fixture program wrote it.
fn value(k: usize) -> f64 {
    match k % 7 {
        0 => f64::from_bits(0x7ff0_0000_0000_0002),
        1 => -0.0,
        2 => k as f64 / 1000.0,
        3 => f64::from_bits((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        _ => k as f64,
    }
}

type Row = (String, String, i64, u64);

fn expected(k: usize) -> Row {
    (
        "fixture_metric".to_owned(),
        format!("{:02}", k % SERIES),
        1_700_000_000_000 + (k / SERIES) as i64 * 15_000,
        value(k).to_bits(),
    )
}

fn opts() -> Options {
    Options {
        max_bytes: 8 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1");
    copy_dir(&src, tmp.path());
    tmp
}

fn read_rows(wal: &mut Wal, name: &str) -> Vec<Row> {
    let c = wal.consumer(name).unwrap();
    let mut rows = Vec::new();
    while let Some(b) = wal.read(c, 97).unwrap() {
        for s in &b.samples {
            let l = &b.series[s.series as usize];
            let get = |n: &str| {
                l.iter()
                    .find(|(k, _)| &**k == n)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            };
            assert_eq!(get("job"), "f1", "{l:?}");
            rows.push((get("__name__"), get("idx"), s.t_ms, s.value.to_bits()));
        }
        wal.ack(c, b.end).unwrap();
    }
    rows
}

#[test]
fn format1_directory_is_read_in_place_with_its_cursors() {
    let dir = fixture();
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.stats().samples_in_ring, SAMPLES as u64);
    // `alpha` acknowledged 50 samples into segment 2, `beta` all of segment 1.
    let want = |from: usize| (from..SAMPLES).map(expected).collect::<Vec<_>>();
    assert_eq!(read_rows(&mut wal, "alpha"), want(250));
    assert_eq!(read_rows(&mut wal, "beta"), want(200));
    assert_eq!(read_rows(&mut wal, "new"), want(0));

    // New samples, of the same series and of a new one, go to a format-2 segment.
    let l1 = [("__name__", "fixture_metric"), ("idx", "03"), ("job", "f1")];
    let l2 = [("__name__", "fixture_metric"), ("idx", "99"), ("job", "f1")];
    wal.append([
        SampleRef {
            labels: &l1,
            t_ms: 1_800_000_000_000,
            value: 1.5,
        },
        SampleRef {
            labels: &l2,
            t_ms: 1_800_000_000_000,
            value: 2.5,
        },
    ])
    .unwrap();
    let fresh = vec![
        (
            "fixture_metric".into(),
            "03".into(),
            1_800_000_000_000,
            1.5f64.to_bits(),
        ),
        (
            "fixture_metric".into(),
            "99".into(),
            1_800_000_000_000,
            2.5f64.to_bits(),
        ),
    ];
    assert_eq!(read_rows(&mut wal, "alpha"), fresh);
    wal.close().unwrap();
    let seg4 = std::fs::read(dir.path().join("00000000000000000004.seg")).unwrap();
    assert_eq!(
        &seg4[..10],
        b"MAGPIEWL\x02\x00",
        "new segments are format 2"
    );
    let seg1 = std::fs::read(dir.path().join("00000000000000000001.seg")).unwrap();
    assert_eq!(
        &seg1[8..10],
        b"\x01\x00",
        "format-1 segments are left as they are"
    );

    // After a restart: both formats side by side, every cursor where it was acknowledged.
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    assert!(read_rows(&mut wal, "alpha").is_empty());
    let mut all = want(0);
    all.extend(fresh.iter().cloned());
    assert_eq!(read_rows(&mut wal, "late"), all);
    let report = magpie_wal::inspect(dir.path()).unwrap();
    assert_eq!(report.segments.len(), 4);
    assert!(
        report.segments.iter().all(|s| s.damage.is_empty()),
        "{report}"
    );
    assert_eq!(report.series_defined, 2, "{report}");
}

#[test]
fn format1_segments_leave_the_ring_like_any_other() {
    let dir = fixture();
    let mut wal = Wal::open(
        dir.path(),
        Options {
            max_bytes: 1 << 20,
            ..opts()
        },
    )
    .unwrap();
    wal.consumer("beta").unwrap();
    let names: Vec<String> = (0..200).map(|i| format!("n{i:03}")).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    let mut k = 0u64;
    while wal.stats().segments_dropped < 4 {
        k += 1;
        wal.append(labels.iter().enumerate().map(|(i, l)| SampleRef {
            labels: l,
            t_ms: k as i64,
            value: f64::from_bits(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64),
        }))
        .unwrap();
    }
    let st = wal.stats();
    let b = &st.consumers[0];
    // beta had 400 format-1 samples unacknowledged: counted dropped, never lost silently.
    assert!(b.dropped_samples >= 400, "{st:?}");
    assert_eq!(
        400 + st.samples_appended,
        b.dropped_samples + b.backlog_samples,
        "{st:?}"
    );
    assert!(st.bytes_on_disk <= st.max_bytes, "{st:?}");
}
