//! The nemesis: applies [`FaultOp`]s to the nodes and says what happened.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::clock::{self, controller_now_ns, offset_from_reading, ClockChange, ClockMechanism};
use crate::control::{ControlError, TargetControl};
use crate::exec::{run_all, run_commands, run_on, Access, NodeResult};
use crate::fault::{FaultOp, PacketFault, Targets};
use crate::grudge::{Grudge, Shape};
use crate::heal::{heal_all, HealOptions};
use crate::record::{FaultRecord, Outcome};
use crate::remote::Remote;
use crate::scripts;

/// How the nemesis acts on this cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NemesisConfig {
    pub access: Access,
    pub clock: ClockMechanism,
    /// Addresses the controller uses; a partition or packet fault naming one is refused.
    pub controller_addrs: Vec<String>,
    /// Seeds the choices made at run time (shapes given without a grudge).
    pub seed: u64,
    /// Send SIGCONT to every stopped process when healing (see [`HealOptions`]).
    pub continue_stopped_on_heal: bool,
}

impl Default for NemesisConfig {
    fn default() -> Self {
        NemesisConfig {
            access: Access::default(),
            clock: ClockMechanism::Faketime,
            controller_addrs: Vec::new(),
            seed: 0,
            continue_stopped_on_heal: true,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    killed: BTreeSet<String>,
    paused: BTreeSet<String>,
}

/// The fault injector for one cluster.
pub struct Nemesis {
    nodes: Vec<Arc<dyn Remote>>,
    control: Arc<dyn TargetControl>,
    cfg: NemesisConfig,
    state: Mutex<State>,
    rng: Mutex<StdRng>,
}

/// Maps per-node results to an outcome: all done -> installed; any lost -> indeterminate;
/// otherwise (unsupported or failed somewhere) -> skipped.
fn outcome_of(results: &[(String, NodeResult)]) -> Outcome {
    let lost: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| match r {
            NodeResult::Lost(c) => Some(format!("{n}: {c}")),
            _ => None,
        })
        .collect();
    if !lost.is_empty() {
        return Outcome::Indeterminate(lost.join("; "));
    }
    let bad: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| match r {
            NodeResult::Unsupported(c) | NodeResult::Failed(c) => Some(format!("{c} on {n}")),
            _ => None,
        })
        .collect();
    if bad.is_empty() {
        Outcome::Installed
    } else {
        Outcome::Skipped(bad.join("; "))
    }
}

/// Outcome of an action that must leave nothing behind when it cannot complete: if the install
/// was not clean, the rollback ran; a rollback that failed makes the state unknown.
fn with_rollback(install: Outcome, rollback: &[(String, NodeResult)]) -> Outcome {
    match install {
        Outcome::Skipped(reason) if !rollback.iter().all(|(_, r)| r.is_done()) => {
            Outcome::Indeterminate(format!("{reason}; rollback failed: {}", describe(rollback)))
        }
        other => other,
    }
}

fn describe(results: &[(String, NodeResult)]) -> String {
    results
        .iter()
        .filter(|(_, r)| !r.is_done())
        .map(|(n, r)| format!("{n}: {r:?}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn control_outcome(errors: &[ControlError]) -> Outcome {
    if errors.is_empty() {
        return Outcome::Installed;
    }
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    if errors
        .iter()
        .all(|e| matches!(e, ControlError::Unsupported { .. }))
    {
        Outcome::Skipped(text)
    } else {
        Outcome::Indeterminate(text)
    }
}

impl Nemesis {
    pub fn new(
        nodes: Vec<Arc<dyn Remote>>,
        control: Arc<dyn TargetControl>,
        cfg: NemesisConfig,
    ) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        Nemesis {
            nodes,
            control,
            cfg,
            state: Mutex::new(State::default()),
            rng: Mutex::new(rng),
        }
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name().to_string()).collect()
    }

    fn node(&self, name: &str) -> Option<&Arc<dyn Remote>> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    /// Applies one operation. Never fails: problems are in the record's outcome.
    pub async fn apply(&self, op: &FaultOp) -> FaultRecord {
        let rec = match op {
            FaultOp::StartPartition { shape, grudge } => {
                self.start_partition(*shape, grudge.clone()).await
            }
            FaultOp::StopPartition => self.stop_partition().await,
            FaultOp::Clock { change } => self.clock(change).await,
            FaultOp::Kill { targets } => self.kill(targets).await,
            FaultOp::Restart => self.restart().await,
            FaultOp::Pause { targets } => self.pause(targets).await,
            FaultOp::Resume => self.resume().await,
            FaultOp::StartPacket { fault, targets } => self.start_packet(fault, targets).await,
            FaultOp::StopPacket => self.stop_packet().await,
        };
        tracing::info!(f = %rec.f, value = %rec.value(), "nemesis");
        rec
    }

    /// Applies `plan` in order, each operation at its time after `started`, handing every record
    /// to `record` as soon as it exists. Stops at the first `indeterminate` outcome (a harness
    /// failure: the caller should stop new operations, [`Nemesis::heal`], and exit non-zero).
    /// To stop early, drop the future (e.g. in `tokio::select!`); then heal.
    pub async fn run_schedule<F: FnMut(&FaultRecord)>(
        &self,
        plan: &[crate::schedule::Scheduled],
        started: tokio::time::Instant,
        mut record: F,
    ) -> Result<(), FaultRecord> {
        for step in plan {
            tokio::time::sleep_until(started + step.at).await;
            let rec = self.apply(&step.op).await;
            record(&rec);
            if rec.outcome.is_indeterminate() {
                return Err(rec);
            }
        }
        Ok(())
    }

    /// Removes every fault from every node, resumes paused and restarts killed servers.
    pub async fn heal(&self) -> FaultRecord {
        let restart: Vec<String> = {
            let st = self.state.lock().await;
            st.killed.iter().cloned().collect()
        };
        let opts = HealOptions {
            access: self.cfg.access.clone(),
            restart,
            reset_real_clock: self.cfg.clock == ClockMechanism::RealClock,
            continue_stopped: self.cfg.continue_stopped_on_heal,
        };
        let rec = heal_all(&self.nodes, Some(self.control.as_ref()), &opts).await;
        if rec.outcome == Outcome::Installed {
            let mut st = self.state.lock().await;
            st.killed.clear();
            st.paused.clear();
        }
        rec
    }

    async fn leader(&self) -> Result<String, Outcome> {
        match self.control.leader().await {
            Ok(Some(l)) if self.node(&l).is_some() => Ok(l),
            Ok(Some(l)) => Err(Outcome::Skipped(format!(
                "the target reports leader {l:?}, which is not a node of the cluster"
            ))),
            Ok(None) => Err(Outcome::Skipped("no leader known".into())),
            Err(e) => Err(Outcome::Skipped(format!("leader lookup failed: {e}"))),
        }
    }

    async fn resolve(&self, targets: &Targets) -> Result<Vec<String>, Outcome> {
        let names = match targets {
            Targets::Leader => vec![self.leader().await?],
            Targets::Nodes(v) => v.clone(),
        };
        if let Some(bad) = names.iter().find(|n| self.node(n).is_none()) {
            return Err(Outcome::Skipped(format!(
                "{bad:?} is not a node of the cluster"
            )));
        }
        Ok(names)
    }

    /// The peer addresses `node` may act on, refusing its own and the controller's.
    fn peer_hosts(&self, node: &str, peers: &BTreeSet<String>) -> Result<Vec<String>, String> {
        let me = self
            .node(node)
            .ok_or_else(|| format!("{node:?} is not a node"))?;
        let mut hosts = Vec::new();
        for p in peers {
            let peer = self
                .node(p)
                .ok_or_else(|| format!("{p:?} is not a node of the cluster"))?;
            let h = peer.host().to_string();
            if h == me.host() {
                return Err(format!(
                    "{node} and {p} share address {h}; they cannot be separated by address"
                ));
            }
            if self.cfg.controller_addrs.contains(&h) {
                return Err(format!(
                    "{p}'s address {h} is the controller's; refusing to drop it"
                ));
            }
            hosts.push(h);
        }
        Ok(hosts)
    }

    async fn start_partition(&self, shape: Shape, grudge: Option<Grudge>) -> FaultRecord {
        let f = "start-partition";
        let grudge = match grudge {
            Some(g) => g,
            None => {
                let leader = if shape == Shape::IsolateLeader {
                    match self.leader().await {
                        Ok(l) => Some(l),
                        Err(o) => return FaultRecord::new(f, o).with("shape", shape),
                    }
                } else {
                    None
                };
                let names = self.node_names();
                let mut rng = self.rng.lock().await;
                match Grudge::for_shape(shape, &names, leader.as_deref(), &mut *rng) {
                    Ok(g) => g,
                    Err(e) => {
                        return FaultRecord::new(f, Outcome::Skipped(e.to_string()))
                            .with("shape", shape)
                    }
                }
            }
        };
        let mut jobs = Vec::new();
        for n in &self.nodes {
            match self.peer_hosts(n.name(), &grudge.drops(n.name())) {
                Ok(hosts) => {
                    let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
                    jobs.push((n.clone(), scripts::partition_install(&refs)));
                }
                Err(reason) => {
                    return FaultRecord::new(f, Outcome::Skipped(reason))
                        .with("shape", shape)
                        .with("grudge", &grudge)
                }
            }
        }
        if let Some(unknown) = grudge.0.keys().find(|k| self.node(k).is_none()) {
            return FaultRecord::new(
                f,
                Outcome::Skipped(format!(
                    "grudge names {unknown:?}, not a node of the cluster"
                )),
            )
            .with("grudge", &grudge);
        }
        let results = run_all(jobs, &self.cfg.access).await;
        let mut outcome = outcome_of(&results);
        if matches!(outcome, Outcome::Skipped(_)) {
            let rollback = self.remove_everywhere(&[scripts::PARTITION_CHAIN]).await;
            outcome = with_rollback(outcome, &rollback);
        }
        FaultRecord::new(f, outcome)
            .with("shape", shape)
            .with("grudge", &grudge)
    }

    async fn remove_everywhere(&self, chains: &[&str]) -> Vec<(String, NodeResult)> {
        let script: String = chains.iter().map(|c| scripts::chain_remove(c)).collect();
        let jobs = self
            .nodes
            .iter()
            .map(|n| (n.clone(), script.clone()))
            .collect();
        run_all(jobs, &self.cfg.access).await
    }

    async fn stop_partition(&self) -> FaultRecord {
        let results = self.remove_everywhere(&[scripts::PARTITION_CHAIN]).await;
        FaultRecord::new("stop-partition", heal_outcome(&results))
    }

    async fn clock(&self, change: &ClockChange) -> FaultRecord {
        let rec = FaultRecord::new("", Outcome::Installed).with("mechanism", self.cfg.clock);
        let mut rec = match change {
            ClockChange::Bump { offsets_ms } => self.bump(offsets_ms, rec).await,
            ClockChange::BumpLeader { offset_ms } => {
                let rec = rec.with("targets", Targets::Leader);
                match self.leader().await {
                    Ok(l) => self.bump(&BTreeMap::from([(l, *offset_ms)]), rec).await,
                    Err(o) => FaultRecord { outcome: o, ..rec }.with("offset_ms", offset_ms),
                }
            }
            ClockChange::Strobe {
                nodes,
                a_ms,
                b_ms,
                period_ms,
                duration_ms,
            } => {
                self.strobe(nodes, *a_ms, *b_ms, *period_ms, *duration_ms, rec)
                    .await
            }
            ClockChange::Reset => self.reset_clocks(rec).await,
        };
        rec.f = FaultOp::Clock {
            change: change.clone(),
        }
        .f()
        .to_string();
        rec
    }

    /// The script that makes `node`'s offset `ms` (absolute, relative to true time).
    fn set_offset_script(&self, node: &str, ms: i64) -> String {
        match self.cfg.clock {
            ClockMechanism::Faketime => scripts::write_file_atomically(
                &self.cfg.access.offset_files.path(node),
                &clock::format_offset(ms),
            ),
            ClockMechanism::RealClock => {
                scripts::real_clock_set(controller_now_ns() + ms as i128 * 1_000_000)
            }
        }
    }

    async fn bump(&self, offsets: &BTreeMap<String, i64>, rec: FaultRecord) -> FaultRecord {
        let rec = rec.with("offsets_ms", offsets);
        let mut jobs = Vec::new();
        for (name, ms) in offsets {
            match self.node(name) {
                Some(n) => jobs.push((n.clone(), self.set_offset_script(name, *ms))),
                None => {
                    let o = Outcome::Skipped(format!("{name:?} is not a node of the cluster"));
                    return FaultRecord { outcome: o, ..rec };
                }
            }
        }
        let results = run_all(jobs, &self.cfg.access).await;
        let measured = self.measure(offsets.keys()).await;
        FaultRecord {
            outcome: outcome_of(&results),
            ..rec.with("measured", measured)
        }
    }

    async fn strobe(
        &self,
        nodes: &[String],
        a_ms: i64,
        b_ms: i64,
        period_ms: u64,
        duration_ms: u64,
        rec: FaultRecord,
    ) -> FaultRecord {
        let rec = rec.with(
            "strobe",
            json!({"nodes": nodes, "a_ms": a_ms, "b_ms": b_ms, "period_ms": period_ms, "duration_ms": duration_ms}),
        );
        let mut jobs = Vec::new();
        for name in nodes {
            let Some(n) = self.node(name) else {
                let o = Outcome::Skipped(format!("{name:?} is not a node of the cluster"));
                return FaultRecord { outcome: o, ..rec };
            };
            let set_fn = match self.cfg.clock {
                ClockMechanism::Faketime => {
                    scripts::strobe_set_faketime(&self.cfg.access.offset_files.path(name))
                }
                ClockMechanism::RealClock => scripts::strobe_set_real(),
            };
            let body = scripts::strobe_loop(&set_fn, a_ms, b_ms, period_ms.max(1), duration_ms);
            let path = clock::strobe_script(name);
            let pidfile = clock::strobe_pidfile(name);
            let mut script = String::new();
            if self.cfg.clock == ClockMechanism::RealClock {
                script.push_str(&scripts::require_ntp_off());
            }
            script.push_str(&scripts::stop_detached(&pidfile));
            script.push_str(&format!(
                "mkdir -p {} && cat > {}\n",
                scripts::quote(clock::CLOCK_DIR),
                scripts::quote(&path)
            ));
            script.push_str(&scripts::start_detached(&path, &pidfile));
            jobs.push((n.clone(), body, script));
        }
        // The loop body goes in through stdin, so it needs no second layer of quoting.
        let cmds = jobs
            .into_iter()
            .map(|(node, body, script)| {
                (
                    node,
                    self.cfg.access.command(script).stdin(body.into_bytes()),
                )
            })
            .collect();
        let results = run_commands(cmds).await;
        FaultRecord {
            outcome: outcome_of(&results),
            ..rec
        }
    }

    async fn reset_clocks(&self, rec: FaultRecord) -> FaultRecord {
        let jobs = self
            .nodes
            .iter()
            .map(|n| {
                let mut s = scripts::stop_detached(&clock::strobe_pidfile(n.name()));
                s.push_str(&self.set_offset_script(n.name(), 0));
                (n.clone(), s)
            })
            .collect();
        let results = run_all(jobs, &self.cfg.access).await;
        let names = self.node_names();
        let measured = self.measure(names.iter()).await;
        FaultRecord {
            outcome: heal_outcome(&results),
            ..rec.with("measured", measured)
        }
    }

    /// Measures the clock offset of each named node: from the server itself when the control
    /// reports its clock, else from `date` run the way the server sees time.
    pub async fn measure<'a>(&self, names: impl Iterator<Item = &'a String>) -> Value {
        let mut out = serde_json::Map::new();
        for name in names {
            let v = match self.measure_one(name).await {
                Ok(m) => json!({"offset_ms": m.offset_ms, "uncertainty_ms": m.uncertainty_ms}),
                Err(e) => json!({"error": e}),
            };
            out.insert(name.clone(), v);
        }
        Value::Object(out)
    }

    async fn measure_one(&self, name: &str) -> Result<clock::MeasuredOffset, String> {
        let node = self
            .node(name)
            .ok_or_else(|| format!("{name:?} is not a node"))?;
        let before = controller_now_ns();
        match self.control.wall_clock_ms(name).await {
            Ok(Some(ms)) => {
                let after = controller_now_ns();
                return Ok(offset_from_reading(before, ms as i128 * 1_000_000, after));
            }
            Ok(None) | Err(ControlError::Unsupported { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        let script = match self.cfg.clock {
            ClockMechanism::Faketime => {
                scripts::faketime_date(&self.cfg.access.offset_files.path(name))
            }
            ClockMechanism::RealClock => "date +%s%N\n".to_string(),
        };
        let before = controller_now_ns();
        let r = run_on(node.as_ref(), &self.cfg.access, &script).await;
        let after = controller_now_ns();
        match r {
            NodeResult::Done(out) => {
                let ns: i128 = out
                    .trim()
                    .parse()
                    .map_err(|_| format!("date printed {:?}, not nanoseconds", out.trim()))?;
                Ok(offset_from_reading(before, ns, after))
            }
            other => Err(format!("{other:?}")),
        }
    }

    async fn kill(&self, targets: &Targets) -> FaultRecord {
        let names = match self.resolve(targets).await {
            Ok(n) => n,
            Err(o) => return FaultRecord::new("kill", o).with("targets", targets),
        };
        let mut errors = Vec::new();
        for n in &names {
            let r = self.control.kill(n).await;
            let mut st = self.state.lock().await;
            // Even a failed kill may have happened: remember it so a restart is tried.
            st.killed.insert(n.clone());
            match r {
                // A paused process that was killed is gone: nothing left to resume.
                Ok(()) => {
                    st.paused.remove(n);
                }
                Err(e) => errors.push(e),
            }
        }
        FaultRecord::new("kill", control_outcome(&errors))
            .with("targets", targets)
            .with("nodes", &names)
    }

    async fn restart(&self) -> FaultRecord {
        let names: Vec<String> = self.state.lock().await.killed.iter().cloned().collect();
        let mut errors = Vec::new();
        for n in &names {
            match self.control.start(n).await {
                Ok(()) => {
                    self.state.lock().await.killed.remove(n);
                }
                Err(e) => errors.push(e),
            }
        }
        FaultRecord::new("start", control_outcome(&errors)).with("nodes", &names)
    }

    async fn pause(&self, targets: &Targets) -> FaultRecord {
        let names = match self.resolve(targets).await {
            Ok(n) => n,
            Err(o) => return FaultRecord::new("pause", o).with("targets", targets),
        };
        // With overlapping faults a target may be down: the nemesis killed it and has not
        // restarted it yet. There is nothing to pause there.
        let (down, names): (Vec<String>, Vec<String>) = {
            let st = self.state.lock().await;
            names.into_iter().partition(|n| st.killed.contains(n))
        };
        if names.is_empty() {
            let why = format!(
                "{} killed by the nemesis, not restarted yet",
                down.join(", ")
            );
            return FaultRecord::new("pause", Outcome::Skipped(why))
                .with("targets", targets)
                .with("down", &down);
        }
        let mut errors = Vec::new();
        for n in &names {
            let r = self.control.pause(n).await;
            self.state.lock().await.paused.insert(n.clone());
            if let Err(e) = r {
                errors.push(e);
            }
        }
        let rec = FaultRecord::new("pause", control_outcome(&errors))
            .with("targets", targets)
            .with("nodes", &names);
        if down.is_empty() {
            rec
        } else {
            rec.with("down", &down)
        }
    }

    async fn resume(&self) -> FaultRecord {
        let names: Vec<String> = self.state.lock().await.paused.iter().cloned().collect();
        let mut errors = Vec::new();
        for n in &names {
            match self.control.resume(n).await {
                Ok(()) => {
                    self.state.lock().await.paused.remove(n);
                }
                Err(e) => errors.push(e),
            }
        }
        FaultRecord::new("resume", control_outcome(&errors)).with("nodes", &names)
    }

    async fn start_packet(&self, fault: &PacketFault, targets: &Targets) -> FaultRecord {
        let f = "start-packet";
        let names = match self.resolve(targets).await {
            Ok(n) => n,
            Err(o) => {
                return FaultRecord::new(f, o)
                    .with("fault", fault)
                    .with("targets", targets)
            }
        };
        if let PacketFault::Loss { probability } = fault {
            if !(*probability > 0.0 && *probability <= 1.0) {
                return FaultRecord::new(
                    f,
                    Outcome::Skipped(format!("loss probability {probability} is not in (0, 1]")),
                )
                .with("fault", fault);
            }
        }
        let mut jobs = Vec::new();
        for name in &names {
            let others: BTreeSet<String> = self
                .node_names()
                .into_iter()
                .filter(|x| x != name)
                .collect();
            let hosts = match self.peer_hosts(name, &others) {
                Ok(h) if !h.is_empty() => h,
                Ok(_) => {
                    return FaultRecord::new(f, Outcome::Skipped("no peers to act on".into()))
                        .with("fault", fault)
                }
                Err(reason) => {
                    return FaultRecord::new(f, Outcome::Skipped(reason)).with("fault", fault)
                }
            };
            let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let script = match fault {
                PacketFault::Loss { probability } => scripts::loss_install(&refs, *probability),
                PacketFault::Bandwidth { kbit } => scripts::bandwidth_install(refs[0], *kbit),
                other => {
                    let args = other.netem_args().unwrap_or_default();
                    scripts::netem_install(refs[0], &args)
                }
            };
            jobs.push((self.node(name).expect("resolved").clone(), script));
        }
        let results = run_all(jobs, &self.cfg.access).await;
        let mut outcome = outcome_of(&results);
        if let Outcome::Skipped(_) = outcome {
            // Say plainly which nodes lack netem, as the first thing in the reason.
            let no_netem: Vec<&str> = results
                .iter()
                .filter(|(_, r)| {
                    matches!(r, NodeResult::Unsupported(m) if m.starts_with("netem unavailable"))
                })
                .map(|(n, _)| n.as_str())
                .collect();
            if !no_netem.is_empty() {
                if let Outcome::Skipped(r) = &outcome {
                    outcome = Outcome::Skipped(format!(
                        "netem unavailable on {} ({r})",
                        no_netem.join(", ")
                    ));
                }
            }
            let rollback = self.remove_packet_faults().await;
            outcome = with_rollback(outcome, &rollback);
        }
        FaultRecord::new(f, outcome)
            .with("fault", fault)
            .with("targets", targets)
            .with("nodes", &names)
    }

    async fn remove_packet_faults(&self) -> Vec<(String, NodeResult)> {
        let mut script = scripts::chain_remove(scripts::LOSS_CHAIN);
        script.push_str(&scripts::qdisc_remove());
        let jobs = self
            .nodes
            .iter()
            .map(|n| (n.clone(), script.clone()))
            .collect();
        run_all(jobs, &self.cfg.access).await
    }

    async fn stop_packet(&self) -> FaultRecord {
        let results = self.remove_packet_faults().await;
        FaultRecord::new("stop-packet", heal_outcome(&results))
    }
}

/// A removal that did not complete leaves the node in an unknown state.
fn heal_outcome(results: &[(String, NodeResult)]) -> Outcome {
    if results.iter().all(|(_, r)| r.is_done()) {
        Outcome::Installed
    } else {
        Outcome::Indeterminate(describe(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: &str, x: NodeResult) -> (String, NodeResult) {
        (n.to_string(), x)
    }

    #[test]
    fn outcomes_from_node_results() {
        let done = r("n1", NodeResult::Done(String::new()));
        assert_eq!(outcome_of(std::slice::from_ref(&done)), Outcome::Installed);
        assert_eq!(
            outcome_of(&[
                done.clone(),
                r("n2", NodeResult::Unsupported("netem unavailable: x".into()))
            ]),
            Outcome::Skipped("netem unavailable: x on n2".into())
        );
        assert_eq!(
            outcome_of(&[
                r("n2", NodeResult::Unsupported("u".into())),
                r("n3", NodeResult::Lost("ssh reset".into()))
            ]),
            Outcome::Indeterminate("n3: ssh reset".into())
        );
        let skipped = Outcome::Skipped("s".into());
        assert_eq!(
            with_rollback(skipped.clone(), std::slice::from_ref(&done)),
            skipped
        );
        assert!(
            with_rollback(skipped, &[r("n1", NodeResult::Lost("x".into()))]).is_indeterminate()
        );
        assert!(heal_outcome(&[r("n1", NodeResult::Failed("x".into()))]).is_indeterminate());
    }

    #[test]
    fn control_errors_map_to_outcomes() {
        let unsupported = ControlError::Unsupported {
            node: "n1".into(),
            what: "pause".into(),
        };
        assert!(matches!(
            control_outcome(&[unsupported]),
            Outcome::Skipped(_)
        ));
        let failed = ControlError::Failed {
            node: "n1".into(),
            cause: "no pid".into(),
        };
        assert_eq!(
            control_outcome(&[failed]),
            Outcome::Indeterminate("n1: no pid".into())
        );
    }
}
