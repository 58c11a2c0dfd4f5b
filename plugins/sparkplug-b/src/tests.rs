use super::proto::{Metric, Payload, Value};
use super::*;
use prost::Message as _;

type Got = Vec<(String, Vec<(String, String)>, u64, Option<i64>)>;

const NOW: i64 = 1_700_000_100_000;

fn metric(
    name: Option<&str>,
    alias: Option<u64>,
    datatype: Option<u32>,
    value: Option<Value>,
) -> Metric {
    Metric {
        name: name.map(Into::into),
        alias,
        timestamp: None,
        datatype,
        is_null: None,
        value,
    }
}

fn payload(seq: Option<u64>, ts: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
    Payload {
        timestamp: ts,
        metrics,
        seq,
    }
    .encode_to_vec()
}

fn run(sp: &mut Sparkplug, topic: &str, body: &[u8]) -> Result<(Got, Outcome), String> {
    let mut got = Got::new();
    let o = sp.decode(topic, body, NOW, &mut |n, l, v, t| {
        got.push((
            n.into(),
            l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
            v.to_bits(),
            t,
        ));
        Ok(())
    })?;
    assert_eq!(o.samples, got.len());
    Ok((got, o))
}

fn labels(device: Option<&str>) -> Vec<(String, String)> {
    let mut l = vec![
        ("group".into(), "plant".into()),
        ("edge_node".into(), "gw1".into()),
    ];
    if let Some(d) = device {
        l.push(("device".into(), d.into()));
    }
    l
}

fn nbirth(bd_seq: u64) -> Vec<u8> {
    payload(
        Some(0),
        Some(1_000),
        vec![
            metric(Some("bdSeq"), None, Some(8), Some(Value::Long(bd_seq))),
            metric(
                Some("Node Control/Rebirth"),
                Some(0),
                Some(11),
                Some(Value::Boolean(false)),
            ),
            metric(Some("Uptime s"), Some(1), Some(8), Some(Value::Long(42))),
        ],
    )
}

fn dbirth(seq: u64) -> Vec<u8> {
    payload(
        Some(seq),
        Some(2_000),
        vec![
            metric(
                Some("Inputs/Temperature"),
                Some(10),
                Some(10),
                Some(Value::Double(21.5)),
            ),
            metric(
                Some("Inputs/Offset"),
                Some(11),
                Some(1),
                Some(Value::Int(-3i32 as u32)),
            ),
            metric(
                Some("Running"),
                Some(12),
                Some(11),
                Some(Value::Boolean(true)),
            ),
            metric(
                Some("Serial"),
                Some(13),
                Some(12),
                Some(Value::String("A-7".into())),
            ),
            metric(
                Some("Count"),
                Some(14),
                Some(8),
                Some(Value::Long(u64::MAX)),
            ),
            metric(Some("Pressure"), Some(15), Some(9), None),
        ],
    )
}

fn born() -> Sparkplug {
    let mut sp = Sparkplug::new();
    run(&mut sp, "spBv1.0/plant/NBIRTH/gw1", &nbirth(3)).unwrap();
    run(&mut sp, "spBv1.0/plant/DBIRTH/gw1/pump", &dbirth(1)).unwrap();
    sp
}

#[test]
fn births_and_data_by_alias_become_exact_samples() {
    let mut sp = Sparkplug::new();
    let (got, o) = run(&mut sp, "spBv1.0/plant/NBIRTH/gw1", &nbirth(3)).unwrap();
    assert_eq!(
        got,
        vec![(
            "Uptime_s".into(),
            labels(None),
            42f64.to_bits(),
            Some(1_000)
        )]
    );
    assert!(o.notes.is_empty(), "{:?}", o.notes);
    let (got, o) = run(&mut sp, "spBv1.0/plant/DBIRTH/gw1/pump", &dbirth(1)).unwrap();
    let d = labels(Some("pump"));
    assert_eq!(
        got,
        vec![
            (
                "Inputs_Temperature".into(),
                d.clone(),
                21.5f64.to_bits(),
                Some(2_000)
            ),
            (
                "Inputs_Offset".into(),
                d.clone(),
                (-3f64).to_bits(),
                Some(2_000)
            ),
            ("Running".into(), d.clone(), 1f64.to_bits(), Some(2_000)),
            (
                "Count".into(),
                d.clone(),
                (u64::MAX as f64).to_bits(),
                Some(2_000)
            ),
        ]
    );
    assert_eq!(o.notes.len(), 1);
    assert!(o.notes[0].contains("`Serial` (String)"), "{:?}", o.notes);

    let mut t = metric(None, Some(10), None, Some(Value::Double(22.25)));
    t.timestamp = Some(3_500);
    let body = payload(
        Some(2),
        Some(3_000),
        vec![
            t,
            metric(None, Some(12), None, Some(Value::Boolean(false))),
            metric(None, Some(13), None, Some(Value::String("B-1".into()))),
            metric(Some("Inputs/Offset"), None, None, Some(Value::Int(7))),
        ],
    );
    let (got, o) = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &body).unwrap();
    assert_eq!(
        got,
        vec![
            (
                "Inputs_Temperature".into(),
                d.clone(),
                22.25f64.to_bits(),
                Some(3_500)
            ),
            ("Running".into(), d.clone(), 0f64.to_bits(), Some(3_000)),
            ("Inputs_Offset".into(), d, 7f64.to_bits(), Some(3_000)),
        ]
    );
    assert!(o.notes.is_empty(), "{:?}", o.notes);
    let ndata = payload(
        Some(3),
        None,
        vec![metric(None, Some(1), None, Some(Value::Long(43)))],
    );
    let (got, _) = run(&mut sp, "spBv1.0/plant/NDATA/gw1", &ndata).unwrap();
    assert_eq!(
        got,
        vec![("Uptime_s".into(), labels(None), 43f64.to_bits(), None)]
    );
}

#[test]
fn data_without_its_birth_is_refused_with_the_topic_and_the_reason() {
    let mut sp = Sparkplug::new();
    let body = payload(
        Some(5),
        None,
        vec![metric(None, Some(10), None, Some(Value::Double(1.0)))],
    );
    let e = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &body).unwrap_err();
    assert!(
        e.contains("spBv1.0/plant/DDATA/gw1/pump") && e.contains("no DBIRTH"),
        "{e}"
    );
    let mut sp = born();
    let body = payload(
        Some(2),
        None,
        vec![
            metric(None, Some(10), None, Some(Value::Double(1.0))),
            metric(None, Some(99), None, Some(Value::Double(2.0))),
        ],
    );
    let e = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &body).unwrap_err();
    assert!(
        e.contains("unknown metric alias 99")
            && e.contains("DDATA on `spBv1.0/plant/DDATA/gw1/pump`"),
        "{e}"
    );
    // Other devices of the node are separate births.
    let e = run(&mut sp, "spBv1.0/plant/DDATA/gw1/valve", &body).unwrap_err();
    assert!(e.contains("no DBIRTH"), "{e}");
}

#[test]
fn a_device_death_marks_its_series_stale_after_their_last_sample() {
    let mut sp = born();
    let mut t = metric(None, Some(10), None, Some(Value::Double(22.0)));
    t.timestamp = Some(u64::try_from(NOW).unwrap() + 5_000);
    run(
        &mut sp,
        "spBv1.0/plant/DDATA/gw1/pump",
        &payload(Some(2), None, vec![t]),
    )
    .unwrap();
    let (got, _) = run(
        &mut sp,
        "spBv1.0/plant/DDEATH/gw1/pump",
        &payload(Some(3), None, vec![]),
    )
    .unwrap();
    let d = labels(Some("pump"));
    assert_eq!(
        got,
        vec![
            (
                "Inputs_Temperature".into(),
                d.clone(),
                STALE_NAN,
                Some(NOW + 5_001)
            ),
            ("Inputs_Offset".into(), d.clone(), STALE_NAN, Some(NOW)),
            ("Running".into(), d.clone(), STALE_NAN, Some(NOW)),
            ("Count".into(), d, STALE_NAN, Some(NOW)),
        ]
    );
    let body = payload(
        Some(4),
        None,
        vec![metric(None, Some(10), None, Some(Value::Double(1.0)))],
    );
    assert!(
        run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &body)
            .unwrap_err()
            .contains("no DBIRTH")
    );
    // The node lives on.
    let ndata = payload(
        Some(5),
        None,
        vec![metric(None, Some(1), None, Some(Value::Long(1)))],
    );
    assert_eq!(
        run(&mut sp, "spBv1.0/plant/NDATA/gw1", &ndata)
            .unwrap()
            .0
            .len(),
        1
    );
}

#[test]
fn a_node_death_of_this_session_ends_node_and_devices_one_of_an_older_session_is_ignored() {
    let mut sp = born();
    let death = |bd: u64| {
        payload(
            None,
            None,
            vec![metric(Some("bdSeq"), None, Some(8), Some(Value::Long(bd)))],
        )
    };
    let (got, o) = run(&mut sp, "spBv1.0/plant/NDEATH/gw1", &death(2)).unwrap();
    assert!(got.is_empty());
    assert!(
        o.notes[0].contains("bdSeq 2 of an older session"),
        "{:?}",
        o.notes
    );
    let (got, _) = run(&mut sp, "spBv1.0/plant/NDEATH/gw1", &death(3)).unwrap();
    let names: Vec<_> = got
        .iter()
        .map(|(n, l, v, _)| (n.as_str(), l.len(), *v))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Uptime_s", 2, STALE_NAN),
            ("Inputs_Temperature", 3, STALE_NAN),
            ("Inputs_Offset", 3, STALE_NAN),
            ("Running", 3, STALE_NAN),
            ("Count", 3, STALE_NAN),
        ]
    );
    let ndata = payload(
        Some(5),
        None,
        vec![metric(None, Some(1), None, Some(Value::Long(1)))],
    );
    assert!(
        run(&mut sp, "spBv1.0/plant/NDATA/gw1", &ndata)
            .unwrap_err()
            .contains("no NBIRTH")
    );
    // A death of a node never born marks nothing.
    assert!(
        run(&mut sp, "spBv1.0/plant/NDEATH/gw9", &death(0))
            .unwrap()
            .0
            .is_empty()
    );
}

#[test]
fn seq_gaps_are_noted_without_refusing() {
    let mut sp = born();
    let d = |seq| {
        payload(
            Some(seq),
            None,
            vec![metric(None, Some(10), None, Some(Value::Double(1.0)))],
        )
    };
    assert!(
        run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &d(2))
            .unwrap()
            .1
            .notes
            .is_empty()
    );
    let (got, o) = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &d(5)).unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        o.notes[0].contains("seq 5 where 3 was due"),
        "{:?}",
        o.notes
    );
    // 255 wraps to 0.
    run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &d(255)).unwrap();
    assert!(
        run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &d(0))
            .unwrap()
            .1
            .notes
            .is_empty()
    );
}

#[test]
fn malformed_messages_are_refused_and_leave_the_births_alone() {
    let mut sp = born();
    let dup = payload(
        Some(0),
        None,
        vec![
            metric(Some("a"), Some(1), Some(9), None),
            metric(Some("b"), Some(1), Some(9), None),
        ],
    );
    let e = run(&mut sp, "spBv1.0/plant/DBIRTH/gw1/pump", &dup).unwrap_err();
    assert!(e.contains("alias 1 is given to both `a` and `b`"), "{e}");
    let untyped = payload(Some(0), None, vec![metric(Some("a"), Some(1), None, None)]);
    assert!(
        run(&mut sp, "spBv1.0/plant/DBIRTH/gw1/pump", &untyped)
            .unwrap_err()
            .contains("no datatype")
    );
    let wrong = payload(
        Some(2),
        None,
        vec![metric(None, Some(10), None, Some(Value::Int(1)))],
    );
    let e = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &wrong).unwrap_err();
    assert!(e.contains("declared Double but carries a int_value"), "{e}");
    let e = run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", b"\xff\xff\xff").unwrap_err();
    assert!(e.contains("not a Sparkplug B payload"), "{e}");
    assert!(
        run(&mut sp, "sensors/kitchen", b"")
            .unwrap_err()
            .contains("namespace")
    );
    // The pump's birth is the one from before.
    let ok = payload(
        Some(3),
        None,
        vec![metric(None, Some(10), None, Some(Value::Double(1.0)))],
    );
    assert_eq!(
        run(&mut sp, "spBv1.0/plant/DDATA/gw1/pump", &ok)
            .unwrap()
            .0
            .len(),
        1
    );
    // Commands and host states are not measurements.
    assert!(
        run(&mut sp, "spBv1.0/plant/NCMD/gw1", b"\x01")
            .unwrap()
            .0
            .is_empty()
    );
    assert!(
        run(&mut sp, "spBv1.0/STATE/scada", b"{\"online\":true}")
            .unwrap()
            .0
            .is_empty()
    );
}

#[test]
fn names_are_sanitised_for_prometheus() {
    assert_eq!(
        sanitise("Inputs/Temperature (°C)"),
        "Inputs_Temperature___C_"
    );
    assert_eq!(sanitise("3phase"), "_3phase");
    assert_eq!(sanitise(""), "_");
    assert_eq!(sanitise("ok:name_1"), "ok:name_1");
}

proptest::proptest! {
    #[test]
    fn any_bytes_on_any_topic_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256), k in 0usize..6) {
        let topics = [
            "spBv1.0/g/NBIRTH/e", "spBv1.0/g/NDATA/e", "spBv1.0/g/NDEATH/e",
            "spBv1.0/g/DBIRTH/e/d", "spBv1.0/g/DDATA/e/d", "spBv1.0/g/DDEATH/e/d",
        ];
        let mut sp = born();
        let _ = run(&mut sp, topics[k], &body);
        let _ = run(&mut sp, topics[(k + 1) % 6], &body);
    }
}
