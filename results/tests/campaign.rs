//! Campaign outputs: anomaly types and detection times of real analyses, `junit.xml` as CI
//! systems read it, `index.html`, and the campaign directory with its trends.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use checkers::history::{History, OpType, Value};
use chrono::TimeZone;
use common::*;
use results::analysis::detection_time;
use results::campaign::{
    read_trends, render_index, render_junit, CampaignDir, CampaignSummary, EntryResult,
    Expectation, Outcome, TrendRecord, INDEX_FILE, JUNIT_FILE, SUMMARY_FILE, TRENDS_FILE,
};
use results::{analyse, CheckModel, Store, StoreError};
use serde_json::json;

const MS: i64 = 1_000_000;

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("faultline-campaign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// Analyses

/// Read skew: T1 appends to x and y; T2, concurrent, sees T1's x but not its y. Preceded by an
/// unrelated transaction so the cycle does not start at time zero.
fn g_single_history() -> History {
    let t = |p: u64, at: i64, kind: OpType, v: Value| op(at * MS, client(p), kind, "txn", v);
    history(vec![
        t(2, 0, OpType::Invoke, json!([["r", "z", null]])),
        t(2, 5, OpType::Ok, json!([["r", "z", []]])),
        t(
            0,
            100,
            OpType::Invoke,
            json!([["append", "x", 1], ["append", "y", 1]]),
        ),
        t(
            1,
            101,
            OpType::Invoke,
            json!([["r", "x", null], ["r", "y", null]]),
        ),
        t(
            0,
            105,
            OpType::Ok,
            json!([["append", "x", 1], ["append", "y", 1]]),
        ),
        t(1, 106, OpType::Ok, json!([["r", "x", [1]], ["r", "y", []]])),
    ])
}

/// Transfers conserve 20 between two accounts; the read completing at 60 ms shows 25, the one
/// completing at 80 ms a negative balance.
fn bank_history() -> History {
    let c = |p: u64, at: i64, kind: OpType, f: &str, v: Value| op(at * MS, client(p), kind, f, v);
    let t = json!({"from": "a", "to": "b", "amount": 5});
    history(vec![
        c(0, 0, OpType::Invoke, "read", Value::Null),
        c(0, 10, OpType::Ok, "read", json!({"a": 10, "b": 10})),
        c(1, 20, OpType::Invoke, "transfer", t.clone()),
        c(1, 30, OpType::Ok, "transfer", t),
        c(0, 50, OpType::Invoke, "read", Value::Null),
        c(0, 60, OpType::Ok, "read", json!({"a": 5, "b": 20})),
        c(0, 70, OpType::Invoke, "read", Value::Null),
        c(0, 80, OpType::Ok, "read", json!({"a": -5, "b": 25})),
    ])
}

/// Element 1 is acknowledged, read, then gone from 30 ms on; element 9 was never added.
fn set_history() -> History {
    let c = |p: u64, at: i64, kind: OpType, f: &str, v: Value| op(at * MS, client(p), kind, f, v);
    history(vec![
        c(0, 0, OpType::Invoke, "add", json!(1)),
        c(1, 1, OpType::Invoke, "add", json!(2)),
        c(0, 10, OpType::Ok, "add", json!(1)),
        c(1, 11, OpType::Ok, "add", json!(2)),
        c(2, 20, OpType::Invoke, "read", Value::Null),
        c(2, 25, OpType::Ok, "read", json!([1, 2])),
        c(2, 30, OpType::Invoke, "read", Value::Null),
        c(2, 35, OpType::Ok, "read", json!([2])),
        c(2, 40, OpType::Invoke, "read", Value::Null),
        c(2, 45, OpType::Ok, "read", json!([2, 9])),
    ])
}

fn time_at(h: &History, index: u64) -> i64 {
    h.ops.iter().find(|o| o.index == index).unwrap().time
}

#[test]
fn a_stale_read_is_nonlinearizable_and_detected_at_its_invocation() {
    let h = stale_read_history();
    let a = analyse(&h, CheckModel::Register, None).unwrap();
    assert_eq!(a.anomaly_types(), vec!["nonlinearizable"]);
    let results::CheckerOutput::Linear(r) = &a.checkers[0].output else {
        panic!("a linearizability result");
    };
    let ce = r.counterexample.as_ref().unwrap();
    // The read of 1 invoked at 38 ms, after the write of 2 completed.
    assert_eq!(ce.op.f, "read");
    assert_eq!(time_at(&h, ce.op.index), 38 * MS);
    let line = a.summary_line();
    assert!(
        line.starts_with("nonlinearizable: cannot linearize process 0: read -> 1"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    assert_eq!(
        detection_time(&a, &h),
        Some(Duration::from_millis(38)),
        "from the first op (t=0) to the read's invocation"
    );
}

#[test]
fn read_skew_is_g_single_detected_at_the_cycle_start() {
    let h = g_single_history();
    let a = analyse(&h, CheckModel::ListAppend, None).unwrap();
    assert_eq!(a.anomaly_types(), vec!["G-single"]);
    assert_eq!(a.summary_line(), "1 anomaly: G-single \u{d7}1");
    // T1 invoked at 100 ms is the cycle's earliest operation.
    assert_eq!(detection_time(&a, &h), Some(Duration::from_millis(100)));
}

#[test]
fn transactional_type_names_are_the_reports_own() {
    let h = cycles_history();
    let a = analyse(&h, CheckModel::ListAppend, None).unwrap();
    let results::CheckerOutput::Txn(r) = &a.checkers[0].output else {
        panic!("a transactional result");
    };
    let expected: Vec<String> = r.anomaly_counts.keys().cloned().collect();
    assert_eq!(a.anomaly_types(), expected);
    assert!(a.anomaly_types().contains(&"G1c".to_string()));
    assert!(a.anomaly_types().contains(&"G2-item".to_string()));
    let line = a.summary_line();
    assert!(
        line.contains("G1c \u{d7}1") && line.contains("G2-item \u{d7}1"),
        "{line}"
    );
    // The G1c cycle starts with the first transaction, invoked at t=0.
    assert_eq!(detection_time(&a, &h), Some(Duration::ZERO));
}

#[test]
fn bank_bad_reads_are_typed_and_detected_at_the_first_bad_completion() {
    let h = bank_history();
    let a = analyse(&h, CheckModel::Bank, None).unwrap();
    assert_eq!(a.anomaly_types(), vec!["negative-balance", "wrong-total"]);
    assert_eq!(
        a.summary_line(),
        "2 bad reads: wrong-total \u{d7}1, negative-balance \u{d7}1"
    );
    assert_eq!(detection_time(&a, &h), Some(Duration::from_millis(60)));
}

#[test]
fn set_anomalies_are_typed_and_detected_where_a_read_shows_them() {
    let h = set_history();
    let a = analyse(&h, CheckModel::Set, None).unwrap();
    assert_eq!(a.anomaly_types(), vec!["lost", "unexpected"]);
    assert_eq!(
        a.summary_line(),
        "2 anomalies: lost \u{d7}1 [1], unexpected \u{d7}1 [9]"
    );
    // Element 1 is missing from every read from the one completing at 35 ms on.
    assert_eq!(detection_time(&a, &h), Some(Duration::from_millis(35)));
}

#[test]
fn a_valid_analysis_has_no_types_summary_or_detection() {
    let h = register_history(300, 3, 2, 7, true);
    let a = analyse(&h, CheckModel::Register, None).unwrap();
    assert_eq!(a.verdict, checkers::verdict::Verdict::Valid);
    assert!(a.anomaly_types().is_empty());
    assert_eq!(a.summary_line(), "");
    assert_eq!(detection_time(&a, &h), None);
}

// ---------------------------------------------------------------------------------------------
// Summaries

fn entry(id: &str, outcome: Outcome, passed: bool, expect: Expectation) -> EntryResult {
    let run = (outcome != Outcome::Skipped).then(|| format!("{id}/20260102T030405.000Z"));
    EntryResult {
        id: id.to_string(),
        target: "raft".into(),
        workload: "register".into(),
        nemesis: "partition,kill".into(),
        seed: 3,
        bugs: vec![],
        read_mode: None,
        time_limit_s: 30.0,
        expect,
        outcome,
        anomalies: if outcome == Outcome::Invalid {
            vec!["nonlinearizable".into()]
        } else {
            vec![]
        },
        summary: String::new(),
        passed,
        run,
        detection_s: (outcome == Outcome::Invalid).then_some(1.25),
        duration_s: 41.5,
        client_ops: 1200,
    }
}

fn invalid() -> Expectation {
    Expectation::Invalid { anomalies: vec![] }
}

/// Four entries, one of each status, with hostile text in the failing one.
fn summary() -> CampaignSummary {
    let pass = entry(
        "raft-register-partition-s1",
        Outcome::Valid,
        true,
        Expectation::Valid,
    );
    let mut fail = entry(
        "raft-register-bug=stale-read-s1",
        Outcome::Valid,
        false,
        Expectation::Invalid {
            anomalies: vec!["nonlinearizable".into()],
        },
    );
    fail.bugs = vec!["stale-read".into()];
    fail.summary = "<script>alert(\"x\")</script> & 'quoted'\nsecond line\tTAB".into();
    let mut caught = entry(
        "paxos-set-kill-s2",
        Outcome::Invalid,
        true,
        Expectation::Invalid {
            anomalies: vec!["lost".into()],
        },
    );
    caught.target = "paxos".into();
    caught.workload = "set".into();
    caught.nemesis = "kill".into();
    caught.anomalies = vec!["lost".into()];
    caught.summary = "1 anomaly: lost \u{d7}1 [4]".into();
    caught.read_mode = Some("serializable".into());
    let mut error = entry(
        "raft-register-pause-s1",
        Outcome::HarnessError,
        false,
        invalid(),
    );
    error.nemesis = "pause".into();
    error.summary = "n2: ssh: connection refused".into();
    let mut skipped = entry("raft-register-clock-s1", Outcome::Skipped, false, invalid());
    skipped.nemesis = "clock".into();
    skipped.duration_s = 0.0;
    CampaignSummary {
        name: "smoke".into(),
        file: "campaigns/smoke.yaml".into(),
        started: "2026-01-02T03:04:05.000Z".into(),
        finished: "2026-01-02T03:09:35.500Z".into(),
        entries: vec![pass, fail, caught, error, skipped],
        interrupted: true,
    }
}

// ---------------------------------------------------------------------------------------------
// junit.xml

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    n.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name}", n.tag_name().name()))
}

fn count_attr(n: roxmltree::Node, name: &str) -> usize {
    attr(n, name).parse().unwrap()
}

#[test]
fn junit_has_the_structure_ci_systems_read() {
    let s = summary();
    let xml = render_junit(&s);
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(attr(suite, "name"), "smoke");
    assert_eq!(attr(suite, "timestamp"), "2026-01-02T03:04:05");
    assert_eq!(attr(suite, "time"), "330.500");

    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let with = |tag: &str| {
        cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name(tag)))
            .count()
    };
    // The counts agree with the children, in the suite and in the root.
    for n in [root, suite] {
        assert_eq!(count_attr(n, "tests"), cases.len());
        assert_eq!(count_attr(n, "failures"), with("failure"));
        assert_eq!(count_attr(n, "errors"), with("error"));
        assert_eq!(count_attr(n, "skipped"), with("skipped"));
    }
    assert_eq!((with("failure"), with("error"), with("skipped")), (1, 1, 1));

    for (case, e) in cases.iter().zip(&s.entries) {
        assert_eq!(attr(*case, "name"), e.id);
        assert_eq!(
            attr(*case, "classname"),
            format!("faultline.{}.{}", e.target, e.workload)
        );
        let time: f64 = attr(*case, "time").parse().unwrap();
        assert!((time - e.duration_s).abs() < 1e-3);
        let child = |tag: &str| case.children().find(|n| n.has_tag_name(tag));
        match e.outcome {
            Outcome::HarnessError => {
                let err = child("error").expect("a harness failure is an <error>");
                assert_eq!(
                    attr(err, "message"),
                    "harness error: n2: ssh: connection refused"
                );
                assert!(child("failure").is_none());
            }
            Outcome::Skipped => {
                assert!(child("skipped").is_some());
                assert!(child("system-out").is_none(), "no run, no report");
            }
            _ if e.passed => {
                assert!(child("failure").is_none() && child("error").is_none());
            }
            _ => {
                let f = child("failure").expect("an unexpected outcome is a <failure>");
                assert_eq!(
                    attr(f, "message"),
                    "expected invalid [nonlinearizable], got valid"
                );
                assert_eq!(attr(f, "type"), "anomaly-missed");
                // Markup, ampersands, quotes, newline and tab round-trip through escaping.
                assert_eq!(
                    f.text().unwrap(),
                    format!("{}\nrun: {}", e.summary, e.run.as_deref().unwrap())
                );
            }
        }
        if let Some(run) = &e.run {
            assert_eq!(
                child("system-out").unwrap().text().unwrap(),
                format!("report: {run}/report.html (relative to the store)")
            );
        }
    }
    assert!(!xml.contains("<script>"));
}

#[test]
fn junit_attributes_and_control_characters_round_trip() {
    let mut s = summary();
    s.name = "night \"1\" <&> 'x'".into();
    s.entries[0].id = "a<b>&\"c\"\n'd'\t".into();
    s.entries[1].summary = "bell \u{7} and nul \u{0}".into();
    let xml = render_junit(&s);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed despite control characters");
    let suite = doc.root_element().first_element_child().unwrap();
    assert_eq!(attr(suite, "name"), s.name);
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(attr(cases[0], "name"), s.entries[0].id);
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .text()
        .unwrap()
        .starts_with("bell \u{FFFD} and nul \u{FFFD}"));
}

// ---------------------------------------------------------------------------------------------
// index.html

fn trend(
    timestamp: &str,
    id: &str,
    outcome: Outcome,
    passed: bool,
    det: Option<f64>,
) -> TrendRecord {
    TrendRecord {
        timestamp: timestamp.into(),
        id: id.into(),
        outcome,
        passed,
        detection_s: det,
        run: Some(format!("{id}/{timestamp}")),
    }
}

fn redact(html: &str) -> String {
    let stamps = regex::Regex::new(r"\d{8}T\d{6}\.\d{3}Z").unwrap();
    let rfc3339 = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let html = stamps.replace_all(html, "[stamp]");
    rfc3339.replace_all(&html, "[time]").into_owned()
}

#[test]
fn index_snapshot() {
    let s = summary();
    let t = |n: u32| format!("202512{n:02}T030405.000Z");
    let trends = [
        // The missed bug was caught on the two nights before: flaky.
        trend(&t(30), &s.entries[1].id, Outcome::Invalid, true, Some(2.0)),
        trend(&t(31), &s.entries[1].id, Outcome::Invalid, true, Some(4.5)),
        trend(&t(31), &s.entries[0].id, Outcome::Valid, true, None),
        trend(&t(31), &s.entries[3].id, Outcome::HarnessError, false, None),
        trend(&t(31), "an-entry-since-removed", Outcome::Valid, true, None),
    ]
    .into_iter()
    // This campaign run, as `CampaignDir::finish` appends it.
    .chain(s.entries.iter().map(|e| TrendRecord {
        timestamp: "20260102T030405.000Z".into(),
        id: e.id.clone(),
        outcome: e.outcome,
        passed: e.passed,
        detection_s: e.detection_s,
        run: e.run.clone(),
    }))
    .collect::<Vec<_>>();
    let html = render_index(&s, &trends);
    assert_eq!(html.matches("class=\"flaky\"").count(), 1);
    insta::assert_snapshot!("campaign_index", redact(&html));
}

#[test]
fn index_escapes_everything_and_links_reports() {
    let mut s = summary();
    s.name = "<img src=x onerror=alert(1)>".into();
    s.entries[0].target = "<b>raft</b>".into();
    let html = render_index(&s, &[]);
    assert!(!html.contains("<script>"), "entry summaries are escaped");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt;"));
    assert!(!html.contains("<img"), "campaign names are escaped");
    assert!(!html.contains("<b>raft"), "targets are escaped");
    // Runs are linked relative to campaigns/<name>/<timestamp>/.
    assert!(html.contains(
        "href=\"..&#x2f;..&#x2f;..&#x2f;raft-register-partition-s1&#x2f;20260102T030405.000Z&#x2f;report.html\""
    ));
    // No external assets.
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script"));
}

// ---------------------------------------------------------------------------------------------
// The campaign directory

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn campaign_runs_accumulate_trends_and_move_latest() {
    let root = tempdir("dir");
    let t1 = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let t2 = chrono::Utc.with_ymd_and_hms(2026, 1, 3, 3, 4, 5).unwrap();
    // Includes a skipped entry: `write` shows no trend for it yet, `finish` records it.
    let s = summary();
    let n = s.entries.len();
    let trends = root.join("campaigns/smoke").join(TRENDS_FILE);

    for (night, started) in [t1, t2].into_iter().enumerate() {
        let dir = CampaignDir::create(&root, "smoke", started).unwrap();
        assert_eq!(
            dir.path(),
            root.join("campaigns/smoke")
                .join(started.format("%Y%m%dT%H%M%S%.3fZ").to_string())
        );
        // As the runner does: after every entry, then once at the end.
        for done in 1..=n {
            let mut partial = s.clone();
            partial.entries.truncate(done);
            dir.write(&partial).unwrap();
            let back: CampaignSummary = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join(SUMMARY_FILE)).unwrap(),
            )
            .unwrap();
            assert_eq!(back, partial);
            roxmltree::Document::parse(
                &std::fs::read_to_string(dir.path().join(JUNIT_FILE)).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(
            read_trends(&trends).unwrap().len(),
            night * n,
            "write() does not append"
        );
        dir.finish(&s).unwrap();
        assert_eq!(lines(&trends), (night + 1) * n);
        let index = std::fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
        assert_eq!(
            index.matches("class=\"mark ").count(),
            (night + 1) * n,
            "each entry shows one trend mark per campaign run"
        );
        let latest = std::fs::read_link(root.join("campaigns/smoke/latest")).unwrap();
        assert_eq!(root.join("campaigns/smoke").join(latest), dir.path());
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
    let records = read_trends(&trends).unwrap();
    assert_eq!(records[0].timestamp, "20260102T030405.000Z");
    assert_eq!(records[n].timestamp, "20260103T030405.000Z");
    assert_eq!(records[1].id, s.entries[1].id);
    assert_eq!(records[1].detection_s, s.entries[1].detection_s);

    // The same start time again: a new directory is never the old one.
    assert!(CampaignDir::create(&root, "smoke", t2).is_err());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn campaign_names_must_be_one_harmless_component() {
    let root = tempdir("names");
    let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    for bad in ["", "..", ".hidden", "a/b", "../up", "sp ace"] {
        assert!(
            matches!(
                CampaignDir::create(&root, bad, t),
                Err(StoreError::BadTestName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(!root.join("up").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_torn_trend_line_is_dropped_and_a_corrupt_one_named() {
    let root = tempdir("torn");
    let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let trends = root.join("campaigns/smoke").join(TRENDS_FILE);
    std::fs::create_dir_all(trends.parent().unwrap()).unwrap();
    let good = serde_json::to_string(&trend("x", "id", Outcome::Valid, true, None)).unwrap();
    // A campaign killed in the middle of its append.
    std::fs::write(&trends, format!("{good}\n{{\"timestamp\":\"2026")).unwrap();
    assert_eq!(read_trends(&trends).unwrap().len(), 1);
    let mut s = summary();
    s.entries.truncate(2);
    let dir = CampaignDir::create(&root, "smoke", t).unwrap();
    dir.finish(&s).unwrap();
    assert_eq!(read_trends(&trends).unwrap().len(), 3);
    assert_eq!(lines(&trends), 3);

    std::fs::write(&trends, format!("{good}\nnot json\n{good}\n")).unwrap();
    let err = read_trends(&trends).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: line 2:", trends.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_run_index_skips_campaigns_and_runs_cannot_be_named_so() {
    let root = tempdir("store");
    let store = Store::new(&root);
    let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    store.create_run("register", t).unwrap();
    let dir = CampaignDir::create(&root, "smoke", t).unwrap();
    dir.finish(&summary()).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].test, "register");
    assert!(matches!(
        store.create_run("campaigns", t),
        Err(StoreError::ReservedTestName(_))
    ));
    assert!(matches!(
        store.create_run("latest", t),
        Err(StoreError::ReservedTestName(_))
    ));
    std::fs::remove_dir_all(&root).unwrap();
}
