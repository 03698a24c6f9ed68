//! The shipped dashboard and alert files on their own: the dashboard is a Grafana model
//! that imports anywhere and shows every exported metric; the rules pass `promtool check`
//! and `promtool test rules`, with a firing and a quiet case per alert and a runbook anchor
//! in the README. (`prometheus.rs` evaluates their expressions against a live Tessera.)

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::prometheus_support::*;

/// Every metric Tessera exports must be on the dashboard.
const EXPORTED: &[&str] = &[
    tessera::infra::metrics::HTTP_REQUESTS,
    tessera::infra::metrics::EXCHANGE_DURATION,
    tessera::infra::metrics::EXCHANGES,
    tessera::infra::metrics::ACTIVE_KEY_AGE,
    tessera::infra::metrics::BACKEND_ERRORS,
    tessera::infra::metrics::BACKEND_DURATION,
    tessera::infra::metrics::REVOCATIONS,
    tessera::infra::metrics::RATE_LIMITED,
    tessera::infra::metrics::KEYS,
    tessera::infra::metrics::KEYSTORE_UP,
    tessera::infra::metrics::KEY_ROTATION_INTERVAL,
    tessera::infra::metrics::KEY_PUBLISH_LEAD,
];

pub fn dashboard() -> Value {
    let path = deploy_path("grafana/tessera.json");
    let text = std::fs::read_to_string(&path).expect("deploy/grafana/tessera.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// (where, expression) of every query target of every panel.
pub fn dashboard_expressions(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            targets.into_iter().map(move |t| {
                let expr = t["expr"].as_str().unwrap_or_default().to_owned();
                (format!("panel {title:?} target {}", t["refId"]), expr)
            })
        })
        .collect()
}

#[test]
fn the_dashboard_imports_anywhere_and_shows_every_exported_metric() {
    let d = dashboard();
    assert_eq!(d["uid"], "tessera");
    let variables = d["templating"]["list"].as_array().expect("templating");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} variable"))
    };
    assert_eq!(variable("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(variable("DS_PROMETHEUS")["query"], "prometheus");
    assert_eq!(variable("job")["type"], "query");
    assert_eq!(variable("instance")["allValue"], ".*");
    let datasource = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});

    let mut ids = HashSet::new();
    let mut cells = HashSet::new();
    for panel in d["panels"].as_array().expect("panels") {
        let title = &panel["title"];
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "{title}: id");
        let g = &panel["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64(),
            g["y"].as_u64(),
            g["w"].as_u64(),
            g["h"].as_u64(),
        );
        let (Some(x), Some(y), Some(w), Some(h)) = (x, y, w, h) else {
            panic!("{title}: gridPos {g}");
        };
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: gridPos {g}");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(
                cells.insert(cell),
                "{title} overlaps another panel at {cell:?}"
            );
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], datasource, "{title}");
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title}"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = HashSet::new();
        for t in targets {
            assert!(refs.insert(t["refId"].to_string()), "{title}: refId twice");
            assert_eq!(t["datasource"], datasource, "{title}");
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{title}");
        }
    }

    let all = dashboard_expressions(&d)
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .join("\n");
    for metric in EXPORTED.iter().chain(&["tessera_token_reuse_total"]) {
        assert!(all.contains(metric), "the dashboard does not show {metric}");
    }
}

/// The alert names and, for each, whether the unit tests have a quiet case and a firing
/// case. alerts.test.yml lists `alertname:` then `exp_alerts:` (`[]` or a list) per case.
fn unit_test_cases(text: &str) -> Vec<(String, bool)> {
    let mut cases = Vec::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_owned());
        } else if let Some(expected) = line.strip_prefix("exp_alerts:")
            && let Some(name) = current.take()
        {
            cases.push((name, expected.trim() != "[]"));
        }
    }
    cases
}

#[test]
fn the_alert_rules_pass_promtool_and_each_alert_has_a_firing_and_a_quiet_unit_test() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&["check", "config", "prometheus.yml"]);
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    let rules = std::fs::read_to_string(deploy_path("prometheus/alerts.yml")).expect("alerts");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:").map(str::trim))
        .collect();
    assert!(
        checked.contains(&format!("{} rules found", alerts.len())),
        "every rule is an alert: {checked}"
    );
    let tests = std::fs::read_to_string(deploy_path("prometheus/alerts.test.yml")).expect("tests");
    let cases = unit_test_cases(&tests);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for alert in &alerts {
        for fires in [true, false] {
            assert!(
                cases.iter().any(|(a, f)| a == alert && *f == fires),
                "alerts.test.yml has no case where {alert} {}",
                if fires { "fires" } else { "stays quiet" }
            );
        }
        let anchor = format!("runbook-{}", alert.to_lowercase());
        assert!(
            rules.contains(&format!("README.md#{anchor}"))
                && readme.contains(&format!("id=\"{anchor}\"")),
            "{alert}: its runbook_url must point at an anchor `{anchor}` of the README"
        );
    }
}

#[test]
fn bool_comparisons_leave_label_matchers_and_strings_alone() {
    assert_eq!(
        with_bool_comparisons(r#"rate(x{a!="b",c=~"d>e"}[5m]) / y > 0.05"#),
        r#"rate(x{a!="b",c=~"d>e"}[5m]) / y > bool 0.05"#
    );
    assert_eq!(
        with_bool_comparisons("a > (b + c) and d > 0"),
        "a > bool (b + c) and d > bool 0"
    );
    assert_eq!(with_bool_comparisons("up == 0"), "up == bool 0");
    assert_eq!(with_bool_comparisons("x >= bool 1"), "x >= bool 1");
    assert_eq!(with_bool_comparisons("x != on(a) y"), "x != bool on(a) y");
}
