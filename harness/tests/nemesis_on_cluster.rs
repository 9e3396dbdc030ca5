//! The nemesis against `faultline-server` (Raft) on a 3-node local cluster over real SSH:
//! clock skew measured on the server itself, isolate-leader, packet loss, kill/pause of the
//! leader, and heal_all leaving no residue. Needs root (prints SKIPPED otherwise).
//!
//! The `TargetControl` here is the test's own thin adapter over the `Database` life cycle and
//! the `status` request; the runner is expected to provide the real one.
mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use cluster_support::{config, connect, root_or_skip, server_binary, Guard};
use harness::db::{
    self, members_of, BinarySource, Database, FaultlineServer, Protocol, ServerConfig,
};
use nemesis::heal::{heal_all, residue_with, HealOptions, ResidueKind};
use nemesis::{
    Access, ClockChange, Command, ControlError, FaultOp, Nemesis, NemesisConfig, OffsetFiles,
    Outcome, PacketFault, Remote, Shape, TargetControl, Targets,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct ServerControl {
    db: Arc<FaultlineServer>,
    nodes: Vec<Arc<dyn Remote>>,
}

impl ServerControl {
    fn node(&self, name: &str) -> Result<&dyn Remote, ControlError> {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .map(|n| n.as_ref())
            .ok_or_else(|| ControlError::Failed {
                node: name.into(),
                cause: "not in the inventory".into(),
            })
    }

    fn failed(node: &str, e: impl std::fmt::Display) -> ControlError {
        ControlError::Failed {
            node: node.into(),
            cause: e.to_string(),
        }
    }

    /// The `status` object of `node`'s server.
    async fn status(&self, node: &str) -> Result<serde_json::Value, ControlError> {
        let addr = self
            .db
            .client_addr(node)
            .ok_or_else(|| Self::failed(node, "no client address"))?;
        let ask = async {
            let mut s = tokio::net::TcpStream::connect(&addr).await?;
            s.write_all(b"{\"id\":1,\"op\":\"status\"}\n").await?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).await?;
            Ok::<_, std::io::Error>(line)
        };
        let line = tokio::time::timeout(Duration::from_secs(3), ask)
            .await
            .map_err(|_| Self::failed(node, "status timed out"))?
            .map_err(|e| Self::failed(node, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| Self::failed(node, e))?;
        Ok(v["status"].clone())
    }
}

#[async_trait::async_trait]
impl TargetControl for ServerControl {
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.db
            .kill(self.node(node)?)
            .await
            .map_err(|e| Self::failed(node, e))
    }
    async fn start(&self, node: &str) -> Result<(), ControlError> {
        self.db
            .start(self.node(node)?)
            .await
            .map_err(|e| Self::failed(node, e))
    }
    async fn pause(&self, node: &str) -> Result<(), ControlError> {
        self.db
            .pause(self.node(node)?)
            .await
            .map_err(|e| Self::failed(node, e))
    }
    async fn resume(&self, node: &str) -> Result<(), ControlError> {
        self.db
            .resume(self.node(node)?)
            .await
            .map_err(|e| Self::failed(node, e))
    }
    /// The node that says it leads with the highest term.
    async fn leader(&self) -> Result<Option<String>, ControlError> {
        let mut best: Option<(u64, String)> = None;
        for n in &self.nodes {
            if let Ok(s) = self.status(n.name()).await {
                if s["role"] == "leader" {
                    let term = s["term"].as_u64().unwrap_or(0);
                    if best.as_ref().is_none_or(|(t, _)| term > *t) {
                        best = Some((term, n.name().to_string()));
                    }
                }
            }
        }
        Ok(best.map(|(_, n)| n))
    }
    async fn wall_clock_ms(&self, node: &str) -> Result<Option<i64>, ControlError> {
        Ok(self.status(node).await?["time_ms"].as_i64())
    }
}

/// Waits for a leader (the cluster just started or lost one); fails after a minute.
async fn await_leader(control: &ServerControl) -> String {
    for _ in 0..600 {
        if let Ok(Some(l)) = control.leader().await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader within a minute");
}

async fn tcp_ok(from: &dyn Remote, to: &dyn Remote) -> bool {
    from.exec(Command::new(format!("nc -z -w 2 {} 7000", to.host())))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_against_raft_on_three_nodes() {
    if !root_or_skip("nemesis_against_raft_on_three_nodes") {
        return;
    }
    let binary = server_binary();
    let cfg = config("flnm", 35, 3);
    let (guard, c) = Guard::up(cfg.clone());
    let nodes = connect(&c).await;
    let server = Arc::new(
        FaultlineServer::new(ServerConfig {
            faketime: true,
            seed: Some(11),
            ..ServerConfig::new(
                Protocol::Raft,
                BinarySource::Local(binary),
                members_of(&nodes),
            )
        })
        .unwrap(),
    );
    db::setup(server.as_ref(), &nodes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let control = Arc::new(ServerControl {
        db: server.clone(),
        nodes: nodes.clone(),
    });
    let access = Access {
        offset_files: OffsetFiles::Fixed(server.faketime_file().expect("started under faketime")),
        ..Access::default()
    };
    let nem = Nemesis::new(
        nodes.clone(),
        control.clone(),
        NemesisConfig {
            access: access.clone(),
            controller_addrs: vec![c.controller_addr().to_string()],
            ..NemesisConfig::default()
        },
    );
    let names: Vec<String> = nodes.iter().map(|n| n.name().to_string()).collect();
    let leader = await_leader(&control).await;
    eprintln!("leader: {leader}");

    // Clock: the server's own clock (status.time_ms) moves by the bump.
    let rec = nem
        .apply(&FaultOp::Clock {
            change: ClockChange::Bump {
                offsets_ms: [(names[0].clone(), 1_500)].into(),
            },
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    let m = &rec.value()["measured"][&names[0]];
    eprintln!("bump +1500 ms on {}: measured on the server {m}", names[0]);
    let got = m["offset_ms"].as_f64().unwrap_or_else(|| panic!("{m}"));
    let slack = m["uncertainty_ms"].as_f64().unwrap() + 100.0;
    assert!((got - 1500.0).abs() <= slack, "server clock moved {got} ms");
    let rec = nem
        .apply(&FaultOp::Clock {
            change: ClockChange::Reset,
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    for n in &names {
        let m = &rec.value()["measured"][n];
        let got = m["offset_ms"].as_f64().unwrap();
        assert!(
            got.abs() <= m["uncertainty_ms"].as_f64().unwrap() + 100.0,
            "{n}: {m}"
        );
    }

    // Isolate the leader: it cannot reach the others, they still reach each other, and the
    // controller still reaches everyone (these very commands run over SSH).
    let t = std::time::Instant::now();
    let rec = nem
        .apply(&FaultOp::StartPartition {
            shape: Shape::IsolateLeader,
            grudge: None,
        })
        .await;
    eprintln!(
        "isolate-leader (leader lookup + 3 nodes) took {:?}",
        t.elapsed()
    );
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    let li = names.iter().position(|n| *n == leader).unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    assert_eq!(
        rec.value()["grudge"][&leader],
        serde_json::json!([names[others[0]].clone(), names[others[1]].clone()])
    );
    assert!(!tcp_ok(nodes[li].as_ref(), nodes[others[0]].as_ref()).await);
    assert!(!tcp_ok(nodes[others[1]].as_ref(), nodes[li].as_ref()).await);
    assert!(tcp_ok(nodes[others[0]].as_ref(), nodes[others[1]].as_ref()).await);
    let new_leader = {
        let mut found = None;
        for _ in 0..600 {
            if let Ok(s) = control.status(&names[others[0]]).await {
                if let Some(l) = s["leader"].as_str() {
                    if l != leader {
                        found = Some(l.to_string());
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found
    };
    eprintln!("after isolating {leader}: the majority follows {new_leader:?}");
    assert_eq!(
        nem.apply(&FaultOp::StopPartition).await.outcome,
        Outcome::Installed
    );
    assert!(tcp_ok(nodes[li].as_ref(), nodes[others[0]].as_ref()).await);

    // Packet loss between servers.
    let rec = nem
        .apply(&FaultOp::StartPacket {
            fault: PacketFault::Loss { probability: 0.5 },
            targets: Targets::Nodes(vec![names[1].clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    let out = nodes[0]
        .run(Command::new(format!(
            "ping -n -q -c 50 -i 0.02 -W 5 {} | grep received",
            nodes[1].host()
        )))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: u32 = out
        .split(',')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("50% loss on {}: {got}/50 pings answered", names[1]);
    assert!((10..=40).contains(&got), "{got}/50");
    assert_eq!(
        nem.apply(&FaultOp::StopPacket).await.outcome,
        Outcome::Installed
    );

    // Crash the leader and pause another node; residue sees the stopped server.
    let leader = await_leader(&control).await;
    let rec = nem
        .apply(&FaultOp::Kill {
            targets: Targets::Leader,
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    assert_eq!(rec.value()["nodes"], serde_json::json!([leader.clone()]));
    let li = names.iter().position(|n| *n == leader).unwrap();
    assert!(!server.is_running(nodes[li].as_ref()).await.unwrap());
    let other = names.iter().find(|n| **n != leader).unwrap().clone();
    let rec = nem
        .apply(&FaultOp::Pause {
            targets: Targets::Nodes(vec![other.clone()]),
        })
        .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    let residue = residue_with(&nodes, &access).await;
    assert!(
        residue.iter().any(|r| r.node == other
            && matches!(&r.what, ResidueKind::StoppedProcess { command, .. } if command.starts_with("faultline"))),
        "{residue:?}"
    );

    // Heal through a fresh call that knows only the nodes, the control and whom to restart.
    let t = std::time::Instant::now();
    let rec = heal_all(
        &nodes,
        Some(control.as_ref()),
        &HealOptions {
            access: access.clone(),
            restart: vec![leader.clone()],
            ..HealOptions::default()
        },
    )
    .await;
    assert_eq!(rec.outcome, Outcome::Installed, "{}", rec.value());
    eprintln!("heal_all (3 nodes, 1 restart) took {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let residue = residue_with(&nodes, &access).await;
    eprintln!("residue (3 nodes) took {:?}", t.elapsed());
    assert!(residue.is_empty(), "{residue:?}");
    for n in &nodes {
        assert!(
            server.is_running(n.as_ref()).await.unwrap(),
            "{} runs after heal",
            n.name()
        );
    }
    let leader = await_leader(&control).await;
    eprintln!("after heal: leader {leader}");
    // The doctor, run as a user would, agrees that nothing is left.
    let doctor = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["doctor", "--residue", "--inventory"])
        .arg(c.inventory_path())
        .output()
        .expect("run faultline doctor --residue");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("no residue found on 3 node(s)"), "{report}");

    db::teardown(server.as_ref(), &nodes, None).await.unwrap();
    drop(nodes);
    drop(guard);
}
