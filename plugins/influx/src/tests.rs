//! Lines → samples, every escape case, and malformed lines. Examples are InfluxDB's line
//! protocol reference's where it has one.

use super::*;
use alloc::vec;

type Got = Vec<(String, Vec<(String, String)>, f64, Option<i64>)>;
/// A line, the metric name it gives, its labels.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn run_with(d: &Influx, context: &str, body: &str) -> Result<(Got, Summary), String> {
    let mut got = Vec::new();
    let summary = d.decode(context, body.as_bytes(), &mut |n, l, v, t| {
        got.push((
            n.into(),
            l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
            v,
            t,
        ));
        Ok(())
    })?;
    Ok((got, summary))
}

fn run(body: &str) -> Result<Got, String> {
    run_with(&Influx::default(), "/write", body).map(|(g, _)| g)
}

fn labels(l: &[(&str, &str)]) -> Vec<(String, String)> {
    l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
}

fn one(body: &str) -> (String, Vec<(String, String)>, f64, Option<i64>) {
    let mut got = run(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    assert_eq!(got.len(), 1, "{body}: {got:?}");
    got.remove(0)
}

#[test]
fn reference_example_becomes_one_sample_per_numeric_field() {
    let got = run(
        "weather,location=us-midwest,season=summer temperature=82,humidity=71i,raining=f,\
         note=\"hot\" 1465839830100400200",
    )
    .unwrap();
    let l = labels(&[("location", "us-midwest"), ("season", "summer")]);
    let t = Some(1_465_839_830_100);
    assert_eq!(
        got,
        vec![
            ("weather_temperature".into(), l.clone(), 82.0, t),
            ("weather_humidity".into(), l.clone(), 71.0, t),
            ("weather_raining".into(), l, 0.0, t),
        ]
    );
}

#[test]
fn field_types_and_boolean_spellings() {
    for (value, want) in [
        ("1", 1.0),
        ("-1.5", -1.5),
        ("1e3", 1000.0),
        ("-2.5E-1", -0.25),
        ("42i", 42.0),
        ("-9223372036854775808i", -9_223_372_036_854_775_808.0),
        ("18446744073709551615u", 18_446_744_073_709_551_615.0),
        ("0u", 0.0),
        ("t", 1.0),
        ("T", 1.0),
        ("true", 1.0),
        ("True", 1.0),
        ("TRUE", 1.0),
        ("f", 0.0),
        ("F", 0.0),
        ("false", 0.0),
        ("False", 0.0),
        ("FALSE", 0.0),
    ] {
        let (_, _, v, _) = one(&format!("m x={value}"));
        assert_eq!(v, want, "{value}");
    }
}

#[test]
fn string_fields_are_skipped_and_counted() {
    let (got, s) = run_with(
        &Influx::default(),
        "/write",
        "m a=\"x, y=z \\\"q\\\"\",b=1,c=\"\"\nm d=\"only\"\n",
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "m_b");
    assert_eq!(
        s,
        Summary {
            samples: 1,
            strings: 3
        }
    );
}

#[test]
fn escapes_in_every_position() {
    let cases: &[Case<'_>] = &[
        // measurement: comma and space
        (r"my\ Measurement f=1", "my_Measurement_f", &[]),
        (
            r"cpu\,01,host=serverA f=1",
            "cpu_01_f",
            &[("host", "serverA")],
        ),
        // measurement: `=` needs no escape there
        (r"a=b f=1", "a_b_f", &[]),
        // tag keys and values: comma, equals, space
        (
            r"m,tag\ Key1=tag\ Value1,tag\,K=a\,b,t\=k=v\=w f=1",
            "m_f",
            &[("t_k", "v=w"), ("tag_K", "a,b"), ("tag_Key1", "tag Value1")],
        ),
        (
            r"cpu,host=server\ A,region=us\ west f=1",
            "cpu_f",
            &[("host", "server A"), ("region", "us west")],
        ),
        // field keys: comma, equals, space
        (r"m f\ o\,o\=x=1", "m_f_o_o_x", &[]),
        // a quote in a tag value is literal
        (r#"m,t=a"b f=1"#, "m_f", &[("t", "a\"b")]),
        // non-ASCII passes through values; names are sanitised
        ("m,tagKey=🍭 fieldKey=1", "m_fieldKey", &[("tagKey", "🍭")]),
    ];
    for (line, name, l) in cases {
        let (n, got, _, _) = one(line);
        assert_eq!((&n, &got), (&(*name).to_string(), &labels(l)), "{line}");
    }
}

#[test]
fn backslashes_escape_themselves_and_are_literal_elsewhere() {
    // InfluxDB's reference: `\\` is one backslash, a lone backslash before a character that
    // is not special in its position stays.
    for (line, value) in [
        (r"m,t=my\Tag f=1", r"my\Tag"),
        (r"m,t=my\\Tag f=1", r"my\Tag"),
        (r"m,t=my\\\Tag f=1", r"my\\Tag"),
        (r"m,t=my\\\\Tag f=1", r"my\\Tag"),
        // `\\` then a delimiting space: the tag ends
        (r"m,t=end\\ f=1", r"end\"),
        // `\\\ ` is a backslash and an escaped space
        (r"m,t=a\\\ b f=1", r"a\ b"),
    ] {
        let (_, got, _, _) = one(line);
        assert_eq!(got, labels(&[("t", value)]), "{line}");
    }
    // The same rules in a measurement and a field key.
    assert_eq!(one(r"my\\\ M f=1").0, "my__M_f");
    assert_eq!(parse::unescape(r"field_key\\\\", b",= "), r"field_key\\");
    // The v1 reference's example of everything at once.
    let p = parse::line(
        r#""measurement\ with\ quo⚡️es\ and\ emoji",tag\ key\ with\ sp🚀ces=tag\,value\,with"commas" field_k\ey="string field value, only \" need be esc🍭ped""#,
    )
    .unwrap();
    assert_eq!(p.measurement, "\"measurement with quo⚡️es and emoji\"");
    assert_eq!(p.tags[0].0, "tag key with sp🚀ces");
    assert_eq!(p.tags[0].1, "tag,value,with\"commas\"");
    assert_eq!(p.fields, vec![(r"field_k\ey".into(), parse::Field::Text)]);
}

#[test]
fn names_follow_telegraf_or_vmagent() {
    let body = "cpu,host=a value=1,usage_idle=2 1700000000\n";
    let tele = run_with(&Influx::default(), "/write?db=telegraf&precision=s", body)
        .unwrap()
        .0;
    let names: Vec<&str> = tele.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["cpu", "cpu_usage_idle"]);
    assert_eq!(tele[0].1, labels(&[("host", "a")]));
    assert_eq!(tele[0].3, Some(1_700_000_000_000));
    let vm = Influx::from_table(&Value::table([("naming", Value::Str("vmagent".into()))])).unwrap();
    let got = run_with(&vm, "/write?db=telegraf&precision=s", body)
        .unwrap()
        .0;
    let names: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["cpu_value", "cpu_usage_idle"]);
    assert_eq!(got[0].1, labels(&[("db", "telegraf"), ("host", "a")]));
    // A `db` tag wins over the query parameter.
    let got = run_with(&vm, "/write?db=x%20y", "m,db=mine f=1\nm g=1")
        .unwrap()
        .0;
    assert_eq!(got[0].1, labels(&[("db", "mine")]));
    assert_eq!(got[1].1, labels(&[("db", "x y")]));
}

#[test]
fn names_are_sanitised() {
    let (n, l, _, _) = one("disk.io,dev-name=sda,1x=y read-bytes=1");
    assert_eq!(n, "disk_io_read_bytes");
    assert_eq!(l, labels(&[("_1x", "y"), ("dev_name", "sda")]));
    assert_eq!(one("9m value=1").0, "_9m");
    assert_eq!(one("ns:m value=1").0, "ns:m");
}

#[test]
fn precision_from_the_query_or_the_configuration() {
    let t = |context: &str, d: &Influx, ts: &str| {
        run_with(d, context, &format!("m f=1 {ts}")).map(|(g, _)| g[0].3)
    };
    let d = Influx::default();
    assert_eq!(
        t("/write", &d, "1465839830100400200"),
        Ok(Some(1_465_839_830_100))
    );
    assert_eq!(
        t("/write?precision=n", &d, "1465839830100400200"),
        Ok(Some(1_465_839_830_100))
    );
    assert_eq!(
        t("/api/v2/write?precision=us", &d, "1465839830100400"),
        Ok(Some(1_465_839_830_100))
    );
    assert_eq!(
        t("/write?precision=u", &d, "1465839830100400"),
        Ok(Some(1_465_839_830_100))
    );
    assert_eq!(
        t("/write?precision=ms", &d, "1465839830100"),
        Ok(Some(1_465_839_830_100))
    );
    assert_eq!(
        t("/api/v2/write?org=o&bucket=b&precision=s", &d, "1465839830"),
        Ok(Some(1_465_839_830_000))
    );
    assert_eq!(t("/write?precision=m", &d, "2"), Ok(Some(120_000)));
    assert_eq!(t("/write?precision=h", &d, "1"), Ok(Some(3_600_000)));
    assert_eq!(t("/write", &d, "-1"), Ok(Some(-1)));
    let e = t("/write?precision=d", &d, "1").unwrap_err();
    assert!(e.contains("precision `d`"), "{e}");
    let e = t("/write?precision=s", &d, "9223372036854775807").unwrap_err();
    assert!(e.contains("line 1") && e.contains("overflows"), "{e}");
    // MQTT has no query: the configured precision applies.
    let s = Influx::from_table(&Value::table([("precision", Value::Str("s".into()))])).unwrap();
    assert_eq!(t("telegraf/gw-1/cpu", &s, "10"), Ok(Some(10_000)));
    // No timestamp: the host's receive time.
    assert_eq!(run("m f=1").unwrap()[0].3, None);
}

#[test]
fn blank_lines_comments_crlf_and_indentation() {
    let got = run("\n# a comment\r\n  m f=1\r\n\n\tm g=2 1000000\r\n   \n").unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[1].0.as_str(), got[1].3), ("m_g", Some(1)));
    assert!(run("").unwrap().is_empty());
}

#[test]
fn malformed_lines_name_line_column_and_quote_the_line() {
    for (body, want) in [
        ("cpu", "line 1, column 4: missing fields"),
        ("cpu ", "line 1, column 5: missing fields"),
        ("cpu,host=a", "line 1, column 11: missing fields"),
        (",host=a f=1", "line 1, column 1: missing measurement"),
        // `=` needs no escape in a measurement: this is a measurement without fields.
        ("f=1", "line 1, column 4: missing fields"),
        ("cpu,host f=1", "line 1, column 5: tag `host` has no `=`"),
        ("cpu,=a f=1", "line 1, column 5: tag key is empty"),
        (
            "cpu,host= f=1",
            "line 1, column 10: tag `host` has an empty value",
        ),
        (
            "cpu value",
            "line 1, column 10: field `value` has no `=value`",
        ),
        ("cpu value=", "line 1, column 11: field value is empty"),
        ("cpu =1", "line 1, column 5: field key is empty"),
        ("cpu a=1,", "line 1, column 9: field key is empty"),
        ("cpu value=abc", "column 11: `abc` is not a number"),
        ("cpu value=NaN", "`NaN` is not a number"),
        ("cpu value=inf", "`inf` is not a number"),
        ("cpu value=1.5i", "`1.5i` is not an integer"),
        (
            "cpu value=99999999999999999999i",
            "out of the 64-bit signed range",
        ),
        ("cpu value=-1u", "`-1u` is not an unsigned integer"),
        (
            "cpu value=\"abc",
            "column 11: string field value has no closing `\"`",
        ),
        ("cpu value=\"a\"b", "column 14: text after the closing"),
        (
            "cpu value=1 12x",
            "column 13: timestamp `12x` is not an integer",
        ),
        ("cpu value=1 1 extra", "column 15: text after the timestamp"),
        ("cpu,__name__=x value=1", "reserved label name"),
        ("cpu,a-b=1,a_b=2 value=1", "two tags become label `a_b`"),
        ("m,t=🍭 f=x", "line 1, column 9: `x` is not a number"),
    ] {
        let e = run(body).unwrap_err();
        assert!(e.contains(want), "{body:?}: {e}");
        assert!(
            e.ends_with(&format!("`{body}`")),
            "{body:?} not quoted: {e}"
        );
    }
    // The third line is at fault; the first two were fine.
    let e = run("m f=1\nm g=2\nm h=oops\nm i=4").unwrap_err();
    assert!(e.starts_with("line 3, column 5: `oops`"), "{e}");
    // A body cut mid-line (a truncated upload).
    let e = run("m f=1\nm,host=gw-1 usage_id").unwrap_err();
    assert!(e.starts_with("line 2, column 21:"), "{e}");
    // Not UTF-8.
    let e = Influx::default()
        .decode("/write", b"m f=1\nm,t=\xff f=1", &mut |_, _, _, _| Ok(()))
        .unwrap_err();
    assert_eq!(e, "line 2, column 5: not UTF-8");
    // Long lines are quoted shortened.
    let long = format!("m f={}", "x".repeat(500));
    let e = run(&long).unwrap_err();
    assert!(e.ends_with("…`") && e.len() < 400, "{e}");
}

#[test]
fn out_refusing_stops_the_decode() {
    let e = Influx::default()
        .decode("/write", b"m f=1,g=2", &mut |_, _, _, _| Err("full".into()))
        .unwrap_err();
    assert_eq!(e, "full");
}

#[test]
fn bad_configuration_names_the_key() {
    for (t, want) in [
        (Value::table([("namig", Value::Str("x".into()))]), "namig"),
        (
            Value::table([("naming", Value::Str("statsd".into()))]),
            "naming",
        ),
        (
            Value::table([("precision", Value::Str("d".into()))]),
            "precision",
        ),
    ] {
        let e = Influx::from_table(&t).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
