//! Hand-scheduled 2PC scenarios: each test decides exactly which message is delivered when and
//! which node crashes, so that it reads as a specification of one protocol rule.
use std::collections::{BTreeMap, BTreeSet};
use targets::protocol::{ClientOp, ErrorCode, Key, MicroF, MicroOp, Response, Val};
use targets::sm::{Config, NodeId, Now, Out, ReadMode, StateMachine};
use targets::twopc::{
    members, owner_of, TwoPc, TwoPcMsg, TwoPcRecord, BUG_EARLY_UNLOCK, BUG_VOLATILE_PREPARE,
    QUERY_AFTER_MS, VOTE_TIMEOUT_MS,
};

struct Cluster {
    ids: Vec<NodeId>,
    configs: Vec<Config>,
    nodes: Vec<Option<TwoPc>>,
    logs: Vec<Vec<TwoPcRecord>>,
    /// Messages in flight, in send order: (from, to, msg).
    net: Vec<(usize, usize, TwoPcMsg)>,
    replies: BTreeMap<u64, Response>,
    now: u64,
}

fn now_of(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: 1_700_000_000_000 + ms,
    }
}

impl Cluster {
    fn new(bugs: &[&str]) -> Cluster {
        let ids: Vec<NodeId> = vec!["a".into(), "b".into(), "c".into()];
        let configs: Vec<Config> = ids
            .iter()
            .map(|id| Config {
                id: id.clone(),
                peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                bugs: bugs.iter().map(|b| b.to_string()).collect(),
                read_mode: ReadMode::Quorum,
                seed: 1,
            })
            .collect();
        let nodes = configs
            .iter()
            .map(|c| Some(TwoPc::recover(c.clone(), Vec::new(), now_of(0))))
            .collect();
        Cluster {
            logs: vec![Vec::new(); ids.len()],
            ids,
            configs,
            nodes,
            net: Vec::new(),
            replies: BTreeMap::new(),
            now: 0,
        }
    }

    fn idx(&self, id: &str) -> usize {
        self.ids.iter().position(|i| i == id).expect("node")
    }

    /// The first key at or above `from` owned by `node`.
    fn key_on(&self, node: &str, from: Key) -> Key {
        let m = members(&self.configs[0]);
        (from..)
            .find(|k| owner_of(&m, *k).map(String::as_str) == Some(node))
            .expect("some key")
    }

    fn perform(&mut self, node: usize, out: Out<TwoPcMsg, TwoPcRecord>) {
        if let Some(snapshot) = out.compact {
            self.logs[node] = snapshot;
        }
        self.logs[node].extend(out.persist);
        for (to, msg) in out.send {
            let to = self.idx(&to);
            self.net.push((node, to, msg));
        }
        for (token, resp) in out.reply {
            assert!(
                self.replies.insert(token, resp).is_none(),
                "token {token} answered twice"
            );
        }
    }

    fn request(&mut self, node: &str, token: u64, op: ClientOp) {
        let i = self.idx(node);
        let now = now_of(self.now);
        let mut out = Out::default();
        self.nodes[i]
            .as_mut()
            .expect("up")
            .on_request(now, token, op, &mut out);
        self.perform(i, out);
    }

    /// Delivers (or drops, for a crashed receiver) the first in-flight message matching `pred`.
    fn deliver_first(&mut self, pred: impl Fn(usize, usize, &TwoPcMsg) -> bool) -> bool {
        let Some(pos) = self.net.iter().position(|(f, t, m)| pred(*f, *t, m)) else {
            return false;
        };
        let (from, to, msg) = self.net.remove(pos);
        let now = now_of(self.now);
        if let Some(sm) = self.nodes[to].as_mut() {
            let mut out = Out::default();
            sm.on_message(now, self.ids[from].clone(), msg, &mut out);
            self.perform(to, out);
        }
        true
    }

    fn deliver_all(&mut self) {
        while self.deliver_first(|_, _, _| true) {}
    }

    /// Advances time to `ms` and ticks every live node.
    fn tick_at(&mut self, ms: u64) {
        self.now = ms;
        for i in 0..self.nodes.len() {
            if let Some(sm) = self.nodes[i].as_mut() {
                let mut out = Out::default();
                sm.on_tick(now_of(ms), &mut out);
                self.perform(i, out);
            }
        }
    }

    fn crash(&mut self, node: &str) {
        let i = self.idx(node);
        self.nodes[i] = None;
        self.net.retain(|(_, to, _)| *to != i);
    }

    fn restart(&mut self, node: &str) {
        let i = self.idx(node);
        self.nodes[i] = Some(TwoPc::recover(
            self.configs[i].clone(),
            self.logs[i].clone(),
            now_of(self.now),
        ));
    }

    fn node(&self, id: &str) -> &TwoPc {
        self.nodes[self.idx(id)].as_ref().expect("up")
    }

    fn reply(&self, token: u64) -> &Response {
        self.replies.get(&token).expect("a reply")
    }

    /// Runs a request to completion with every message delivered.
    fn run(&mut self, node: &str, token: u64, op: ClientOp) -> Response {
        self.request(node, token, op);
        self.deliver_all();
        self.reply(token).clone()
    }
}

fn m(f: MicroF, key: Key, value: Option<i64>) -> MicroOp {
    MicroOp {
        f,
        key,
        value: value.map(Val::Int),
    }
}

fn read_txn(keys: &[Key]) -> ClientOp {
    ClientOp::Txn {
        txn: keys.iter().map(|k| m(MicroF::Read, *k, None)).collect(),
    }
}

fn error_code(r: &Response) -> Option<(ErrorCode, bool)> {
    r.error.as_ref().map(|e| (e.code, e.definite))
}

fn is_prepare(m: &TwoPcMsg) -> bool {
    matches!(m, TwoPcMsg::Prepare { .. })
}

#[test]
fn single_key_operations_are_one_shard_transactions() {
    let mut c = Cluster::new(&[]);
    let k = c.key_on("b", 0);
    assert_eq!(c.run("a", 1, ClientOp::Read { key: k }).value, None);
    assert!(c.run("a", 2, ClientOp::Write { key: k, value: 5 }).ok);
    assert_eq!(
        c.run("c", 3, ClientOp::Read { key: k }).value,
        Some(Val::Int(5))
    );
    assert!(
        c.run(
            "b",
            4,
            ClientOp::Cas {
                key: k,
                from: 5,
                to: 6
            }
        )
        .ok
    );
    let mismatch = c.run(
        "a",
        5,
        ClientOp::Cas {
            key: k,
            from: 5,
            to: 7,
        },
    );
    assert_eq!(error_code(&mismatch), Some((ErrorCode::CasMismatch, true)));
    assert_eq!(c.node("b").shard_value(k), Some(&Val::Int(6)));
    let bad_append = c.run(
        "a",
        6,
        ClientOp::Txn {
            txn: vec![m(MicroF::Append, k, Some(1))],
        },
    );
    assert_eq!(
        error_code(&bad_append),
        Some((ErrorCode::TypeMismatch, true))
    );
    let status = c.node("b").status(now_of(42));
    assert_eq!(
        (
            status.role.as_str(),
            status.term,
            status.leader,
            status.time_ms
        ),
        ("participant", 0, None, 1_700_000_000_042)
    );
    assert_eq!(status.commit_index, 4, "b applied its four committed txns");
}

#[test]
fn multi_shard_txn_reads_its_own_appends_and_is_atomic() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("a", 0), c.key_on("c", 0));
    let txn = vec![
        m(MicroF::Append, x, Some(1)),
        m(MicroF::Append, y, Some(2)),
        m(MicroF::Read, x, None),
        m(MicroF::Read, y, None),
    ];
    let r = c.run("b", 1, ClientOp::Txn { txn });
    let done = r.txn.expect("txn reply");
    assert_eq!(done[2].value, Some(Val::List(vec![1])));
    assert_eq!(done[3].value, Some(Val::List(vec![2])));
    // A failing micro-op on one shard leaves the other shard untouched.
    let z = c.key_on("c", y + 1);
    c.run("a", 3, ClientOp::Write { key: z, value: 9 });
    let bad = vec![m(MicroF::Append, x, Some(3)), m(MicroF::Append, z, Some(4))];
    let r = c.run("b", 4, ClientOp::Txn { txn: bad });
    assert_eq!(error_code(&r), Some((ErrorCode::TypeMismatch, true)));
    assert_eq!(c.node("a").shard_value(x), Some(&Val::List(vec![1])));
    assert_eq!(c.node("a").locked_keys() + c.node("c").locked_keys(), 0);
}

#[test]
fn a_transfer_across_shards_commits_only_if_no_shard_goes_negative() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("a", 0), c.key_on("c", 0));
    let init = vec![m(MicroF::Write, x, Some(10)), m(MicroF::Write, y, Some(10))];
    assert!(c.run("b", 1, ClientOp::Txn { txn: init }).ok);
    let transfer = |amount: i64| ClientOp::Txn {
        txn: vec![
            m(MicroF::Add, x, Some(-amount)),
            m(MicroF::Add, y, Some(amount)),
        ],
    };
    let r = c.run("b", 2, transfer(4));
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.txn.unwrap()[0],
        m(MicroF::Add, x, Some(-4)),
        "adds are echoed as sent"
    );
    assert_eq!(c.node("a").shard_value(x), Some(&Val::Int(6)));
    assert_eq!(c.node("c").shard_value(y), Some(&Val::Int(14)));
    // x's shard votes no; y's shard, which voted yes, must not apply its credit.
    let r = c.run("b", 3, transfer(7));
    assert_eq!(error_code(&r), Some((ErrorCode::InsufficientFunds, true)));
    assert!(
        r.error
            .unwrap()
            .message
            .contains(&format!("key {x} would be -1")),
        "the refusal names the key"
    );
    assert_eq!(c.node("a").shard_value(x), Some(&Val::Int(6)));
    assert_eq!(c.node("c").shard_value(y), Some(&Val::Int(14)));
    assert_eq!(c.node("a").locked_keys() + c.node("c").locked_keys(), 0);
    // Reads see the integers that writes and adds left; a missing key reads as null.
    let z = c.key_on("b", 0);
    let r = c.run("b", 4, read_txn(&[x, y, z]));
    let values: Vec<Option<Val>> = r.txn.unwrap().into_iter().map(|m| m.value).collect();
    assert_eq!(values, vec![Some(Val::Int(6)), Some(Val::Int(14)), None]);
    // An add on a missing key starts from 0: crediting it works, debiting it does not.
    assert!(
        c.run(
            "b",
            5,
            ClientOp::Txn {
                txn: vec![m(MicroF::Add, z, Some(3))]
            }
        )
        .ok
    );
    let r = c.run(
        "b",
        6,
        ClientOp::Txn {
            txn: vec![m(MicroF::Add, z + 1000, Some(-1))],
        },
    );
    assert_eq!(error_code(&r), Some((ErrorCode::InsufficientFunds, true)));
    assert_eq!(c.node("b").shard_value(z), Some(&Val::Int(3)));
}

#[test]
fn lock_conflict_aborts_definitely_and_locks_last_until_the_decision() {
    let mut c = Cluster::new(&[]);
    let k = c.key_on("b", 0);
    // T1's prepare reaches b, its vote is held back: b keeps the exclusive lock.
    c.request("a", 1, ClientOp::Write { key: k, value: 1 });
    assert!(c.deliver_first(|_, _, m| is_prepare(m)));
    assert_eq!(c.node("b").in_doubt(), 1);
    // T2 conflicts: no-wait votes no, and the client learns it definitely did not happen.
    let r = c.run("c", 2, ClientOp::Read { key: k });
    assert_eq!(error_code(&r), Some((ErrorCode::Aborted, true)));
    c.deliver_all();
    assert!(c.reply(1).ok);
    assert_eq!(
        c.run("c", 3, ClientOp::Read { key: k }).value,
        Some(Val::Int(1))
    );
}

#[test]
fn coordinator_times_out_waiting_for_votes_with_a_definite_abort() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    let txn = vec![m(MicroF::Write, x, Some(1)), m(MicroF::Write, y, Some(2))];
    c.request("a", 1, ClientOp::Txn { txn });
    c.crash("c");
    c.deliver_all();
    c.tick_at(VOTE_TIMEOUT_MS);
    assert_eq!(error_code(c.reply(1)), Some((ErrorCode::Aborted, true)));
    c.deliver_all();
    assert_eq!(c.node("b").in_doubt(), 0, "the abort released b");
    assert_eq!(c.node("b").shard_value(x), None);
}

#[test]
fn restarted_coordinator_finishes_a_commit_it_decided() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    let txn = vec![m(MicroF::Write, x, Some(1)), m(MicroF::Write, y, Some(2))];
    c.request("a", 1, ClientOp::Txn { txn });
    c.deliver_first(|_, _, m| is_prepare(m));
    c.deliver_first(|_, _, m| is_prepare(m));
    c.deliver_first(|_, _, m| matches!(m, TwoPcMsg::Vote { .. }));
    c.deliver_first(|_, _, m| matches!(m, TwoPcMsg::Vote { .. }));
    assert!(c.reply(1).ok, "ok once the commit decision is durable");
    // The coordinator dies before its commit messages leave.
    c.net.clear();
    c.crash("a");
    c.tick_at(QUERY_AFTER_MS);
    assert_eq!(
        c.node("b").in_doubt(),
        1,
        "b stays in doubt, holding its lock"
    );
    c.deliver_all();
    c.restart("a");
    c.tick_at(QUERY_AFTER_MS + 1);
    c.deliver_all();
    assert_eq!(c.node("b").shard_value(x), Some(&Val::Int(1)));
    assert_eq!(c.node("c").shard_value(y), Some(&Val::Int(2)));
    assert_eq!(c.node("a").coordinating(), 0, "all acks in: the txn ended");
    assert!(c.logs[0]
        .iter()
        .any(|r| matches!(r, TwoPcRecord::Ended { .. })));
}

#[test]
fn in_doubt_participant_learns_presumed_abort_from_a_restarted_coordinator() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    let txn = vec![m(MicroF::Write, x, Some(1)), m(MicroF::Write, y, Some(2))];
    c.request("a", 1, ClientOp::Txn { txn });
    c.deliver_first(|_, _, m| is_prepare(m));
    c.crash("a");
    c.net.clear();
    c.restart("a");
    c.tick_at(QUERY_AFTER_MS);
    assert_eq!(c.node("b").in_doubt(), 1);
    assert!(c.node("b").locked_keys() > 0, "locks kept while in doubt");
    c.deliver_all();
    assert_eq!(c.node("b").in_doubt(), 0);
    assert_eq!(c.node("b").locked_keys(), 0);
    assert_eq!(c.node("b").shard_value(x), None);
    assert!(
        c.logs[0]
            .iter()
            .any(|r| matches!(r, TwoPcRecord::Decision { commit: false, .. })),
        "the presumed abort is logged"
    );
    // A new transaction from the restarted coordinator gets a fresh id and commits.
    let r = c.run("a", 2, ClientOp::Write { key: x, value: 3 });
    assert!(r.ok);
}

#[test]
fn participant_restart_keeps_its_prepare_and_applies_the_commit() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    scenario_participant_restart(&mut c, x, y);
    assert!(c.reply(1).ok);
    assert_eq!(c.node("b").shard_value(x), Some(&Val::List(vec![1])));
    assert_eq!(c.node("c").shard_value(y), Some(&Val::List(vec![2])));
}

#[test]
fn volatile_prepare_loses_a_committed_write_on_participant_restart() {
    let mut c = Cluster::new(&[BUG_VOLATILE_PREPARE]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    scenario_participant_restart(&mut c, x, y);
    assert!(c.reply(1).ok, "the coordinator reports commit");
    assert_eq!(c.node("c").shard_value(y), Some(&Val::List(vec![2])));
    assert_eq!(
        c.node("b").shard_value(x),
        None,
        "b forgot its prepare: half of a committed txn is lost"
    );
}

/// Txn 1 appends to `x` (on b) and `y` (on c); b votes yes and crashes before the decision.
fn scenario_participant_restart(c: &mut Cluster, x: Key, y: Key) {
    let txn = vec![m(MicroF::Append, x, Some(1)), m(MicroF::Append, y, Some(2))];
    c.request("a", 1, ClientOp::Txn { txn });
    c.deliver_all_but_decisions();
    c.crash("b");
    c.deliver_all();
    c.restart("b");
    c.tick_at(100);
    c.deliver_all();
}

impl Cluster {
    fn deliver_all_but_decisions(&mut self) {
        while self.deliver_first(|_, _, m| !matches!(m, TwoPcMsg::Decision { .. })) {}
    }
}

/// A bank over two accounts on different shards; the read txn's prepare reaches the first shard,
/// then a transfer runs, then the read reaches the second shard.
fn read_skew_scenario(bugs: &[&str]) -> (Response, Response) {
    let mut c = Cluster::new(bugs);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    let init = vec![m(MicroF::Write, x, Some(50)), m(MicroF::Write, y, Some(50))];
    assert!(c.run("a", 1, ClientOp::Txn { txn: init }).ok);
    c.request("a", 2, read_txn(&[x, y]));
    let b = c.idx("b");
    let cc = c.idx("c");
    assert!(c.deliver_first(|_, to, m| to == b && is_prepare(m)));
    let transfer = vec![m(MicroF::Write, x, Some(40)), m(MicroF::Write, y, Some(60))];
    c.request("a", 3, ClientOp::Txn { txn: transfer });
    // Everything except the read's prepare to c.
    let read_prepare_to_c = |from: usize, to: usize, msg: &TwoPcMsg| {
        from == 0 && to == cc && matches!(msg, TwoPcMsg::Prepare { txn, .. } if txn.seq == 2)
    };
    while c.deliver_first(|f, t, msg| !read_prepare_to_c(f, t, msg)) {}
    c.deliver_all();
    (c.reply(2).clone(), c.reply(3).clone())
}

fn total(r: &Response) -> i64 {
    r.txn
        .as_ref()
        .expect("txn")
        .iter()
        .map(|m| match m.value {
            Some(Val::Int(v)) => v,
            _ => 0,
        })
        .sum()
}

#[test]
fn early_unlock_lets_a_read_see_half_a_transfer() {
    let (read, transfer) = read_skew_scenario(&[BUG_EARLY_UNLOCK]);
    assert!(transfer.ok && read.ok);
    assert_ne!(total(&read), 100, "read skew: {read:?}");

    let (read, transfer) = read_skew_scenario(&[]);
    assert_eq!(
        error_code(&transfer),
        Some((ErrorCode::Aborted, true)),
        "the read's shared lock blocks the transfer"
    );
    assert_eq!(total(&read), 100);
}

#[test]
fn log_is_compacted_and_recovery_from_the_snapshot_keeps_the_data() {
    let mut c = Cluster::new(&[]);
    let k = c.key_on("b", 0);
    for i in 0..200 {
        let op = ClientOp::Txn {
            txn: vec![m(MicroF::Append, k, Some(i))],
        };
        assert!(c.run("a", i as u64 + 1, op).ok);
        c.tick_at(c.now + 1);
    }
    let lens: BTreeSet<usize> = c.logs.iter().map(Vec::len).collect();
    assert!(lens.iter().all(|l| *l < 100), "logs stay short: {lens:?}");
    assert!(matches!(c.logs[1][0], TwoPcRecord::Snapshot { .. }));
    c.crash("b");
    c.restart("b");
    let Some(Val::List(l)) = c.node("b").shard_value(k) else {
        panic!("list lost")
    };
    assert_eq!(l.len(), 200);
    assert_eq!(c.node("b").status(now_of(0)).commit_index, 200);
}

#[test]
fn a_duplicate_prepare_after_the_commit_was_forgotten_does_not_apply_twice() {
    let mut c = Cluster::new(&[]);
    let (x, y) = (c.key_on("b", 0), c.key_on("c", 0));
    let txn = vec![m(MicroF::Append, x, Some(1)), m(MicroF::Append, y, Some(2))];
    c.request("a", 1, ClientOp::Txn { txn });
    let prepares: Vec<(usize, usize, TwoPcMsg)> = c
        .net
        .iter()
        .filter(|(_, _, msg)| is_prepare(msg))
        .cloned()
        .collect();
    c.deliver_all();
    assert!(c.reply(1).ok);
    for i in [1, 2] {
        assert!(
            c.logs[i]
                .iter()
                .any(|r| matches!(r, TwoPcRecord::Forgotten { .. })),
            "participant {i} was told to forget the ended txn"
        );
    }
    // Late duplicates of the prepares prepare again; the coordinator, which ended the txn,
    // answers their votes with abort, and nothing is applied twice.
    c.net.extend(prepares);
    c.deliver_all();
    assert_eq!(c.node("b").shard_value(x), Some(&Val::List(vec![1])));
    assert_eq!(c.node("c").shard_value(y), Some(&Val::List(vec![2])));
    assert_eq!(c.node("b").in_doubt() + c.node("c").in_doubt(), 0);
    assert_eq!(c.node("b").locked_keys() + c.node("c").locked_keys(), 0);
}

#[test]
fn a_prepare_for_a_key_owned_elsewhere_is_refused_with_a_clear_vote() {
    let c = Cluster::new(&[]);
    let foreign = c.key_on("c", 0);
    let mut b = TwoPc::recover(c.configs[1].clone(), Vec::new(), now_of(0));
    let txn = targets::twopc::TxnId {
        coordinator: "a".into(),
        epoch: 1,
        seq: 1,
    };
    let mut out = Out::default();
    b.on_message(
        now_of(0),
        "a".into(),
        TwoPcMsg::Prepare {
            txn,
            ops: vec![(0, targets::twopc::ShardOp::Read { key: foreign })],
        },
        &mut out,
    );
    let [(to, TwoPcMsg::Vote { vote, .. })] = &out.send[..] else {
        panic!("expected one vote, got {:?}", out.send)
    };
    assert_eq!(to, "a");
    let targets::twopc::Vote::No { code, message } = vote else {
        panic!("voted yes for a foreign key")
    };
    assert_eq!(*code, ErrorCode::Aborted);
    assert!(message.contains("not owned by b"), "{message}");
    assert!(out.persist.is_empty());
}
