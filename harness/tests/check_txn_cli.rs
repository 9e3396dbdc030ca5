//! `faultline check` with the transactional and invariant checkers: the same formats, JSON output
//! and exit codes as the linearizability models.
use std::path::PathBuf;
use std::process::{Command, Output};

fn txn_data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../checkers/tests/data/txn")
        .join(name)
        .display()
        .to_string()
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("faultline-txn-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn list_append_and_rw_register_verdicts_map_to_exit_codes() {
    let cases = [
        ("la-valid-concurrent.jsonl", "list-append", 0),
        ("la-g1c.jsonl", "list-append", 1),
        ("la-g2-item.jsonl", "list-append", 1),
        ("rw-valid.jsonl", "rw-register", 0),
        ("rw-g-single.jsonl", "rw-register", 1),
    ];
    for (file, model, code) in cases {
        let out = faultline(&["check", &txn_data(file), "--model", model]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{file}: {stdout}");
        if code == 1 {
            assert!(
                stdout.contains("weakest model ruled out"),
                "{file}: {stdout}"
            );
        }
    }
}

#[test]
fn json_output_names_the_anomalies() {
    let out = faultline(&[
        "check",
        &txn_data("la-g1c.jsonl"),
        "--model",
        "list-append",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["verdict"], "invalid");
    assert!(v["anomaly_counts"].get("G1c").is_some(), "{v}");
}

#[test]
fn jepsen_edn_transactions_are_read_directly() {
    // T1 appends 1 to key 5 and T2 reads [1]; then T3 reads [] after T2 completed: a realtime
    // violation of strict serializability (T3 must see T1's append).
    let edn = "\
{:type :invoke, :f :txn, :value [[:append 5 1]], :process 0, :time 0, :index 0}
{:type :ok, :f :txn, :value [[:append 5 1]], :process 0, :time 10, :index 1}
{:type :invoke, :f :txn, :value [[:r 5 nil]], :process 1, :time 20, :index 2}
{:type :ok, :f :txn, :value [[:r 5 [1]]], :process 1, :time 30, :index 3}
{:type :invoke, :f :txn, :value [[:r 5 nil]], :process 2, :time 40, :index 4}
{:type :ok, :f :txn, :value [[:r 5 []]], :process 2, :time 50, :index 5}
";
    let path = temp_file("stale.edn", edn);
    let out = faultline(&[
        "check",
        path.to_str().unwrap(),
        "--model",
        "list-append",
        "--format",
        "edn",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("realtime"), "{stdout}");
    let valid = temp_file(
        "ok.edn",
        &edn.replace(":value [[:r 5 []]]", ":value [[:r 5 [1]]]"),
    );
    let out = faultline(&["check", valid.to_str().unwrap(), "--model", "list-append"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bank_and_set_checkers_run_from_the_cli() {
    let bank = "\
{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"index\":1,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"a\":50,\"b\":50}}
{\"index\":2,\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"index\":3,\"time\":3,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"a\":40,\"b\":50}}
";
    let path = temp_file("bank.jsonl", bank);
    let out = faultline(&["check", path.to_str().unwrap(), "--model", "bank"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let set = "\
{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"add\",\"value\":1}
{\"index\":1,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"add\",\"value\":1}
{\"index\":2,\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"index\":3,\"time\":3,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":[1]}
";
    let path = temp_file("set.jsonl", set);
    let out = faultline(&["check", path.to_str().unwrap(), "--model", "set"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lost = temp_file(
        "set-lost.jsonl",
        &set.replace("\"value\":[1]}", "\"value\":[]}"),
    );
    let out = faultline(&["check", lost.to_str().unwrap(), "--model", "set"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_txn_history_the_checker_cannot_read_is_bad_input() {
    let bad = "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1]]}\n";
    let path = temp_file("bad.jsonl", bad);
    let out = faultline(&["check", path.to_str().unwrap(), "--model", "list-append"]);
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.jsonl"), "{stderr}");
}
