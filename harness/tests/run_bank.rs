//! `faultline run --workload bank` end to end on a 3-node local cluster: correct Raft under
//! partitions and kills, and correct 2PC under partitions, kills and pauses, must conserve the
//! total (the one recorded in test.yaml), keep balances non-negative and be checked valid, with
//! successful transfers and reads. Needs root (prints SKIPPED otherwise).
mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use checkers::history::{History, OpType};
use cluster_support::{config, faultline_run_on, fresh_store, root_or_skip, server_binary, Guard};
use results::store::RunDir;
use results::CheckerOutput;

/// The runs share the cluster's tag, bridge and subnet: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn faultline_run(
    cfg: &harness::cluster::ClusterConfig,
    store: &Path,
    target: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = faultline_run_on(cfg, store, target, "bank");
    cmd.arg("--server-bin").arg(server_binary()).args(extra);
    cmd
}

/// `ok` completions of client ops with function `f`.
fn oks(history: &History, f: &str) -> usize {
    history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind == OpType::Ok && o.f == f)
        .count()
}

/// Runs a bank test on a fresh 3-node cluster and checks what every valid bank run must show.
fn valid_bank_run(test: &str, target: &str, nemesis: &str, seed: &str) {
    if !root_or_skip(test) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("flbank", 49, 3);
    let (_guard, _c) = Guard::up(cfg.clone());
    let store = fresh_store(&format!("bank-{target}"));
    let out = faultline_run(
        &cfg,
        &store,
        target,
        &[
            "--nemesis",
            nemesis,
            "--nemesis-interval",
            "3",
            "--time-limit",
            "15",
            "--concurrency",
            "2n",
            "--seed",
            seed,
        ],
    )
    .output()
    .expect("run faultline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{target}-bank: valid")),
        "{stdout}"
    );

    let run = RunDir::open(std::fs::canonicalize(store.join("latest")).unwrap()).unwrap();
    let test_yaml = run.read_test().unwrap();
    assert_eq!(test_yaml["workload"], "bank");
    let accounts = test_yaml["bank"]["accounts"].as_array().unwrap().len();
    assert_eq!(accounts, 5, "{test_yaml}");
    assert_eq!(test_yaml["bank"]["total"], 500, "{test_yaml}");
    assert_eq!(test_yaml["bank"]["negative_balances_allowed"], false);

    let history = run.read_history().unwrap();
    assert!(oks(&history, "transfer") > 0, "no transfer committed");
    assert!(oks(&history, "read") > 0, "no read succeeded");
    // The setup is not part of the history: only transfers and reads.
    assert!(history
        .ops
        .iter()
        .filter(|o| o.is_client())
        .all(|o| o.f == "transfer" || o.f == "read"));
    assert!(
        history.ops.iter().any(|o| !o.is_client() && o.f != "heal"),
        "no fault was scheduled"
    );
    // The last op is the final read after healing, and it succeeded with every account.
    let last = history.ops.iter().rev().find(|o| o.is_client()).unwrap();
    assert_eq!(
        (last.f.as_str(), last.kind),
        ("read", OpType::Ok),
        "{last:?}"
    );
    assert_eq!(last.value.as_object().unwrap().len(), accounts);

    let analysis = run.read_results().unwrap().expect("results.json");
    let CheckerOutput::Bank(report) = &analysis.checkers[0].output else {
        panic!("not a bank check: {analysis:?}")
    };
    assert_eq!(
        report.expected_total,
        Some(500),
        "the recorded total is used"
    );
    assert_eq!(report.reads, oks(&history, "read"));
    assert_eq!(report.bad_reads, 0);
    assert!(run.report_path().is_file());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_bank_run_against_correct_raft_under_partitions_and_kills_is_valid() {
    valid_bank_run(
        "a_bank_run_against_correct_raft_under_partitions_and_kills_is_valid",
        "raft",
        "partition,kill",
        "1",
    );
}

#[test]
fn a_bank_run_against_correct_2pc_under_partitions_kills_and_pauses_is_valid() {
    valid_bank_run(
        "a_bank_run_against_correct_2pc_under_partitions_kills_and_pauses_is_valid",
        "2pc",
        "partition,kill,pause",
        "2",
    );
}
