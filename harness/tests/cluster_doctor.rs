//! `faultline doctor` against a 3-node local cluster: the capability table, then residue that a
//! fault would leave (a partition rule, a qdisc, a clock offset, a stopped process) is found, named
//! and makes the command exit 1. Needs root (prints SKIPPED otherwise).
mod cluster_support;

use cluster_support::{assert_no_residue, config, connect, root_or_skip, Guard};
use harness::cluster;
use harness::doctor::{self, Check, DoctorConfig, Status};
use nemesis::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_capabilities_and_residue() {
    if !root_or_skip("doctor_reports_capabilities_and_residue") {
        return;
    }
    let cfg = config("fldr", 33, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let dir = c.dir().to_path_buf();
    let nodes = connect(&c).await;
    let dcfg = DoctorConfig::default();

    let reports = doctor::check_all(&nodes, &dcfg).await;
    for r in &reports {
        for check in [
            Check::Reachable,
            Check::Root,
            Check::Iptables,
            Check::Faketime,
            Check::Tc,
        ] {
            assert!(
                matches!(r.status(check), Some(Status::Ok(_))),
                "{} {}: {:?}",
                r.node,
                check.as_str(),
                r.status(check)
            );
        }
        // Kernels differ: netem either works or is reported as skipped with the reason.
        match r.status(Check::Netem) {
            Some(Status::Ok(_)) => {}
            Some(Status::Skipped(why)) => assert!(why.contains("netem unavailable"), "{why}"),
            other => panic!("netem: {other:?}"),
        }
        // Same kernel clock as the controller.
        assert!(
            matches!(r.status(Check::Clock), Some(Status::Ok(_))),
            "{:?}",
            r.status(Check::Clock)
        );
        assert!(!r.failed());
    }
    for n in &nodes {
        assert!(
            doctor::residue(n.as_ref(), &dcfg).await.unwrap().is_empty(),
            "{} not clean",
            n.name()
        );
    }

    // Leave behind what faults leave behind.
    nodes[0]
        .run(Command::new("iptables -A INPUT -s 10.77.33.12 -j DROP && tc qdisc add dev eth0 root tbf rate 1mbit burst 32kbit latency 400ms"))
        .await
        .unwrap();
    nodes[1]
        .run(Command::new(
            "mkdir -p /opt/faultline/run && echo +2h > /opt/faultline/run/faketime",
        ))
        .await
        .unwrap();
    nodes[2]
        .run(Command::new(
            "setsid sleep 1000 >/dev/null 2>&1 </dev/null & p=$!; while [ \"$(cat /proc/$p/comm)\" != sleep ]; do sleep 0.01; done; kill -STOP $p",
        ))
        .await
        .unwrap();
    let mut found = Vec::new();
    for n in &nodes {
        found.extend(doctor::residue(n.as_ref(), &dcfg).await.unwrap());
    }
    let kinds: Vec<(&str, &str)> = found.iter().map(|r| (r.node.as_str(), r.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("n1", "iptables"),
            ("n1", "qdisc"),
            ("n2", "faketime"),
            ("n3", "stopped-process")
        ],
        "{found:?}"
    );
    assert!(found[0].detail.contains("10.77.33.12"));
    assert!(found[2].detail.contains("+2h"));
    assert!(found[3].detail.contains("sleep"));

    // The command line: table, residue lines, exit 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["doctor", "--residue", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("node  reachable  root"), "{stdout}");
    assert!(
        stdout.contains("residue found: n1: iptables: -A INPUT -s 10.77.33.12/32 -j DROP"),
        "{stdout}"
    );
    assert!(
        stdout.contains("residue found: n3: stopped-process"),
        "{stdout}"
    );

    // Healed: clean again, exit 0.
    nodes[0]
        .run(Command::new(
            "iptables -F INPUT && tc qdisc del dev eth0 root",
        ))
        .await
        .unwrap();
    nodes[1]
        .run(Command::new("echo +0 > /opt/faultline/run/faketime"))
        .await
        .unwrap();
    nodes[2]
        .run(Command::new("pkill -CONT -x sleep; pkill -x sleep; true"))
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["doctor", "--residue", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no residue found on 3 node(s)"), "{stdout}");

    drop(nodes);
    cluster::down(&dir).unwrap();
    assert_no_residue(&cfg, &dir);
    drop(guard);
}

#[test]
fn doctor_without_inventory_or_cluster_is_bad_input() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["doctor"])
        .env(
            "FAULTLINE_CLUSTER_DIR",
            "/nonexistent/faultline-doctor-test",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--inventory") && stderr.contains("/nonexistent/faultline-doctor-test"),
        "{stderr}"
    );
}
