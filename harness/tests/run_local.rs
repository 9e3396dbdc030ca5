//! `faultline run` end to end on 3-node local clusters: a short register test against correct
//! Raft under partitions and kills, and a controller killed with SIGKILL mid-run whose history
//! still parses, whose run `faultline analyze` still checks, and whose faults `heal_all` removes.
//! Needs root (prints SKIPPED otherwise).
mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use checkers::read::{self, Format};
use cluster_support::{
    config, connect, faultline_run_on, fresh_store, root_or_skip, server_binary, Guard,
};
use harness::db::{self, members_of, BinarySource, FaultlineServer, Protocol, ServerConfig};
use harness::run::recorder::complete_lines;
use nemesis::heal::residue_with;
use nemesis::{Access, OffsetFiles};
use results::store::RunDir;

/// `faultline run` against the test's own cluster, storing into `store`.
fn faultline_run(cfg: &harness::cluster::ClusterConfig, store: &Path, extra: &[&str]) -> Command {
    let mut cmd = faultline_run_on(cfg, store, "raft", "register");
    cmd.arg("--server-bin").arg(server_binary()).args(extra);
    cmd
}

fn faketime_access() -> Access {
    Access {
        offset_files: OffsetFiles::Fixed("/opt/faultline/run/faketime".into()),
        ..Access::default()
    }
}

#[test]
fn a_register_run_against_correct_raft_is_valid_and_stored() {
    if !root_or_skip("a_register_run_against_correct_raft_is_valid_and_stored") {
        return;
    }
    let cfg = config("flrun", 40, 3);
    let (_guard, _c) = Guard::up(cfg.clone());
    let store = fresh_store("run");
    let out = faultline_run(
        &cfg,
        &store,
        &[
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--concurrency",
            "2n",
            "--seed",
            "3",
        ],
    )
    .output()
    .expect("run faultline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("raft-register: valid"), "{stdout}");

    let run = RunDir::open(std::fs::canonicalize(store.join("latest")).unwrap()).unwrap();
    let history = run.read_history().expect("history parses");
    assert!(history
        .ops
        .iter()
        .enumerate()
        .all(|(i, o)| o.index == i as u64));
    assert!(history.ops.windows(2).all(|w| w[0].time <= w[1].time));
    let client_oks = history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind == checkers::history::OpType::Ok)
        .count();
    assert!(client_oks > 0, "no successful client op");
    let faults: Vec<&str> = history
        .ops
        .iter()
        .filter(|o| !o.is_client())
        .map(|o| o.f.as_str())
        .collect();
    assert!(faults.contains(&"heal"), "{faults:?}");
    assert!(
        faults
            .iter()
            .any(|f| *f == "start-partition" || *f == "kill"),
        "no fault was applied: {faults:?}"
    );
    let analysis = run.read_results().unwrap().expect("results.json");
    assert_eq!(analysis.verdict, checkers::verdict::Verdict::Valid);
    assert!(run.report_path().is_file());
    let test = run.read_test().unwrap();
    assert_eq!(test["workload"], "register");
    assert_eq!(test["seed"], 3);
    for n in ["n1", "n2", "n3"] {
        assert!(
            run.path
                .join("nodes")
                .join(n)
                .join("faultline-server.log")
                .is_file(),
            "{n}'s log was not collected"
        );
    }
    std::fs::remove_dir_all(&store).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_controller_leaves_a_checkable_history_and_healable_nodes() {
    if !root_or_skip("a_killed_controller_leaves_a_checkable_history_and_healable_nodes") {
        return;
    }
    let cfg = config("flkill", 43, 3);
    let (_guard, c) = Guard::up(cfg.clone());
    let store = fresh_store("kill");
    let mut child = faultline_run(
        &cfg,
        &store,
        &[
            "--nemesis",
            "partition,pause,clock",
            "--nemesis-interval",
            "3",
            "--time-limit",
            "300",
            "--seed",
            "5",
        ],
    )
    .spawn()
    .expect("spawn faultline");

    // Wait until a fault was recorded as installed, then kill the controller outright.
    let latest = store.join("latest");
    let mut waited = Duration::ZERO;
    let history_path = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("faultline exited early: {status}");
        }
        let path = latest.join("history.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let started_fault = text.lines().any(|l| {
            l.contains("\"nemesis\"")
                && l.contains("\"installed\"")
                && ["start-partition", "pause", "bump-clock", "strobe-clock"]
                    .iter()
                    .any(|f| l.contains(&format!("\"f\":\"{f}\"")))
        });
        if started_fault {
            break path;
        }
        assert!(
            waited < Duration::from_secs(180),
            "no fault installed within 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    };
    child.kill().expect("SIGKILL the controller");
    let status = child.wait().unwrap();
    assert!(!status.success());

    // The history parses up to its last complete line.
    let bytes = std::fs::read(&history_path).unwrap();
    let (complete, torn) = complete_lines(&bytes);
    let history =
        read::read_history(complete, "history.jsonl", Format::Jsonl).expect("complete lines parse");
    eprintln!(
        "history after SIGKILL: {} ops, torn tail {torn} bytes",
        history.ops.len()
    );
    assert!(history.ops.iter().any(|o| o.is_client()));

    // analyze gives a verdict and writes results and report.
    let run_dir = std::fs::canonicalize(&latest).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("analyze")
        .arg(&run_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "analyze: {:?}",
        out.status
    );
    assert!(stdout.contains("raft-register: "), "{stdout}");
    let run = RunDir::open(&run_dir).unwrap();
    assert!(run.read_results().unwrap().is_some());
    assert!(run.report_path().is_file());

    // A fresh controller heals what the dead one left.
    let nodes = connect(&c).await;
    let before = residue_with(&nodes, &faketime_access()).await;
    eprintln!("left by the killed controller: {before:?}");
    // `faultline cluster heal`, as a user would run it after a controller died.
    let healed = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "heal", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .unwrap();
    let heal_out = String::from_utf8_lossy(&healed.stdout);
    assert_eq!(healed.status.code(), Some(0), "{heal_out}");
    assert!(
        heal_out.contains("no fault left on 3 node(s)"),
        "{heal_out}"
    );
    let server = FaultlineServer::new(ServerConfig {
        faketime: true,
        ..ServerConfig::new(
            Protocol::Raft,
            BinarySource::Local(server_binary()),
            members_of(&nodes),
        )
    })
    .unwrap();
    let after = residue_with(&nodes, &faketime_access()).await;
    assert!(after.is_empty(), "{after:?}");
    db::teardown(&server, &nodes, None).await.unwrap();
    std::fs::remove_dir_all(&store).unwrap();
}

/// Bad flags stop `faultline run` before it touches any node: exit 254 and one line naming the flag.
#[test]
fn bad_run_arguments_exit_254_naming_the_flag() {
    let me = env!("CARGO_BIN_EXE_faultline");
    let private = [
        "--cluster-dir",
        "/var/lib/faultline/test-flargs",
        "--cluster-tag",
        "flargs",
        "--cluster-bridge",
        "flargsbr",
        "--cluster-subnet",
        "10.77.43",
        "--server-bin",
        me,
    ];
    let cases: [(&[&str], &str); 6] = [
        (&["--concurrency", "0n", "--local", "3"], "--concurrency"),
        (&["--nemesis", "flood", "--local", "3"], "--nemesis"),
        (&["--local", "3", "--read-mode", "fast"], "--read-mode"),
        (&["--local", "3", "--time-limit", "0"], "--time-limit"),
        (&["--local", "1", "--nemesis", "partition"], "--nemesis"),
        (
            &["--nodes-file", "/nonexistent/nodes.txt"],
            "/nonexistent/nodes.txt",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(me)
            .args(["run", "--target", "raft"])
            .args(args)
            .args(private)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = Command::new(me)
        .args(["run", "--target", "raft", "--local", "3"])
        .args(&private[..8])
        .args(["--server-bin", "/nonexistent/faultline-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--server-bin"), "{stderr}");
}

/// `faultline analyze` checks a run whose controller died mid-write: the torn last line is
/// dropped (and said so), the complete ones are checked, results.json and report.html written.
#[test]
fn analyze_ignores_a_torn_last_line() {
    let store = fresh_store("analyze");
    let run = results::store::Store::new(&store)
        .create_run("raft-register", chrono::Utc::now())
        .unwrap();
    std::fs::write(run.test_path(), "test: raft-register\nworkload: register\n").unwrap();
    let lines = [
        r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":1,"value":3}"#,
        r#"{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":1,"value":3}"#,
        r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":1,"value":null}"#,
        r#"{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":1,"value":3}"#,
    ];
    let torn = r#"{"index":4,"time":50,"process":"nem"#;
    std::fs::write(run.history_path(), format!("{}\n{torn}", lines.join("\n"))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("analyze")
        .arg(&run.path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("torn last line ({} bytes", torn.len())),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("raft-register: valid (2 client ops"),
        "{stdout}"
    );
    assert_eq!(
        run.read_results().unwrap().unwrap().verdict,
        checkers::verdict::Verdict::Valid
    );
    assert!(run.report_path().is_file());

    // The same history with a stale read after the write is invalid: exit 1.
    let stale = lines[3].replace("\"value\":3}", "\"value\":null}");
    let text = format!("{}\n{}\n{}\n{stale}\n", lines[0], lines[1], lines[2]);
    std::fs::write(run.history_path(), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("analyze")
        .arg(&run.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    std::fs::remove_dir_all(&store).unwrap();
}

/// SIGTERM mid-run: new operations stop, faults are healed (no residue), what was recorded is
/// checked and reported, and the last fault record is the heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_heals_and_still_checks_what_was_recorded() {
    if !root_or_skip("sigterm_heals_and_still_checks_what_was_recorded") {
        return;
    }
    let cfg = config("flterm", 45, 3);
    let (_guard, c) = Guard::up(cfg.clone());
    let store = fresh_store("term");
    let child = faultline_run(
        &cfg,
        &store,
        &[
            "--nemesis",
            "partition,pause,clock",
            "--nemesis-interval",
            "3",
            "--time-limit",
            "300",
            "--seed",
            "5",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn faultline");
    let latest = store.join("latest");
    let mut waited = Duration::ZERO;
    loop {
        let text = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
        if text.contains("\"process\":\"nemesis\"") {
            break;
        }
        assert!(
            waited < Duration::from_secs(180),
            "no fault within 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(stdout.contains("raft-register: "), "{stdout}");

    let run = RunDir::open(std::fs::canonicalize(&latest).unwrap()).unwrap();
    let history = run.read_history().expect("history parses");
    let last_fault = history.ops.iter().rev().find(|o| !o.is_client()).unwrap();
    assert_eq!(last_fault.f, "heal");
    assert_eq!(last_fault.value["outcome"], "installed");
    assert!(run.read_results().unwrap().is_some());
    assert!(run.report_path().is_file());

    let nodes = connect(&c).await;
    let left = residue_with(&nodes, &faketime_access()).await;
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&store).unwrap();
}

/// Two harness processes on one local cluster share its servers: each one's setup stops and wipes
/// the other's, and both sets of clients write the same keys, so a correct server is judged
/// nonlinearizable (a CI false alarm: two `cargo test` runs of the campaign test, same cluster).
/// While another process holds the cluster, `faultline run` refuses at once, naming the holder,
/// and touches nothing.
#[test]
fn a_run_on_a_cluster_another_process_holds_is_refused_and_touches_nothing() {
    if !root_or_skip("a_run_on_a_cluster_another_process_holds_is_refused_and_touches_nothing") {
        return;
    }
    let cfg = config("flst1", 66, 3);
    let _ = std::fs::remove_dir_all(&cfg.dir);
    // This test process stands for the other harness: it holds the claim a run or campaign takes.
    let claim = harness::cluster::claim(&cfg.dir).unwrap();
    let store = fresh_store("claimed");
    let out = faultline_run(&cfg, &store, &["--time-limit", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by pid {} ", std::process::id())),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        !cfg.dir.join("cluster.json").exists(),
        "no cluster was brought up"
    );
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains("flst1-"),
        "no namespace was created"
    );
    // The claim goes with its holder.
    let lock = harness::cluster::lock_path(&cfg.dir).unwrap();
    drop(claim);
    let free = Command::new("flock")
        .arg("-n")
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "{} still locked", lock.display());
    let _ = std::fs::remove_dir_all(&store);
}
