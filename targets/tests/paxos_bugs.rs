//! The switchable Multi-Paxos bugs (`BUGS.md`) cause the anomalies they are documented to cause,
//! and the same schedules are safe without them.
//!
//! Each bug gets a scripted schedule (the test decides which message arrives when, and when a
//! node crashes) and a search over random simulated schedules.
mod paxos_sim;

use paxos_sim::script::Script;
use paxos_sim::{run, SimConfig, Violation};
use targets::paxos::{PaxosMsg, Role, Value, BUG_FORGET_PROMISE, BUG_NO_ADOPT};
use targets::protocol::ClientOp;

fn write(key: u64, value: i64) -> ClientOp {
    ClientOp::Write { key, value }
}

fn writes_in(value: Option<&Value>) -> Vec<i64> {
    value
        .map(|v| {
            v.commands
                .iter()
                .filter_map(|c| match c.op {
                    ClientOp::Write { value, .. } => Some(value),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// n1 becomes leader of ballot (1, n1) with n2's promise.
fn elect_n1(s: &mut Script) {
    s.time_out(0);
    assert_eq!(
        s.deliver(0, 1, |m| matches!(m, PaxosMsg::Prepare { .. })),
        1
    );
    assert_eq!(
        s.deliver(1, 0, |m| matches!(m, PaxosMsg::Promise { .. })),
        1
    );
    assert_eq!(s.role(0), Role::Leader);
    s.drop_all();
}

/// `no-adopt`: n1 decides write 100 in slot 1 with n2 and acknowledges it; the `Decide`
/// messages are lost. n3 is elected with n2's promise, which reports n2's accepted value for
/// slot 1. A correct n3 re-proposes it; with the bug n3 proposes a no-op, n2 accepts, and slot 1
/// is decided twice: the acknowledged write is gone from n3's (and later n2's) store.
fn no_adopt_schedule(bugs: &[&str]) -> Script {
    let mut s = Script::new(bugs);
    elect_n1(&mut s);
    s.request(0, 1, write(1, 100));
    s.deliver(0, 1, |m| matches!(m, PaxosMsg::Accept { .. }));
    s.deliver(1, 0, |m| matches!(m, PaxosMsg::Accepted { .. }));
    assert!(s.replies[&1].ok, "n1 acknowledges the write once decided");
    s.drop_all();

    s.time_out(2);
    s.deliver(2, 1, |m| matches!(m, PaxosMsg::Prepare { .. }));
    s.deliver(1, 2, |m| matches!(m, PaxosMsg::Promise { .. }));
    assert_eq!(s.role(2), Role::Leader);
    s.deliver(2, 1, |m| matches!(m, PaxosMsg::Accept { .. }));
    s.deliver(1, 2, |m| matches!(m, PaxosMsg::Accepted { .. }));
    s
}

#[test]
fn no_adopt_overwrites_a_chosen_value() {
    let s = no_adopt_schedule(&[BUG_NO_ADOPT]);
    assert_eq!(writes_in(s.decided(0).get(&1)), vec![100]);
    assert_eq!(
        writes_in(s.decided(2).get(&1)),
        Vec::<i64>::new(),
        "n3 decides a no-op in slot 1"
    );
    assert_eq!(
        s.nodes[2].as_ref().unwrap().kv().get(1),
        None,
        "acknowledged write lost"
    );

    let s = no_adopt_schedule(&[]);
    assert_eq!(writes_in(s.decided(0).get(&1)), vec![100]);
    assert_eq!(
        writes_in(s.decided(2).get(&1)),
        vec![100],
        "n3 adopts n2's value"
    );
}

/// `forget-promise`: n1 leads ballot (1, n1) and proposes write 100 in slot 1, but its `Accept`
/// is delayed. n3 is elected with ballot (1, n3) through n2's promise; n2 crashes and restarts
/// before n3's `Accept` arrives. Without the promise on disk, n2 then accepts n1's delayed
/// lower-ballot value (n1 decides write 100) and afterwards n3's (n3 decides write 200): two
/// values decided for slot 1, both acknowledged. A correct n2 refuses n1's `Accept` after the
/// restart, so n1 never decides and answers `leadership-lost`.
fn forget_promise_schedule(bugs: &[&str]) -> Script {
    let mut s = Script::new(bugs);
    elect_n1(&mut s);
    s.request(0, 1, write(1, 100));
    let delayed: Vec<_> = std::mem::take(&mut s.in_flight);

    s.time_out(2);
    s.deliver(2, 1, |m| matches!(m, PaxosMsg::Prepare { .. }));
    s.deliver(1, 2, |m| matches!(m, PaxosMsg::Promise { .. }));
    assert_eq!(s.role(2), Role::Leader);
    s.drop_all();
    s.crash_and_restart(1);

    s.request(2, 2, write(1, 200));
    let n3_accepts: Vec<_> = std::mem::take(&mut s.in_flight);
    s.in_flight = delayed;
    s.deliver(0, 1, |m| matches!(m, PaxosMsg::Accept { .. }));
    s.deliver_all(1, 0);
    s.in_flight = n3_accepts;
    s.deliver(2, 1, |m| matches!(m, PaxosMsg::Accept { .. }));
    s.deliver_all(1, 2);
    s
}

#[test]
fn forget_promise_lets_a_restarted_acceptor_accept_a_lower_ballot() {
    let s = forget_promise_schedule(&[BUG_FORGET_PROMISE]);
    assert_eq!(writes_in(s.decided(0).get(&1)), vec![100]);
    assert_eq!(writes_in(s.decided(2).get(&1)), vec![200]);
    assert!(
        s.replies[&1].ok && s.replies[&2].ok,
        "both writes acknowledged"
    );

    let s = forget_promise_schedule(&[]);
    assert_eq!(s.decided(0).get(&1), None, "n1 must not decide slot 1");
    assert_eq!(writes_in(s.decided(2).get(&1)), vec![200]);
    let lost = s.replies[&1]
        .error
        .as_ref()
        .expect("n1 answers with an error");
    assert!(!lost.definite, "write 100 may still be decided later");
}

fn conflicting(v: &Violation) -> bool {
    matches!(
        v,
        Violation::ConflictingDecision { .. } | Violation::StoreDiverges { .. }
    )
}

/// Random schedules with and without `bug`: runs at least `min_seeds` seeds and until the bug
/// has shown (at most `max_seeds`). Returns (schedules with the anomaly, schedules run). The
/// same schedules must be clean without the bug.
fn search(
    bug: &'static str,
    make: impl Fn(u64) -> SimConfig,
    min_seeds: u64,
    max_seeds: u64,
) -> (u64, u64) {
    let mut hits = 0;
    let mut seed = 0;
    while seed < max_seeds && (seed < min_seeds || hits == 0) {
        let buggy = run(SimConfig {
            bugs: vec![bug],
            ..make(seed)
        });
        let correct = run(make(seed));
        assert!(
            correct.violations.is_empty(),
            "seed {seed} without {bug}: {}",
            correct.violations[0]
        );
        if buggy.has(conflicting) {
            hits += 1;
        }
        seed += 1;
    }
    assert!(hits > 0, "{bug}: no anomaly in {seed} random schedules");
    eprintln!("{bug}: conflicting decisions in {hits} of {seed} random schedules");
    (hits, seed)
}

#[test]
fn no_adopt_found_by_random_schedules() {
    search(BUG_NO_ADOPT, SimConfig::new, 30, 30);
}

#[test]
fn forget_promise_found_by_random_schedules() {
    search(
        BUG_FORGET_PROMISE,
        |seed| SimConfig {
            crash_every_ms: 100,
            max_down_ms: 100,
            partition_every_ms: 150,
            client_every_ms: 5,
            ..SimConfig::new(seed)
        },
        30,
        400,
    );
}
