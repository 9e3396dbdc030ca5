//! The local namespace cluster, end to end over real SSH: bring-up, isolation of each node,
//! parallel commands, transfers, resizing, status, and a teardown that leaves nothing behind.
//! Needs root (prints SKIPPED otherwise).
mod cluster_support;

use std::collections::BTreeSet;

use cluster_support::{assert_no_residue, config, connect, root_or_skip, Guard};
use harness::cluster::{self, ClusterConfig};
use nemesis::Command;
use rand::RngCore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_ssh_then_nothing_left() {
    if !root_or_skip("three_nodes_over_ssh_then_nothing_left") {
        return;
    }
    let cfg = config("flct", 31, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let dir = c.dir().to_path_buf();
    assert_eq!(c.nodes().len(), 3);
    assert_eq!(c.controller_addr().to_string(), "10.77.31.1");
    let known_hosts = std::fs::read_to_string(c.known_hosts_path()).unwrap();
    assert_eq!(known_hosts.lines().count(), 3, "{known_hosts}");

    let nodes = connect(&c).await;

    // Every node at once: its own hostname, its own PID namespace with tini as PID 1, its own
    // /root, and the others reachable by name through its /etc/hosts.
    let probes = futures::future::join_all(nodes.iter().map(|n| {
        n.run(Command::new(
            "hostname; cat /etc/hostname; cat /proc/1/comm; echo $HOME; ls -A /root | sort | tr '\\n' ' '; echo; \
             for p in n1 n2 n3; do timeout 5 bash -c \"exec 3<>/dev/tcp/$p/22\" && echo ok-$p; done",
        ))
    }))
    .await;
    for (node, out) in c.nodes().iter().zip(probes) {
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], node.name, "hostname: {out}");
        assert_eq!(lines[1], node.name, "/etc/hostname: {out}");
        assert_eq!(lines[2], "tini", "PID 1: {out}");
        assert_eq!(lines[3], "/root");
        assert_eq!(
            lines[4].trim(),
            ".profile .ssh",
            "the node's own /root: {out}"
        );
        assert_eq!(&lines[5..], ["ok-n1", "ok-n2", "ok-n3"], "peers: {out}");
    }

    // A process started on n1 is invisible on n2 (separate PID namespaces).
    nodes[0]
        .run(Command::new(
            "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo started",
        ))
        .await
        .unwrap();
    let on_n2 = nodes[1].exec(Command::new("pgrep -x sleep")).await.unwrap();
    assert!(on_n2.stdout.is_empty(), "n2 sees n1's process");

    // Upload then download identical bytes on every node; /tmp is per node.
    let mut bytes = vec![0u8; 300_000];
    rand::rng().fill_bytes(&mut bytes);
    let results = futures::future::join_all(nodes.iter().map(|n| {
        let bytes = bytes.clone();
        async move {
            let path = format!("/tmp/faultline-test/{}.bin", n.name());
            n.upload(&bytes, &path, 0o600).await?;
            n.download(&path).await
        }
    }))
    .await;
    for (i, r) in results.into_iter().enumerate() {
        let got = r.unwrap_or_else(|e| panic!("{e}"));
        assert!(got == bytes, "n{} returned different bytes", i + 1);
        let host_side = dir.join(format!(
            "nodes/n{}/tmp/faultline-test/n{}.bin",
            i + 1,
            i + 1
        ));
        assert!(host_side.exists(), "{} missing", host_side.display());
    }

    // `up` again reuses running nodes; a larger N adds, a smaller N removes.
    let pids: Vec<u32> = c.nodes().iter().map(|n| n.pid).collect();
    let again = cluster::up(&cfg).unwrap();
    assert_eq!(
        again.nodes().iter().map(|n| n.pid).collect::<Vec<_>>(),
        pids,
        "nodes were restarted"
    );
    let four = cluster::up(&ClusterConfig {
        nodes: 4,
        ..cfg.clone()
    })
    .unwrap();
    assert_eq!(four.nodes().len(), 4);
    assert_eq!(
        &four.nodes()[..3].iter().map(|n| n.pid).collect::<Vec<_>>(),
        &pids
    );
    let hosts = nodes[0].run(Command::new("cat /etc/hosts")).await.unwrap();
    assert!(
        hosts.contains("10.77.31.14\tn4"),
        "n1 learns about n4: {hosts}"
    );
    let three = cluster::up(&cfg).unwrap();
    let names: BTreeSet<&str> = three.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["n1", "n2", "n3"]));
    assert!(!std::path::Path::new("/run/netns/flct-n4").exists());

    let status = cluster::status(&dir).unwrap();
    assert_eq!(status.len(), 3);
    for s in &status {
        assert!(s.reachable && s.sshd_pid.is_some(), "{s:?}");
    }

    drop(nodes);
    cluster::down(&dir).unwrap();
    assert_no_residue(&cfg, &dir);
    cluster::down(&dir).expect("down twice is harmless");
    assert!(cluster::status(&dir).is_err(), "status without a cluster");
    drop(guard);
}

#[test]
fn bad_configuration_is_rejected_before_touching_the_host() {
    let cfg = ClusterConfig {
        subnet: "192.0.2".into(),
        ..ClusterConfig::new("/nonexistent/faultline-test", 3)
    };
    let err = cluster::up(&cfg).unwrap_err().to_string();
    assert!(err.contains("subnet"), "{err}");
    assert!(!std::path::Path::new("/nonexistent/faultline-test").exists());
}

#[test]
fn without_root_up_fails_with_a_clear_message() {
    let exe = env!("CARGO_BIN_EXE_faultline");
    let dir = "/nonexistent/faultline-not-root";
    let mut cmd = if cluster::is_root() {
        // Drop to nobody for this one command.
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            exe,
        ]);
        c
    } else {
        std::process::Command::new(exe)
    };
    let out = cmd
        .args(["cluster", "up", "--nodes", "2", "--dir", dir])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!std::path::Path::new(dir).exists());
}

#[test]
fn command_line_up_status_down() {
    if !root_or_skip("command_line_up_status_down") {
        return;
    }
    let cfg = config("flcc", 34, 2);
    let _guard = Guard::adopt(cfg.clone());
    let faultline = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(args)
            .env("FAULTLINE_CLUSTER_DIR", &cfg.dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let up = [
        "cluster", "up", "--nodes", "2", "--tag", "flcc", "--bridge", "flccbr", "--subnet",
        "10.77.34",
    ];
    let (code, out, err) = faultline(&up);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("n1\t10.77.34.11\tnetns flcc-n1"), "{out}");
    assert!(
        out.contains(&format!("inventory: {}/inventory.yaml", cfg.dir.display())),
        "{out}"
    );

    let (code, out, _) = faultline(&["cluster", "status"]);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "node   address          sshd pid  reachable");
    assert!(
        lines[1].starts_with("n1     10.77.34.11") && lines[1].ends_with("yes"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("n2     10.77.34.12") && lines[2].ends_with("yes"),
        "{out}"
    );

    // A different subnet for the same state directory is refused, naming the way out.
    let (code, _, err) = faultline(&["cluster", "up", "--subnet", "10.77.35", "--tag", "flcc"]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("cluster down"), "{err}");

    let (code, _, err) = faultline(&["cluster", "down"]);
    assert_eq!(code, Some(0), "{err}");
    assert_no_residue(&cfg, &cfg.dir);
    let (code, _, _) = faultline(&["cluster", "down"]);
    assert_eq!(code, Some(0));
}
