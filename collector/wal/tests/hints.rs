//! Series id hints: an append that names each sample's id from an earlier append skips the
//! look-up by label set when the hint is right, and is not misled when it is wrong, stale or
//! names another series; through the owner thread, the ids come back with the report.

use magpie_wal::owner::{self, OwnedSample};
use magpie_wal::{KeyedSample, Options, SeriesKey, Wal};

const T0: i64 = 1_700_000_000_000;

fn opts() -> Options {
    Options {
        max_bytes: 4 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    }
}

fn keys(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| SeriesKey::new(&[("__name__", "temp"), ("sensor", &i.to_string())]).unwrap())
        .collect()
}

/// Appends one sample per key at `t`, with `hints[k]` for key `k`; returns the ids.
fn append(wal: &mut Wal, keys: &[SeriesKey], hints: &[u32], t: i64) -> Vec<u32> {
    let mut ids = hints.to_vec();
    #[allow(clippy::cast_precision_loss)]
    let samples = keys.iter().enumerate().map(|(k, key)| KeyedSample {
        key,
        t_ms: t,
        value: k as f64,
    });
    wal.append_hinted(samples, &mut ids).unwrap();
    ids
}

/// Everything in the ring as (sensor label, t, value).
fn read_all(wal: &mut Wal) -> Vec<(String, i64, f64)> {
    let c = wal.consumer("check").unwrap();
    let mut out = Vec::new();
    while let Some(b) = wal.read(c, 1000).unwrap() {
        for s in &b.samples {
            let sensor = b.series[s.series as usize]
                .iter()
                .find(|(n, _)| *n == "sensor")
                .map(|(_, v)| v.to_string())
                .unwrap();
            out.push((sensor, s.t_ms, s.value));
        }
        wal.ack(c, b.end).unwrap();
    }
    out
}

#[test]
fn right_hints_skip_the_lookup_and_wrong_ones_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    let keys = keys(50);
    let first = append(&mut wal, &keys, &[], T0);
    assert_eq!(first.len(), keys.len());
    assert_eq!(wal.series_lookups(), 50);

    // The ids handed back: no look-up at all.
    let hints = first.clone();
    assert_eq!(append(&mut wal, &keys, &hints, T0 + 1), first);
    assert_eq!(wal.series_lookups(), 50);

    // Shifted by one (a series gone from the top of a scrape): every hint names another
    // live series, none is taken, each sample still gets its own series.
    let shifted = first[1..].to_vec();
    assert_eq!(append(&mut wal, &keys, &shifted, T0 + 2), first);
    assert_eq!(wal.series_lookups(), 100);

    // Ids no series has; more hints than samples are dropped from the ids.
    let nowhere = vec![u32::MAX - 1; keys.len() + 3];
    assert_eq!(append(&mut wal, &keys, &nowhere, T0 + 3), first);
    assert_eq!(wal.series_lookups(), 150);

    // The same label sets in new allocations (a target started again): the right ids, but
    // not the same keys, so they are looked up once; after that, the new keys' hints hold.
    let again = self::keys(50);
    assert_eq!(append(&mut wal, &again, &hints, T0 + 4), first);
    assert_eq!(wal.series_lookups(), 200);
    assert_eq!(append(&mut wal, &again, &hints, T0 + 5), first);
    assert_eq!(wal.series_lookups(), 200);

    // What was written is what was appended: each sample under its own series.
    let got = read_all(&mut wal);
    assert_eq!(got.len(), 6 * 50);
    for (i, (sensor, t, v)) in got.iter().enumerate() {
        let k = i % 50;
        assert_eq!(
            (sensor.as_str(), *t, *v),
            (k.to_string().as_str(), T0 + (i / 50) as i64, k as f64)
        );
    }
}

#[test]
fn the_owner_hands_the_ids_back_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    let handle = owner::spawn(wal).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = keys(20);
    let samples = |t: i64| -> Vec<OwnedSample> {
        keys.iter()
            .map(|k| OwnedSample {
                key: k.clone(),
                t_ms: t,
                value: 1.0,
            })
            .collect()
    };
    let round = |hints: Vec<u32>, t: i64| {
        let (tx, rx) = std::sync::mpsc::channel();
        rt.block_on(handle.append_hinted_then(samples(t), hints, move |r, ids| {
            tx.send((r.is_ok(), ids)).unwrap();
        }))
        .unwrap();
        let (ok, ids) = rx.recv().unwrap();
        assert!(ok);
        ids
    };
    let first = round(Vec::new(), T0);
    assert_eq!(first.len(), 20);
    let lookups = || rt.block_on(handle.call(|w| w.series_lookups())).unwrap();
    assert_eq!(lookups(), 20);
    // Fewer hints than samples: the rest are looked up.
    assert_eq!(round(first[..15].to_vec(), T0 + 1), first);
    assert_eq!(lookups(), 25);
    assert_eq!(round(first.clone(), T0 + 2), first);
    assert_eq!(lookups(), 25);
    rt.block_on(handle.close()).unwrap();
}
