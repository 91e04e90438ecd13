//! The rendered alerts and dashboards against Prometheus's own `promtool`
//! (scripts/install-prometheus.sh builds it): every rule file passes `promtool check rules`, every
//! dashboard query parses, and the unit tests in tests/promtool/*.yaml fire each rendered alert
//! from input series and keep it silent on a healthy one. A test file names the alerts and
//! labels it expects; the annotations expected are the rendered ones with `$labels` filled in
//! from those labels, so a test cannot drift from what the PrometheusRule says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};

fn promtool() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    common::tool(
        "PANTHERA_PROMTOOL",
        &home.join(".cache/panthera/promtool/v0.316.0/bin/promtool"),
    )
}

/// The shop's rendered PrometheusRule groups and dashboard queries.
fn rendered() -> (Value, Vec<(String, String)>) {
    let platform = panthera::load::load_file(&common::example("shop")).unwrap();
    let plan = panthera::render::Renderer::embedded()
        .unwrap()
        .render(&platform, &panthera::render::Redacted)
        .unwrap();
    let rule = plan
        .get("PrometheusRule/shop")
        .expect("the shop has alerts");
    let groups: Value = serde_json::from_value(rule.value["spec"].clone()).unwrap();
    let mut queries = Vec::new();
    for o in plan.objects().filter(|o| {
        o.kind() == "ConfigMap"
            && o.value.pointer("/metadata/labels/grafana_dashboard") == Some(&"1".into())
    }) {
        for (file, text) in o.value["data"].as_object().unwrap() {
            let dashboard: serde_json::Value =
                serde_json::from_str(text.as_str().unwrap()).unwrap();
            for panel in dashboard["panels"].as_array().unwrap() {
                for target in panel["targets"].as_array().unwrap() {
                    queries.push((
                        format!("{file}: {}", panel["title"].as_str().unwrap()),
                        target["expr"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    assert!(queries.len() > 20, "{} dashboard queries", queries.len());
    (groups, queries)
}

fn run(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The alerting rules, as (alertname, component label or "", annotations).
fn alerts(groups: &Value) -> Vec<(String, String, Mapping)> {
    let mut out = Vec::new();
    for group in groups["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let Some(name) = rule["alert"].as_str() {
                let component = rule["labels"]["component"].as_str().unwrap_or_default();
                let annotations = rule["annotations"].as_mapping().unwrap().clone();
                out.push((name.to_string(), component.to_string(), annotations));
            }
        }
    }
    out
}

/// `text` with every `{{ $labels.x }}` replaced by the label's value; the annotations use
/// nothing else, which this checks.
fn expand(text: &str, labels: &Mapping) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed template") + start;
        let inner = rest[start + 2..end].trim();
        let label = inner
            .strip_prefix("$labels.")
            .unwrap_or_else(|| panic!("annotation template {inner:?} is not a $labels lookup"));
        let value = labels
            .get(label)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("exp_labels lack {label}, used by {text:?}"));
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn rendered_rules_and_dashboards_pass_promtool_and_every_alert_is_tested() {
    let Some(promtool) = promtool() else {
        return;
    };
    let (groups, queries) = rendered();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.rules.yaml"),
        serde_yaml::to_string(&groups).unwrap(),
    )
    .unwrap();
    let checked = run(
        &promtool,
        &["check", "rules", "shop.rules.yaml"],
        dir.path(),
    );
    assert!(checked.contains("SUCCESS"), "{checked}");

    // Each dashboard query as a recording rule: `check rules` parses every expression.
    let records: Vec<serde_json::Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| serde_json::json!({"record": format!("panthera_dashboard_query_{i}"), "expr": expr}))
        .collect();
    let wrapped = serde_json::json!({"groups": [{"name": "dashboards", "rules": records}]});
    std::fs::write(
        dir.path().join("dashboards.rules.yaml"),
        serde_yaml::to_string(&wrapped).unwrap(),
    )
    .unwrap();
    run(
        &promtool,
        &["check", "rules", "dashboards.rules.yaml"],
        dir.path(),
    );

    // The unit tests, with the rendered annotations filled in.
    let rules = alerts(&groups);
    // By alert and component: the `absent` rules are one per component, each with its text.
    let annotations: BTreeMap<(&str, &str), &Mapping> = rules
        .iter()
        .map(|(n, c, a)| ((n.as_str(), c.as_str()), a))
        .collect();
    let mut fired: BTreeSet<(String, String)> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in &files {
        let mut test: Value =
            serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        test["rule_files"] = serde_yaml::from_str("[shop.rules.yaml]").unwrap();
        for group in test["tests"].as_sequence_mut().unwrap() {
            let Some(cases) = group
                .get_mut("alert_rule_test")
                .and_then(Value::as_sequence_mut)
            else {
                continue;
            };
            for case in cases {
                let name = case["alertname"].as_str().unwrap().to_string();
                assert!(
                    annotations.keys().any(|(n, _)| *n == name),
                    "{}: {name} is not rendered",
                    file.display()
                );
                let expected = case.get_mut("exp_alerts").and_then(Value::as_sequence_mut);
                let Some(expected) = expected.filter(|e| !e.is_empty()) else {
                    silent.insert(name);
                    continue;
                };
                for alert in expected {
                    let labels = alert["exp_labels"].as_mapping().unwrap().clone();
                    let component = labels
                        .get("component")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let rendered = annotations
                        .get(&(name.as_str(), component.as_str()))
                        .unwrap_or_else(|| {
                            panic!("{}: {name} {component} is not rendered", file.display())
                        });
                    fired.insert((name.clone(), component.clone()));
                    if alert.get("exp_annotations").is_none() {
                        let filled: Mapping = rendered
                            .iter()
                            .map(|(k, v)| {
                                (k.clone(), Value::from(expand(v.as_str().unwrap(), &labels)))
                            })
                            .collect();
                        alert["exp_annotations"] = Value::Mapping(filled);
                    }
                }
            }
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(
            dir.path().join(&name),
            serde_yaml::to_string(&test).unwrap(),
        )
        .unwrap();
        let out = run(&promtool, &["test", "rules", &name], dir.path());
        assert!(out.contains("SUCCESS"), "{name}: {out}");
    }

    // Every rendered alert fires in some test, and stays silent in another.
    let rendered_alerts: BTreeSet<(String, String)> = rules
        .iter()
        .map(|(n, c, _)| (n.clone(), c.clone()))
        .collect();
    let untested: Vec<_> = rendered_alerts
        .iter()
        .filter(|(n, c)| !fired.contains(&(n.clone(), c.clone())) || !silent.contains(n))
        .collect();
    let tested = rendered_alerts.len() - untested.len();
    println!(
        "promtool test rules: {tested} alerts tested / {} rendered ({} dashboard queries parsed)",
        rendered_alerts.len(),
        queries.len()
    );
    assert!(
        untested.is_empty(),
        "alerts not both fired and kept silent by tests/promtool: {untested:?}"
    );
}

#[test]
fn every_alert_has_a_runbook_section() {
    let (groups, _) = rendered();
    let runbooks =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks.md"))
            .unwrap();
    for (name, _, annotations) in alerts(&groups) {
        for key in ["summary", "description", "runbook_url"] {
            assert!(annotations.contains_key(key), "{name} lacks {key}");
        }
        let url = annotations["runbook_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("#{}", name.to_lowercase())), "{url}");
        assert!(
            runbooks.contains(&format!("## {name}\n")),
            "docs/runbooks.md has no section for {name}"
        );
    }
}
