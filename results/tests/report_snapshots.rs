//! Snapshot tests of the HTML report: a valid run, a linearizability violation and
//! transactional cycles. Plotters charts and timings are redacted; the rest is the page as a
//! person gets it.
mod common;

use common::*;
use results::{render, Analysis, NodeLog, ReportInput};
use serde_json::json;

fn redact(html: &str) -> String {
    let charts = regex::Regex::new(r#"(?s)<svg width="\d+" height="\d+" viewBox=.*?</svg>"#).unwrap();
    let elapsed = regex::Regex::new(r"\d+\.\d ms").unwrap();
    let html = charts.replace_all(html, "[plotters chart]");
    elapsed.replace_all(&html, "[elapsed]").into_owned()
}

fn page(title: &str, h: &checkers::History, a: &Analysis) -> String {
    render(&ReportInput {
        title: title.to_string(),
        started: Some("[started]".into()),
        params: json!({"workload": "register", "nodes": ["n1", "n2", "n3"], "nemesis": {"faults": ["partition", "clock"], "interval_s": 0.4}}),
        history: h,
        analysis: a,
        node_logs: vec![NodeLog { node: "n1".into(), path: "nodes/n1/server.log".into() }],
        files: vec!["history.jsonl".into(), "results.json".into()],
    })
}

#[test]
fn valid_run() {
    let h = register_history(60, 3, 1, 7, true);
    let a = analyse_register(&h);
    assert_eq!(a.verdict, checkers::verdict::Verdict::Valid);
    let html = page("register-valid", &h, &a);
    assert!(html.contains("class=\"band f-partition\""), "a partition band is drawn");
    insta::assert_snapshot!(redact(&html));
}

#[test]
fn linearizability_violation() {
    let h = stale_read_history();
    let a = analyse_register(&h);
    assert_eq!(a.verdict, checkers::verdict::Verdict::Invalid);
    let html = page("register-stale-read", &h, &a);
    // The anomaly links to the operation that could not be linearized, drawn in the timeline.
    assert!(html.contains("href=\"#op-6\""));
    assert!(html.contains("id=\"op-6\""));
    insta::assert_snapshot!(redact(&html));
}

#[test]
fn transactional_cycles() {
    let h = cycles_history();
    let a = analyse_list_append(&h);
    assert_eq!(a.verdict, checkers::verdict::Verdict::Invalid);
    let html = page("list-append-cycles", &h, &a);
    assert!(html.contains("G1c"));
    assert!(html.contains("G2-item"));
    insta::assert_snapshot!(redact(&html));
}

#[test]
fn values_from_the_history_are_escaped() {
    let mut h = stale_read_history();
    h.ops[0].value = json!("<script>alert(1)</script>");
    h.ops[1].value = json!("<script>alert(1)</script>");
    h.ops[1].error = Some("<img src=x onerror=alert(2)>".into());
    h.ops[0].f = "<b>write</b>".into();
    let a = analyse_register(&stale_read_history());
    let html = page("<script>alert(3)</script>", &h, &a);
    assert!(!html.contains("<script>alert"), "no injected script element");
    assert!(!html.contains("<img src=x"), "no injected image element");
    assert!(!html.contains("<b>write"), "no injected markup");
    // minijinja also escapes '/', as `&#x2f;`.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(html.contains("&lt;script&gt;alert(3)&lt;&#x2f;script&gt;"));
}
