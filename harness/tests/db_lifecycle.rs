//! The `faultline-server` life cycle through the `Database` trait on a 3-node local cluster over
//! SSH: cached install, start under libfaketime, pause/resume, kill and restart, stop, logs, wipe.
//! Needs root (prints SKIPPED otherwise).
mod cluster_support;

use std::path::PathBuf;
use std::sync::Arc;

use cluster_support::{assert_no_residue, config, connect, root_or_skip, server_binary, Guard};
use harness::cluster;
use harness::db::{
    self, members_of, BinarySource, Database, FaultlineServer, Installed, Protocol, ServerConfig,
};
use nemesis::{Command, Remote};

/// Runs a shell snippet on the node and returns its trimmed stdout.
async fn sh(node: &dyn Remote, script: &str) -> String {
    node.run(Command::new(script))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .to_string()
}

const PID: &str = "cat /opt/faultline/run/faultline-server.pid";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faultline_server_life_cycle_on_three_nodes() {
    if !root_or_skip("faultline_server_life_cycle_on_three_nodes") {
        return;
    }
    let binary = server_binary();
    let cfg = config("fldb", 32, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let dir = c.dir().to_path_buf();
    let nodes = connect(&c).await;

    let server = FaultlineServer::new(ServerConfig {
        faketime: true,
        seed: Some(7),
        ..ServerConfig::new(
            Protocol::Raft,
            BinarySource::Local(binary.clone()),
            members_of(&nodes),
        )
    })
    .unwrap();
    let db: &dyn Database = &server;
    assert_eq!(db.name(), "faultline-server/raft");

    // First install uploads, the second finds the same content and transfers nothing.
    let size = std::fs::metadata(&binary).unwrap().len();
    let first = db::setup(db, &nodes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, vec![Installed::Uploaded { bytes: size }; 3]);
    let again = db::on_all(&nodes, |n| db.install(n)).await.unwrap();
    assert_eq!(again, vec![Installed::Cached; 3]);
    // Starting a running server is a no-op: same pid.
    let pid_before = sh(nodes[0].as_ref(), PID).await;
    db.start(nodes[0].as_ref()).await.unwrap();
    assert_eq!(sh(nodes[0].as_ref(), PID).await, pid_before);

    for n in &nodes {
        assert!(db.is_running(n.as_ref()).await.unwrap(), "{}", n.name());
        // Running under libfaketime with this node's offset file.
        let env = sh(
            n.as_ref(),
            &format!("tr '\\0' '\\n' < /proc/$({PID})/environ | grep -E '^(LD_PRELOAD|FAKETIME_TIMESTAMP_FILE)=' | sort"),
        )
        .await;
        assert_eq!(
            env,
            format!(
                "FAKETIME_TIMESTAMP_FILE=/opt/faultline/run/faketime\nLD_PRELOAD={}",
                db::FAKETIME_LIB
            )
        );
        assert_eq!(
            sh(n.as_ref(), "cat /opt/faultline/run/faketime").await,
            "+0"
        );
        // The controller reaches each server at its client address.
        let addr = db.client_addr(n.name()).unwrap();
        std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    }
    assert_eq!(
        db.faketime_file().as_deref(),
        Some("/opt/faultline/run/faketime")
    );

    // Pause and resume: the process is stopped (state T), still "running", then runs again.
    let n1 = nodes[0].as_ref();
    let state = |n: &'static str| {
        format!("sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' /proc/$({n})/status")
    };
    db.pause(n1).await.unwrap();
    assert_eq!(sh(n1, &state(PID)).await, "T");
    assert!(db.is_running(n1).await.unwrap());
    db.resume(n1).await.unwrap();
    assert_ne!(sh(n1, &state(PID)).await, "T");

    // Kill is a crash: gone at once; start brings up a new process on the same data.
    let n2 = nodes[1].as_ref();
    let old = sh(n2, PID).await;
    db.kill(n2).await.unwrap();
    assert!(!db.is_running(n2).await.unwrap());
    assert_eq!(
        sh(
            n2,
            &format!("test -e /proc/{old} && echo alive || echo gone")
        )
        .await,
        "gone"
    );
    db.kill(n2).await.expect("killing a dead server is a no-op");
    let err = db.pause(n2).await.unwrap_err().to_string();
    assert!(err.contains("n2") && err.contains("not running"), "{err}");
    db.resume(n2)
        .await
        .expect("resume of a dead server is a no-op");
    let err = db.wipe(n1).await.unwrap_err().to_string();
    assert!(err.contains("n1") && err.contains("running"), "{err}");
    db.start(n2).await.unwrap();
    assert_ne!(sh(n2, PID).await, old);

    // A paused server still stops (stop thaws it), then logs are collected and data wiped.
    db.pause(n1).await.unwrap();
    let logs = tempdir();
    db::teardown(db, &nodes, Some(&logs)).await.unwrap();
    for n in &nodes {
        assert!(!db.is_running(n.as_ref()).await.unwrap());
        let log = logs
            .join("nodes")
            .join(n.name())
            .join("faultline-server.log");
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(!text.is_empty(), "{} is empty", log.display());
        db.wipe(n.as_ref()).await.unwrap();
        assert_eq!(
            sh(n.as_ref(), "ls /opt/faultline/data/faultline-server /opt/faultline/log 2>&1 | grep -c 'No such file' || true").await,
            "2"
        );
    }
    // The binary stays installed after a wipe.
    assert_eq!(
        db::on_all(&nodes, |n| db.install(n)).await.unwrap(),
        vec![Installed::Cached; 3]
    );

    // Leave a server running: taking the cluster down must take it along.
    db.configure(n1).await.unwrap();
    db.start(n1).await.unwrap();
    drop(nodes);
    cluster::down(&dir).unwrap();
    assert_no_residue(&cfg, &dir);
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", "/opt/faultline/bin/faultline-server"])
        .output()
        .unwrap();
    let ours: Vec<String> = String::from_utf8_lossy(&leftover.stdout)
        .lines()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/root")).is_ok()
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|e| String::from_utf8_lossy(&e).contains(&dir.display().to_string()))
                    .unwrap_or(false)
        })
        .map(str::to_string)
        .collect();
    assert!(ours.is_empty(), "servers left: {ours:?}");
    let _ = std::fs::remove_dir_all(&logs);
    drop(guard);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("faultline-db-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn bad_server_config_names_the_field() {
    let err = FaultlineServer::new(ServerConfig::new(
        Protocol::Raft,
        BinarySource::Local("/nonexistent/faultline-server".into()),
        vec![("n1".into(), "10.0.0.1".into())],
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/faultline-server"), "{err}");
    let _ = Arc::new(());
}
