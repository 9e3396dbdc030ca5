//! The run store: a run written by the runner's calls reads back the same.
mod common;

use chrono::TimeZone;
use common::*;
use results::Store;

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_run_reads_back_and_is_listed() {
    let root = tempdir("roundtrip");
    let store = Store::new(&root);
    let t1 = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let t2 = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, 0).unwrap();

    let h = stale_read_history();
    let a = analyse_register(&h);
    let run = store.create_run("register", t1).unwrap();
    run.write_history(&h).unwrap();
    run.write_results(&a).unwrap();
    run.write_test(&serde_json::json!({"nodes": ["n1"], "time_limit_s": 30})).unwrap();
    std::fs::write(run.node_dir("n1").unwrap().join("server.log"), "started\n").unwrap();

    assert_eq!(run.read_history().unwrap(), h);
    assert_eq!(run.read_results().unwrap(), Some(a.clone()));
    assert_eq!(run.read_test().unwrap()["time_limit_s"], 30);
    let logs = run.node_logs().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].path, "nodes/n1/server.log");

    let txn = cycles_history();
    let b = analyse_list_append(&txn);
    let run2 = store.create_run("list-append", t2).unwrap();
    run2.write_history(&txn).unwrap();
    run2.write_results(&b).unwrap();
    assert_eq!(run2.read_results().unwrap(), Some(b));
    assert_eq!(store.latest(), Some(results::RunDir { path: std::fs::canonicalize(&run2.path).unwrap() }));

    let runs = store.runs().unwrap();
    let names: Vec<(&str, &str)> = runs.iter().map(|r| (r.test.as_str(), r.timestamp.as_str())).collect();
    assert_eq!(
        names,
        vec![("list-append", "20260102T030500.000Z"), ("register", "20260102T030405.000Z")]
    );
    assert_eq!(runs[1].verdict, Some(checkers::verdict::Verdict::Invalid));
    assert_eq!(runs[1].anomalies, 1);
    assert_eq!(runs[1].duration_s, Some(0.06));
}

#[test]
fn bad_test_names_and_history_lines_are_errors() {
    let root = tempdir("bad");
    let store = Store::new(&root);
    let now = chrono::Utc::now();
    for bad in ["", "..", "../x", "a/b", ".hidden"] {
        assert!(store.create_run(bad, now).is_err(), "{bad:?} must be rejected");
    }
    let run = store.create_run("t", now).unwrap();
    std::fs::write(run.history_path(), "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n").unwrap();
    let err = run.read_history().unwrap_err().to_string();
    assert!(err.contains("history.jsonl:2"), "{err}");
}
