//! Multi-Paxos replicated key-value store as a deterministic state machine.
//!
//! Every node is acceptor, learner and (potential) proposer. The replicated log is a sequence of
//! slots, numbered from 1; each slot is decided by single-decree Paxos and holds a [`Value`]: a
//! batch of client [`Command`]s (an empty batch is a no-op). Decided slots are applied in order to
//! a [`KvStore`].
//!
//! - **Ballots** are `(round, node)` pairs, totally ordered by round and then node id, so two
//!   proposers never share a ballot.
//! - **Phase 1 once per leadership.** A follower whose randomised (seeded) election timeout expires
//!   without hearing from a leader becomes a candidate with a higher ballot and sends `Prepare`
//!   covering every slot from its first unapplied one onwards. Acceptors persist the promise
//!   before answering and report what they accepted. With promises from a majority the candidate
//!   becomes leader: for each reported slot it re-proposes the value accepted with the highest
//!   ballot (or a value it already knows decided), and fills gaps with no-ops. Afterwards every
//!   new slot needs only phase 2. Slots a promiser has already compacted into a snapshot are
//!   decided: the leader skips them and catches up from that promiser (if it cannot within two
//!   election timeouts, it starts a new phase 1). A leader that has not heard from a majority for
//!   an election timeout steps down, so its clients get prompt errors instead of timeouts.
//! - **Phase 2.** The leader accepts locally and sends `Accept` (many slots per message). Acceptors
//!   persist the accepted value before answering `Accepted`. A majority decides the slot; the
//!   leader broadcasts `Decide` with the values, and heartbeats carry its commit index so that a
//!   replica which missed a `Decide` (or was down) asks for the missing slots with `CatchUp` and
//!   receives either the decided entries or, once they were compacted away, a snapshot.
//! - **Throughput.** At most [`Tuning::max_inflight_slots`] slots are undecided at once; client
//!   commands arriving meanwhile queue up and go into the next slot together (up to
//!   [`Tuning::max_batch`] commands per slot).
//! - **Clients.** A client is answered only after its command is decided *and applied* on the
//!   node that proposed it. A non-leader forwards requests to the leader it knows (naming the
//!   ballot it believes that node leads; the receiver proposes only if it still leads exactly that
//!   ballot) and relays the answer, or answers a definite `no-leader` when it knows none. A proposed command with no
//!   outcome after [`Tuning::request_timeout_ms`] gets an indefinite `timeout`; a leader that steps
//!   down answers its proposed commands with an indefinite `leadership-lost` and its queued,
//!   never-proposed ones with a definite `not-leader`.
//! - **Linearizable reads go through the log**: a read is an ordinary command, decided in a slot
//!   and answered when applied. It costs a round trip to a majority but needs no clock
//!   assumptions and cannot be served by a deposed leader.
//! - **Durability and a bounded log.** Promises, accepted values, decided values and snapshots
//!   are [`Record`]s; the runtime makes them durable before sending anything from the same step.
//!   Every [`Tuning::compact_every`] applied slots the node replaces its log with a snapshot of the
//!   store plus its still-relevant promise, accepted and decided state.
//!
//! Client responses carry `id: 0`: requests reach the state machine as a [`ClientToken`] and the
//! runtime puts the request id belonging to the token into the response.
//!
//! Known bugs, switched on with `--bug` (see `BUGS.md`): `forget-promise` (promises are not made
//! durable) and `no-adopt` (a new leader ignores values accepted under earlier ballots).
use crate::kv::KvStore;
use crate::protocol::{ClientOp, ErrorCode, ErrorReply, NodeStatus, Response};
use crate::sm::{ClientToken, Config, NodeId, Now, Out, StateMachine};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The names of the bugs this implementation can switch on.
pub const BUGS: &[&str] = &[BUG_FORGET_PROMISE, BUG_NO_ADOPT];
/// Promises are not persisted: a restarted acceptor forgets them.
pub const BUG_FORGET_PROMISE: &str = "forget-promise";
/// A new leader proposes no-ops instead of adopting values accepted under earlier ballots.
pub const BUG_NO_ADOPT: &str = "no-adopt";

/// A log position; the first slot is 1, 0 means "none".
pub type Slot = u64;

/// A proposal number. Ordered by round, then by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

/// Identifies a client command: the node that received it, that node's incarnation (its wall
/// clock at start-up, so ids never repeat across restarts) and a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommandId {
    pub node: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: CommandId,
    pub op: ClientOp,
}

/// What one slot holds: a batch of commands applied in order. Empty means no-op.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub commands: Vec<Command>,
}

impl Value {
    pub fn is_noop(&self) -> bool {
        self.commands.is_empty()
    }
}

/// A value an acceptor accepted for a slot, as reported in a promise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedEntry {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: Value,
}

/// Identifies a forwarded request on the node that forwarded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForwardId {
    pub incarnation: u64,
    pub seq: u64,
}

/// Messages between Paxos nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaxosMsg {
    /// Phase 1a: promise not to accept ballots below `ballot`, for every slot from `from` on.
    Prepare {
        ballot: Ballot,
        from: Slot,
    },
    /// Phase 1b. `compacted`: the sender's snapshot slot (everything up to it is decided);
    /// `commit`: its highest applied slot.
    Promise {
        ballot: Ballot,
        accepted: Vec<AcceptedEntry>,
        compacted: Slot,
        commit: Slot,
    },
    /// Phase 2a, for several slots.
    Accept {
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
    },
    /// Phase 2b.
    Accepted {
        ballot: Ballot,
        slots: Vec<Slot>,
    },
    /// The receiver has promised `promised`, which is higher than the sender's `ballot`.
    Nack {
        ballot: Ballot,
        promised: Ballot,
    },
    /// Slots the leader learned to be decided.
    Decide {
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
    },
    /// Leader liveness; `commit` is the leader's highest applied slot.
    Heartbeat {
        ballot: Ballot,
        commit: Slot,
    },
    /// `commit`: the follower's highest applied slot, so that a leader that is behind (its
    /// followers compacted slots it still proposes) catches up.
    HeartbeatAck {
        ballot: Ballot,
        commit: Slot,
    },
    /// Send me the decided slots from `from` on.
    CatchUp {
        from: Slot,
    },
    /// Decided entries, or a snapshot (`slot`, store) when the asked-for entries are compacted.
    CatchUpReply {
        snapshot: Option<(Slot, KvStore)>,
        entries: Vec<(Slot, Value)>,
        commit: Slot,
    },
    /// A client request relayed to the node believed to lead `ballot`. Proposed only if the
    /// receiver leads exactly that ballot: a delayed or duplicated copy that reaches the node
    /// after it answered `not-leader` (and perhaps restarted and won a newer ballot) is refused.
    Forward {
        fid: ForwardId,
        ballot: Ballot,
        op: ClientOp,
    },
    ForwardReply {
        fid: ForwardId,
        response: Response,
    },
}

/// Write-ahead log records. Replayed in order on recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    Promise {
        ballot: Ballot,
    },
    Accept {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
    Decide {
        slot: Slot,
        value: Value,
    },
    /// The store after applying every slot up to `slot`. Always first in a compacted log.
    Snapshot {
        slot: Slot,
        kv: KvStore,
    },
}

/// Timing and sizing knobs. The defaults suit a LAN cluster with a runtime ticking every few ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    pub heartbeat_ms: u64,
    /// Election timeouts are drawn uniformly from `[min, max)`.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Resend unanswered `Prepare`/`Accept`/`CatchUp` after this long.
    pub retry_ms: u64,
    /// A command without outcome this long after it arrived gets an error.
    pub request_timeout_ms: u64,
    pub max_inflight_slots: usize,
    pub max_batch: usize,
    /// Snapshot and truncate the log every this many applied slots.
    pub compact_every: u64,
    pub catchup_max_entries: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            heartbeat_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            retry_ms: 100,
            request_timeout_ms: 1500,
            max_inflight_slots: 32,
            max_batch: 64,
            compact_every: 1000,
            catchup_max_entries: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// Who is waiting for a command's result.
#[derive(Debug, Clone)]
enum Origin {
    Client(ClientToken),
    Forwarded { node: NodeId, fid: ForwardId },
}

#[derive(Debug)]
struct Pending {
    origin: Origin,
    deadline: u64,
    proposed: bool,
}

#[derive(Debug)]
struct PromiseInfo {
    accepted: Vec<AcceptedEntry>,
    compacted: Slot,
    commit: Slot,
}

#[derive(Debug)]
struct Candidacy {
    from: Slot,
    promises: BTreeMap<NodeId, PromiseInfo>,
    last_sent: u64,
}

#[derive(Debug)]
struct Proposal {
    value: Value,
    acks: BTreeSet<NodeId>,
    last_sent: u64,
}

type PaxosOut = Out<PaxosMsg, Record>;

/// One Multi-Paxos node.
#[derive(Debug)]
pub struct Paxos {
    cfg: Config,
    tuning: Tuning,
    rng: StdRng,
    incarnation: u64,
    next_seq: u64,
    majority: usize,

    // Acceptor.
    promised: Ballot,
    accepted: BTreeMap<Slot, (Ballot, Value)>,

    // Learner.
    /// Decided slots above `snapshot_slot` (applied ones are kept to serve catch-up).
    decided: BTreeMap<Slot, Value>,
    applied: Slot,
    snapshot_slot: Slot,
    kv: KvStore,
    /// The highest commit index each peer told us about: whom we can catch up from.
    peer_commits: BTreeMap<NodeId, Slot>,
    /// When we last asked to catch up, at which applied slot, and whom.
    last_catchup: Option<u64>,
    catchup_applied: Slot,
    catchup_target: Option<NodeId>,

    // Proposer.
    role: Role,
    /// This node's own ballot while candidate or leader.
    ballot: Ballot,
    max_round_seen: u64,
    /// The promised round found in the log at start-up: ballots of ours up to it were led by an
    /// earlier incarnation.
    recovered_round: u64,
    /// The ballot of the leader this node believes in (its own while leading).
    known_leader: Option<Ballot>,
    election_deadline: u64,
    candidacy: Option<Candidacy>,
    proposals: BTreeMap<Slot, Proposal>,
    next_slot: Slot,
    queue: VecDeque<Command>,
    pending: BTreeMap<u64, Pending>,
    forwards: BTreeMap<ForwardId, (ClientToken, u64)>,
    /// Forwarded requests received recently, to drop duplicates.
    forwards_seen: BTreeMap<(NodeId, ForwardId), u64>,
    last_heartbeat: u64,
    leader_since: u64,
    /// Slots up to here were compacted by a promiser when this node won; it must learn them by
    /// catching up.
    gap_floor: Slot,
    /// Records in the log, and how many the last compaction wrote: bounds the log even when
    /// nothing is applied.
    logged: usize,
    compacted_len: usize,
    peer_last_heard: BTreeMap<NodeId, u64>,
}

impl StateMachine for Paxos {
    type Msg = PaxosMsg;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>, now: Now) -> Self {
        Paxos::recover_with(config, Tuning::default(), records, now)
    }

    fn on_tick(&mut self, now: Now, out: &mut PaxosOut) {
        let t = now.mono_ms;
        self.expire_requests(t, out);
        match self.role {
            Role::Follower => {
                if t >= self.election_deadline {
                    self.start_candidacy(t, out);
                }
            }
            Role::Candidate => {
                if t >= self.election_deadline {
                    self.start_candidacy(t, out);
                } else {
                    self.resend_prepare(t, out);
                }
            }
            Role::Leader => self.leader_tick(t, out),
        }
        self.maybe_catch_up(t, out);
        // Elections or a gap below unapplied slots can grow the log without applying anything.
        let slack = 4 * self.tuning.compact_every as usize + 64;
        if self.logged > 2 * self.compacted_len + slack {
            self.compact(out);
        }
    }

    fn on_message(&mut self, now: Now, from: NodeId, msg: PaxosMsg, out: &mut PaxosOut) {
        let t = now.mono_ms;
        if from == self.cfg.id || !self.cfg.peers.contains(&from) {
            tracing::warn!(node = %self.cfg.id, %from, "message from a non-member ignored");
            return;
        }
        match msg {
            PaxosMsg::Prepare { ballot, from: slot } => self.on_prepare(t, from, ballot, slot, out),
            PaxosMsg::Promise {
                ballot,
                accepted,
                compacted,
                commit,
            } => {
                let info = PromiseInfo {
                    accepted,
                    compacted,
                    commit,
                };
                self.on_promise(t, from, ballot, info, out)
            }
            PaxosMsg::Accept { ballot, entries } => self.on_accept(t, from, ballot, entries, out),
            PaxosMsg::Accepted { ballot, slots } => self.on_accepted(t, from, ballot, slots, out),
            PaxosMsg::Nack { ballot, promised } => self.on_nack(t, ballot, promised, out),
            PaxosMsg::Decide { ballot, entries } => {
                self.hear_leader(t, &ballot, out);
                for (slot, value) in entries {
                    self.learn(slot, value, out);
                }
                self.apply_ready(out);
            }
            PaxosMsg::Heartbeat { ballot, commit } => {
                if ballot < self.promised {
                    out.send.push((
                        from,
                        PaxosMsg::Nack {
                            ballot,
                            promised: self.promised.clone(),
                        },
                    ));
                    return;
                }
                self.hear_leader(t, &ballot, out);
                self.note_commit(&from, commit);
                out.send.push((
                    from,
                    PaxosMsg::HeartbeatAck {
                        ballot,
                        commit: self.applied,
                    },
                ));
                self.maybe_catch_up(t, out);
            }
            PaxosMsg::HeartbeatAck { ballot, commit } => {
                if self.role == Role::Leader && ballot == self.ballot {
                    self.peer_last_heard.insert(from.clone(), t);
                    self.note_commit(&from, commit);
                    self.maybe_catch_up(t, out);
                }
            }
            PaxosMsg::CatchUp { from: slot } => self.on_catch_up(from, slot, out),
            PaxosMsg::CatchUpReply {
                snapshot,
                entries,
                commit,
            } => self.on_catch_up_reply(t, from, snapshot, entries, commit, out),
            PaxosMsg::Forward { fid, ballot, op } => {
                // A duplicated forward must not be proposed twice, nor proposed after its first
                // copy was answered with a definite `not-leader`.
                if self.forwards_seen.insert((from.clone(), fid), t).is_some() {
                    return;
                }
                if self.role == Role::Leader && ballot == self.ballot {
                    self.enqueue(t, Origin::Forwarded { node: from, fid }, op, out);
                    return;
                }
                let response = if ballot.node == self.cfg.id && ballot.round <= self.recovered_round
                {
                    // Addressed to a leadership of ours from before a restart, which forgot the
                    // forwards it saw: another copy may have been proposed then.
                    error_response(
                        ErrorCode::LeadershipLost,
                        false,
                        format!("{} restarted after leading {ballot:?}", self.cfg.id),
                        None,
                    )
                } else {
                    self.not_leader_response()
                };
                out.send
                    .push((from, PaxosMsg::ForwardReply { fid, response }));
            }
            PaxosMsg::ForwardReply { fid, response } => {
                if let Some((token, _)) = self.forwards.remove(&fid) {
                    out.reply.push((token, response));
                }
            }
        }
    }

    fn on_request(&mut self, now: Now, token: ClientToken, op: ClientOp, out: &mut PaxosOut) {
        let t = now.mono_ms;
        if let ClientOp::Status = op {
            out.reply
                .push((token, Response::status(0, self.status(now))));
            return;
        }
        match (self.role, self.known_leader.clone()) {
            (Role::Leader, _) => self.enqueue(t, Origin::Client(token), op, out),
            (_, Some(leader)) if leader.node != self.cfg.id => {
                let fid = ForwardId {
                    incarnation: self.incarnation,
                    seq: self.take_seq(),
                };
                // The leader answers within its own request timeout; allow for the round trips.
                let deadline = t + self.tuning.request_timeout_ms + 2 * self.tuning.retry_ms;
                self.forwards.insert(fid, (token, deadline));
                out.send.push((
                    leader.node.clone(),
                    PaxosMsg::Forward {
                        fid,
                        ballot: leader,
                        op,
                    },
                ));
            }
            _ => out.reply.push((token, self.not_leader_response())),
        }
    }

    fn status(&self, now: Now) -> NodeStatus {
        NodeStatus {
            node: self.cfg.id.clone(),
            role: self.role.as_str().to_string(),
            term: self.promised.round,
            leader: self.known_leader.as_ref().map(|b| b.node.clone()),
            time_ms: now.wall_ms,
            commit_index: self.applied,
            protocol: "multi-paxos".to_string(),
        }
    }
}

impl Paxos {
    /// Like [`StateMachine::recover`] with explicit tuning.
    pub fn recover_with(config: Config, tuning: Tuning, records: Vec<Record>, now: Now) -> Self {
        let seed = config.seed ^ fnv1a(config.id.as_bytes()) ^ now.wall_ms.rotate_left(17);
        let members = config.peers.len() + 1;
        let majority = members / 2 + 1;
        let mut node = Paxos {
            cfg: config,
            tuning,
            rng: StdRng::seed_from_u64(seed),
            incarnation: now.wall_ms,
            next_seq: 0,
            majority,
            promised: Ballot::default(),
            accepted: BTreeMap::new(),
            decided: BTreeMap::new(),
            applied: 0,
            snapshot_slot: 0,
            kv: KvStore::default(),
            peer_commits: BTreeMap::new(),
            last_catchup: None,
            catchup_applied: 0,
            catchup_target: None,
            role: Role::Follower,
            ballot: Ballot::default(),
            max_round_seen: 0,
            recovered_round: 0,
            known_leader: None,
            election_deadline: 0,
            candidacy: None,
            proposals: BTreeMap::new(),
            next_slot: 1,
            queue: VecDeque::new(),
            pending: BTreeMap::new(),
            forwards: BTreeMap::new(),
            forwards_seen: BTreeMap::new(),
            last_heartbeat: 0,
            leader_since: 0,
            gap_floor: 0,
            logged: 0,
            compacted_len: 0,
            peer_last_heard: BTreeMap::new(),
        };
        node.logged = records.len();
        for record in records {
            node.replay(record);
        }
        node.max_round_seen = node.promised.round;
        node.recovered_round = node.promised.round;
        // Recovery re-applies decided slots; nobody waits for their replies.
        let mut discard = PaxosOut::default();
        node.apply_ready(&mut discard);
        node.next_slot = node.applied + 1;
        node.election_deadline = now.mono_ms + node.election_timeout();
        node
    }

    fn replay(&mut self, record: Record) {
        match record {
            Record::Promise { ballot } => self.promised = self.promised.clone().max(ballot),
            Record::Accept {
                slot,
                ballot,
                value,
            } => {
                if ballot > self.promised {
                    self.promised = ballot.clone();
                }
                if slot > self.snapshot_slot {
                    self.accepted.insert(slot, (ballot, value));
                }
            }
            Record::Decide { slot, value } => {
                if slot > self.snapshot_slot {
                    self.decided.entry(slot).or_insert(value);
                }
            }
            Record::Snapshot { slot, kv } => {
                if slot >= self.snapshot_slot {
                    self.snapshot_slot = slot;
                    self.applied = slot;
                    self.kv = kv;
                    self.accepted.retain(|s, _| *s > slot);
                    self.decided.retain(|s, _| *s > slot);
                }
            }
        }
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The ballot this node leads or campaigns with (meaningful when not a follower).
    pub fn ballot(&self) -> &Ballot {
        &self.ballot
    }

    /// The highest ballot this acceptor has promised.
    pub fn promised(&self) -> &Ballot {
        &self.promised
    }

    /// The highest applied slot.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn election_timeout(&mut self) -> u64 {
        let (lo, hi) = (
            self.tuning.election_timeout_min_ms,
            self.tuning
                .election_timeout_max_ms
                .max(self.tuning.election_timeout_min_ms + 1),
        );
        self.rng.random_range(lo..hi)
    }

    fn persist_promise(&mut self, out: &mut PaxosOut) {
        if !self.cfg.has_bug(BUG_FORGET_PROMISE) {
            self.logged += 1;
            out.persist.push(Record::Promise {
                ballot: self.promised.clone(),
            });
        }
    }

    fn not_leader_response(&self) -> Response {
        let leader = self
            .known_leader
            .as_ref()
            .map(|b| b.node.clone())
            .filter(|l| *l != self.cfg.id);
        let (code, message) = match &leader {
            Some(l) => (
                ErrorCode::NotLeader,
                format!("{} is not the leader; try {l}", self.cfg.id),
            ),
            None => (
                ErrorCode::NoLeader,
                format!("{} knows no leader", self.cfg.id),
            ),
        };
        error_response(code, true, message, leader)
    }

    fn reply(&self, origin: Origin, response: Response, out: &mut PaxosOut) {
        match origin {
            Origin::Client(token) => out.reply.push((token, response)),
            Origin::Forwarded { node, fid } => out
                .send
                .push((node, PaxosMsg::ForwardReply { fid, response })),
        }
    }

    // ---- Proposer: elections ----

    fn start_candidacy(&mut self, t: u64, out: &mut PaxosOut) {
        let round = self.max_round_seen.max(self.promised.round) + 1;
        self.max_round_seen = round;
        self.ballot = Ballot {
            round,
            node: self.cfg.id.clone(),
        };
        self.role = Role::Candidate;
        self.known_leader = None;
        self.promised = self.ballot.clone();
        self.persist_promise(out);
        let from = self.applied + 1;
        let mut promises = BTreeMap::new();
        promises.insert(self.cfg.id.clone(), self.promise_info(from));
        self.candidacy = Some(Candidacy {
            from,
            promises,
            last_sent: t,
        });
        self.election_deadline = t + self.election_timeout();
        for peer in &self.cfg.peers {
            out.send.push((
                peer.clone(),
                PaxosMsg::Prepare {
                    ballot: self.ballot.clone(),
                    from,
                },
            ));
        }
        self.maybe_become_leader(t, out);
    }

    fn resend_prepare(&mut self, t: u64, out: &mut PaxosOut) {
        let Some(c) = &mut self.candidacy else { return };
        if t < c.last_sent + self.tuning.retry_ms {
            return;
        }
        c.last_sent = t;
        for peer in &self.cfg.peers {
            if !c.promises.contains_key(peer) {
                out.send.push((
                    peer.clone(),
                    PaxosMsg::Prepare {
                        ballot: self.ballot.clone(),
                        from: c.from,
                    },
                ));
            }
        }
    }

    fn promise_info(&self, from: Slot) -> PromiseInfo {
        PromiseInfo {
            accepted: self
                .accepted
                .range(from..)
                .map(|(slot, (ballot, value))| AcceptedEntry {
                    slot: *slot,
                    ballot: ballot.clone(),
                    value: value.clone(),
                })
                .collect(),
            compacted: self.snapshot_slot,
            commit: self.applied,
        }
    }

    fn on_prepare(&mut self, t: u64, from: NodeId, ballot: Ballot, slot: Slot, out: &mut PaxosOut) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot < self.promised {
            out.send.push((
                from,
                PaxosMsg::Nack {
                    ballot,
                    promised: self.promised.clone(),
                },
            ));
            return;
        }
        if ballot > self.promised {
            self.promised = ballot.clone();
            self.persist_promise(out);
            if self.role != Role::Follower {
                self.step_down(t, out);
            }
            self.known_leader = None;
            self.election_deadline = t + self.election_timeout();
        }
        let info = self.promise_info(slot);
        out.send.push((
            from,
            PaxosMsg::Promise {
                ballot,
                accepted: info.accepted,
                compacted: info.compacted,
                commit: info.commit,
            },
        ));
    }

    fn on_promise(
        &mut self,
        t: u64,
        from: NodeId,
        ballot: Ballot,
        info: PromiseInfo,
        out: &mut PaxosOut,
    ) {
        if self.role != Role::Candidate || ballot != self.ballot {
            return;
        }
        self.note_commit(&from, info.commit);
        if let Some(c) = &mut self.candidacy {
            c.promises.insert(from, info);
        }
        self.maybe_become_leader(t, out);
    }

    fn maybe_become_leader(&mut self, t: u64, out: &mut PaxosOut) {
        let Some(c) = &self.candidacy else { return };
        if c.promises.len() < self.majority {
            return;
        }
        let c = self.candidacy.take().expect("checked above");
        self.role = Role::Leader;
        self.known_leader = Some(self.ballot.clone());
        self.leader_since = t;
        self.peer_last_heard.clear();
        for peer in c.promises.keys() {
            self.peer_last_heard.insert(peer.clone(), t);
        }
        tracing::info!(node = %self.cfg.id, ballot = ?self.ballot, "elected leader");

        // Slots up to any promiser's snapshot are decided already: learn them, don't propose.
        let compacted = c.promises.values().map(|p| p.compacted).max().unwrap_or(0);
        let lo = c.from.max(compacted + 1);
        self.gap_floor = compacted;
        let mut adopted: BTreeMap<Slot, (Ballot, Value)> = BTreeMap::new();
        for entry in c.promises.values().flat_map(|p| &p.accepted) {
            if entry.slot < lo {
                continue;
            }
            let better = adopted
                .get(&entry.slot)
                .is_none_or(|(b, _)| entry.ballot > *b);
            if better {
                adopted.insert(entry.slot, (entry.ballot.clone(), entry.value.clone()));
            }
        }
        let highest = [
            lo - 1,
            adopted.keys().next_back().copied().unwrap_or(0),
            self.decided.keys().next_back().copied().unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let no_adopt = self.cfg.has_bug(BUG_NO_ADOPT);
        let mut batch = Vec::new();
        for slot in lo..=highest {
            let value = match (self.decided.get(&slot), adopted.remove(&slot)) {
                (Some(known), _) => known.clone(),
                (None, Some((_, value))) if !no_adopt => value,
                _ => Value::default(),
            };
            batch.push((slot, value));
        }
        self.next_slot = highest + 1;
        self.propose(t, batch, out);
        self.send_heartbeats(t, out);
        self.propose_queued(t, out);
        self.maybe_catch_up(t, out);
    }

    /// Leaves the candidate or leader role. Commands that were proposed may still be decided
    /// (indefinite); queued ones never will be (definite).
    fn step_down(&mut self, t: u64, out: &mut PaxosOut) {
        if self.role == Role::Leader {
            tracing::info!(node = %self.cfg.id, ballot = ?self.ballot, "stepping down");
        }
        self.role = Role::Follower;
        self.candidacy = None;
        self.proposals.clear();
        self.queue.clear();
        let pending = std::mem::take(&mut self.pending);
        for (_, p) in pending {
            let response = if p.proposed {
                error_response(
                    ErrorCode::LeadershipLost,
                    false,
                    format!("{} lost leadership after proposing", self.cfg.id),
                    None,
                )
            } else {
                self.not_leader_response()
            };
            self.reply(p.origin, response, out);
        }
        self.election_deadline = t + self.election_timeout();
    }

    /// Any message carrying `ballot` from the node leading it.
    fn hear_leader(&mut self, t: u64, ballot: &Ballot, out: &mut PaxosOut) {
        if *ballot < self.promised {
            return;
        }
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if self.role != Role::Follower && *ballot > self.ballot {
            // Known first, so that queued commands are refused with a hint at the new leader.
            self.known_leader = Some(ballot.clone());
            self.step_down(t, out);
        }
        if self.role == Role::Follower {
            self.known_leader = Some(ballot.clone());
            self.election_deadline = t + self.election_timeout();
        }
    }

    fn on_nack(&mut self, t: u64, ballot: Ballot, promised: Ballot, out: &mut PaxosOut) {
        self.max_round_seen = self.max_round_seen.max(promised.round);
        if self.role != Role::Follower && ballot == self.ballot && promised > self.ballot {
            self.step_down(t, out);
            self.known_leader = None;
        }
    }

    // ---- Proposer: phase 2 ----

    fn enqueue(&mut self, t: u64, origin: Origin, op: ClientOp, out: &mut PaxosOut) {
        let seq = self.take_seq();
        let id = CommandId {
            node: self.cfg.id.clone(),
            incarnation: self.incarnation,
            seq,
        };
        self.pending.insert(
            seq,
            Pending {
                origin,
                deadline: t + self.tuning.request_timeout_ms,
                proposed: false,
            },
        );
        self.queue.push_back(Command { id, op });
        self.propose_queued(t, out);
    }

    fn propose_queued(&mut self, t: u64, out: &mut PaxosOut) {
        if self.role != Role::Leader {
            return;
        }
        let mut batch = Vec::new();
        while !self.queue.is_empty()
            && self.proposals.len() + batch.len() < self.tuning.max_inflight_slots
        {
            let n = self.queue.len().min(self.tuning.max_batch);
            let commands: Vec<Command> = self.queue.drain(..n).collect();
            for c in &commands {
                if let Some(p) = self.pending.get_mut(&c.id.seq) {
                    p.proposed = true;
                }
            }
            batch.push((self.next_slot, Value { commands }));
            self.next_slot += 1;
        }
        self.propose(t, batch, out);
    }

    /// Accepts `batch` locally and sends it to every peer in one message.
    fn propose(&mut self, t: u64, batch: Vec<(Slot, Value)>, out: &mut PaxosOut) {
        if batch.is_empty() {
            return;
        }
        for (slot, value) in &batch {
            self.accepted
                .insert(*slot, (self.ballot.clone(), value.clone()));
            self.logged += 1;
            out.persist.push(Record::Accept {
                slot: *slot,
                ballot: self.ballot.clone(),
                value: value.clone(),
            });
            let mut acks = BTreeSet::new();
            acks.insert(self.cfg.id.clone());
            self.proposals.insert(
                *slot,
                Proposal {
                    value: value.clone(),
                    acks,
                    last_sent: t,
                },
            );
        }
        for peer in &self.cfg.peers {
            out.send.push((
                peer.clone(),
                PaxosMsg::Accept {
                    ballot: self.ballot.clone(),
                    entries: batch.clone(),
                },
            ));
        }
        let slots: Vec<Slot> = batch.iter().map(|(s, _)| *s).collect();
        self.count_acks(t, self.cfg.id.clone(), &slots, out);
    }

    fn on_accept(
        &mut self,
        t: u64,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
        out: &mut PaxosOut,
    ) {
        if ballot < self.promised {
            out.send.push((
                from,
                PaxosMsg::Nack {
                    ballot,
                    promised: self.promised.clone(),
                },
            ));
            return;
        }
        self.hear_leader(t, &ballot, out);
        // Accepting implies promising; the Accept records carry the ballot for recovery.
        self.promised = ballot.clone();
        let mut slots = Vec::with_capacity(entries.len());
        for (slot, value) in entries {
            // A compacted slot is decided and its accepted state is gone: acknowledging it could
            // help a stale leader decide a different value.
            if slot <= self.snapshot_slot {
                continue;
            }
            self.logged += 1;
            out.persist.push(Record::Accept {
                slot,
                ballot: ballot.clone(),
                value: value.clone(),
            });
            self.accepted.insert(slot, (ballot.clone(), value));
            slots.push(slot);
        }
        if !slots.is_empty() {
            out.send.push((from, PaxosMsg::Accepted { ballot, slots }));
        }
    }

    fn on_accepted(
        &mut self,
        t: u64,
        from: NodeId,
        ballot: Ballot,
        slots: Vec<Slot>,
        out: &mut PaxosOut,
    ) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        self.peer_last_heard.insert(from.clone(), t);
        self.count_acks(t, from, &slots, out);
    }

    fn count_acks(&mut self, t: u64, from: NodeId, slots: &[Slot], out: &mut PaxosOut) {
        let mut newly = Vec::new();
        for slot in slots {
            let Some(p) = self.proposals.get_mut(slot) else {
                continue;
            };
            p.acks.insert(from.clone());
            if p.acks.len() >= self.majority {
                let p = self.proposals.remove(slot).expect("present");
                newly.push((*slot, p.value));
            }
        }
        if newly.is_empty() {
            return;
        }
        for peer in &self.cfg.peers {
            out.send.push((
                peer.clone(),
                PaxosMsg::Decide {
                    ballot: self.ballot.clone(),
                    entries: newly.clone(),
                },
            ));
        }
        for (slot, value) in newly {
            self.learn(slot, value, out);
        }
        self.apply_ready(out);
        self.propose_queued(t, out);
    }

    fn leader_tick(&mut self, t: u64, out: &mut PaxosOut) {
        // Step down when a majority has not answered for a whole election timeout: clients then
        // get a prompt answer instead of waiting for timeouts.
        let cutoff = t.saturating_sub(self.tuning.election_timeout_max_ms);
        let alive = 1 + self
            .peer_last_heard
            .iter()
            .filter(|(peer, at)| **peer != self.cfg.id && **at >= cutoff)
            .count();
        if alive < self.majority && t >= self.leader_since + self.tuning.election_timeout_max_ms {
            self.step_down(t, out);
            self.known_leader = None;
            return;
        }
        // The promiser that compacted the slots below `lo` may have crashed for good before we
        // caught up from it. A new phase 1 (likely with another majority) re-proposes them from
        // the accepted values the survivors report.
        if self.applied < self.gap_floor
            && t >= self.leader_since + 2 * self.tuning.election_timeout_max_ms
        {
            tracing::info!(node = %self.cfg.id, "cannot catch up below {}; new ballot", self.gap_floor);
            self.step_down(t, out);
            self.start_candidacy(t, out);
            return;
        }
        if t >= self.last_heartbeat + self.tuning.heartbeat_ms {
            self.send_heartbeats(t, out);
        }
        let mut resend: BTreeMap<NodeId, Vec<(Slot, Value)>> = BTreeMap::new();
        for (slot, p) in self.proposals.iter_mut() {
            if t < p.last_sent + self.tuning.retry_ms {
                continue;
            }
            p.last_sent = t;
            for peer in &self.cfg.peers {
                if !p.acks.contains(peer) {
                    resend
                        .entry(peer.clone())
                        .or_default()
                        .push((*slot, p.value.clone()));
                }
            }
        }
        for (peer, entries) in resend {
            out.send.push((
                peer,
                PaxosMsg::Accept {
                    ballot: self.ballot.clone(),
                    entries,
                },
            ));
        }
        self.propose_queued(t, out);
    }

    fn send_heartbeats(&mut self, t: u64, out: &mut PaxosOut) {
        self.last_heartbeat = t;
        for peer in &self.cfg.peers {
            out.send.push((
                peer.clone(),
                PaxosMsg::Heartbeat {
                    ballot: self.ballot.clone(),
                    commit: self.applied,
                },
            ));
        }
    }

    fn expire_requests(&mut self, t: u64, out: &mut PaxosOut) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= t)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let p = self.pending.remove(&seq).expect("present");
            let response = if p.proposed {
                error_response(
                    ErrorCode::Timeout,
                    false,
                    format!("{}: command proposed but not decided in time", self.cfg.id),
                    None,
                )
            } else {
                self.queue.retain(|c| c.id.seq != seq);
                error_response(
                    ErrorCode::Unavailable,
                    true,
                    format!("{}: command queued too long, not proposed", self.cfg.id),
                    None,
                )
            };
            self.reply(p.origin, response, out);
        }
        let horizon = t.saturating_sub(4 * self.tuning.request_timeout_ms);
        self.forwards_seen.retain(|_, at| *at >= horizon);
        let expired: Vec<ForwardId> = self
            .forwards
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= t)
            .map(|(fid, _)| *fid)
            .collect();
        for fid in expired {
            let (token, _) = self.forwards.remove(&fid).expect("present");
            let response = error_response(
                ErrorCode::Timeout,
                false,
                format!("{}: no answer from the leader in time", self.cfg.id),
                None,
            );
            out.reply.push((token, response));
        }
    }

    // ---- Learner ----

    fn learn(&mut self, slot: Slot, value: Value, out: &mut PaxosOut) {
        if slot <= self.snapshot_slot {
            return;
        }
        if let Some(known) = self.decided.get(&slot) {
            if *known != value {
                tracing::error!(node = %self.cfg.id, slot, "two different values decided for one slot");
            }
            return;
        }
        self.logged += 1;
        out.persist.push(Record::Decide {
            slot,
            value: value.clone(),
        });
        self.decided.insert(slot, value);
    }

    fn apply_ready(&mut self, out: &mut PaxosOut) {
        let before = self.applied;
        while let Some(value) = self.decided.get(&(self.applied + 1)) {
            let slot = self.applied + 1;
            for command in &value.commands {
                let result = self.kv.apply(&command.op);
                if command.id.node == self.cfg.id && command.id.incarnation == self.incarnation {
                    if let Some(p) = self.pending.remove(&command.id.seq) {
                        let response = result.into_response(0);
                        match p.origin {
                            Origin::Client(token) => out.reply.push((token, response)),
                            Origin::Forwarded { node, fid } => out
                                .send
                                .push((node, PaxosMsg::ForwardReply { fid, response })),
                        }
                    }
                }
            }
            self.proposals.remove(&slot);
            self.applied = slot;
        }
        if self.next_slot <= self.applied {
            self.next_slot = self.applied + 1;
        }
        if self.applied > before && self.applied >= self.snapshot_slot + self.tuning.compact_every {
            self.compact(out);
        }
    }

    /// Replaces the log with a snapshot at `applied` plus the state above it.
    fn compact(&mut self, out: &mut PaxosOut) {
        let slot = self.applied;
        self.snapshot_slot = slot;
        self.accepted.retain(|s, _| *s > slot);
        self.decided.retain(|s, _| *s > slot);
        let mut records = vec![Record::Snapshot {
            slot,
            kv: self.kv.clone(),
        }];
        if !self.cfg.has_bug(BUG_FORGET_PROMISE) {
            records.push(Record::Promise {
                ballot: self.promised.clone(),
            });
        }
        for (s, (ballot, value)) in &self.accepted {
            records.push(Record::Accept {
                slot: *s,
                ballot: ballot.clone(),
                value: value.clone(),
            });
        }
        for (s, value) in &self.decided {
            records.push(Record::Decide {
                slot: *s,
                value: value.clone(),
            });
        }
        self.logged = records.len();
        self.compacted_len = records.len();
        // Records this step already queued are appended after the snapshot; replay skips those
        // it covers.
        out.compact = Some(records);
    }

    fn note_commit(&mut self, from: &NodeId, commit: Slot) {
        let known = self.peer_commits.entry(from.clone()).or_insert(0);
        *known = (*known).max(commit);
    }

    /// Asks a peer that is ahead for the slots we miss. Keeps asking the same peer while that
    /// makes progress; otherwise (it may have crashed for good) tries the next one that is ahead.
    fn maybe_catch_up(&mut self, t: u64, out: &mut PaxosOut) {
        let ahead: Vec<&NodeId> = self
            .peer_commits
            .iter()
            .filter(|(_, commit)| **commit > self.applied)
            .map(|(peer, _)| peer)
            .collect();
        if ahead.is_empty() {
            return;
        }
        if self
            .last_catchup
            .is_some_and(|at| t < at + self.tuning.retry_ms)
        {
            return;
        }
        let current = self
            .catchup_target
            .as_ref()
            .and_then(|peer| ahead.iter().position(|p| *p == peer));
        let target = match current {
            Some(i) if self.applied > self.catchup_applied => ahead[i],
            Some(i) => ahead[(i + 1) % ahead.len()],
            None => ahead[0],
        }
        .clone();
        self.last_catchup = Some(t);
        self.catchup_applied = self.applied;
        self.catchup_target = Some(target.clone());
        out.send.push((
            target,
            PaxosMsg::CatchUp {
                from: self.applied + 1,
            },
        ));
    }

    fn on_catch_up(&mut self, from: NodeId, slot: Slot, out: &mut PaxosOut) {
        let reply = if slot <= self.snapshot_slot {
            PaxosMsg::CatchUpReply {
                snapshot: Some((self.applied, self.kv.clone())),
                entries: Vec::new(),
                commit: self.applied,
            }
        } else {
            PaxosMsg::CatchUpReply {
                snapshot: None,
                entries: self
                    .decided
                    .range(slot..)
                    .take(self.tuning.catchup_max_entries)
                    .map(|(s, v)| (*s, v.clone()))
                    .collect(),
                commit: self.applied,
            }
        };
        out.send.push((from, reply));
    }

    fn on_catch_up_reply(
        &mut self,
        t: u64,
        from: NodeId,
        snapshot: Option<(Slot, KvStore)>,
        entries: Vec<(Slot, Value)>,
        commit: Slot,
        out: &mut PaxosOut,
    ) {
        self.note_commit(&from, commit);
        let before = self.applied;
        if let Some((slot, kv)) = snapshot {
            if slot > self.applied {
                self.kv = kv;
                self.applied = slot;
                self.proposals.retain(|s, _| *s > slot);
                // Commands in the skipped slots get no reply here; their requests time out.
                self.compact(out);
            }
        }
        for (slot, value) in entries {
            self.learn(slot, value, out);
        }
        self.apply_ready(out);
        if self.applied > before {
            // Progress: ask for the next chunk at once rather than on the next retry.
            self.last_catchup = None;
            self.maybe_catch_up(t, out);
        }
    }
}

fn error_response(
    code: ErrorCode,
    definite: bool,
    message: String,
    leader: Option<String>,
) -> Response {
    Response::error(
        0,
        ErrorReply {
            code,
            definite,
            message,
            leader,
        },
    )
}

/// A stable hash for mixing the node id into the RNG seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
