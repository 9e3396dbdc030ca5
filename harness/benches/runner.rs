//! Runner benchmarks (needs root; prints SKIPPED otherwise). Prints medians of:
//! - the time from the start of a run to its first client op on 5 local nodes, with the cluster
//!   down beforehand (cold: cluster up + binary upload) and already up (warm: cached binary);
//! - ops/s through the whole stack (clients -> Raft on 3 nodes -> recorder -> history.jsonl) with
//!   30 clients for 20 s, unthrottled, no faults, and the time to check that history.
//!
//! `cargo bench -p harness --bench runner` (build `faultline-server` with
//! `cargo build --release -p targets` first, or set FAULTLINE_SERVER_BIN).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use checkers::linear::{self, Limits, Model};
use harness::cluster::{self, ClusterConfig};
use harness::db::Protocol;
use harness::run::{execute, Concurrency, Nodes, RunConfig, Target};
use workloads::gen::WorkloadKind;

fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let beside = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/release")
        .join("faultline-server");
    assert!(
        beside.exists(),
        "{} missing: cargo build --release -p targets",
        beside.display()
    );
    beside
}

fn cluster_config(nodes: usize) -> ClusterConfig {
    ClusterConfig {
        tag: "flbench".into(),
        bridge: "flbenchbr".into(),
        subnet: "10.77.44".into(),
        ..ClusterConfig::new("/var/lib/faultline/bench-runner", nodes)
    }
}

fn config(nodes: usize, clients: usize, secs: u64, store: &std::path::Path) -> RunConfig {
    RunConfig {
        target: Target::Server(Protocol::Raft),
        workload: WorkloadKind::Register,
        nemesis: Vec::new(),
        nemesis_interval: Duration::from_secs(10),
        nemesis_schedule: nemesis::ScheduleMode::Alternate,
        leader_share: None,
        time_limit: Duration::from_secs(secs),
        concurrency: Concurrency::Fixed(clients),
        rate: None,
        seed: 1,
        bugs: Vec::new(),
        read_mode: None,
        server_args: Vec::new(),
        nodes: Nodes::Local(cluster_config(nodes)),
        store: store.to_path_buf(),
        server_bin: server_binary(),
        leave_db_running: false,
        op_timeout: Duration::from_secs(5),
        ready_timeout: Duration::from_secs(60),
        progress: false,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    if !cluster::is_root() {
        eprintln!("SKIPPED: needs root (network namespaces, bridge, sshd): runner bench");
        return;
    }
    let store = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = cluster_config(1).dir;

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..3 {
        cluster::down(&dir).unwrap();
        for (label, xs) in [("cold", &mut cold), ("warm", &mut warm)] {
            let r = rt.block_on(execute(config(5, 5, 2, &store))).unwrap();
            let t = r.to_first_op.expect("a client op").as_secs_f64();
            eprintln!("round {round} {label}: first client op after {t:.3} s");
            xs.push(t);
        }
    }
    println!(
        "runner/first-op 5 nodes: cold (cluster up + upload) median {:.2} s; warm median {:.2} s (3 runs each)",
        median(cold),
        median(warm)
    );

    cluster::down(&dir).unwrap();
    let (mut rates, mut ok_rates, mut checks, mut counts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let r = rt.block_on(execute(config(3, 30, 20, &store))).unwrap();
        let completions = r
            .history
            .ops
            .iter()
            .filter(|o| o.is_client() && o.kind != checkers::history::OpType::Invoke)
            .count();
        let oks = r
            .history
            .ops
            .iter()
            .filter(|o| o.is_client() && o.kind == checkers::history::OpType::Ok)
            .count();
        let on_disk = r.run.read_history().unwrap().ops.len();
        assert_eq!(
            on_disk,
            r.history.ops.len(),
            "every op reached history.jsonl"
        );
        let t = Instant::now();
        let checked = linear::check(&r.history, Model::CasRegister, &Limits::default()).unwrap();
        let check_s = t.elapsed().as_secs_f64();
        let rate = completions as f64 / r.main_phase.as_secs_f64();
        eprintln!(
            "round {round}: {completions} completions ({oks} ok) in {:.1} s = {rate:.0} ops/s, {:.0} ok/s; checked ({:?}) in {check_s:.3} s",
            r.main_phase.as_secs_f64(),
            oks as f64 / r.main_phase.as_secs_f64(),
            checked.verdict
        );
        rates.push(rate);
        ok_rates.push(oks as f64 / r.main_phase.as_secs_f64());
        checks.push(check_s);
        counts.push(completions as f64);
    }
    println!(
        "runner/throughput raft 3 nodes, 30 clients, 20 s: median {:.0} ops/s, {:.0} ok/s ({:.0} completions, all recorded), check median {:.3} s",
        median(rates),
        median(ok_rates),
        median(counts),
        median(checks)
    );
    cluster::down(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&store);
}
