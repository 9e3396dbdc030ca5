//! `faultline check` end to end: verdicts, exit codes and one-line input errors.
use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    let shared = std::env::var_os("FAULTLINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("fixtures/porcupine");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "Porcupine fixtures missing at {} (set FAULTLINE_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("faultline-check-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn fixtures_get_porcupines_verdicts_and_exit_codes() {
    let dir = fixtures();
    let cases = [
        ("jepsen/etcd_000.log", 1),
        ("jepsen/etcd_002.log", 0),
        ("jepsen/etcd_095.log", 0),
        ("jepsen/etcd_100.log", 0),
        ("kv/c01-bad.txt", 1),
        ("kv/c10-ok.txt", 0),
    ];
    for (file, code) in cases {
        let path = dir.join(file);
        let out = faultline(&["check", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{file}: {stdout}");
    }
}

#[test]
fn json_output_carries_the_counterexample() {
    let path = fixtures().join("jepsen/etcd_000.log");
    let out = faultline(&[
        "check",
        path.to_str().unwrap(),
        "--json",
        "--format",
        "porcupine-etcd",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["model"], "cas-register");
    assert!(v["counterexample"]["prefix"].is_array());
    assert!(v["counterexample"]["states"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
}

#[test]
fn text_output_explains_the_violation() {
    let path = temp_file(
        "stale.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n\
         {:process 0, :type :ok, :f :write, :value 1}\n\
         {:process 1, :type :invoke, :f :read, :value nil}\n\
         {:process 1, :type :ok, :f :read, :value nil}\n",
    );
    let out = faultline(&["check", path.to_str().unwrap(), "--model", "register"]);
    let stdout = String::from_utf8_lossy(&out.stdout).replace(path.to_str().unwrap(), "FILE");
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout,
        "FILE: NOT linearizable (model register, 2 operations, 1 key)\n\
         The history is not linearizable.\n\
         Cannot linearize: process 1: read -> null  [ops 2..3]\n\
         Longest linearizable prefix found (1 ops):\n\
         \x20    1. process 0: write 1 -> ok  [ops 0..1]\n\
         Model states reachable at that point: 1\n"
    );
}

#[test]
fn a_zero_time_limit_gives_unknown() {
    let path = fixtures().join("jepsen/etcd_002.log");
    let out = faultline(&["check", path.to_str().unwrap(), "--time-limit", "0"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn malformed_input_is_one_line_naming_file_and_line() {
    let path = temp_file(
        "bad.edn",
        "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value [1 2}\n",
    );
    let p = path.to_str().unwrap();
    let out = faultline(&["check", p]);
    std::fs::remove_file(&path).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("{p}:2: ")), "{stderr}");
    assert!(stderr.contains("column 46: unexpected '}'"), "{stderr}");
}

#[test]
fn bad_arguments_and_missing_files_exit_254() {
    let out = faultline(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(254));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/history.jsonl: cannot open")
    );
    let path = fixtures().join("kv/c01-ok.txt");
    for args in [
        vec!["check", path.to_str().unwrap(), "--model", "queue"],
        vec!["check", path.to_str().unwrap(), "--time-limit", "soon"],
        vec!["check", path.to_str().unwrap(), "--model", "register"],
    ] {
        let out = faultline(&args);
        assert_eq!(
            out.status.code(),
            Some(254),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
