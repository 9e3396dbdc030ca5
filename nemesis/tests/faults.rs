//! The nemesis on real nodes (network namespaces with their own PID namespaces, see `lab`).
//! Needs root; prints SKIPPED otherwise. Every test ends by checking that `residue` finds
//! nothing.
mod lab;

use std::collections::BTreeMap;
use std::sync::Arc;

use lab::{Lab, SleepControl};
use nemesis::clock::{self, ClockChange};
use nemesis::heal::{heal_all, residue_with, HealOptions, ResidueKind};
use nemesis::{
    Access, FaultOp, Grudge, Nemesis, NemesisConfig, Outcome, PacketFault, Shape, Targets,
};

fn nemesis(lab: &Lab, leader: Option<&str>) -> (Nemesis, Arc<SleepControl>) {
    let control = Arc::new(SleepControl {
        nodes: lab.remotes.clone(),
        leader: leader.map(String::from),
    });
    let n = Nemesis::new(lab.nodes(), control.clone(), NemesisConfig::default());
    (n, control)
}

async fn assert_clean(lab: &Lab) {
    let r = residue_with(&lab.nodes(), &Access::default()).await;
    assert!(r.is_empty(), "residue left: {r:?}");
}

/// A minute-long strobe of `node`'s clock between `a_ms` and `b_ms`, flipping every `period_ms`.
fn strobe(node: &str, a_ms: i64, b_ms: i64, period_ms: u64) -> FaultOp {
    FaultOp::Clock {
        change: ClockChange::Strobe {
            nodes: vec![node.to_string()],
            a_ms,
            b_ms,
            period_ms,
            duration_ms: 60_000,
        },
    }
}

const RESET_CLOCKS: FaultOp = FaultOp::Clock {
    change: ClockChange::Reset,
};

#[tokio::test]
async fn a_partition_cuts_exactly_the_grudged_pairs() {
    let Some(lab) = Lab::new(11, 3) else { return };
    let (nem, _) = nemesis(&lab, Some("t11n3"));
    lab.listen_everywhere(7000).await;
    for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 0)] {
        assert!(lab.tcp_ok(a, b, 7000).await, "before: {a} -> {b}");
    }
    let names = lab.names();
    let grudge = Grudge::from_components(&[vec![names[0].clone()], names[1..].to_vec()]);
    let rec = nem
        .apply(&FaultOp::StartPartition {
            shape: Shape::One,
            grudge: Some(grudge.clone()),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(
        rec.value()["grudge"],
        serde_json::to_value(&grudge).unwrap()
    );
    assert!(!lab.tcp_ok(0, 1, 7000).await, "n1 -> n2 must be cut");
    assert!(!lab.tcp_ok(1, 0, 7000).await, "n2 -> n1 must be cut");
    assert!(!lab.tcp_ok(2, 0, 7000).await, "n3 -> n1 must be cut");
    assert!(lab.tcp_ok(1, 2, 7000).await, "n2 -> n3 must still work");
    assert!(lab.tcp_ok(2, 1, 7000).await, "n3 -> n2 must still work");

    let during = residue_with(&lab.nodes(), &Access::default()).await;
    assert_eq!(during.len(), 3, "every node has our chain: {during:?}");
    assert!(during
        .iter()
        .all(|r| matches!(&r.what, ResidueKind::Chain { chain, .. } if chain == "FAULTLINE")));

    // A new partition replaces the old one; isolate-leader asks the control for the leader.
    let rec = nem
        .apply(&FaultOp::StartPartition {
            shape: Shape::IsolateLeader,
            grudge: None,
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(
        rec.value()["grudge"]["t11n3"],
        serde_json::json!(["t11n1", "t11n2"])
    );
    assert!(lab.tcp_ok(0, 1, 7000).await, "the old partition is gone");
    assert!(!lab.tcp_ok(0, 2, 7000).await, "the leader is isolated");

    let rec = nem.apply(&FaultOp::StopPartition).await;
    assert_eq!(rec.outcome, Outcome::Installed);
    for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 0)] {
        assert!(lab.tcp_ok(a, b, 7000).await, "after heal: {a} -> {b}");
    }
    // Healing twice is fine.
    assert_eq!(
        nem.apply(&FaultOp::StopPartition).await.outcome,
        Outcome::Installed
    );
    assert_clean(&lab).await;

    // A grudge that would drop the controller's address is refused before anything is touched.
    let guarded = Nemesis::new(
        lab.nodes(),
        Arc::new(SleepControl {
            nodes: lab.remotes.clone(),
            leader: None,
        }),
        NemesisConfig {
            controller_addrs: vec![lab.node(1).host().to_string()],
            ..NemesisConfig::default()
        },
    );
    let rec = guarded
        .apply(&FaultOp::StartPartition {
            shape: Shape::One,
            grudge: Some(grudge),
        })
        .await;
    assert_eq!(
        rec.outcome,
        Outcome::Skipped(
            "t11n2's address 10.231.11.2 is the controller's; refusing to drop it".into()
        )
    );
    assert_clean(&lab).await;
}

#[tokio::test]
async fn every_shape_installs_on_five_nodes() {
    let Some(lab) = Lab::new(12, 5) else { return };
    let (nem, _) = nemesis(&lab, Some("t12n2"));
    for shape in nemesis::grudge::ALL_SHAPES {
        let rec = nem
            .apply(&FaultOp::StartPartition {
                shape,
                grudge: None,
            })
            .await;
        assert_eq!(
            rec.outcome,
            Outcome::Installed,
            "{shape}: {:?}",
            rec.value()
        );
        // The installed rules match the recorded grudge: count DROP rules per node.
        let grudge: Grudge = serde_json::from_value(rec.value()["grudge"].clone()).unwrap();
        for (i, name) in lab.names().iter().enumerate() {
            let out = lab
                .on(i, "iptables -S FAULTLINE | grep -c -- '-j DROP' || true")
                .await;
            let rules: usize = out.stdout_str().trim().parse().unwrap();
            assert_eq!(rules, grudge.drops(name).len(), "{shape} on {name}");
        }
    }
    nem.apply(&FaultOp::StopPartition).await;
    assert_clean(&lab).await;
}

#[tokio::test]
async fn clock_bump_and_strobe_shift_time_under_faketime() {
    let Some(lab) = Lab::new(13, 2) else { return };
    let (nem, _) = nemesis(&lab, None);
    let names = lab.names();
    let offsets = BTreeMap::from([(names[0].clone(), 1_500i64), (names[1].clone(), -2_250)]);
    let rec = nem
        .apply(&FaultOp::Clock {
            change: ClockChange::Bump {
                offsets_ms: offsets.clone(),
            },
        })
        .await;
    assert_eq!(rec.f, "bump-clock");
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    for (name, want) in &offsets {
        let m = &rec.value()["measured"][name];
        let got = m["offset_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {m}"));
        let slack = m["uncertainty_ms"].as_f64().unwrap() + 100.0;
        assert!(
            (got - *want as f64).abs() <= slack,
            "{name}: measured {got} ms, wanted {want}"
        );
    }
    // A program under libfaketime with the node's file sees the shift; plain date does not.
    let file = clock::faketime_file(&names[0]);
    let out = lab
        .on(
            0,
            &format!(
                "a=$(date +%s%N); b=$(LD_PRELOAD={} FAKETIME_TIMESTAMP_FILE={file} FAKETIME_NO_CACHE=1 \
                 DONT_FAKE_MONOTONIC=1 date +%s%N); echo $(( (b - a) / 1000000 ))",
                clock::LIBFAKETIME_CANDIDATES[0]
            ),
        )
        .await;
    let shift: i64 = out.stdout_str().trim().parse().unwrap();
    assert!(
        (1_400..=1_700).contains(&shift),
        "faked date is {shift} ms ahead"
    );
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert_eq!(
        residue.len(),
        2,
        "both offset files are non-zero: {residue:?}"
    );

    // Strobe: the offset file flips while the loop runs.
    let rec = nem.apply(&strobe(&names[1], 3_000, -3_000, 100)).await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    let seen = lab
        .on(
            1,
            &format!(
                "f={}; s=''; i=0; while [ $i -lt 40 ]; do s=\"$s $(cat $f)\"; sleep 0.05; i=$((i+1)); done; \
                 printf '%s\\n' $s | sort -u",
                clock::faketime_file(&names[1])
            ),
        )
        .await
        .stdout_str();
    assert!(
        seen.contains("+3.000") && seen.contains("-3.000"),
        "strobe values seen: {seen}"
    );
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert!(
        residue
            .iter()
            .any(|r| matches!(r.what, ResidueKind::ClockStrobe { .. })),
        "{residue:?}"
    );

    let rec = nem.apply(&RESET_CLOCKS).await;
    assert_eq!(rec.f, "reset-clock");
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    for name in &names {
        let m = &rec.value()["measured"][name];
        let got = m["offset_ms"].as_f64().unwrap();
        assert!(
            got.abs() <= m["uncertainty_ms"].as_f64().unwrap() + 100.0,
            "{name}: {got}"
        );
    }
    assert_clean(&lab).await;
}

/// A reset while a fast strobe loop is rewriting the offset file: the loop is stopped and gone
/// before the reset writes, so the reset always succeeds and the last word is offset zero (an
/// overlapping schedule resets clocks while strobes run).
#[tokio::test]
async fn a_reset_during_a_running_strobe_always_wins() {
    let Some(lab) = Lab::new(19, 1) else { return };
    let (nem, _) = nemesis(&lab, None);
    let names = lab.names();
    let file = clock::faketime_file(&names[0]);
    for round in 0..10 {
        let rec = nem.apply(&strobe(&names[0], 2_000, -2_000, 1)).await;
        assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
        tokio::time::sleep(std::time::Duration::from_millis(20 + 7 * round)).await;
        let rec = nem.apply(&RESET_CLOCKS).await;
        assert_eq!(
            rec.outcome,
            Outcome::Installed,
            "round {round}: {:?}",
            rec.value()
        );
        // Nothing rewrites the file after the reset.
        let out = lab
            .on(
                0,
                &format!("a=$(cat {file}); sleep 0.2; b=$(cat {file}); echo \"$a $b\""),
            )
            .await
            .stdout_str();
        let zero = clock::format_offset(0);
        assert_eq!(out.trim(), format!("{zero} {zero}"), "round {round}");
    }
    assert_clean(&lab).await;
}

/// Received packets out of `count` pings from node `from` to node `to`.
async fn pings(lab: &Lab, from: usize, to: usize, count: u32) -> u32 {
    let host = lab.node(to).host().to_string();
    let out = lab
        .on(from, &format!("ping -n -q -c {count} -i 0.02 -W 5 {host}"))
        .await
        .stdout_str();
    let line = out
        .lines()
        .find(|l| l.contains("received"))
        .unwrap_or_else(|| panic!("no ping summary in {out:?}"));
    line.split(',')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

use nemesis::Remote;

#[tokio::test]
async fn packet_loss_drops_packets_and_netem_is_never_a_silent_no_op() {
    let Some(lab) = Lab::new(14, 2) else { return };
    if lab.on(0, "command -v ping").await.status != Some(0) {
        eprintln!("SKIPPED: needs ping (apt-get install iputils-ping)");
        return;
    }
    let (nem, _) = nemesis(&lab, None);
    let names = lab.names();
    assert_eq!(pings(&lab, 0, 1, 20).await, 20);
    let rec = nem
        .apply(&FaultOp::StartPacket {
            fault: PacketFault::Loss { probability: 0.5 },
            targets: Targets::Nodes(vec![names[1].clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    let got = pings(&lab, 0, 1, 50).await;
    eprintln!("50% loss: {got}/50 pings answered");
    // Binomial(50, 0.5) falls outside 10..=40 with probability about 2e-5.
    assert!((10..=40).contains(&got), "{got}/50 answered under 50% loss");
    assert_eq!(
        nem.apply(&FaultOp::StopPacket).await.outcome,
        Outcome::Installed
    );
    assert_eq!(pings(&lab, 0, 1, 50).await, 50);

    // Bandwidth: a tbf qdisc on the cluster interface, removed by stop-packet.
    let rec = nem
        .apply(&FaultOp::StartPacket {
            fault: PacketFault::Bandwidth { kbit: 1_000 },
            targets: Targets::Nodes(vec![names[0].clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    let qd = lab.on(0, "tc qdisc show dev eth0").await.stdout_str();
    assert!(
        qd.contains("qdisc tbf") && qd.contains("rate 1Mbit"),
        "{qd}"
    );
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert_eq!(residue.len(), 1, "{residue:?}");
    assert!(
        matches!(&residue[0].what, ResidueKind::Qdisc { dev, kind } if dev == "eth0" && kind == "tbf")
    );
    assert_eq!(
        nem.apply(&FaultOp::StopPacket).await.outcome,
        Outcome::Installed
    );

    // Delay needs netem: installed where the kernel has it, a clear skip where it has not.
    let kernel_has_netem = lab
        .on(
            1,
            "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root",
        )
        .await
        .success();
    let rec = nem
        .apply(&FaultOp::StartPacket {
            fault: PacketFault::Delay {
                ms: 50,
                jitter_ms: 5,
            },
            targets: Targets::Nodes(names.clone()),
        })
        .await;
    if kernel_has_netem {
        assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
        assert_eq!(
            nem.apply(&FaultOp::StopPacket).await.outcome,
            Outcome::Installed
        );
    } else {
        match &rec.outcome {
            Outcome::Skipped(reason) => {
                assert!(
                    reason.starts_with(&format!("netem unavailable on {}, {}", names[0], names[1])),
                    "{reason}"
                );
                eprintln!("netem skip reason: {reason}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }
    assert_clean(&lab).await;
}

#[tokio::test]
async fn kill_and_pause_through_the_target_control() {
    let Some(lab) = Lab::new(15, 3) else { return };
    let (nem, control) = nemesis(&lab, Some("t15n2"));
    let names = lab.names();
    for n in &names {
        nemesis::TargetControl::start(control.as_ref(), n)
            .await
            .unwrap();
        assert_running(&control, n, "started").await;
    }
    let before: Vec<String> = futures_pids(&control, &names).await;

    let rec = nem
        .apply(&FaultOp::Kill {
            targets: Targets::Leader,
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(rec.value()["nodes"], serde_json::json!(["t15n2"]));
    assert_eq!(control.state("t15n2").await, "dead");
    assert_running(&control, "t15n1", "not killed").await;

    let rec = nem
        .apply(&FaultOp::Kill {
            targets: Targets::Nodes(vec![names[0].clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed);
    let rec = nem.apply(&FaultOp::Restart).await;
    assert_eq!(rec.f, "start");
    assert_eq!(rec.outcome, Outcome::Installed);
    assert_eq!(rec.value()["nodes"], serde_json::json!(["t15n1", "t15n2"]));
    let after = futures_pids(&control, &names).await;
    for (i, n) in names.iter().enumerate() {
        assert_running(&control, n, "restarted").await;
        if i < 2 {
            assert_ne!(before[i], after[i], "{n} is a new process");
        } else {
            assert_eq!(before[i], after[i], "{n} was never killed");
        }
    }

    let rec = nem
        .apply(&FaultOp::Pause {
            targets: Targets::Nodes(vec![names[2].clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed);
    assert_eq!(control.state(&names[2]).await, "T");
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert_eq!(residue.len(), 1, "{residue:?}");
    assert!(
        matches!(&residue[0].what, ResidueKind::StoppedProcess { command, .. } if command == "sleep"),
        "{residue:?}"
    );
    assert_eq!(residue[0].node, names[2]);
    let rec = nem.apply(&FaultOp::Resume).await;
    assert_eq!(rec.outcome, Outcome::Installed);
    assert_running(&control, &names[2], "resumed").await;
    assert_clean(&lab).await;
    for n in &names {
        nemesis::TargetControl::kill(control.as_ref(), n)
            .await
            .unwrap();
    }
}

/// Running or sleeping: alive and not stopped.
async fn assert_running(control: &SleepControl, node: &str, why: &str) {
    let st = control.state(node).await;
    assert!(st == "S" || st == "R", "{node}: state {st} ({why})");
}

async fn futures_pids(control: &SleepControl, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        out.push(control.pid(n).await);
    }
    out
}

#[tokio::test]
async fn heal_all_removes_everything_even_without_the_nemesis_that_installed_it() {
    let Some(lab) = Lab::new(16, 3) else { return };
    let names = lab.names();
    let control = Arc::new(SleepControl {
        nodes: lab.remotes.clone(),
        leader: None,
    });
    for n in &names {
        nemesis::TargetControl::start(control.as_ref(), n)
            .await
            .unwrap();
    }
    {
        let nem = Nemesis::new(lab.nodes(), control.clone(), NemesisConfig::default());
        let ops = [
            FaultOp::StartPartition {
                shape: Shape::Bridge,
                grudge: None,
            },
            FaultOp::StartPacket {
                fault: PacketFault::Loss { probability: 0.3 },
                targets: Targets::Nodes(names.clone()),
            },
            FaultOp::StartPacket {
                fault: PacketFault::Bandwidth { kbit: 5_000 },
                targets: Targets::Nodes(vec![names[1].clone()]),
            },
            FaultOp::Clock {
                change: ClockChange::Bump {
                    offsets_ms: BTreeMap::from([(names[0].clone(), 60_000)]),
                },
            },
            strobe(&names[2], 500, -500, 200),
            FaultOp::Pause {
                targets: Targets::Nodes(vec![names[1].clone()]),
            },
            FaultOp::Kill {
                targets: Targets::Nodes(vec![names[0].clone()]),
            },
        ];
        for op in &ops {
            let rec = nem.apply(op).await;
            assert_eq!(
                rec.outcome,
                Outcome::Installed,
                "{}: {:?}",
                rec.f,
                rec.value()
            );
        }
        // The nemesis goes away here, as if its controller died.
    }
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    let kinds: std::collections::BTreeSet<&str> = residue
        .iter()
        .map(|r| match r.what {
            ResidueKind::Chain { .. } => "chain",
            ResidueKind::Qdisc { .. } => "qdisc",
            ResidueKind::ClockOffset { .. } => "offset",
            ResidueKind::ClockStrobe { .. } => "strobe",
            ResidueKind::StoppedProcess { .. } => "stopped",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["chain", "qdisc", "offset", "strobe", "stopped"].into(),
        "{residue:?}"
    );

    let opts = HealOptions {
        restart: vec![names[0].clone()],
        ..HealOptions::default()
    };
    for round in 0..2 {
        let rec = heal_all(&lab.nodes(), Some(control.as_ref()), &opts).await;
        assert_eq!(
            rec.outcome,
            Outcome::Installed,
            "round {round}: {:?}",
            rec.value()
        );
        assert_clean(&lab).await;
    }
    for n in &names {
        assert_running(&control, n, "after heal").await;
        nemesis::TargetControl::kill(control.as_ref(), n)
            .await
            .unwrap();
    }
    // Without any control (a fresh controller that only has the nodes), heal still works.
    let rec = heal_all(&lab.nodes(), None, &HealOptions::default()).await;
    assert_eq!(rec.outcome, Outcome::Installed);
    assert_clean(&lab).await;
}

#[tokio::test]
async fn a_seeded_schedule_runs_end_to_end() {
    let Some(lab) = Lab::new(17, 3) else { return };
    let (nem, control) = nemesis(&lab, Some("t17n1"));
    for n in &lab.names() {
        nemesis::TargetControl::start(control.as_ref(), n)
            .await
            .unwrap();
    }
    let mut cfg =
        nemesis::ScheduleConfig::new(2024, lab.names(), nemesis::fault::ALL_KINDS.to_vec());
    cfg.interval = std::time::Duration::from_secs(1);
    cfg.duration = std::time::Duration::from_secs(40);
    let plan = nemesis::schedule(&cfg).unwrap();
    assert_eq!(plan.len(), 40);
    let mut installed = 0;
    let mut records = Vec::new();
    // Run as fast as possible (all times in the past): the point is every outcome, not timing.
    let now = tokio::time::Instant::now();
    let started = now.checked_sub(cfg.duration).unwrap_or(now);
    nem.run_schedule(&plan, started, |r| records.push(r.clone()))
        .await
        .unwrap_or_else(|r| panic!("{}: {}", r.f, r.value()));
    assert_eq!(records.len(), plan.len());
    for (rec, step) in records.iter().zip(&plan) {
        assert_eq!(rec.f, step.op.f());
        match &rec.outcome {
            Outcome::Installed => installed += 1,
            Outcome::Skipped(reason) => assert!(
                reason.starts_with("netem unavailable on"),
                "{}: unexpected skip: {reason}",
                rec.f
            ),
            Outcome::Indeterminate(reason) => panic!("{}: indeterminate: {reason}", rec.f),
        }
        let op = rec.to_op(0, 0);
        assert_eq!(op.process, checkers::history::Process::Nemesis);
    }
    eprintln!("schedule: {installed}/{} operations installed", plan.len());
    assert!(installed >= plan.len() / 2);
    assert_clean(&lab).await;
    for n in &lab.names() {
        nemesis::TargetControl::kill(control.as_ref(), n)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_node_lost_mid_action_makes_the_outcome_indeterminate() {
    let Some(mut lab) = Lab::new(18, 3) else {
        return;
    };
    let (nem, _) = nemesis(&lab, None);
    lab.crash_node(2);
    let rec = nem
        .apply(&FaultOp::StartPartition {
            shape: Shape::Halves,
            grudge: None,
        })
        .await;
    match &rec.outcome {
        Outcome::Indeterminate(reason) => {
            assert!(reason.starts_with("t18n3: t18n3: unreachable"), "{reason}")
        }
        other => panic!("expected indeterminate, got {other:?}"),
    }
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert!(
        residue
            .iter()
            .any(|r| r.node == "t18n3" && matches!(r.what, ResidueKind::Unchecked { .. })),
        "an unreachable node is never reported clean: {residue:?}"
    );
    // Healing what can be reached still works and says which node it could not heal.
    let rec = heal_all(&lab.nodes(), None, &HealOptions::default()).await;
    assert!(rec.outcome.is_indeterminate(), "{:?}", rec.value());
    assert!(rec.outcome.reason().unwrap().contains("t18n3"));
    let residue = residue_with(&lab.nodes(), &Access::default()).await;
    assert_eq!(
        residue.len(),
        1,
        "only the lost node is unchecked: {residue:?}"
    );
}

#[tokio::test]
async fn overlapping_kills_and_pauses_of_one_node_stay_consistent() {
    let Some(lab) = Lab::new(60, 3) else { return };
    let names = lab.names();
    let (nem, control) = nemesis(&lab, Some("t60n1"));
    for n in &names {
        nemesis::TargetControl::start(control.as_ref(), n)
            .await
            .unwrap();
    }
    let one = |i: usize| Targets::Nodes(vec![names[i].clone()]);
    // A pause of a node the nemesis killed is skipped, not a harness failure.
    assert_eq!(
        nem.apply(&FaultOp::Kill { targets: one(0) }).await.outcome,
        Outcome::Installed
    );
    let rec = nem
        .apply(&FaultOp::Pause {
            targets: Targets::Leader,
        })
        .await;
    assert_eq!(
        rec.outcome,
        Outcome::Skipped("t60n1 killed by the nemesis, not restarted yet".into()),
        "{:?}",
        rec.value()
    );
    // A pause of several nodes pauses the live ones and says which were down.
    let rec = nem
        .apply(&FaultOp::Pause {
            targets: Targets::Nodes(names[..2].to_vec()),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(rec.value()["nodes"], serde_json::json!(["t60n2"]));
    assert_eq!(rec.value()["down"], serde_json::json!(["t60n1"]));
    // A kill of a paused node kills it; the restart brings it back running, and the resume
    // that follows has nothing left of it to resume.
    assert_eq!(
        nem.apply(&FaultOp::Kill { targets: one(1) }).await.outcome,
        Outcome::Installed
    );
    assert_eq!(control.state("t60n2").await, "dead");
    let rec = nem.apply(&FaultOp::Restart).await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(rec.value()["nodes"], serde_json::json!(["t60n1", "t60n2"]));
    let rec = nem.apply(&FaultOp::Resume).await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(rec.value()["nodes"], serde_json::json!([]));
    for n in &names {
        assert_running(&control, n, "after restart and resume").await;
    }
    // The leader's clock set back, on the node the control names at that moment.
    let rec = nem
        .apply(&FaultOp::Clock {
            change: ClockChange::BumpLeader { offset_ms: -4_000 },
        })
        .await;
    assert_eq!(rec.f, "bump-clock");
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_eq!(
        rec.value()["offsets_ms"],
        serde_json::json!({"t60n1": -4000})
    );
    let measured = rec.value()["measured"]["t60n1"]["offset_ms"]
        .as_f64()
        .unwrap();
    assert!((-4_500.0..-3_500.0).contains(&measured), "{measured}");
    let (leaderless, _) = nemesis(&lab, None);
    let rec = leaderless
        .apply(&FaultOp::Clock {
            change: ClockChange::BumpLeader { offset_ms: -4_000 },
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Skipped("no leader known".into()));
    let rec = nem.heal().await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_clean(&lab).await;
    for n in &names {
        nemesis::TargetControl::kill(control.as_ref(), n)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_overlapping_schedule_runs_end_to_end_and_heals() {
    let Some(lab) = Lab::new(61, 3) else { return };
    let (nem, control) = nemesis(&lab, Some("t61n2"));
    for n in &lab.names() {
        nemesis::TargetControl::start(control.as_ref(), n)
            .await
            .unwrap();
    }
    let mut cfg =
        nemesis::ScheduleConfig::new(2024, lab.names(), nemesis::fault::ALL_KINDS.to_vec());
    cfg.mode = nemesis::ScheduleMode::Overlap;
    cfg.leader_share = 0.5;
    cfg.interval = std::time::Duration::from_secs(1);
    cfg.duration = std::time::Duration::from_secs(30);
    let plan = nemesis::schedule(&cfg).unwrap();
    // The plan really overlaps: at some point faults of two kinds are active.
    let mut active = std::collections::BTreeSet::new();
    let mut most = 0;
    for s in &plan {
        let k = s.op.kind();
        if !active.remove(&k) {
            active.insert(k);
        }
        most = most.max(active.len());
    }
    assert!(most >= 3, "at most {most} kinds active at once");
    let mut records = Vec::new();
    // All times in the past: the operations run back to back, in the plan's order.
    let now = tokio::time::Instant::now();
    let started = now.checked_sub(cfg.duration).unwrap_or(now);
    nem.run_schedule(&plan, started, |r| records.push(r.clone()))
        .await
        .unwrap_or_else(|r| panic!("{}: {}", r.f, r.value()));
    assert_eq!(records.len(), plan.len());
    let mut installed = 0;
    for (rec, step) in records.iter().zip(&plan) {
        assert_eq!(rec.f, step.op.f());
        match &rec.outcome {
            Outcome::Installed => installed += 1,
            Outcome::Skipped(reason) => assert!(
                reason.starts_with("netem unavailable on")
                    || reason.contains("killed by the nemesis"),
                "{}: unexpected skip: {reason}",
                rec.f
            ),
            Outcome::Indeterminate(reason) => panic!("{}: indeterminate: {reason}", rec.f),
        }
    }
    eprintln!(
        "overlap schedule: {installed}/{} operations installed",
        plan.len()
    );
    assert!(installed >= plan.len() / 2);
    // Every start had its stop: nothing is left, and every server runs.
    assert_clean(&lab).await;
    for n in &lab.names() {
        assert_running(&control, n, "after the schedule").await;
    }
    // Stopped in the middle (a SIGTERM), heal still removes everything.
    let cut = plan.len() / 2;
    nem.run_schedule(&plan[..cut], started, |_| {})
        .await
        .unwrap_or_else(|r| panic!("{}: {}", r.f, r.value()));
    let rec = nem.heal().await;
    assert_eq!(rec.outcome, Outcome::Installed, "{:?}", rec.value());
    assert_clean(&lab).await;
    for n in &lab.names() {
        assert_running(&control, n, "after heal").await;
        nemesis::TargetControl::kill(control.as_ref(), n)
            .await
            .unwrap();
    }
}
