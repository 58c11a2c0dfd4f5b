//! Prometheus' own relabeling cases (`model/relabel/relabel_test.go`: `TestRelabel`,
//! `TestRelabelValidate`, `TestTargetLabelLegacyValidity`, and the rule sets of
//! `BenchmarkRelabel` with their outcomes worked out), with rules written as users write them
//! in TOML. Prometheus runs `TestRelabel` with UTF-8 label names; this crate keeps the legacy
//! names, so the cases that need UTF-8 names are checked to be refused instead.

mod kubernetes;
mod validation;

use super::{RelabelConfig, Relabeler, compile};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    rule: Vec<RelabelConfig>,
}

fn rules(toml_text: &str) -> Vec<RelabelConfig> {
    toml::from_str::<Rules>(toml_text)
        .unwrap_or_else(|e| panic!("rules do not parse: {e}\n{toml_text}"))
        .rule
}

fn relabeler(toml_text: &str) -> Relabeler {
    compile(&rules(toml_text)).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<_> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect();
    l.sort();
    l
}

/// Runs `rules` on `input`; `want` is the result, `None` for a dropped sample.
#[track_caller]
fn check(input: &[(&str, &str)], rules: &str, want: Option<&[(&str, &str)]>) {
    let r = relabeler(rules);
    let mut got = labels(input);
    let kept = r.apply(&mut got);
    match want {
        None => assert!(!kept, "expected a drop, kept {got:?}\nrules:{rules}"),
        Some(want) => {
            assert!(kept, "expected {want:?}, dropped\nrules:{rules}");
            assert_eq!(got, labels(want), "rules:{rules}");
        }
    }
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

#[test]
fn replace_expands_groups() {
    let rule = r#"
        [[rule]]
        source_labels = ["a"]
        regex = "f(.*)"
        target_label = "d"
        separator = ";"
        replacement = "ch${1}-ch${1}"
        action = "replace"
    "#;
    check(ABC, rule, Some(&[ABC, &[("d", "choo-choo")]].concat()));
}

#[test]
fn replace_joins_sources_and_chains_rules() {
    let rules = r#"
        [[rule]]
        source_labels = ["a", "b"]
        regex = "f(.*);(.*)r"
        target_label = "a"
        replacement = "b${1}${2}m"   # boobam

        [[rule]]
        source_labels = ["c", "a"]
        regex = "(b).*b(.*)ba(.*)"
        target_label = "d"
        replacement = "$1$2$2$3"
    "#;
    let want = [("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")];
    check(ABC, rules, Some(&want));
}

#[test]
fn drop_stops_before_later_rules() {
    let rules = r#"
        [[rule]]
        source_labels = ["a"]
        regex = ".*o.*"
        action = "drop"

        [[rule]]
        source_labels = ["a"]
        regex = "f(.*)"
        target_label = "d"
        replacement = "ch$1-ch$1"
    "#;
    check(&[("a", "foo")], rules, None);
    check(&[("a", "foo"), ("b", "bar")], rules, None);
}

#[test]
fn replace_with_a_group_inside_the_value() {
    let rule = r#"
        [[rule]]
        source_labels = ["a"]
        regex = ".*(b).*"
        target_label = "d"
        replacement = "$1"
    "#;
    check(&[("a", "abc")], rule, Some(&[("a", "abc"), ("d", "b")]));
}

#[test]
fn keep_and_drop_match_the_whole_value() {
    let foo = &[("a", "foo")];
    let with = |regex: &str, action: &str| {
        format!("[[rule]]\nsource_labels = [\"a\"]\nregex = \"{regex}\"\naction = \"{action}\"\n")
    };
    check(foo, &with("no-match", "drop"), Some(foo));
    // `f|o` is anchored as a whole, so neither alternative matches `foo`.
    check(foo, &with("f|o", "drop"), Some(foo));
    check(foo, &with("no-match", "keep"), None);
    check(foo, &with("f.*", "keep"), Some(foo));
}

#[test]
fn replace_without_a_match_changes_nothing() {
    let rule = r#"
        [[rule]]
        source_labels = ["a"]
        regex = "f"
        target_label = "b"
        replacement = "bar"
    "#;
    check(&[("a", "boo")], rule, Some(&[("a", "boo")]));
}

#[test]
fn an_empty_replacement_deletes_the_target() {
    let rule = r#"
        [[rule]]
        source_labels = ["a"]
        regex = "(f).*"
        target_label = "$1"
        replacement = "$2"
    "#;
    check(&[("a", "foo"), ("f", "baz")], rule, Some(&[("a", "foo")]));
}

#[test]
fn hashmod_matches_prometheus_shards() {
    let rule = |source: &str, target: &str| {
        format!(
            "[[rule]]\nsource_labels = [\"{source}\"]\ntarget_label = \"{target}\"\naction = \"hashmod\"\nmodulus = 1000\n"
        )
    };
    check(ABC, &rule("c", "d"), Some(&[ABC, &[("d", "976")]].concat()));
    check(
        &[("a", "foo\nbar")],
        &rule("a", "b"),
        Some(&[("a", "foo\nbar"), ("b", "734")]),
    );
}

#[test]
fn labelmap_copies_matching_labels() {
    let input = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    let rule = "[[rule]]\nregex = \"(b.*)\"\nreplacement = \"bar_${1}\"\naction = \"labelmap\"\n";
    let want = [&input[..], &[("bar_b1", "bar"), ("bar_b2", "baz")]].concat();
    check(&input, rule, Some(&want));

    let input = [
        ("a", "foo"),
        ("__meta_my_bar", "aaa"),
        ("__meta_my_baz", "bbb"),
        ("__meta_other", "ccc"),
    ];
    let rule =
        "[[rule]]\nregex = \"__meta_(my.*)\"\nreplacement = \"${1}\"\naction = \"labelmap\"\n";
    let want = [&input[..], &[("my_bar", "aaa"), ("my_baz", "bbb")]].concat();
    check(&input, rule, Some(&want));
}

#[test]
fn labelmap_skips_names_that_are_not_label_names() {
    // `1x` and `` are no label names; Prometheus would write them, legacy names cannot hold them.
    let input = [("a_1x", "v"), ("a_", "e"), ("a_ok", "w")];
    let rule = "[[rule]]\nregex = \"a_(.*)\"\naction = \"labelmap\"\n";
    check(&input, rule, Some(&[&input[..], &[("ok", "w")]].concat()));
}

#[test]
fn target_label_references() {
    let rule = |replacement: &str, target: &str, regex: &str| {
        format!(
            "[[rule]]\nsource_labels = [\"a\"]\nregex = \"{regex}\"\nreplacement = \"{replacement}\"\ntarget_label = \"{target}\"\n"
        )
    };
    let two = "some-([^-]+)-([^,]+)";
    let input = [("a", "some-name-value")];
    check(
        &input,
        &rule("${2}", "${1}", two),
        Some(&[("a", "some-name-value"), ("name", "value")]),
    );
    // `${3}` expands to nothing: the (absent) label `name` is deleted.
    check(&input, &rule("${3}", "${1}", two), Some(&input));
    // A target expanding to "" is no label name: the rule is skipped.
    let input = [("a", "some-name-0")];
    let rules = [
        rule("${1}", "${3}", two),
        rule("${1}", "${3}", two),
        rule("${1}", "${3}", "some-([^-]+)(-[^,]+)"),
    ]
    .concat();
    check(&input, &rules, Some(&input));
}

#[test]
fn real_life_tag_parsing() {
    let input = [("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")];
    let rules = r#"
        [[rule]]
        source_labels = ["__meta_sd_tags"]
        regex = "(?:.+,|^)path:(/[^,]+).*"
        replacement = "${1}"
        target_label = "__metrics_path__"

        [[rule]]
        source_labels = ["__meta_sd_tags"]
        regex = "(?:.+,|^)job:([^,]+).*"
        replacement = "${1}"
        target_label = "job"

        [[rule]]
        source_labels = ["__meta_sd_tags"]
        regex = "(?:.+,|^)label:([^=]+)=([^,]+).*"
        replacement = "${2}"
        target_label = "${1}"
    "#;
    let want = [
        input[0],
        ("__metrics_path__", "/secret"),
        ("job", "some-job"),
        ("foo", "bar"),
    ];
    check(&input, rules, Some(&want));
}

#[test]
fn labeldrop_then_replace_then_keep() {
    // Prometheus issue 12283: a dropped label written again is seen by a later rule.
    let input = [
        ("__meta_kubernetes_pod_container_port_name", "foo"),
        ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
    ];
    let rules = r#"
        [[rule]]
        regex = "^__meta_kubernetes_pod_container_port_name$"
        action = "labeldrop"

        [[rule]]
        source_labels = ["__meta_kubernetes_pod_annotation_XXX_metrics_port"]
        regex = "(.+)"
        replacement = "metrics"
        target_label = "__meta_kubernetes_pod_container_port_name"

        [[rule]]
        source_labels = ["__meta_kubernetes_pod_container_port_name"]
        regex = "^metrics$"
        action = "keep"
    "#;
    let want = [
        ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
        ("__meta_kubernetes_pod_container_port_name", "metrics"),
    ];
    check(&input, rules, Some(&want));
}

#[test]
fn labelkeep_and_labeldrop() {
    let input = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    let keep = "[[rule]]\nregex = \"(b.*)\"\naction = \"labelkeep\"\n";
    check(&input, keep, Some(&input[1..]));
    let drop = "[[rule]]\nregex = \"(b.*)\"\naction = \"labeldrop\"\n";
    check(&input, drop, Some(&input[..1]));
}

#[test]
fn uppercase_and_lowercase() {
    let rules = r#"
        [[rule]]
        source_labels = ["foo"]
        action = "uppercase"
        target_label = "foo_uppercase"

        [[rule]]
        source_labels = ["foo"]
        action = "lowercase"
        target_label = "foo_lowercase"
    "#;
    let want = [
        ("foo", "bAr123Foo"),
        ("foo_lowercase", "bar123foo"),
        ("foo_uppercase", "BAR123FOO"),
    ];
    check(&want[..1], rules, Some(&want));
}

#[test]
fn keepequal_and_dropequal() {
    let input = [
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];
    let rule = |action: &str, target: &str| {
        format!(
            "[[rule]]\nsource_labels = [\"__tmp_port\"]\naction = \"{action}\"\ntarget_label = \"{target}\"\n"
        )
    };
    check(&input, &rule("keepequal", "__port1"), Some(&input));
    check(&input, &rule("dropequal", "__port1"), None);
    check(&input, &rule("dropequal", "__port2"), Some(&input));
    check(&input, &rule("keepequal", "__port2"), None);
}

#[test]
fn dot_matches_newlines_and_named_groups_expand() {
    let input = [("a", "line1\nline2"), ("b", "bar"), ("c", "baz")];
    let rule = r#"
        [[rule]]
        source_labels = ["a"]
        regex = "line1.*line2"
        target_label = "d"
        replacement = "match${1}"
    "#;
    check(
        &input,
        rule,
        Some(&[&input[..], &[("d", "match")]].concat()),
    );
    let rules = r#"
        [[rule]]
        source_labels = ["a"]
        regex = "(line1).*(?<second>line2)"
        target_label = "label1_${1}"
        replacement = "val_${second}"

        [[rule]]
        source_labels = ["a"]
        regex = "(line1).*(?<second>line2)"
        target_label = "label2_$1"
        replacement = "val_$second"
    "#;
    let want = [
        &input[..],
        &[("label1_line1", "val_line2"), ("label2_line1", "val_line2")],
    ]
    .concat();
    check(&input, rules, Some(&want));
}

#[test]
fn dollar_anchors_inside_patterns() {
    let rule = |regex: &str, target: &str, replacement: &str| {
        format!(
            "[[rule]]\nsource_labels = [\"__name__\"]\nregex = \"{regex}\"\ntarget_label = \"{target}\"\nreplacement = \"{replacement}\"\n"
        )
    };
    let total = [("__name__", "http_requests_total")];
    check(
        &total,
        &rule(".*_total$", "__type__", "counter"),
        Some(&[total[0], ("__type__", "counter")]),
    );
    let bytes = [("__name__", "disk_usage_bytes")];
    check(
        &bytes,
        &rule(".*_bytes$", "__unit__", "bytes"),
        Some(&[bytes[0], ("__unit__", "bytes")]),
    );
}

#[test]
fn benchmark_example_rules() {
    // `BenchmarkRelabel` "example", from Prometheus' config/testdata/conf.good.yml.
    let rules = r#"
        [[rule]]
        source_labels = ["job", "__meta_dns_name"]
        regex = "(.*)some-[regex]"
        target_label = "job"
        replacement = "foo-${1}"

        [[rule]]
        source_labels = ["abc"]
        target_label = "cde"

        [[rule]]
        replacement = "static"
        target_label = "abc"

        [[rule]]
        regex = ""
        replacement = "static"
        target_label = "abc"
    "#;
    let input = [
        ("__meta_dns_name", "example-some-x.com"),
        ("abc", "def"),
        ("job", "foo"),
    ];
    // `[regex]` is one character, so `x.com` does not match and `job` stays.
    let want = [input[0], ("abc", "static"), ("cde", "def"), ("job", "foo")];
    check(&input, rules, Some(&want));
}

#[test]
fn benchmark_static_label_pairs() {
    let rules = r#"
        [[rule]]
        replacement = "wwwwww"
        target_label = "wwwwww"
        [[rule]]
        replacement = "yyyyyyyyyyyy"
        target_label = "xxxxxxxxx"
        [[rule]]
        replacement = "xxxxxxxxx"
        target_label = "yyyyyyyyyyyy"
        [[rule]]
        source_labels = ["something"]
        target_label = "with_source_labels"
        replacement = "value"
        [[rule]]
        replacement = "dropped"
        target_label = "${0}"   # expands to "": no label name, skipped
        [[rule]]
        replacement = "${0}"    # expands to "": deletes `dropped`, which is absent
        target_label = "dropped"
    "#;
    let input = [
        ("abcdefg01", "hijklmn1"),
        ("abcdefg02", "hijklmn2"),
        ("job", "foo"),
    ];
    let added = [
        ("wwwwww", "wwwwww"),
        ("xxxxxxxxx", "yyyyyyyyyyyy"),
        ("yyyyyyyyyyyy", "xxxxxxxxx"),
        ("with_source_labels", "value"),
    ];
    check(&input, rules, Some(&[&input[..], &added].concat()));
}

#[test]
fn no_rules_and_unsorted_input() {
    let mut l = labels(&[("b", "2"), ("a", "1")]);
    assert!(Relabeler::default().apply(&mut l));
    assert!(Relabeler::default().is_empty());
    let r = relabeler("[[rule]]\ntarget_label = \"c\"\nreplacement = \"3\"\n");
    assert_eq!(r.len(), 1);
    let mut l = vec![
        ("b".to_string(), "2".to_string()),
        ("a".to_string(), "1".to_string()),
    ];
    assert!(r.apply(&mut l));
    assert_eq!(l, labels(&[("a", "1"), ("b", "2"), ("c", "3")]));
}

#[test]
fn relabelers_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone>(_: &T) {}
    let r = relabeler(
        "[[rule]]\nsource_labels = [\"a\", \"b\"]\nregex = \"x;(.)\"\ntarget_label = \"c\"\n",
    );
    shared(&r);
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut l = labels(&[("a", "x"), ("b", &i.to_string())]);
                assert!(r.apply(&mut l));
                l
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let l = h.join().unwrap();
        assert_eq!(
            l,
            labels(&[("a", "x"), ("b", &i.to_string()), ("c", &i.to_string())])
        );
    }
}
