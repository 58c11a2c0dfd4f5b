//! A table of hand-made damage, each checked under every recovery mode: opening and reading
//! never panic, never invent or garble a sample, and lose only what the mode allows.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{Row, assert_subsequence, fill, read_all, segments, small_opts};
use magpie_wal::{Error, Options, RecoveryMode, Wal, inspect};

const MODES: [RecoveryMode; 3] = [
    RecoveryMode::TruncateTail,
    RecoveryMode::SkipCorrupt,
    RecoveryMode::Strict,
];

fn opts(mode: RecoveryMode) -> Options {
    Options {
        recovery: mode,
        ..small_opts()
    }
}

/// A WAL of several segments. With `seal_tail` false the process "crashes" after a sync, so
/// the tail segment is left unsealed, as after a power cut.
fn build(dir: &Path, seal_tail: bool) -> Vec<Row> {
    let mut wal = Wal::open(dir, small_opts()).unwrap();
    let rows = fill(&mut wal, 200, 700, 1, 1_700_000_000_000);
    if seal_tail {
        wal.close().unwrap();
    } else {
        wal.sync().unwrap();
        drop(wal);
    }
    assert!(segments(dir).len() >= 4, "{:?}", segments(dir));
    rows
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// End of the data in an unsealed segment, whose file is preallocated with zeros.
fn data_end(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    b.iter().rposition(|&x| x != 0).map_or(0, |i| i as u64 + 1)
}

/// Expected outcome of one case under one mode.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Everything still readable.
    All,
    /// A strict subset, at least this fraction of the data.
    AtLeast(f64),
    /// Opening or reading fails with `Corrupt`.
    CorruptError,
}

fn run_case(name: &str, seal_tail: bool, damage: impl Fn(&Path), expect: [Expect; 3]) {
    for (mode, want) in MODES.into_iter().zip(expect) {
        let dir = tempfile::tempdir().unwrap();
        let rows = build(dir.path(), seal_tail);
        damage(dir.path());
        // The report must never panic, whatever the damage.
        let report = inspect(dir.path()).unwrap();
        let text = report.to_string();
        assert!(text.contains("segments"), "{text}");
        let got = read_all(dir.path(), opts(mode), 997);
        match (want, got) {
            (Expect::CorruptError, Err(Error::Corrupt { .. })) => {}
            (Expect::All, Ok(got)) => {
                assert_subsequence(&got, &rows);
                assert_eq!(got.len(), rows.len(), "{name} {mode:?}: lost samples");
            }
            (Expect::AtLeast(frac), Ok(got)) => {
                assert_subsequence(&got, &rows);
                assert!(
                    got.len() < rows.len(),
                    "{name} {mode:?}: damage not noticed"
                );
                assert!(
                    got.len() as f64 >= frac * rows.len() as f64,
                    "{name} {mode:?}: kept only {} of {}",
                    got.len(),
                    rows.len()
                );
                // A second open after recovery is stable and loses nothing more.
                let again = read_all(dir.path(), opts(mode), 10_000).unwrap();
                assert_eq!(again.len(), got.len(), "{name} {mode:?}: unstable recovery");
            }
            (want, got) => panic!(
                "{name} {mode:?}: expected {want:?}, got {:?}",
                got.map(|g| g.len())
            ),
        }
    }
}

#[test]
fn torn_page_in_tail() {
    run_case(
        "torn page",
        false,
        |d| {
            let tail = segments(d).pop().unwrap();
            let l = data_end(&tail);
            // A write that reached the disk only partly: the last 1500 bytes are garbage.
            patch(&tail, l - 1500, &vec![0xA5; 1500]);
        },
        [
            Expect::AtLeast(0.9),
            Expect::AtLeast(0.9),
            Expect::CorruptError,
        ],
    );
}

#[test]
fn zero_filled_tail() {
    run_case(
        "zero-filled tail",
        false,
        |d| {
            let tail = segments(d).pop().unwrap();
            let l = data_end(&tail);
            patch(&tail, l - 9000, &vec![0; 9000]);
        },
        // The zeros start inside a record, so its checksum fails: a torn tail.
        [
            Expect::AtLeast(0.9),
            Expect::AtLeast(0.9),
            Expect::CorruptError,
        ],
    );
}

#[test]
fn bit_flip_in_older_header() {
    run_case(
        "header flip",
        true,
        |d| flip(&segments(d)[1], 17),
        [
            Expect::AtLeast(0.6),
            Expect::AtLeast(0.6),
            Expect::CorruptError,
        ],
    );
}

#[test]
fn bit_flip_in_older_payload() {
    run_case(
        "payload flip",
        true,
        |d| {
            let seg = &segments(d)[1];
            flip(seg, len(seg) / 3);
        },
        // SkipCorrupt loses the page plus, per series, the samples until its next key value
        // (at most 128): history-dependent values after the damage are dropped, not guessed.
        [
            Expect::AtLeast(0.7),
            Expect::AtLeast(0.8),
            Expect::CorruptError,
        ],
    );
}

#[test]
fn truncated_older_segment() {
    run_case(
        "truncated segment",
        true,
        |d| {
            let seg = &segments(d)[1];
            let f = OpenOptions::new().write(true).open(seg).unwrap();
            f.set_len(len(seg) / 2).unwrap();
        },
        [
            Expect::AtLeast(0.7),
            Expect::AtLeast(0.7),
            Expect::CorruptError,
        ],
    );
}

#[test]
fn missing_middle_segment() {
    run_case(
        "missing segment",
        true,
        |d| std::fs::remove_file(&segments(d)[2]).unwrap(),
        [
            Expect::AtLeast(0.6),
            Expect::AtLeast(0.6),
            Expect::AtLeast(0.6),
        ],
    );
}

#[test]
fn garbage_files_in_directory() {
    run_case(
        "garbage names",
        true,
        |d| {
            std::fs::write(d.join("notes.txt"), b"hello").unwrap();
            std::fs::write(d.join("00000000000000000003.seg.bak"), b"junk").unwrap();
            std::fs::create_dir(d.join("subdir")).unwrap();
        },
        [Expect::All, Expect::All, Expect::All],
    );
    run_case(
        "garbage segment",
        true,
        |d| std::fs::write(d.join("00000000000000000000.seg"), vec![0x5A; 70_000]).unwrap(),
        [Expect::All, Expect::All, Expect::CorruptError],
    );
}

#[test]
fn inspect_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), true);
    let seg = &segments(dir.path())[1];
    flip(seg, len(seg) / 3);
    std::fs::remove_file(segments(dir.path())[2].clone()).unwrap();
    std::fs::write(dir.path().join("stray"), b"x").unwrap();
    let r = inspect(dir.path()).unwrap();
    assert!(!r.segments[1].damage.is_empty(), "{r}");
    assert!(r.segments[0].damage.is_empty(), "{r}");
    assert_eq!(r.problems.len(), 1, "{r}");
    assert_eq!(r.ignored, vec!["stray".to_owned()]);
    let text = r.to_string();
    assert!(text.contains("checksum"), "{text}");
    assert!(text.contains("missing"), "{text}");
}

#[test]
fn crash_between_creating_and_writing_a_segment() {
    // A preallocated, never-written tail (all zeros) held no data: every mode removes it.
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let rows = build(dir.path(), true);
        let f = std::fs::File::create(dir.path().join("00000000000000000999.seg")).unwrap();
        f.set_len(256 << 10).unwrap();
        drop(f);
        let got = read_all(dir.path(), opts(mode), 5000).unwrap();
        assert_eq!(got, rows, "{mode:?}");
        assert!(!dir.path().join("00000000000000000999.seg").exists());
    }
}
