//! The Grafana dashboard (docs/grafana-dashboard.json) and the alert rules
//! (docs/operations.md, "Suggested alerts") query only metrics that
//! `/metrics` exports: a renamed metric fails here, not in a silent panel.

use std::collections::BTreeSet;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::{Backend, TestApp, User};

/// PromQL's aggregation operators: `sum by (le) (…)` puts the label list
/// between the operator and its parenthesis.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Series Prometheus makes itself, not the service.
const FROM_PROMETHEUS: [&str; 1] = ["up"];

/// Series the service exports only with a setting on, each checked by that
/// setting's own tests (`jwks.rs` reads the counter from `/metrics`).
const ONLY_WITH_A_SETTING: [&str; 1] = ["jwks_refresh_failures_total"];

/// Words of PromQL that are neither functions nor metric names.
const KEYWORDS: [&str; 12] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
];

fn repository_file(path: &str) -> String {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Skips from `start` (an opening bracket) past its closing one, minding
/// string literals inside.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut index = start;
    while index < chars.len() {
        match chars[index] {
            '"' | '\'' | '`' => index = skip_string(chars, index),
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
        index += 1;
    }
    panic!("unbalanced {open} in {}", chars.iter().collect::<String>());
}

/// The index of the closing quote of the string literal at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut index = start + 1;
    while index < chars.len() && chars[index] != quote {
        if chars[index] == '\\' {
            index += 1;
        }
        index += 1;
    }
    index
}

/// The metric names a PromQL expression selects: identifiers that are not
/// functions (followed by `(`), keywords, label lists (`by (…)`), label
/// matchers (`{…}`), ranges (`[…]`), numbers or Grafana variables (`$…`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut index = 0;
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while index < chars.len() {
        let c = chars[index];
        if c == '"' || c == '\'' || c == '`' {
            index = skip_string(&chars, index) + 1;
        } else if c == '{' {
            index = skip_group(&chars, index, '{', '}');
        } else if c == '[' {
            index = skip_group(&chars, index, '[', ']');
        } else if c == '$' {
            index += 1;
            while index < chars.len() && (is_part(chars[index]) || chars[index] == '{') {
                if chars[index] == '{' {
                    index = skip_group(&chars, index, '{', '}');
                } else {
                    index += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == '.' && index + 1 < chars.len()) {
            while index < chars.len() && (is_part(chars[index]) || chars[index] == '.') {
                index += 1;
            }
        } else if is_start(c) {
            let begin = index;
            while index < chars.len() && is_part(chars[index]) {
                index += 1;
            }
            let word: String = chars[begin..index].iter().collect();
            let mut next = index;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let called = next < chars.len() && chars[next] == '(';
            let lowered = word.to_ascii_lowercase();
            if KEYWORDS.contains(&lowered.as_str()) {
                if called && lowered != "bool" {
                    // A label list: `by (route, status)`.
                    index = skip_group(&chars, next, '(', ')');
                }
            } else if !called && lowered != "nan" && !AGGREGATIONS.contains(&lowered.as_str()) {
                names.insert(word);
            }
        } else {
            index += 1;
        }
    }
    names
}

#[test]
fn the_promql_reader_finds_the_metrics_and_nothing_else() {
    let found = metric_names(
        r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job=~"$job", route=~"/chat.*"}[$__rate_interval]))) > 0.5
           and on (instance) max_over_time(db_pool_connections_in_use[5m]) / db_pool_connections_max >= 0.9
           or sum(rate(x_total{a="b{c}"}[5m] offset 1h)) by (route) unless up{job="chat-api"} == bool 1e3"#,
    );
    let expected: BTreeSet<String> = [
        "http_request_duration_seconds_bucket",
        "db_pool_connections_in_use",
        "db_pool_connections_max",
        "x_total",
        "up",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
}

/// Every `expr` of the dashboard's panels and templating queries.
fn dashboard_expressions() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&repository_file("docs/grafana-dashboard.json")).expect("JSON");
    assert_eq!(dashboard["schemaVersion"], 39);
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut expressions = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().expect("a title").to_owned();
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{title}: the data source is the input"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            let expr = target["expr"].as_str().expect("an expr");
            expressions.push((title.clone(), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        let query = variable["query"]["query"].as_str().expect("a query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector)
            .expect("label_values(selector, label)");
        expressions.push((format!("variable {}", variable["name"]), inner.to_owned()));
    }
    // What the dashboard promises to show.
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Request rate by route and status",
        "5xx ratio",
        "Latency percentiles, /chat routes",
        "Pool connections",
        "Pool use",
        "Resident memory",
        "CPU",
    ] {
        assert!(titles.contains(&wanted), "a panel {wanted:?} in {titles:?}");
    }
    let all: String = expressions.iter().map(|(_, e)| e.as_str()).collect();
    for quantile in ["0.5", "0.95", "0.99"] {
        assert!(
            all.contains(&format!("histogram_quantile({quantile},")),
            "p{quantile}"
        );
    }
    expressions
}

/// Every `expr` of the rule file in docs/operations.md, "Suggested alerts".
fn alert_expressions() -> Vec<(String, String)> {
    let page = repository_file("docs/operations.md");
    let section = page
        .split_once("### Suggested alerts")
        .map(|(_, rest)| rest)
        .expect("a 'Suggested alerts' section");
    let block = section
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(yaml, _)| yaml)
        .expect("a yaml block");
    let documents = YamlLoader::load_from_str(block).expect("valid YAML");
    let mut expressions = Vec::new();
    for group in documents[0]["groups"].as_vec().expect("groups") {
        assert!(group["name"].as_str().is_some(), "a group name");
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("an alert name").to_owned();
            let expr = rule["expr"].as_str().expect("an expr");
            assert!(
                matches!(rule["labels"]["severity"], Yaml::String(_)),
                "{name}: a severity"
            );
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{name}: a summary"
            );
            expressions.push((name, expr.to_owned()));
        }
    }
    assert!(expressions.len() >= 6, "{expressions:?}");
    expressions
}

/// The metric names (series names: a histogram's `_bucket`, `_sum` and
/// `_count`) in a text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let user = User::new();
            let chat = app.create_chat(&user.token, "watched").await;
            let id = chat["id"].as_str().expect("id");
            assert_eq!(
                app.get(&format!("/chat/{id}"), &user.token).await.status(),
                200
            );
            assert_eq!(app.get("/chat/", &user.token).await.status(), 200);
            assert_eq!(app.get_anonymous("/chat/").await.status(), 401);
            assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);
            let response = app.get_anonymous("/metrics").await;
            assert_eq!(response.status(), 200);
            let series = exported(&response.text().await.expect("text"));

            let mut missing = Vec::new();
            let mut checked = BTreeSet::new();
            for (source, expressions) in [
                ("docs/grafana-dashboard.json", dashboard_expressions()),
                ("docs/operations.md alerts", alert_expressions()),
            ] {
                for (name, expr) in expressions {
                    let names = metric_names(&expr);
                    assert!(!names.is_empty(), "{source} {name}: no metric in {expr}");
                    for metric in names {
                        if !series.contains(&metric)
                            && !FROM_PROMETHEUS.contains(&metric.as_str())
                            && !ONLY_WITH_A_SETTING.contains(&metric.as_str())
                        {
                            missing.push(format!("{source}, {name}: {metric}"));
                        }
                        checked.insert(metric);
                    }
                }
            }
            assert!(
                missing.is_empty(),
                "queried but not exported:\n{}\nexported: {series:?}",
                missing.join("\n")
            );
            for metric in [
                "http_requests_total",
                "http_request_duration_seconds_bucket",
                "db_pool_connections_in_use",
                "db_pool_connections_idle",
                "db_pool_connections_max",
                "process_resident_memory_bytes",
                "process_cpu_seconds_total",
            ] {
                assert!(checked.contains(metric), "{metric} is queried");
            }
        })
        .await;
}
