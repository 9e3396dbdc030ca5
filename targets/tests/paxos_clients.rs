//! What clients see from the Multi-Paxos state machine, and what survives a restart: scripted
//! three-node schedules.
mod paxos_sim;

use paxos_sim::script::Script;
use targets::paxos::{PaxosMsg, Record, Role, Tuning};
use targets::protocol::{ClientOp, ErrorCode, Response, Val};
use targets::sm::StateMachine;

fn write(key: u64, value: i64) -> ClientOp {
    ClientOp::Write { key, value }
}

fn error_of(r: &Response) -> (ErrorCode, bool, Option<String>) {
    let e = r.error.as_ref().expect("an error response");
    (e.code, e.definite, e.leader.clone())
}

#[test]
fn follower_forwards_to_the_leader_and_relays_the_reply() {
    let mut s = Script::new(&[]);
    s.elect(0, &[]);
    s.request(1, 10, write(1, 5));
    s.settle(&[]);
    assert!(s.replies[&10].ok, "{:?}", s.replies[&10]);
    s.request(2, 11, ClientOp::Read { key: 1 });
    s.settle(&[]);
    assert_eq!(s.replies[&11].value, Some(Val::Int(5)));
    for i in 0..3 {
        assert_eq!(s.node(i).kv().get(1), Some(&Val::Int(5)), "node {i}");
    }
}

#[test]
fn without_a_known_leader_requests_fail_definitely() {
    let mut s = Script::new(&[]);
    s.request(0, 1, write(1, 5));
    assert_eq!(error_of(&s.replies[&1]), (ErrorCode::NoLeader, true, None));
}

#[test]
fn reads_go_through_the_log() {
    let mut s = Script::new(&[]);
    s.elect(0, &[]);
    s.request(0, 1, write(3, 7));
    s.settle(&[]);
    let before = s.node(0).applied();
    s.request(0, 2, ClientOp::Read { key: 3 });
    assert!(
        !s.replies.contains_key(&2),
        "no answer before a majority accepted the read"
    );
    s.settle(&[]);
    assert_eq!(s.replies[&2].value, Some(Val::Int(7)));
    assert_eq!(s.node(0).applied(), before + 1, "the read took a slot");
}

#[test]
fn a_proposal_without_a_majority_times_out_indefinitely() {
    let mut s = Script::new(&[]);
    s.elect(0, &[]);
    s.request(0, 1, write(1, 5));
    s.drop_all();
    s.now += s.tuning.request_timeout_ms;
    s.tick(0);
    assert_eq!(error_of(&s.replies[&1]), (ErrorCode::Timeout, false, None));
}

/// A deposed leader: its proposed command may still be decided (indefinite), its queued one
/// never will be (definite, with a hint at the new leader).
#[test]
fn a_deposed_leader_answers_leadership_lost_and_not_leader() {
    let mut s = Script::with_tuning(
        &[],
        Tuning {
            max_inflight_slots: 1,
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 1_001,
            ..Tuning::default()
        },
    );
    s.elect(0, &[]);
    s.request(0, 1, write(1, 5));
    s.request(0, 2, write(1, 6));
    s.drop_all();
    s.elect(2, &[0]);
    s.now += s.tuning.heartbeat_ms;
    s.tick(2);
    s.deliver(2, 0, |m| matches!(m, PaxosMsg::Heartbeat { .. }));
    assert_eq!(s.role(0), Role::Follower);
    assert_eq!(
        error_of(&s.replies[&1]),
        (ErrorCode::LeadershipLost, false, None)
    );
    assert_eq!(
        error_of(&s.replies[&2]),
        (ErrorCode::NotLeader, true, Some("n3".to_string()))
    );
}

/// With one slot in flight at a time, commands arriving meanwhile share the next slot.
#[test]
fn queued_commands_are_batched_into_one_slot() {
    let mut s = Script::with_tuning(
        &[],
        Tuning {
            max_inflight_slots: 1,
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 1_001,
            ..Tuning::default()
        },
    );
    s.elect(0, &[]);
    for token in 1..=10 {
        s.request(0, token, write(token, token as i64));
    }
    s.settle(&[]);
    assert!((1..=10).all(|t| s.replies[&t].ok));
    let sizes: Vec<usize> = s.decided(0).values().map(|v| v.commands.len()).collect();
    assert_eq!(sizes, vec![1, 9]);
}

#[test]
fn restarted_nodes_recover_ballot_accepted_and_decided_state() {
    let mut s = Script::new(&[]);
    s.elect(0, &[]);
    for token in 1..=5 {
        s.request(0, token, write(1, token as i64));
        s.settle(&[]);
    }
    // Accepted by n2 but not decided anywhere: must survive n2's restart and be adopted.
    s.request(0, 6, write(2, 60));
    s.deliver(0, 1, |m| matches!(m, PaxosMsg::Accept { .. }));
    s.drop_all();
    let before: Vec<_> = (0..3)
        .map(|i| {
            (
                s.node(i).applied(),
                s.node(i).kv().clone(),
                s.node(i).promised().clone(),
            )
        })
        .collect();
    for (i, expected) in before.iter().enumerate() {
        s.crash_and_restart(i);
        let n = s.node(i);
        assert_eq!(
            &(n.applied(), n.kv().clone(), n.promised().clone()),
            expected,
            "node {i}"
        );
    }
    // n3 has seen none of slot 6: only n2's promise can tell it about write 60.
    s.elect(2, &[0]);
    s.settle(&[0]);
    assert_eq!(s.node(2).kv().get(2), Some(&Val::Int(60)));
    assert_eq!(s.node(2).kv().get(1), Some(&Val::Int(5)));
}

#[test]
fn compaction_bounds_the_log_and_a_snapshot_catches_up_a_lagging_node() {
    let mut s = Script::with_tuning(
        &[],
        Tuning {
            compact_every: 4,
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 1_001,
            ..Tuning::default()
        },
    );
    s.elect(0, &[2]);
    for token in 1..=30 {
        s.request(0, token, write(token % 3, token as i64));
        s.settle(&[2]);
    }
    assert_eq!(s.node(0).applied(), 30);
    assert!(
        matches!(s.logs[0].first(), Some(Record::Snapshot { slot, .. }) if *slot >= 28),
        "log starts with a recent snapshot"
    );
    assert!(
        s.logs[0].len() < 20,
        "log bounded: {} records",
        s.logs[0].len()
    );

    // n3 missed everything; the leader's heartbeat tells it how far behind it is.
    s.tick(0);
    s.now += s.tuning.heartbeat_ms;
    s.tick(0);
    s.settle(&[]);
    assert_eq!(s.node(2).applied(), 30);
    assert_eq!(s.node(2).kv(), s.node(0).kv());

    // A restart from the compacted log restores the same store.
    let kv = s.node(0).kv().clone();
    s.crash_and_restart(0);
    assert_eq!(s.node(0).kv(), &kv);
    assert_eq!(s.node(0).applied(), 30);
}

#[test]
fn status_reports_role_ballot_leader_time_and_commit_index() {
    let mut s = Script::new(&[]);
    s.elect(0, &[]);
    s.request(1, 1, write(1, 1));
    s.settle(&[]);
    let now = s.now();
    let leader = s.node(0).status(now);
    assert_eq!(
        (leader.role.as_str(), leader.term, leader.leader.as_deref()),
        ("leader", 1, Some("n1"))
    );
    assert_eq!((leader.time_ms, leader.commit_index), (now.wall_ms, 1));
    assert_eq!(leader.protocol, "multi-paxos");
    let follower = s.node(1).status(now);
    assert_eq!(
        (follower.role.as_str(), follower.leader.as_deref()),
        ("follower", Some("n1"))
    );
    assert_eq!(follower.commit_index, 1);
}

/// Peer messages and log records are JSON lines; keep their shape stable across versions.
#[test]
fn wire_and_log_format() {
    use targets::paxos::{Ballot, Command, CommandId, Value};
    let ballot = Ballot {
        round: 3,
        node: "n2".to_string(),
    };
    let prepare = PaxosMsg::Prepare {
        ballot: ballot.clone(),
        from: 7,
    };
    assert_eq!(
        serde_json::to_string(&prepare).unwrap(),
        r#"{"prepare":{"ballot":{"round":3,"node":"n2"},"from":7}}"#
    );
    let record = Record::Accept {
        slot: 7,
        ballot,
        value: Value {
            commands: vec![Command {
                id: CommandId {
                    node: "n2".to_string(),
                    incarnation: 1,
                    seq: 4,
                },
                op: write(1, 5),
            }],
        },
    };
    let line = serde_json::to_string(&record).unwrap();
    assert_eq!(
        line,
        r#"{"accept":{"slot":7,"ballot":{"round":3,"node":"n2"},"value":{"commands":[{"id":{"node":"n2","incarnation":1,"seq":4},"op":{"op":"write","key":1,"value":5}}]}}}"#
    );
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
}
