//! Loading rules: keys, defaults, and the checks Prometheus makes (`TestRelabelValidate`,
//! `TestTargetLabelLegacyValidity`), with legacy label names.

use super::{Rules, rules};
use crate::relabel::{Action, RelabelConfig, compile, is_label_name_template};

#[test]
fn utf8_label_names_are_refused() {
    // Prometheus accepts these with UTF-8 name validation; legacy names refuse them at load.
    for (source, target) in [
        ("utf-8.label", "d"),
        ("a", "utf-8.label"),
        ("a", "utf-8.label${1}"),
    ] {
        let r = rules(&format!(
            "[[rule]]\nsource_labels = [\"{source}\"]\nregex = \"line1.*line2\"\ntarget_label = \"{target}\"\nreplacement = \"match${{1}}\"\n"
        ));
        let e = compile(&r).unwrap_err();
        assert!(
            e.contains("utf-8.label") && e.contains("not a valid label name"),
            "{e}"
        );
    }
}

#[test]
fn validation_errors_name_the_rule_and_the_problem() {
    let cases = [
        ("action = \"replace\"", "`target_label` is required"),
        ("action = \"lowercase\"", "`target_label` is required"),
        (
            "action = \"lowercase\"\ntarget_label = \"${3}\"",
            "target_label: `${3}` is not a valid label name",
        ),
        (
            "source_labels = [\"a\"]\nregex = \"some-([^-]+)-([^,]+)\"\ntarget_label = \"0${3}\"",
            "`0${3}` is not a valid label name",
        ),
        (
            "source_labels = [\"a\"]\ntarget_label = \"-${3}\"",
            "`-${3}` is not a valid label name",
        ),
        (
            "action = \"hashmod\"\ntarget_label = \"h\"",
            "`modulus` must be greater than 0",
        ),
        ("regex = \"(\"\ntarget_label = \"x\"", "invalid regex `(`"),
        (
            "action = \"labeldrop\"\nregex = \"x\"\nsource_labels = [\"a\"]",
            "`source_labels` cannot be set",
        ),
        (
            "action = \"labelkeep\"\nseparator = \",\"",
            "`separator` cannot be set",
        ),
        (
            "action = \"keepequal\"\ntarget_label = \"t\"\nregex = \"x\"",
            "`regex` cannot be set",
        ),
        (
            "action = \"uppercase\"\ntarget_label = \"t\"\nreplacement = \"x\"",
            "`replacement` cannot be set",
        ),
        (
            "action = \"labelmap\"\nreplacement = \"a-$1\"",
            "replacement: `a-$1` is not a valid label name",
        ),
    ];
    for (body, want) in cases {
        let text = format!("[[rule]]\naction = \"keep\"\n[[rule]]\n{body}\n");
        let e = compile(&rules(&text)).unwrap_err();
        assert!(e.starts_with("relabel rule #2 (action "), "{e}");
        assert!(e.contains(want), "{body}: got {e}, want {want}");
    }
    // These are valid with legacy names, as in Prometheus' validation table.
    for body in [
        "source_labels = [\"a\"]\nregex = \"some-([^-]+)-([^,]+)\"\ntarget_label = \"${3}\"",
        "action = \"labelmap\"\nregex = \"__meta_kubernetes_pod_label_(strimzi_io_.+)\"\nreplacement = \"$1\"",
        "action = \"labelmap\"\nregex = \"__meta_(.+)\"\nreplacement = \"${1}\"",
    ] {
        compile(&rules(&format!("[[rule]]\n{body}\n"))).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[test]
fn config_keys_defaults_and_action_names() {
    let r = rules("[[rule]]\ntarget_label = \"x\"\n");
    assert_eq!(
        r[0],
        RelabelConfig {
            target_label: "x".into(),
            ..RelabelConfig::default()
        }
    );
    assert_eq!(
        (
            r[0].separator.as_str(),
            r[0].regex.as_str(),
            r[0].replacement.as_str(),
            r[0].action
        ),
        (";", "(.*)", "$1", Action::Replace)
    );
    // Explicitly empty values are kept, not replaced by defaults.
    let r = rules(
        "[[rule]]\nseparator = \"\"\nregex = \"\"\nreplacement = \"\"\ntarget_label = \"t\"\n",
    );
    assert_eq!(
        (
            r[0].separator.as_str(),
            r[0].regex.as_str(),
            r[0].replacement.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(
        rules("[[rule]]\naction = \"LabelDrop\"\n")[0].action,
        Action::LabelDrop
    );
    let e = toml::from_str::<Rules>("[[rule]]\naction = \"rename\"\n").unwrap_err();
    assert!(
        e.to_string().contains("unknown relabel action `rename`"),
        "{e}"
    );
    let e = toml::from_str::<Rules>("[[rule]]\ntarget = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `target`"), "{e}");
}

#[test]
fn target_label_template_validity() {
    // Prometheus' TestTargetLabelLegacyValidity.
    for (s, valid) in [
        ("-label", false),
        ("label", true),
        ("label${1}", true),
        ("${1}label", true),
        ("${1}", true),
        ("${", false),
        ("$", false),
        ("${}", false),
        ("foo${", false),
        ("$1", true),
        ("asd$2asd", true),
        ("-foo${1}bar-", false),
        ("bar.foo${1}bar", false),
        ("_${1}_", true),
        ("foo${bar}foo", true),
        ("", false),
        ("0${1}", false),
    ] {
        assert_eq!(is_label_name_template(s), valid, "{s:?}");
    }
}
