//! OpenMetrics specifics beyond the conformance suite: what reaches the sink, and family rules.

use prom_scrape::{
    Format, MetricType, OwnedMetadata, OwnedSample, ParseError, ParseOptions, Reason, VecSink,
    parse_slice,
};

fn om(body: &str) -> Result<VecSink, ParseError> {
    let mut sink = VecSink::default();
    parse_slice(
        body.as_bytes(),
        ParseOptions::new(Format::OpenMetrics),
        &mut sink,
    )?;
    Ok(sink)
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> OwnedSample {
    OwnedSample {
        name: name.into(),
        labels: labels.iter().map(|&(n, v)| (n.into(), v.into())).collect(),
        value,
        timestamp_ms: ts,
    }
}

fn reason(result: Result<VecSink, ParseError>) -> Reason {
    match result {
        Err(e) => e
            .reason()
            .unwrap_or_else(|| panic!("not a line error: {e}")),
        Ok(sink) => panic!("accepted: {sink:?}"),
    }
}

#[test]
fn metadata_reaches_the_sink_unescaped() {
    let sink = om(concat!(
        "# TYPE req_seconds histogram\n",
        "# UNIT req_seconds seconds\n",
        "# HELP req_seconds Time \\ \"quoted\" \\n.\n",
        "req_seconds_bucket{le=\"+Inf\"} 0\n",
        "# EOF\n",
    ))
    .expect("valid");
    assert_eq!(
        sink.metadata,
        [
            OwnedMetadata::Type {
                family: "req_seconds".into(),
                metric_type: MetricType::Histogram
            },
            OwnedMetadata::Unit {
                family: "req_seconds".into(),
                unit: "seconds".into()
            },
            OwnedMetadata::Help {
                family: "req_seconds".into(),
                help: "Time \\ \"quoted\" \n.".into()
            },
        ]
    );
}

#[test]
fn every_type_passes_its_samples_on() {
    let sink = om(concat!(
        "# TYPE s stateset\n",
        "s{s=\"on\"} 1\n",
        "s{s=\"off\"} 0\n",
        "# TYPE i info\n",
        "i_info{version=\"1.2\"} 1\n",
        "# TYPE g gaugehistogram\n",
        "g_bucket{le=\"-1\"} 1 # {trace=\"x\"} -2\n",
        "g_bucket{le=\"+Inf\"} 2\n",
        "g_gcount 2\n",
        "g_gsum -3\n",
        "# TYPE q summary\n",
        "q{quantile=\"0.5\"} NaN\n",
        "q_count 0\n",
        "q_sum 0\n",
        "q_created 1.5\n",
        "# EOF",
    ))
    .expect("valid");
    let names: Vec<&str> = sink.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "s",
            "s",
            "i_info",
            "g_bucket",
            "g_bucket",
            "g_gcount",
            "g_gsum",
            "q",
            "q_count",
            "q_sum",
            "q_created"
        ]
    );
    // The exemplar goes to the sink on its own; the sample keeps only its own labels.
    assert_eq!(
        sink.samples[3],
        sample("g_bucket", &[("le", "-1")], 1.0, None)
    );
}

#[test]
fn exemplars_reach_the_sink_after_their_sample() {
    let body = "# TYPE c counter\n\
c_total{path=\"/a\"} 3 # {trace_id=\"a\\\"b\",span_id=\"1\"} 0.5 1700000000.123\n\
# TYPE h histogram\n\
h_bucket{le=\"1\"} 1 # {trace_id=\"x\"} 0.25\n\
h_bucket{le=\"+Inf\"} 2\n\
h_count 2\n\
h_sum 1.5\n\
# EOF\n";
    let sink = om(body).expect("valid");
    assert_eq!(sink.samples.len(), 5);
    let pairs = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
    };
    assert_eq!(
        sink.exemplars,
        [
            (
                "c_total".into(),
                pairs(&[("trace_id", "a\"b"), ("span_id", "1")]),
                0.5f64.to_bits(),
                Some(1_700_000_000_123)
            ),
            (
                "h_bucket".into(),
                pairs(&[("trace_id", "x")]),
                0.25f64.to_bits(),
                None
            ),
        ]
    );
}

#[test]
fn openmetrics_family_rules() {
    // A counter's samples carry suffixes; `_created` is passed on.
    let sink = om("# TYPE a counter\na_total 1\na_created 1700000000\n# EOF\n").expect("valid");
    assert_eq!(sink.samples[1], sample("a_created", &[], 1.7e9, None));
    // Interleaved families clash.
    assert_eq!(reason(om("a 1\nb 1\na 2\n# EOF\n")), Reason::ClashingName);
    // A series may not come back after another series of its family.
    assert_eq!(
        reason(om("a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n# EOF\n")),
        Reason::InvalidGrouping
    );
    // Label order does not make a different group.
    assert_eq!(
        reason(om(
            "a{x=\"1\",y=\"1\"} 1\na{y=\"2\"} 1\na{y=\"1\",x=\"1\"} 1\n# EOF\n"
        )),
        Reason::InvalidGrouping
    );
    // Timestamps within one series may repeat but not go back.
    assert!(om("a 1 1\na 2 1\na 3 2\n# EOF\n").is_ok());
    assert!(matches!(
        om("a 1\n# EOF\n\n"),
        Err(ParseError::TextAfterEof { line: 3 })
    ));
}
