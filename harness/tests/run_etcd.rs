//! `faultline run --target etcd` end to end on 3-node local clusters: a short register test
//! under partitions, kills and pauses with linearizable reads must be valid; one with
//! serializable reads under partitions must produce a checked history (stale reads are likely
//! but not certain, so its verdict is not asserted). Needs root and Debian's etcd-server
//! (prints SKIPPED otherwise).
mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::history::OpType;
use cluster_support::{config, faultline_run_on, fresh_store, root_or_skip, Guard};
use harness::db::{self, Database, Etcd, EtcdConfig};
use harness::run::EtcdControl;
use nemesis::TargetControl;
use results::store::RunDir;

/// The two runs take turns: two etcd clusters at once would starve each other on small machines.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn etcd_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    if !Path::new("/usr/bin/etcd").is_file() {
        eprintln!("SKIPPED: /usr/bin/etcd is missing (apt-get install etcd-server): {test}");
        return false;
    }
    true
}

/// `faultline run --target etcd` against the test's own cluster, storing into `store`.
fn faultline_run(cfg: &harness::cluster::ClusterConfig, store: &Path, extra: &[&str]) -> Command {
    let mut cmd = faultline_run_on(cfg, store, "etcd", "register");
    cmd.args(extra);
    cmd
}

/// Runs, prints its output and opens the stored run; returns it with the exit code and stdout.
fn run_and_open(
    cfg: &harness::cluster::ClusterConfig,
    store: &Path,
    extra: &[&str],
) -> (RunDir, Option<i32>, String) {
    let out = faultline_run(cfg, store, extra)
        .output()
        .expect("run faultline");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}\n{stdout}");
    let run = RunDir::open(std::fs::canonicalize(store.join("latest")).unwrap()).unwrap();
    (run, out.status.code(), stdout)
}

/// Op indices run 0.., times never go back, some client op succeeded, and healing was recorded.
fn assert_well_formed(run: &RunDir) -> Vec<String> {
    let history = run.read_history().expect("history parses");
    assert!(history
        .ops
        .iter()
        .enumerate()
        .all(|(i, o)| o.index == i as u64));
    assert!(history.ops.windows(2).all(|w| w[0].time <= w[1].time));
    let oks = history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind == OpType::Ok)
        .count();
    assert!(oks > 0, "no successful client op");
    let faults: Vec<String> = history
        .ops
        .iter()
        .filter(|o| !o.is_client())
        .map(|o| o.f.clone())
        .collect();
    assert!(faults.iter().any(|f| f == "heal"), "{faults:?}");
    assert!(run.read_results().unwrap().is_some(), "no results.json");
    assert!(run.report_path().is_file());
    faults
}

#[test]
fn a_register_run_against_etcd_under_partitions_kills_and_pauses_is_valid() {
    let name = "a_register_run_against_etcd_under_partitions_kills_and_pauses_is_valid";
    if !etcd_or_skip(name) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("flre", 37, 3);
    let (_guard, _c) = Guard::up(cfg.clone());
    let store = fresh_store("run-etcd");
    let (run, code, stdout) = run_and_open(
        &cfg,
        &store,
        &[
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--concurrency",
            "2n",
            "--seed",
            "4",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("etcd-register: valid"), "{stdout}");
    let faults = assert_well_formed(&run);
    assert!(
        faults
            .iter()
            .any(|f| ["start-partition", "kill", "pause"].contains(&f.as_str())),
        "no fault was applied: {faults:?}"
    );
    let analysis = run.read_results().unwrap().expect("results.json");
    assert_eq!(analysis.verdict, checkers::verdict::Verdict::Valid);
    let test = run.read_test().unwrap();
    assert_eq!(test["target"], "etcd");
    assert_eq!(test["seed"], 4);
    for n in ["n1", "n2", "n3"] {
        assert!(
            run.path.join("nodes").join(n).join("etcd.log").is_file(),
            "{n}'s etcd log was not collected"
        );
    }
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_serializable_read_run_against_etcd_is_checked() {
    let name = "a_serializable_read_run_against_etcd_is_checked";
    if !etcd_or_skip(name) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("flrs", 38, 3);
    let (_guard, _c) = Guard::up(cfg.clone());
    let store = fresh_store("run-etcd-serializable");
    let (run, code, stdout) = run_and_open(
        &cfg,
        &store,
        &[
            "--read-mode",
            "serializable",
            "--nemesis",
            "partition,clock",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--concurrency",
            "2n",
            // Seed 3's schedule: a clock bump, then a partition.
            "--seed",
            "3",
        ],
    );
    // Valid (0) or invalid (1): stale reads depend on timing. Never a harness failure.
    assert!(matches!(code, Some(0) | Some(1)), "{stdout}");
    assert!(stdout.contains("etcd-register: "), "{stdout}");
    let faults = assert_well_formed(&run);
    let test = run.read_test().unwrap();
    assert_eq!(test["read_mode"], "serializable");
    // Clock faults cannot reach etcd: every one is recorded as skipped with the reason.
    let history = run.read_history().unwrap();
    let clock: Vec<_> = history
        .ops
        .iter()
        .filter(|o| !o.is_client() && o.f.ends_with("-clock"))
        .collect();
    assert!(
        !clock.is_empty(),
        "no clock fault in the schedule: {faults:?}"
    );
    assert!(
        faults.iter().any(|f| f == "start-partition"),
        "no partition in the schedule: {faults:?}"
    );
    for op in clock {
        let text = serde_json::to_string(op).unwrap();
        assert!(
            text.contains("skipped") && text.contains("libfaketime"),
            "{text}"
        );
    }
    std::fs::remove_dir_all(&store).unwrap();
}

/// Flags that make no sense for etcd stop `faultline run` before it touches any node: exit 254
/// and one line naming the flag.
#[test]
fn bad_etcd_arguments_exit_254_naming_the_flag() {
    let me = env!("CARGO_BIN_EXE_faultline");
    let private = [
        "--local",
        "3",
        "--cluster-dir",
        "/var/lib/faultline/test-flargs-etcd",
        "--cluster-tag",
        "flargse",
        "--cluster-bridge",
        "flargsebr",
        "--cluster-subnet",
        "10.77.38",
    ];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--target", "etcd", "--read-mode", "quorum"],
            "--read-mode",
        ),
        (&["--target", "etcd", "--bug", "stale-read"], "--bug"),
        (
            &["--target", "raft", "--read-mode", "serializable"],
            "--read-mode",
        ),
        (
            &["--target", "etcd", "--server-bin", "/nonexistent/etcd"],
            "--server-bin",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(me)
            .arg("run")
            .args(args)
            .args(private)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// `EtcdControl::leader` names the member that leads; after that member is killed, another one.
#[test]
fn etcd_control_finds_the_leader_and_its_successor() {
    let name = "etcd_control_finds_the_leader_and_its_successor";
    if !etcd_or_skip(name) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("flre", 37, 3);
    let (_guard, c) = Guard::up(cfg.clone());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(leader_and_successor(&c));
}

async fn leader_and_successor(c: &harness::cluster::LocalCluster) {
    let nodes = cluster_support::connect(c).await;
    let etcd = Arc::new(Etcd::new(EtcdConfig::new(db::members_of(&nodes))).unwrap());
    db::setup(etcd.as_ref(), &nodes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    etcd.wait_healthy(&nodes, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let control = EtcdControl::new(etcd.clone(), nodes.clone());
    let leader = control
        .leader()
        .await
        .unwrap()
        .expect("a healthy cluster has a leader");
    assert!(["n1", "n2", "n3"].contains(&leader.as_str()), "{leader}");
    control.kill(&leader).await.unwrap();
    let mut next = None;
    for _ in 0..300 {
        next = control.leader().await.unwrap().filter(|l| *l != leader);
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = next.expect("the two members left elect a leader");
    assert_ne!(next, leader);
    db::teardown(etcd.as_ref(), &nodes, None).await.unwrap();
    db::on_all(&nodes, |n| etcd.wipe(n)).await.unwrap();
}
