//! Raft under the deterministic simulator: random schedules checked for safety, and one scripted
//! schedule per bug showing the anomaly that bug causes (and its absence without the bug).
//!
//! Environment: `FAULTLINE_SIM_SCHEDULES` (default 2000) random schedules starting at seed
//! `SIM_FIRST` (default 0); `SIM_TRACE=1` prints node states while a schedule settles.
mod raft_schedule;
mod sim;

use raft_schedule::{cluster, random_schedule, read, write};
use sim::{InFlight, Sim};
use targets::protocol::{ErrorCode, Response, Val};
use targets::raft::{Command, Entry, Msg, Raft, Role, Tuning};
use targets::sm::{ClientToken, NodeId, ReadMode};

/// Runs until exactly one live node leads, and returns it.
fn elect(sim: &mut Sim<Raft>) -> NodeId {
    assert!(
        sim.run_until(10_000, |s| s.leaders().len() == 1),
        "no leader elected"
    );
    sim.leaders()[0].0.clone()
}

/// Elects a leader and waits until every live node knows it.
fn elect_and_settle(sim: &mut Sim<Raft>) -> NodeId {
    let leader = elect(sim);
    assert!(
        sim.run_until(5_000, |s| s
            .ids()
            .iter()
            .all(|id| s.sm(id).is_none_or(|r| r.leader().is_some()))),
        "followers did not learn the leader"
    );
    leader
}

fn await_reply(sim: &mut Sim<Raft>, token: ClientToken, limit_ms: u64) -> Response {
    assert!(
        sim.run_until(limit_ms, |s| s.reply(token).is_some()),
        "no reply to request {token}"
    );
    sim.reply(token).cloned().expect("reply present")
}

fn ok_write(sim: &mut Sim<Raft>, node: &str, key: u64, value: i64) {
    let t = sim.request(node, write(key, value)).expect("node is up");
    let r = await_reply(sim, t, 5_000);
    assert!(r.ok, "write {key}={value} via {node} failed: {r:?}");
}

fn schedules() -> u64 {
    std::env::var("FAULTLINE_SIM_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

#[test]
fn random_schedules_keep_raft_safe() {
    let first: u64 = std::env::var("SIM_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + schedules() {
        if let Err(e) = random_schedule(seed, &[], ReadMode::Quorum) {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn random_schedules_keep_raft_safe_with_lease_reads() {
    for seed in 0..schedules() / 4 {
        if let Err(e) = random_schedule(seed, &[], ReadMode::Lease) {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn random_schedules_catch_the_stale_read_bug() {
    let caught = (0..300)
        .filter(|&s| random_schedule(s, &["stale-read"], ReadMode::Quorum).is_err())
        .count();
    assert!(caught > 0, "no schedule exposed stale-read");
}

#[test]
fn random_schedules_catch_the_no_fsync_bug() {
    let caught = (0..200)
        .filter(|&s| random_schedule(s, &["no-fsync"], ReadMode::Quorum).is_err())
        .count();
    assert!(caught > 0, "no schedule exposed no-fsync");
}

#[test]
fn follower_forwards_to_the_leader_and_reads_are_current() {
    let mut sim = cluster(3, 1, &[], ReadMode::Quorum, Tuning::default());
    let leader = elect_and_settle(&mut sim);
    for (i, id) in sim.ids().iter().enumerate() {
        ok_write(&mut sim, id, 1, i as i64 + 10);
        let t = sim.request(id, read(1)).expect("up");
        let r = await_reply(&mut sim, t, 5_000);
        assert_eq!(
            r.value,
            Some(Val::Int(i as i64 + 10)),
            "read via {id} (leader {leader})"
        );
    }
}

#[test]
fn no_leader_is_a_definite_error_with_no_hint() {
    let mut sim = cluster(3, 1, &[], ReadMode::Quorum, Tuning::default());
    // Before any election nobody leads.
    let t = sim.request("n1", write(1, 1)).expect("up");
    let r = sim.reply(t).expect("answered at once").clone();
    let e = r.error.expect("an error");
    assert_eq!(
        (e.code, e.definite, e.leader),
        (ErrorCode::NoLeader, true, None)
    );
}

#[test]
fn isolated_leader_reports_leadership_lost_for_pending_writes() {
    let mut sim = cluster(3, 2, &[], ReadMode::Quorum, Tuning::default());
    let leader = elect(&mut sim);
    sim.isolate(&leader);
    let t = sim.request(&leader, write(1, 5)).expect("up");
    let r = await_reply(&mut sim, t, 5_000);
    let e = r.error.expect("an error");
    assert_eq!(e.code, ErrorCode::LeadershipLost);
    assert!(!e.definite, "the write may still commit: indefinite");
}

#[test]
fn slow_commit_times_out_indefinitely() {
    let t = Tuning {
        request_timeout_ms: 100,
        ..Tuning::default()
    };
    let mut sim = cluster(3, 3, &[], ReadMode::Quorum, t);
    let leader = elect(&mut sim);
    for id in sim.ids() {
        if id != leader {
            sim.crash(&id);
        }
    }
    let t = sim.request(&leader, write(1, 5)).expect("up");
    let r = await_reply(&mut sim, t, 5_000);
    let e = r.error.expect("an error");
    assert_eq!((e.code, e.definite), (ErrorCode::Timeout, false));
}

#[test]
fn lagging_follower_catches_up_from_a_snapshot() {
    let t = Tuning {
        snapshot_threshold: 10,
        ..Tuning::default()
    };
    let mut sim = cluster(3, 4, &[], ReadMode::Quorum, t);
    let leader = elect(&mut sim);
    let lagging = sim
        .ids()
        .into_iter()
        .find(|i| *i != leader)
        .expect("a follower");
    sim.crash(&lagging);
    for v in 0..40 {
        ok_write(&mut sim, &leader, v % 4, v as i64);
    }
    assert!(
        sim.sm(&leader).expect("up").snapshot_index() > 0,
        "leader compacted"
    );
    sim.restart(&lagging);
    let caught_up = sim.run_until(5_000, |s| {
        s.sm(&lagging).expect("up").kv() == s.sm(&leader).expect("up").kv()
    });
    assert!(caught_up, "{lagging} did not catch up");
    assert!(
        sim.sm(&lagging).expect("up").snapshot_index() > 0,
        "installed a snapshot"
    );
    // And it survives its own restart from the compacted log.
    sim.crash(&lagging);
    sim.restart(&lagging);
    assert_eq!(
        sim.sm(&lagging).expect("up").kv(),
        sim.sm(&leader).expect("up").kv()
    );
}

/// A leader is cut off after a write, the majority elects a new leader and overwrites the key;
/// then the old leader is asked to read it. Returns the old leader's answer (if any, within 2 s).
fn read_on_deposed_leader(bugs: &[&str], mode: ReadMode, skew_ms: i64) -> Option<Response> {
    let mut sim = cluster(3, 7, bugs, mode, Tuning::default());
    let old = elect(&mut sim);
    ok_write(&mut sim, &old, 1, 1);
    sim.run(100); // heartbeats renew the lease
    sim.isolate(&old);
    sim.nodes.get_mut(&old).expect("known").skew_ms = skew_ms;
    assert!(
        sim.run_until(3_000, |s| s.leaders().iter().any(|(id, _)| *id != old)),
        "majority elected no new leader"
    );
    let new = sim
        .leaders()
        .into_iter()
        .find(|(id, _)| *id != old)
        .expect("new leader")
        .0;
    ok_write(&mut sim, &new, 1, 2);
    assert_eq!(
        sim.sm(&old).expect("up").role(),
        Role::Leader,
        "the old leader must still believe it leads for this scenario"
    );
    let t = sim.request(&old, read(1)).expect("up");
    sim.run_until(2_000, |s| s.reply(t).is_some());
    sim.reply(t).cloned()
}

fn is_stale(r: &Option<Response>) -> bool {
    r.as_ref()
        .is_some_and(|r| r.ok && r.value == Some(Val::Int(1)))
}

#[test]
fn stale_read_bug_lets_a_deposed_leader_answer_with_old_data() {
    let correct = read_on_deposed_leader(&[], ReadMode::Quorum, 0);
    assert!(
        !is_stale(&correct),
        "quorum reads must not be stale: {correct:?}"
    );
    assert!(
        correct.is_some_and(|r| !r.ok),
        "the unconfirmable read fails"
    );
    let buggy = read_on_deposed_leader(&["stale-read"], ReadMode::Quorum, 0);
    assert!(
        is_stale(&buggy),
        "stale-read should return the old value 1: {buggy:?}"
    );
}

#[test]
fn lease_reads_are_stale_only_when_the_leaders_clock_goes_back() {
    let synced = read_on_deposed_leader(&[], ReadMode::Lease, 0);
    assert!(
        !is_stale(&synced),
        "an expired lease must not serve: {synced:?}"
    );
    // The old leader's wall clock jumps back an hour: its lease looks valid for an hour more.
    let skewed = read_on_deposed_leader(&[], ReadMode::Lease, -3_600_000);
    assert!(
        is_stale(&skewed),
        "a skewed lease should serve the old value 1: {skewed:?}"
    );
}

/// n1 votes for n2 in term 1, crashes and restarts, and is asked by n3 for its vote in term 1.
/// Returns the number of leaders elected in term 1.
fn leaders_in_term_one_after_revote(bugs: &[&str]) -> usize {
    let mut sim = cluster(3, 5, bugs, ReadMode::Quorum, Tuning::default());
    sim.advance(1_000);
    sim.tick("n2");
    sim.drop_where(|m| m.to == "n3");
    sim.deliver_where(|m| m.to == "n1");
    assert_eq!(
        sim.sm("n1").expect("up").voted_for().map(|s| s.as_str()),
        Some("n2")
    );
    sim.crash("n1");
    sim.restart("n1");
    sim.tick("n3");
    sim.drop_where(|m| m.to == "n2" && matches!(m.msg, Msg::RequestVote { .. }));
    sim.deliver_where(|m| m.to == "n1");
    // Deliver n1's votes to both candidates.
    sim.deliver_where(|m| m.from == "n1");
    sim.leaders().iter().filter(|(_, term)| *term == 1).count()
}

#[test]
fn no_fsync_bug_lets_a_restarted_node_vote_twice_in_a_term() {
    assert_eq!(leaders_in_term_one_after_revote(&[]), 1);
    assert_eq!(leaders_in_term_one_after_revote(&["no-fsync"]), 2);
}

/// Writes, crashes every node, restarts them all, and reads the key back.
fn read_after_full_restart(bugs: &[&str]) -> Option<Val> {
    let mut sim = cluster(3, 6, bugs, ReadMode::Quorum, Tuning::default());
    let leader = elect(&mut sim);
    ok_write(&mut sim, &leader, 1, 42);
    for id in sim.ids() {
        sim.crash(&id);
    }
    for id in sim.ids() {
        sim.restart(&id);
    }
    let leader = elect(&mut sim);
    let t = sim.request(&leader, read(1)).expect("up");
    let r = await_reply(&mut sim, t, 5_000);
    assert!(r.ok, "{r:?}");
    r.value
}

#[test]
fn no_fsync_bug_loses_acknowledged_writes_on_restart() {
    assert_eq!(read_after_full_restart(&[]), Some(Val::Int(42)));
    assert_eq!(read_after_full_restart(&["no-fsync"]), None);
}

fn is_vote(m: &InFlight<Msg>) -> bool {
    matches!(m.msg, Msg::RequestVote { .. } | Msg::Vote { .. })
}

/// Figure 8 of the Raft paper, scripted message by message on five nodes. Returns (the value n1
/// applied for key 1, the entry n1 committed at index 2, the value read at the end).
fn figure_8(bugs: &[&str]) -> (Option<Val>, Option<Entry>, Option<Val>) {
    let t = Tuning {
        max_append_entries: 1,
        ..Tuning::default()
    };
    let mut sim = cluster(5, 8, bugs, ReadMode::Quorum, t);
    let all = |_: &InFlight<Msg>| true;
    // (a) n1 leads term 1; everyone holds its no-op at index 1.
    sim.advance(1_000);
    sim.tick("n1");
    sim.deliver_all_where(all);
    assert_eq!(sim.sm("n1").expect("up").role(), Role::Leader);
    // n1 appends A at index 2 and gets it to n2 only, then crashes.
    sim.request("n1", write(1, 100)).expect("up");
    sim.tick("n1");
    sim.deliver_where(|m| m.to == "n2");
    sim.drop_where(all);
    sim.crash("n1");
    // (b) n5 leads term 2 with votes from n3, n4; appends its no-op at index 2; crashes.
    sim.advance(1_000);
    sim.tick("n5");
    sim.drop_where(|m| m.to == "n2");
    sim.deliver_all_where(is_vote);
    assert_eq!(sim.sm("n5").expect("up").role(), Role::Leader);
    sim.drop_where(all);
    sim.crash("n5");
    // (c) n1 restarts and leads term 3 (after a failed attempt in term 2).
    sim.restart("n1");
    for _ in 0..2 {
        sim.advance(1_000);
        sim.tick("n1");
        sim.deliver_all_where(is_vote);
    }
    assert_eq!(sim.sm("n1").expect("up").role(), Role::Leader);
    assert_eq!(sim.sm("n1").expect("up").term(), 3);
    // n1 replicates index 2 (term 1) to n3, so it sits on n1, n2, n3: a majority.
    sim.drop_where(|m| m.to == "n4" || m.to == "n5");
    sim.deliver_where(|m| m.to == "n2" || m.to == "n3");
    sim.deliver_where(|m| m.to == "n1");
    sim.deliver_where(|m| m.to == "n3");
    sim.deliver_where(|m| m.to == "n1");
    sim.drop_where(all);
    let n1 = sim.sm("n1").expect("up");
    let applied = n1.kv().get(1).cloned();
    let committed_at_2 = (n1.commit_index() >= 2)
        .then(|| n1.entry(2).cloned())
        .flatten();
    sim.crash("n1");
    // (d) n5 restarts and leads term 4 with n3 and n4, overwriting index 2 everywhere.
    sim.restart("n5");
    for _ in 0..2 {
        sim.advance(1_000);
        sim.tick("n5");
        sim.deliver_all_where(is_vote);
    }
    assert_eq!(sim.sm("n5").expect("up").role(), Role::Leader);
    sim.deliver_all_where(all);
    let t = sim.request("n5", read(1)).expect("up");
    sim.advance(100);
    sim.tick("n5");
    sim.deliver_all_where(all);
    let r = sim.reply(t).cloned().expect("read answered");
    assert!(r.ok, "{r:?}");
    let n5 = sim.sm("n5").expect("up");
    assert!(n5.commit_index() >= 2);
    assert_eq!(n5.entry(2).map(|e| &e.cmd), Some(&Command::Noop));
    (applied, committed_at_2, r.value)
}

#[test]
fn commit_old_term_bug_reproduces_figure_8() {
    let (applied, n1_committed, value) = figure_8(&[]);
    assert_eq!(
        (applied, n1_committed, value),
        (None, None, None),
        "a correct leader must not commit the term-1 entry by counting replicas"
    );

    let (applied, n1_committed, value) = figure_8(&["commit-old-term"]);
    assert_eq!(
        n1_committed.map(|e| (e.term, e.cmd)),
        Some((1, Command::Op(write(1, 100)))),
        "with the bug n1 commits the term-1 write at index 2 by counting"
    );
    assert_eq!(applied, Some(Val::Int(100)), "and applies it");
    // ...yet n5 later commits its own no-op at index 2: the applied write is gone.
    assert_eq!(value, None, "the committed write was lost");
}
