//! Raft random schedules under the deterministic simulator, shared by the `raft_sim` tests and the
//! `bug_reach` bench: clients append and read while nodes crash and restart and the network loses,
//! duplicates, delays and partitions messages; then the cluster heals and the run is checked
//! (one leader per term, no committed entry changed, every acknowledged append present once,
//! no stale read).
#![allow(dead_code)]

use crate::sim::{Faults, LeadersPerTerm, Sim};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use targets::protocol::{ClientOp, MicroF, MicroOp, Val};
use targets::raft::{Entry, Raft, Tuning};
use targets::sm::{ClientToken, Config, NodeId, Now, ReadMode};

/// Rounds of 50 simulated milliseconds in the tests' schedules (2 s of faults).
pub const ROUNDS: u64 = 40;

pub fn make(t: Tuning) -> impl Fn(Config, Vec<targets::raft::Record>, Now) -> Raft {
    move |c, r, n| Raft::recover_with(c, t.clone(), r, n)
}

pub fn cluster(n: usize, seed: u64, bugs: &[&str], mode: ReadMode, t: Tuning) -> Sim<Raft> {
    Sim::new(n, seed, bugs, mode, make(t))
}

pub fn write(key: u64, value: i64) -> ClientOp {
    ClientOp::Write { key, value }
}

pub fn read(key: u64) -> ClientOp {
    ClientOp::Read { key }
}

pub fn append(key: u64, value: i64) -> ClientOp {
    ClientOp::Txn {
        txn: vec![MicroOp {
            f: MicroF::Append,
            key,
            value: Some(Val::Int(value)),
        }],
    }
}

/// The safety checker for random schedules: every entry a node reports committed must equal
/// whatever any node ever reported committed at that index (this also catches a committed entry
/// lost by a restart, since the index would later commit with something else).
#[derive(Default)]
pub struct CommittedLog {
    by_index: BTreeMap<u64, Entry>,
    seen: BTreeMap<NodeId, u64>,
}

impl CommittedLog {
    pub fn check(&mut self, sim: &Sim<Raft>, id: &NodeId) -> Result<(), String> {
        let Some(r) = sim.sm(id) else { return Ok(()) };
        let commit = r.commit_index();
        let seen = self.seen.entry(id.clone()).or_insert(0);
        // After a restart the commit index starts over from the snapshot.
        if commit < *seen {
            *seen = r.snapshot_index().min(commit);
        }
        for i in (*seen + 1)..=commit {
            let Some(e) = r.entry(i) else { continue };
            match self.by_index.get(&i) {
                Some(prev) if prev != e => {
                    return Err(format!(
                        "index {i} committed as {prev:?} and, on {id}, as {e:?} (t={})",
                        sim.now
                    ))
                }
                Some(_) => {}
                None => {
                    self.by_index.insert(i, e.clone());
                }
            }
        }
        *seen = commit;
        Ok(())
    }
}

/// The checks run after every simulated step: one leader per term, and no committed entry ever
/// changes.
pub fn safety_check() -> impl FnMut(&Sim<Raft>, &NodeId) -> Result<(), String> {
    let mut leaders = LeadersPerTerm::default();
    let mut committed = CommittedLog::default();
    move |s: &Sim<Raft>, id: &NodeId| {
        leaders.check(s, id)?;
        committed.check(s, id)
    }
}

/// One random schedule: clients append unique values while nodes crash and restart and the
/// network loses, duplicates, delays and partitions messages. Then the cluster heals and must
/// converge with every acknowledged append present exactly once.
pub fn random_schedule(seed: u64, bugs: &[&str], mode: ReadMode) -> Result<(), String> {
    random_schedule_for(seed, bugs, mode, ROUNDS)
}

/// [`random_schedule`] with `rounds` rounds of faults and client traffic.
pub fn random_schedule_for(
    seed: u64,
    bugs: &[&str],
    mode: ReadMode,
    rounds: u64,
) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let n = if rng.random_bool(0.5) { 3 } else { 5 };
    let tuning = Tuning {
        snapshot_threshold: rng.random_range(8..64),
        max_append_entries: rng.random_range(1..16),
        ..Tuning::default()
    };
    let mut sim = cluster(n, seed, bugs, mode, tuning);
    sim.faults = Faults {
        loss: rng.random_range(0.0..0.2),
        duplicate: rng.random_range(0.0..0.1),
        min_delay_ms: 1,
        max_delay_ms: rng.random_range(1..40),
    };
    let faults = sim.faults.clone();
    let mut check = safety_check();
    let ids = sim.ids();
    let mut appends: BTreeMap<ClientToken, (u64, i64)> = BTreeMap::new();
    let mut reads: BTreeMap<ClientToken, (u64, u64)> = BTreeMap::new();
    let mut next_value = 0i64;
    for _round in 0..rounds {
        match rng.random_range(0..12) {
            0 => {
                let id = &ids[rng.random_range(0..n)];
                sim.crash(id);
            }
            1 | 2 => {
                let down: Vec<_> = ids.iter().filter(|i| !sim.is_up(i)).cloned().collect();
                if !down.is_empty() {
                    let id = &down[rng.random_range(0..down.len())];
                    sim.restart(id);
                }
            }
            3 => {
                sim.heal();
                let (a, b): (Vec<&str>, Vec<&str>) = ids
                    .iter()
                    .map(|s| s.as_str())
                    .partition(|_| rng.random_bool(0.5));
                sim.partition(&[&a, &b]);
            }
            4 => sim.heal(),
            _ => {
                for _ in 0..rng.random_range(1..6) {
                    let id = ids[rng.random_range(0..n)].clone();
                    let key = rng.random_range(0..3u64);
                    if rng.random_bool(0.2) {
                        if let Some(t) = sim.request(&id, read(key)) {
                            reads.insert(t, (key, sim.now));
                        }
                    } else {
                        next_value += 1;
                        if let Some(t) = sim.request(&id, append(key, next_value)) {
                            appends.insert(t, (key, next_value));
                        }
                    }
                }
            }
        }
        sim.run_for(50, &mut check)?;
    }
    // Heal everything and let the cluster settle.
    sim.heal();
    sim.faults = Faults::default();
    for id in &ids {
        if !sim.is_up(id) {
            sim.restart(id);
        }
    }
    for _ in 0..30 {
        sim.run_for(100, &mut check)?;
        if std::env::var("SIM_TRACE").is_ok() {
            for id in &ids {
                let r = sim.sm(id).expect("up");
                eprintln!(
                    "t={} {id}: {:?} term {} last {} commit {} leader {:?}",
                    sim.now,
                    r.role(),
                    r.term(),
                    r.last_index(),
                    r.commit_index(),
                    r.leader()
                );
            }
        }
    }
    // One more write through the leader makes every node learn the final commit index.
    let leader = sim.leaders().first().map(|l| l.0.clone()).ok_or_else(|| {
        let views: Vec<String> = ids
            .iter()
            .map(|id| {
                let r = sim.sm(id).expect("up");
                format!(
                    "{id}: {:?} term {} last {} commit {} leader {:?}",
                    r.role(),
                    r.term(),
                    r.last_index(),
                    r.commit_index(),
                    r.leader()
                )
            })
            .collect();
        format!("no leader after healing ({faults:?}): {views:?}")
    })?;
    let t = sim.request(&leader, write(99, 1)).expect("leader is up");
    sim.run_for(2_000, &mut check)?;
    if !sim.reply(t).is_some_and(|r| r.ok) {
        return Err(format!(
            "seed {seed}: healed cluster did not commit a write"
        ));
    }
    let states: BTreeSet<String> = ids
        .iter()
        .map(|id| format!("{:?}", sim.sm(id).expect("up").kv()))
        .collect();
    if states.len() != 1 {
        return Err(format!("seed {seed}: replicas diverge: {states:?}"));
    }
    let kv = sim.sm(&leader).expect("up").kv().clone();
    let mut present: BTreeSet<(u64, i64)> = BTreeSet::new();
    for key in 0..3u64 {
        if let Some(Val::List(l)) = kv.get(key) {
            for v in l {
                if !present.insert((key, *v)) {
                    return Err(format!(
                        "seed {seed}: value {v} appended twice to key {key}"
                    ));
                }
            }
        }
    }
    for (token, (key, value)) in &appends {
        if sim.reply(*token).is_some_and(|r| r.ok) && !present.contains(&(*key, *value)) {
            return Err(format!(
                "seed {seed}: acknowledged append of {value} to key {key} was lost"
            ));
        }
    }
    check_reads(&sim, &kv, &appends, &reads)
}

/// Every successful read of a list must be a prefix of the key's final list (appends apply in log
/// order) holding every append acknowledged before the read was sent (real-time order): a read
/// missing one is stale.
pub fn check_reads(
    sim: &Sim<Raft>,
    kv: &targets::kv::KvStore,
    appends: &BTreeMap<ClientToken, (u64, i64)>,
    reads: &BTreeMap<ClientToken, (u64, u64)>,
) -> Result<(), String> {
    let acked_at: Vec<(u64, i64, u64)> = appends
        .iter()
        .filter_map(|(t, (k, v))| {
            let r = sim.replies.iter().find(|r| r.token == *t)?;
            r.response.ok.then_some((*k, *v, r.at))
        })
        .collect();
    for (token, (key, sent)) in reads {
        let Some(r) = sim.replies.iter().find(|r| r.token == *token) else {
            continue;
        };
        if !r.response.ok {
            continue;
        }
        let seen: &[i64] = match &r.response.value {
            Some(Val::List(l)) => l,
            None => &[],
            Some(other) => return Err(format!("read of key {key} returned {other:?}")),
        };
        let last: &[i64] = match kv.get(*key) {
            Some(Val::List(l)) => l,
            _ => &[],
        };
        if !last.starts_with(seen) {
            return Err(format!(
                "read of key {key} at t={sent} saw {seen:?}, not a prefix of the final {last:?}"
            ));
        }
        for (k, v, at) in &acked_at {
            if k == key && at < sent && !seen.contains(v) {
                return Err(format!(
                    "stale read of key {key} at t={sent} via {}: {seen:?} lacks {v}, acknowledged at t={at}",
                    r.node
                ));
            }
        }
    }
    Ok(())
}

/// A harsher schedule aimed at Raft's Figure 8: five nodes, one entry per AppendEntries, and every
/// 50 ms round a new random partition into two or three groups (or a heal), a crash or restart
/// of a random node with probability 0.1, and an append sent to each node with probability 0.5;
/// delays of 1-5 ms. Checked as it runs: one leader per term, no committed entry ever changes.
pub fn flapping_schedule(seed: u64, bugs: &[&str], rounds: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let tuning = Tuning {
        max_append_entries: 1,
        ..Tuning::default()
    };
    let mut sim = cluster(5, seed, bugs, ReadMode::Quorum, tuning);
    sim.faults = Faults {
        loss: 0.0,
        duplicate: 0.0,
        min_delay_ms: 1,
        max_delay_ms: 5,
    };
    let mut check = safety_check();
    let ids = sim.ids();
    let mut next_value = 0i64;
    for _round in 0..rounds {
        sim.heal();
        if rng.random_bool(0.8) {
            let k = rng.random_range(2..4);
            let mut groups: Vec<Vec<&str>> = vec![Vec::new(); k];
            for id in &ids {
                groups[rng.random_range(0..k)].push(id.as_str());
            }
            let groups: Vec<&[&str]> = groups.iter().map(|g| g.as_slice()).collect();
            sim.partition(&groups);
        }
        if rng.random_bool(0.1) {
            let id = &ids[rng.random_range(0..ids.len())];
            if sim.is_up(id) {
                sim.crash(id);
            } else {
                sim.restart(id);
            }
        }
        for id in &ids {
            if rng.random_bool(0.5) {
                next_value += 1;
                let _ = sim.request(id, append(rng.random_range(0..3u64), next_value));
            }
        }
        sim.run_for(50, &mut check)?;
    }
    Ok(())
}
