//! `faultline cluster heal` after a controller that installed faults is gone: a partition, a clock
//! offset and a stopped process, left on a real 3-node local cluster, are all removed using only
//! what is on the nodes, and the residue check then finds nothing. Needs root.
mod cluster_support;

use std::process::Command as Process;
use std::sync::Arc;

use cluster_support::{config, connect, root_or_skip, Guard};
use nemesis::{residue_with, scripts, Access, Command, OffsetFiles, Remote};

async fn sh(node: &dyn Remote, script: &str) -> nemesis::Output {
    node.exec(Command::new(script).sudo("root"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn access() -> Access {
    Access {
        sudo: true,
        offset_files: OffsetFiles::Fixed(harness::db::FAKETIME_FILE.into()),
        ..Access::default()
    }
}

/// Whether `from` can open a TCP connection to `to`'s sshd.
async fn can_connect(from: &dyn Remote, to: &dyn Remote) -> bool {
    sh(from, &format!("nc -z -w 2 {} 22", to.host()))
        .await
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_heal_removes_what_a_dead_controller_left() {
    if !root_or_skip("cluster_heal_removes_what_a_dead_controller_left") {
        return;
    }
    let cfg = config("flhl", 36, 3);
    let (_guard, c) = Guard::up(cfg);
    let nodes: Vec<Arc<dyn Remote>> = connect(&c).await;
    let (n1, n2, n3) = (nodes[0].as_ref(), nodes[1].as_ref(), nodes[2].as_ref());

    // The "controller": installs faults the way the nemesis does, then is gone without healing.
    assert!(sh(n1, &scripts::partition_install(&[n2.host()]))
        .await
        .success());
    assert!(sh(
        n1,
        &scripts::write_file_atomically(harness::db::FAKETIME_FILE, "+3600")
    )
    .await
    .success());
    assert!(sh(n3, "setsid -f sleep 1000 </dev/null >/dev/null 2>&1")
        .await
        .success());
    assert!(sh(n3, "kill -STOP $(pgrep -n -x sleep)").await.success());
    assert!(
        !can_connect(n2, n1).await,
        "the partition must cut n2 -> n1"
    );
    assert!(can_connect(n3, n1).await, "n3 -> n1 is not partitioned");
    let before = residue_with(&nodes, &access()).await;
    assert!(
        before.len() >= 3,
        "partition, offset and stopped process are residue: {before:?}"
    );

    let out = Process::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "heal", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .expect("run faultline cluster heal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no fault left on 3 node(s)"), "{stdout}");

    assert!(residue_with(&nodes, &access()).await.is_empty());
    assert!(can_connect(n2, n1).await, "healed: n2 -> n1 works again");
    let offset = sh(n1, &format!("cat {}", harness::db::FAKETIME_FILE))
        .await
        .stdout_str();
    assert!(
        matches!(offset.trim(), "+0" | "0" | "+0.000" | ""),
        "offset reset, found {offset:?}"
    );

    // Healing again is harmless.
    let again = Process::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "heal", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .expect("run faultline cluster heal");
    assert_eq!(again.status.code(), Some(0));
}
