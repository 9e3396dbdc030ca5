//! Local-cluster benchmarks (needs root; prints SKIPPED otherwise):
//! - `cluster up` of 5 nodes from nothing (and `cluster down`);
//! - installing + configuring + starting `faultline-server` on 5 nodes over SSH, first time (empty
//!   binary cache on the nodes) and cached.
//!
//! Run: `cargo bench -p harness --bench cluster`. Prints medians of several runs.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::cluster::{self, ClusterConfig};
use harness::db::{
    self, members_of, BinarySource, Database, FaultlineServer, Installed, Protocol, ServerConfig,
};
use harness::inventory::{Inventory, NodeDefaults};
use harness::ssh::{connect_all, SshOptions};
use nemesis::{Command, Remote};

const RUNS: usize = 5;
const NODES: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn show(what: &str, v: &[Duration]) {
    let ms: Vec<String> = v
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "{what:<44} median {:>7.1} ms   runs [{}]",
        median(v.to_vec()).as_secs_f64() * 1e3,
        ms.join(", ")
    );
}

/// The release `faultline-server`: `$FAULTLINE_SERVER_BIN`, the one next to this bench, or built
/// now into a target dir of its own.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/release");
    let beside = profile_dir.join("faultline-server");
    if beside.exists() {
        return beside;
    }
    let own = profile_dir.join("faultline-server-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "--release",
            "-p",
            "targets",
            "--bin",
            "faultline-server",
            "--target-dir",
        ])
        .arg(&own)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building faultline-server failed");
    own.join("release").join("faultline-server")
}

fn main() {
    if !cluster::is_root() {
        eprintln!("SKIPPED: needs root (network namespaces, bridge, sshd): cluster bench");
        return;
    }
    let binary = server_binary();
    let size = std::fs::metadata(&binary).expect("server binary").len();
    let cfg = ClusterConfig {
        tag: "flbn".into(),
        bridge: "flbnbr".into(),
        subnet: "10.77.40".into(),
        ..ClusterConfig::new("/var/lib/faultline/bench-flbn", NODES)
    };
    cluster::down(&cfg.dir).expect("clean up an earlier run");

    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        cluster::up(&cfg).expect("cluster up");
        ups.push(t.elapsed());
        let t = Instant::now();
        cluster::down(&cfg.dir).expect("cluster down");
        downs.push(t.elapsed());
    }
    let c = cluster::up(&cfg).expect("cluster up");
    let t = Instant::now();
    cluster::up(&cfg).expect("cluster up again");
    let reuse = t.elapsed();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (connects, firsts, cached) = rt.block_on(async {
        let inv = Inventory::from_yaml_file(&c.inventory_path(), &NodeDefaults::default()).unwrap();
        let mut connects = Vec::new();
        let mut nodes: Vec<Arc<dyn Remote>> = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            nodes = connect_all(&inv, &SshOptions::default())
                .await
                .expect("connect")
                .into_iter()
                .map(|r| r as Arc<dyn Remote>)
                .collect();
            connects.push(t.elapsed());
        }
        let server = FaultlineServer::new(ServerConfig::new(
            Protocol::Raft,
            BinarySource::Local(binary.clone()),
            members_of(&nodes),
        ))
        .unwrap();
        let db: &dyn Database = &server;
        let reset = |cache: bool| {
            let nodes = &nodes;
            async move {
                db::on_all(nodes, |n| async move {
                    db.stop(n).await?;
                    if cache {
                        n.run(Command::new("rm -rf /opt/faultline/bin")).await?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            }
        };
        let mut firsts = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..RUNS {
            reset(true).await;
            let t = Instant::now();
            let done = db::setup(db, &nodes).await.expect("setup");
            firsts.push(t.elapsed());
            assert_eq!(done, vec![Installed::Uploaded { bytes: size }; NODES]);

            reset(false).await;
            let t = Instant::now();
            let done = db::setup(db, &nodes).await.expect("setup");
            cached.push(t.elapsed());
            assert_eq!(done, vec![Installed::Cached; NODES]);
        }
        db::on_all(&nodes, |n| db.stop(n)).await.unwrap();
        (connects, firsts, cached)
    });
    cluster::down(&cfg.dir).expect("cluster down");

    println!(
        "local cluster, {NODES} nodes, {RUNS} runs each; faultline-server {:.1} MB",
        size as f64 / 1e6
    );
    show("cluster up (from nothing)", &ups);
    println!(
        "{:<44} {:>14.1} ms",
        "cluster up (all nodes running: reuse)",
        reuse.as_secs_f64() * 1e3
    );
    show("cluster down", &downs);
    show("ssh connect_all", &connects);
    show("install+configure+start, first (upload)", &firsts);
    show("install+configure+start, cached", &cached);
}
