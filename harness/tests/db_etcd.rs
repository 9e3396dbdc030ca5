//! etcd's life cycle through the `Database` trait on a 3-node local cluster over SSH, driven by the
//! etcd client from the controller: setup, a write seen on every member, pause (writes through the
//! frozen member time out as `info`), kill and restart on the same data, stop, logs, wipe.
//! Needs root (prints SKIPPED otherwise) and Debian's etcd-server.
mod cluster_support;

use std::path::Path;
use std::time::Duration;

use checkers::history::OpType;
use cluster_support::{assert_no_residue, config, connect, root_or_skip, Guard};
use harness::cluster;
use harness::db::{self, members_of, Database, Etcd, EtcdBinary, EtcdConfig, Installed};
use nemesis::{Command, Remote};
use serde_json::json;
use workloads::etcd::{EtcdClient, ReadMode};
use workloads::Invocation;

async fn sh(node: &dyn Remote, script: &str) -> String {
    node.run(Command::new(script))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .to_string()
}

fn client(db: &Etcd, node: &str, timeout: Duration) -> EtcdClient {
    EtcdClient::new(
        node,
        db.client_addr(node).unwrap(),
        timeout,
        ReadMode::Linearizable,
    )
}

fn read(k: u64) -> Invocation {
    Invocation {
        f: "read".into(),
        key: Some(json!(k)),
        value: serde_json::Value::Null,
    }
}

fn write(k: u64, v: i64) -> Invocation {
    Invocation {
        f: "write".into(),
        key: Some(json!(k)),
        value: json!(v),
    }
}

const PID: &str = "cat /opt/faultline/etcd/run/etcd.pid";
const HEALTHY: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_life_cycle_on_three_nodes() {
    if !root_or_skip("etcd_life_cycle_on_three_nodes") {
        return;
    }
    if !Path::new("/usr/bin/etcd").exists() {
        eprintln!("SKIPPED: /usr/bin/etcd is missing (apt-get install etcd-server)");
        return;
    }
    let cfg = config("flet", 41, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let dir = c.dir().to_path_buf();
    let nodes = connect(&c).await;
    let etcd = Etcd::new(EtcdConfig::new(members_of(&nodes))).unwrap();
    let db: &dyn Database = &etcd;
    assert_eq!(db.name(), "etcd");
    assert_eq!(db.faketime_file(), None);
    assert!(db.clock_fault_unsupported().unwrap().contains("Go program"));

    // The nodes share the host's /usr, where etcd-server is installed: nothing to do.
    let installed = db::setup(db, &nodes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(installed, vec![Installed::Cached; 3]);
    etcd.wait_healthy(&nodes, HEALTHY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pid_before = sh(nodes[0].as_ref(), PID).await;
    db.start(nodes[0].as_ref()).await.unwrap();
    assert_eq!(
        sh(nodes[0].as_ref(), PID).await,
        pid_before,
        "start of a running member is a no-op"
    );

    let mut c1 = client(&etcd, "n1", Duration::from_secs(10));
    assert_eq!(c1.invoke(&write(1, 10)).await.kind, OpType::Ok);
    for n in &nodes {
        assert!(db.is_running(n.as_ref()).await.unwrap());
        let mut c = client(&etcd, n.name(), Duration::from_secs(10));
        let r = c.invoke(&read(1)).await;
        assert_eq!((r.kind, r.value), (OpType::Ok, json!(10)), "{}", n.name());
    }

    // A frozen member: requests through it get no answer; a write's outcome is unknown.
    let n1 = nodes[0].as_ref();
    db.pause(n1).await.unwrap();
    assert!(db.is_running(n1).await.unwrap());
    let mut frozen = client(&etcd, "n1", Duration::from_millis(800));
    let w = frozen.invoke(&write(1, 11)).await;
    assert_eq!(w.kind, OpType::Info, "{:?}", w.error);
    db.resume(n1).await.unwrap();

    // A crash, then a restart on the same data: the member catches up with what it missed.
    let n2 = nodes[1].as_ref();
    db.kill(n2).await.unwrap();
    assert!(!db.is_running(n2).await.unwrap());
    let mut dead = client(&etcd, "n2", Duration::from_secs(5));
    let r = dead.invoke(&read(1)).await;
    assert_eq!(r.kind, OpType::Fail);
    assert!(r.error.unwrap().starts_with("connect-failed"));
    // If n2 led, n1 and n3 elect a new leader first.
    let survivors = [nodes[0].clone(), nodes[2].clone()];
    etcd.wait_healthy(&survivors, HEALTHY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c3 = client(&etcd, "n3", Duration::from_secs(10));
    let w = c3.invoke(&write(1, 12)).await;
    assert_eq!(w.kind, OpType::Ok, "{:?}", w.error);
    let err = db.pause(n2).await.unwrap_err().to_string();
    assert!(err.contains("n2") && err.contains("not running"), "{err}");
    db.resume(n2)
        .await
        .expect("resuming a dead member is a no-op");
    db.start(n2).await.unwrap();
    etcd.wait_healthy(&nodes[1..2], HEALTHY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = dead.invoke(&read(1)).await;
    assert_eq!((r.kind, r.value), (OpType::Ok, json!(12)));

    // Stop (thawing a paused member first), collect logs, wipe.
    db.pause(n1).await.unwrap();
    let logs = std::env::temp_dir().join(format!("faultline-etcd-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    db::teardown(db, &nodes, Some(&logs)).await.unwrap();
    for n in &nodes {
        assert!(!db.is_running(n.as_ref()).await.unwrap());
        let log = logs.join("nodes").join(n.name()).join("etcd.log");
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(
            text.contains(&format!("name = {}", n.name()))
                && text.contains("ready to serve client requests"),
            "{}: {text}",
            log.display()
        );
        db.wipe(n.as_ref()).await.unwrap();
        assert_eq!(
            sh(n.as_ref(), "ls /opt/faultline/etcd/data /opt/faultline/etcd/log 2>&1 | grep -c 'No such file' || true").await,
            "2"
        );
        // Nothing left to collect after a wipe.
        assert!(db.collect_logs(n.as_ref(), &logs).await.unwrap().is_empty());
    }

    // Leave a member running: taking the cluster down must take it along.
    db.configure(n1).await.unwrap();
    db.start(n1).await.unwrap();
    drop(nodes);
    cluster::down(&dir).unwrap();
    assert_no_residue(&cfg, &dir);
    let _ = std::fs::remove_dir_all(&logs);
    drop(guard);
}

/// An etcd binary from the controller: uploaded once per content, cached afterwards, and the
/// members it runs form a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_etcd_binary_is_cached_and_runs() {
    if !root_or_skip("uploaded_etcd_binary_is_cached_and_runs") {
        return;
    }
    if !Path::new("/usr/bin/etcd").exists() {
        eprintln!("SKIPPED: /usr/bin/etcd is missing (apt-get install etcd-server)");
        return;
    }
    let cfg = config("fleu", 42, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let dir = c.dir().to_path_buf();
    let nodes = connect(&c).await;
    let etcd = Etcd::new(EtcdConfig {
        binary: EtcdBinary::Local("/usr/bin/etcd".into()),
        ..EtcdConfig::new(members_of(&nodes))
    })
    .unwrap();
    let db: &dyn Database = &etcd;
    let size = std::fs::metadata("/usr/bin/etcd").unwrap().len();
    let first = db::setup(db, &nodes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, vec![Installed::Uploaded { bytes: size }; 3]);
    let again = db::on_all(&nodes, |n| db.install(n)).await.unwrap();
    assert_eq!(again, vec![Installed::Cached; 3]);
    etcd.wait_healthy(&nodes, HEALTHY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for n in &nodes {
        let exe = sh(n.as_ref(), &format!("readlink -f /proc/$({PID})/exe")).await;
        assert!(exe.starts_with("/opt/faultline/etcd/bin/"), "{exe}");
    }
    let mut c2 = client(&etcd, "n2", Duration::from_secs(10));
    let w = c2.invoke(&write(7, 1)).await;
    assert_eq!(w.kind, OpType::Ok, "{:?}", w.error);
    db::teardown(db, &nodes, None).await.unwrap();
    drop(nodes);
    cluster::down(&dir).unwrap();
    assert_no_residue(&cfg, &dir);
    drop(guard);
}
