//! A sharded transactional key-value store committed with two-phase commit (2PC), as a
//! deterministic state machine.
//!
//! Every node owns one shard (keys are spread by a stable hash over the sorted member list) and
//! every node coordinates the client transactions sent to it. The protocol:
//!
//! 1. The coordinator splits the transaction by shard and sends each owner a `Prepare`.
//! 2. A participant takes strict two-phase locks with a *no-wait* policy (shared for reads,
//!    exclusive for writes, appends, adds and cas; any conflict votes no at once, so there are no
//!    deadlocks), runs its micro-ops against its shard, makes a `Prepared` record durable and only
//!    then votes yes, carrying the values it read. It votes no (`insufficient-funds`) when an
//!    `add` would leave one of its keys below zero.
//! 3. With every vote yes, the coordinator makes a `Decision` record durable, replies `ok` to the
//!    client in that same step (the runtime fsyncs before it replies) and tells the participants.
//!    It re-sends the decision until every participant acknowledged, then logs `Ended`.
//!    Any vote no, or no full set of votes within [`VOTE_TIMEOUT_MS`], aborts: nothing was decided,
//!    so the client gets a definite `aborted` (or the participant's `cas-mismatch`,
//!    `type-mismatch` or `insufficient-funds`).
//! 4. Presumed abort: an abort needs no record. A participant that stays prepared asks the
//!    coordinator (`Query`) every [`QUERY_INTERVAL_MS`], keeping its locks; a coordinator that has
//!    no decision for a transaction from an earlier incarnation answers abort and logs that answer.
//!
//! Transaction ids carry the coordinator's incarnation (`epoch`), which is made durable before the
//! first id of that incarnation leaves the node, so a restarted coordinator never reuses an id.
//! The log is kept short by replacing it with a snapshot (shard contents, committed transactions
//! not yet forgotten, in-doubt prepares and unacknowledged commit decisions) every
//! [`COMPACT_AFTER_RECORDS`] records. Once every participant acknowledged a commit, the
//! coordinator tells them to `Forget` it, so the snapshot does not grow with the history. Safety
//! never rests on a participant remembering an aborted or forgotten transaction: a stray
//! duplicate `Prepare` for one merely prepares again, and the coordinator, which no longer knows
//! the transaction, answers its vote or query with abort.
//!
//! Bugs for harness validation (`--bug`, see `BUGS.md`): [`BUG_EARLY_UNLOCK`] releases shared
//! locks right after the yes vote; [`BUG_VOLATILE_PREPARE`] never makes the prepare durable.
use crate::kv;
use crate::protocol::{
    ClientOp, ErrorCode, ErrorReply, Key, MicroF, MicroOp, NodeStatus, Response, Val,
};
use crate::sm::{ClientToken, Config, NodeId, Now, Out, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Releases a transaction's shared (read) locks as soon as the participant has voted yes.
pub const BUG_EARLY_UNLOCK: &str = "early-unlock";
/// The participant votes yes without making its prepare record durable.
pub const BUG_VOLATILE_PREPARE: &str = "volatile-prepare";

/// How often the coordinator re-sends unanswered prepares and unacknowledged decisions.
pub const RESEND_MS: u64 = 50;
/// How long the coordinator waits for all votes before it aborts.
pub const VOTE_TIMEOUT_MS: u64 = 400;
/// How long a participant waits after voting yes before it first asks for the decision.
pub const QUERY_AFTER_MS: u64 = 200;
/// How often an in-doubt participant asks again.
pub const QUERY_INTERVAL_MS: u64 = 100;
/// The log is compacted into a snapshot once it holds this many records.
pub const COMPACT_AFTER_RECORDS: usize = 64;
/// How many aborted transactions a participant remembers (in memory only) to refuse their
/// duplicate prepares cheaply.
pub const ABORTED_MEMORY: usize = 4096;

/// A transaction's identity: its coordinator, the coordinator's incarnation and a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    pub coordinator: NodeId,
    pub epoch: u64,
    pub seq: u64,
}

impl std::fmt::Display for TxnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}.{}", self.coordinator, self.epoch, self.seq)
    }
}

/// One operation a participant runs on its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "f")]
pub enum ShardOp {
    Read {
        key: Key,
    },
    Write {
        key: Key,
        value: i64,
    },
    Append {
        key: Key,
        value: i64,
    },
    Cas {
        key: Key,
        from: i64,
        to: i64,
    },
    /// Adds `delta` to the key's integer (missing: 0); the participant votes no if the key would
    /// end the transaction below zero.
    Add {
        key: Key,
        delta: i64,
    },
}

impl ShardOp {
    fn key(&self) -> Key {
        match self {
            ShardOp::Read { key }
            | ShardOp::Write { key, .. }
            | ShardOp::Append { key, .. }
            | ShardOp::Cas { key, .. }
            | ShardOp::Add { key, .. } => *key,
        }
    }

    fn lock_mode(&self) -> LockMode {
        match self {
            ShardOp::Read { .. } => LockMode::Shared,
            _ => LockMode::Exclusive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A participant's vote. Reads are `(index of the micro-op in the client's txn, value read)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vote {
    Yes { reads: Vec<(usize, Option<Val>)> },
    No { code: ErrorCode, message: String },
}

/// Messages between 2PC nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum TwoPcMsg {
    /// Coordinator -> participant: the ops on the participant's shard, with their txn indices.
    Prepare {
        txn: TxnId,
        ops: Vec<(usize, ShardOp)>,
    },
    Vote {
        txn: TxnId,
        vote: Vote,
    },
    /// Coordinator -> participant: the outcome.
    Decision {
        txn: TxnId,
        commit: bool,
    },
    /// Participant -> coordinator: a commit was applied durably.
    Ack {
        txn: TxnId,
    },
    /// Coordinator -> participant: every participant applied the commit; stop remembering it.
    Forget {
        txn: TxnId,
    },
    /// In-doubt participant -> coordinator: what was decided?
    Query {
        txn: TxnId,
    },
}

/// Write-ahead log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum TwoPcRecord {
    /// A coordinator incarnation whose transaction ids may have left the node.
    Epoch { epoch: u64 },
    /// The start of a compacted log.
    Snapshot {
        epoch: u64,
        store: Vec<(Key, Val)>,
        /// Transactions this participant committed and was not yet told to forget.
        committed: Vec<TxnId>,
        applied: u64,
    },
    /// Participant: locks held and the values to install on commit.
    Prepared {
        txn: TxnId,
        locks: Vec<(Key, LockMode)>,
        writes: Vec<(Key, Val)>,
        reads: Vec<(usize, Option<Val>)>,
    },
    /// Participant: the prepared writes were installed.
    Committed { txn: TxnId },
    /// Participant: the prepare was undone.
    Aborted { txn: TxnId },
    /// Participant: the coordinator ended a transaction committed here.
    Forgotten { txn: TxnId },
    /// Coordinator: the outcome. Commits are always logged; aborts only when answering a query
    /// for a transaction of an earlier incarnation (presumed abort).
    Decision {
        txn: TxnId,
        commit: bool,
        participants: Vec<NodeId>,
    },
    /// Coordinator: every participant acknowledged the commit.
    Ended { txn: TxnId },
}

/// The node that owns `key` among `members` (sorted, deduplicated): a stable hash, so every node
/// and every test computes the same owner.
pub fn owner_of(members: &[NodeId], key: Key) -> Option<&NodeId> {
    if members.is_empty() {
        return None;
    }
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    members.get((z % members.len() as u64) as usize)
}

/// The sorted, deduplicated member list of a configuration.
pub fn members(config: &Config) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = config.peers.clone();
    all.push(config.id.clone());
    all.sort();
    all.dedup();
    all
}

#[derive(Debug, Default)]
struct Lock {
    readers: BTreeSet<TxnId>,
    writer: Option<TxnId>,
}

#[derive(Debug)]
struct Prepared {
    locks: Vec<(Key, LockMode)>,
    writes: Vec<(Key, Val)>,
    reads: Vec<(usize, Option<Val>)>,
    next_query_ms: u64,
}

/// What the client asked for, to shape the reply.
#[derive(Debug)]
enum Requested {
    Read,
    Write,
    Cas,
    Txn(Vec<MicroOp>),
}

#[derive(Debug)]
enum Phase {
    Voting {
        votes: BTreeMap<NodeId, Vec<(usize, Option<Val>)>>,
        deadline_ms: u64,
        next_resend_ms: u64,
    },
    Committed {
        acked: BTreeSet<NodeId>,
        next_resend_ms: u64,
    },
}

#[derive(Debug)]
struct Coordinated {
    /// `None` after a restart: the client's connection died with the old process.
    client: Option<(ClientToken, Requested)>,
    participants: BTreeMap<NodeId, Vec<(usize, ShardOp)>>,
    phase: Phase,
}

type TwoPcOut = Out<TwoPcMsg, TwoPcRecord>;

/// A 2PC node: coordinator for its clients' transactions and participant for its shard.
#[derive(Debug)]
pub struct TwoPc {
    config: Config,
    members: Vec<NodeId>,
    /// This incarnation's epoch, and whether its `Epoch` record was already persisted.
    epoch: u64,
    epoch_durable: bool,
    /// The highest epoch known to be in the log.
    durable_epoch: u64,
    next_seq: u64,
    store: BTreeMap<Key, Val>,
    locks: BTreeMap<Key, Lock>,
    prepared: BTreeMap<TxnId, Prepared>,
    /// Committed here, not yet forgotten: a duplicate prepare or decision must not apply twice.
    committed: BTreeSet<TxnId>,
    /// Recently aborted here (bounded, in memory only; see [`ABORTED_MEMORY`]).
    aborted: BTreeSet<TxnId>,
    aborted_order: VecDeque<TxnId>,
    applied: u64,
    coordinating: BTreeMap<TxnId, Coordinated>,
    log_len: usize,
    /// Messages this node sends to itself, delivered within the same step.
    local: VecDeque<TwoPcMsg>,
}

impl TwoPc {
    /// The value this node's shard holds for `key` (`None` if unset or not owned here).
    pub fn shard_value(&self, key: Key) -> Option<&Val> {
        self.store.get(&key)
    }

    /// The owner of `key` in this node's cluster.
    pub fn owner(&self, key: Key) -> Option<&NodeId> {
        owner_of(&self.members, key)
    }

    /// Transactions this node has prepared and not yet seen decided (they hold their locks).
    pub fn in_doubt(&self) -> usize {
        self.prepared.len()
    }

    /// Transactions this node coordinates that still wait for votes or acknowledgements.
    pub fn coordinating(&self) -> usize {
        self.coordinating.len()
    }

    /// Keys with at least one lock held.
    pub fn locked_keys(&self) -> usize {
        self.locks.len()
    }

    fn persist(&mut self, out: &mut TwoPcOut, record: TwoPcRecord) {
        self.log_len += 1;
        out.persist.push(record);
    }

    fn send(&mut self, out: &mut TwoPcOut, to: &NodeId, msg: TwoPcMsg) {
        if *to == self.config.id {
            self.local.push_back(msg);
        } else {
            out.send.push((to.clone(), msg));
        }
    }

    /// Delivers the messages this node sent to itself (as coordinator to its own shard and back).
    fn drain_local(&mut self, now: Now, out: &mut TwoPcOut) {
        while let Some(msg) = self.local.pop_front() {
            let me = self.config.id.clone();
            self.handle(now, me, msg, out);
        }
    }

    fn apply_record(&mut self, record: TwoPcRecord) {
        match record {
            TwoPcRecord::Epoch { epoch } => self.durable_epoch = self.durable_epoch.max(epoch),
            TwoPcRecord::Snapshot {
                epoch,
                store,
                committed,
                applied,
            } => {
                self.durable_epoch = self.durable_epoch.max(epoch);
                self.store = store.into_iter().collect();
                self.committed = committed.into_iter().collect();
                self.applied = applied;
                self.prepared.clear();
                self.coordinating.clear();
            }
            TwoPcRecord::Prepared {
                txn,
                locks,
                writes,
                reads,
            } => {
                if !self.committed.contains(&txn) {
                    self.prepared.insert(
                        txn,
                        Prepared {
                            locks,
                            writes,
                            reads,
                            next_query_ms: 0,
                        },
                    );
                }
            }
            TwoPcRecord::Committed { txn } => {
                if let Some(p) = self.prepared.remove(&txn) {
                    self.store.extend(p.writes);
                    self.applied += 1;
                }
                self.committed.insert(txn);
            }
            TwoPcRecord::Aborted { txn } => {
                self.prepared.remove(&txn);
            }
            TwoPcRecord::Forgotten { txn } => {
                self.committed.remove(&txn);
            }
            TwoPcRecord::Decision {
                txn,
                commit,
                participants,
            } => {
                if commit {
                    self.coordinating.insert(
                        txn,
                        Coordinated {
                            client: None,
                            participants: participants
                                .into_iter()
                                .map(|p| (p, Vec::new()))
                                .collect(),
                            phase: Phase::Committed {
                                acked: BTreeSet::new(),
                                next_resend_ms: 0,
                            },
                        },
                    );
                }
            }
            TwoPcRecord::Ended { txn } => {
                self.coordinating.remove(&txn);
            }
        }
    }

    /// The whole durable state as a fresh log.
    fn snapshot(&self) -> Vec<TwoPcRecord> {
        let mut records = vec![TwoPcRecord::Snapshot {
            epoch: self.durable_epoch,
            store: self.store.iter().map(|(k, v)| (*k, v.clone())).collect(),
            committed: self.committed.iter().cloned().collect(),
            applied: self.applied,
        }];
        if !self.config.has_bug(BUG_VOLATILE_PREPARE) {
            for (txn, p) in &self.prepared {
                records.push(TwoPcRecord::Prepared {
                    txn: txn.clone(),
                    locks: p.locks.clone(),
                    writes: p.writes.clone(),
                    reads: p.reads.clone(),
                });
            }
        }
        for (txn, c) in &self.coordinating {
            if matches!(c.phase, Phase::Committed { .. }) {
                records.push(TwoPcRecord::Decision {
                    txn: txn.clone(),
                    commit: true,
                    participants: c.participants.keys().cloned().collect(),
                });
            }
        }
        records
    }

    fn maybe_compact(&mut self, out: &mut TwoPcOut) {
        // Only at the start of a step: the runtime applies `compact` before `persist`, so the
        // snapshot must not already contain this step's records.
        if self.log_len >= COMPACT_AFTER_RECORDS && out.persist.is_empty() && out.compact.is_none()
        {
            let records = self.snapshot();
            self.log_len = records.len();
            out.compact = Some(records);
        }
    }

    fn new_txn_id(&mut self, out: &mut TwoPcOut) -> TxnId {
        if !self.epoch_durable {
            self.epoch_durable = true;
            self.durable_epoch = self.epoch;
            let epoch = self.epoch;
            self.persist(out, TwoPcRecord::Epoch { epoch });
        }
        self.next_seq += 1;
        TxnId {
            coordinator: self.config.id.clone(),
            epoch: self.epoch,
            seq: self.next_seq,
        }
    }

    fn handle(&mut self, now: Now, from: NodeId, msg: TwoPcMsg, out: &mut TwoPcOut) {
        match msg {
            TwoPcMsg::Prepare { txn, ops } => self.on_prepare(now, &from, txn, ops, out),
            TwoPcMsg::Vote { txn, vote } => self.on_vote(now, from, txn, vote, out),
            TwoPcMsg::Decision { txn, commit } => self.on_decision(&from, txn, commit, out),
            TwoPcMsg::Ack { txn } => self.on_ack(from, txn, out),
            TwoPcMsg::Query { txn } => self.on_query(&from, txn, out),
            TwoPcMsg::Forget { txn } => self.on_forget(&from, txn, out),
        }
    }

    // ---- participant ----

    fn on_prepare(
        &mut self,
        now: Now,
        from: &NodeId,
        txn: TxnId,
        ops: Vec<(usize, ShardOp)>,
        out: &mut TwoPcOut,
    ) {
        if *from != txn.coordinator {
            return;
        }
        if self.committed.contains(&txn) {
            // A duplicate of a prepare whose commit was applied here.
            return;
        }
        if self.aborted.contains(&txn) {
            let vote = Vote::No {
                code: ErrorCode::Aborted,
                message: format!("txn {txn} was already aborted on {}", self.config.id),
            };
            self.send(out, from, TwoPcMsg::Vote { txn, vote });
            return;
        }
        if let Some(p) = self.prepared.get(&txn) {
            let vote = Vote::Yes {
                reads: p.reads.clone(),
            };
            self.send(out, from, TwoPcMsg::Vote { txn, vote });
            return;
        }
        match self.execute(&txn, &ops) {
            Err((code, message)) => {
                self.remember_aborted(txn.clone());
                let vote = Vote::No { code, message };
                self.send(out, from, TwoPcMsg::Vote { txn, vote });
            }
            Ok((locks, writes, reads)) => {
                for (key, mode) in &locks {
                    let lock = self.locks.entry(*key).or_default();
                    match mode {
                        LockMode::Shared => {
                            lock.readers.insert(txn.clone());
                        }
                        LockMode::Exclusive => lock.writer = Some(txn.clone()),
                    }
                }
                let record = TwoPcRecord::Prepared {
                    txn: txn.clone(),
                    locks: locks.clone(),
                    writes: writes.clone(),
                    reads: reads.clone(),
                };
                if self.config.has_bug(BUG_VOLATILE_PREPARE) {
                    // BUG: the vote goes out although a crash would forget the prepare.
                } else {
                    self.persist(out, record);
                }
                if self.config.has_bug(BUG_EARLY_UNLOCK) {
                    // BUG: shared locks go before the outcome is known (2PL's shrinking phase
                    // starts before every participant reached its lock point).
                    self.release(&txn, &locks, Some(LockMode::Shared));
                }
                self.prepared.insert(
                    txn.clone(),
                    Prepared {
                        locks,
                        writes,
                        reads: reads.clone(),
                        next_query_ms: now.mono_ms + QUERY_AFTER_MS,
                    },
                );
                let vote = Vote::Yes { reads };
                self.send(out, from, TwoPcMsg::Vote { txn, vote });
            }
        }
    }

    /// Checks locks and runs `ops` against the shard without changing it: the locks to take,
    /// the final values of written keys and the values read, or why the txn must abort.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        txn: &TxnId,
        ops: &[(usize, ShardOp)],
    ) -> Result<
        (
            Vec<(Key, LockMode)>,
            Vec<(Key, Val)>,
            Vec<(usize, Option<Val>)>,
        ),
        (ErrorCode, String),
    > {
        if let Some((_, op)) = ops
            .iter()
            .find(|(_, op)| owner_of(&self.members, op.key()) != Some(&self.config.id))
        {
            return Err((
                ErrorCode::Aborted,
                format!(
                    "key {} is not owned by {} (do the nodes have the same member list?)",
                    op.key(),
                    self.config.id
                ),
            ));
        }
        let mut wanted: BTreeMap<Key, LockMode> = BTreeMap::new();
        for (_, op) in ops {
            let mode = wanted.entry(op.key()).or_insert(LockMode::Shared);
            *mode = (*mode).max(op.lock_mode());
        }
        for (key, mode) in &wanted {
            if let Some(lock) = self.locks.get(key) {
                let other_writer = lock.writer.as_ref().filter(|w| *w != txn);
                let other_reader = lock.readers.iter().find(|r| *r != txn);
                let holder = match mode {
                    LockMode::Shared => other_writer,
                    LockMode::Exclusive => other_writer.or(other_reader),
                };
                if let Some(holder) = holder {
                    return Err((
                        ErrorCode::Aborted,
                        format!(
                            "lock conflict on key {key} at {} with txn {holder} (no-wait)",
                            self.config.id
                        ),
                    ));
                }
            }
        }
        let mut overlay: BTreeMap<Key, Val> = BTreeMap::new();
        let mut reads = Vec::new();
        let mut added = BTreeSet::new();
        for (idx, op) in ops {
            let key = op.key();
            let current = overlay.get(&key).or_else(|| self.store.get(&key)).cloned();
            match op {
                ShardOp::Read { .. } => reads.push((*idx, current)),
                ShardOp::Write { value, .. } => {
                    overlay.insert(key, Val::Int(*value));
                }
                ShardOp::Append { value, .. } => {
                    let mut list = match current {
                        None => Vec::new(),
                        Some(Val::List(l)) => l,
                        Some(Val::Int(_)) => {
                            return Err((
                                ErrorCode::TypeMismatch,
                                format!("append on key {key} which holds an integer"),
                            ))
                        }
                    };
                    list.push(*value);
                    overlay.insert(key, Val::List(list));
                }
                ShardOp::Cas { from, to, .. } => {
                    if current != Some(Val::Int(*from)) {
                        return Err((
                            ErrorCode::CasMismatch,
                            format!(
                                "cas on key {key}: expected {from}, found {}",
                                describe(current.as_ref())
                            ),
                        ));
                    }
                    overlay.insert(key, Val::Int(*to));
                }
                ShardOp::Add { delta, .. } => {
                    let sum = kv::add(key, current.as_ref(), *delta)
                        .map_err(|why| (ErrorCode::TypeMismatch, why))?;
                    overlay.insert(key, Val::Int(sum));
                    added.insert(key);
                }
            }
        }
        // Checked under the exclusive locks taken for the adds, so the balance cannot change
        // before the decision.
        if let Some(why) = kv::overdrawn(&added, |k| overlay.get(&k)) {
            return Err((
                ErrorCode::InsufficientFunds,
                format!("{why} (on {})", self.config.id),
            ));
        }
        Ok((
            wanted.into_iter().collect(),
            overlay.into_iter().collect(),
            reads,
        ))
    }

    /// Releases `txn`'s locks on `locks` (only those of `only` mode, if given).
    fn release(&mut self, txn: &TxnId, locks: &[(Key, LockMode)], only: Option<LockMode>) {
        for (key, mode) in locks {
            if only.is_some_and(|m| m != *mode) {
                continue;
            }
            if let Some(lock) = self.locks.get_mut(key) {
                lock.readers.remove(txn);
                if lock.writer.as_ref() == Some(txn) {
                    lock.writer = None;
                }
                if lock.readers.is_empty() && lock.writer.is_none() {
                    self.locks.remove(key);
                }
            }
        }
    }

    fn on_decision(&mut self, from: &NodeId, txn: TxnId, commit: bool, out: &mut TwoPcOut) {
        if *from != txn.coordinator {
            return;
        }
        if let Some(p) = self.prepared.remove(&txn) {
            self.release(&txn, &p.locks, None);
            if commit {
                self.committed.insert(txn.clone());
                self.store.extend(p.writes);
                self.applied += 1;
                self.persist(out, TwoPcRecord::Committed { txn: txn.clone() });
                self.send(out, from, TwoPcMsg::Ack { txn });
            } else {
                self.persist(out, TwoPcRecord::Aborted { txn: txn.clone() });
                self.remember_aborted(txn);
            }
            return;
        }
        // Not prepared here. With a correct log that means a duplicate decision (the commit was
        // applied, perhaps already forgotten) or an abort overtaking its prepare. A commit for a
        // transaction this node never prepared durably happens only under the volatile-prepare
        // bug: it is acknowledged anyway, as a forgetful participant would, so the coordinator
        // can finish.
        if commit {
            self.send(out, from, TwoPcMsg::Ack { txn });
        } else {
            self.remember_aborted(txn);
        }
    }

    fn remember_aborted(&mut self, txn: TxnId) {
        if self.aborted.insert(txn.clone()) {
            self.aborted_order.push_back(txn);
            while self.aborted_order.len() > ABORTED_MEMORY {
                if let Some(old) = self.aborted_order.pop_front() {
                    self.aborted.remove(&old);
                }
            }
        }
    }

    fn on_forget(&mut self, from: &NodeId, txn: TxnId, out: &mut TwoPcOut) {
        if *from == txn.coordinator && self.committed.remove(&txn) {
            self.persist(out, TwoPcRecord::Forgotten { txn });
        }
    }

    // ---- coordinator ----

    fn on_vote(&mut self, now: Now, from: NodeId, txn: TxnId, vote: Vote, out: &mut TwoPcOut) {
        let Some(c) = self.coordinating.get_mut(&txn) else {
            if matches!(vote, Vote::Yes { .. }) && txn.coordinator == self.config.id {
                // Presumed abort: a transaction we no longer track did not commit, or was
                // already acknowledged by every participant (which then ignores this).
                self.send(out, &from, TwoPcMsg::Decision { txn, commit: false });
            }
            return;
        };
        if !c.participants.contains_key(&from) {
            return;
        }
        let Phase::Voting { votes, .. } = &mut c.phase else {
            return;
        };
        match vote {
            Vote::No { code, message } => self.abort(txn, code, message, out),
            Vote::Yes { reads } => {
                votes.insert(from, reads);
                if votes.len() == c.participants.len() {
                    self.commit(now, txn, out);
                }
            }
        }
    }

    fn commit(&mut self, now: Now, txn: TxnId, out: &mut TwoPcOut) {
        let Some(c) = self.coordinating.get_mut(&txn) else {
            return;
        };
        let phase = std::mem::replace(
            &mut c.phase,
            Phase::Committed {
                acked: BTreeSet::new(),
                next_resend_ms: now.mono_ms + RESEND_MS,
            },
        );
        let Phase::Voting { votes, .. } = phase else {
            return;
        };
        let participants: Vec<NodeId> = c.participants.keys().cloned().collect();
        let client = c.client.take();
        self.persist(
            out,
            TwoPcRecord::Decision {
                txn: txn.clone(),
                commit: true,
                participants: participants.clone(),
            },
        );
        // The reply leaves after the decision is durable (the runtime fsyncs `persist` first),
        // before the participants have applied it: they keep the locks until they do, so no
        // later transaction can observe the state without this commit.
        if let Some((token, requested)) = client {
            let reads: BTreeMap<usize, Option<Val>> = votes.into_values().flatten().collect();
            out.reply
                .push((token, committed_response(requested, reads)));
        }
        for p in &participants {
            self.send(
                out,
                p,
                TwoPcMsg::Decision {
                    txn: txn.clone(),
                    commit: true,
                },
            );
        }
    }

    fn abort(&mut self, txn: TxnId, code: ErrorCode, message: String, out: &mut TwoPcOut) {
        let Some(c) = self.coordinating.remove(&txn) else {
            return;
        };
        if let Some((token, _)) = c.client {
            let error = ErrorReply {
                code,
                definite: true,
                message: format!("txn {txn} aborted: {message}"),
                leader: None,
            };
            out.reply.push((token, Response::error(0, error)));
        }
        for p in c.participants.keys() {
            self.send(
                out,
                p,
                TwoPcMsg::Decision {
                    txn: txn.clone(),
                    commit: false,
                },
            );
        }
    }

    fn on_ack(&mut self, from: NodeId, txn: TxnId, out: &mut TwoPcOut) {
        let Some(c) = self.coordinating.get_mut(&txn) else {
            return;
        };
        let Phase::Committed { acked, .. } = &mut c.phase else {
            return;
        };
        if c.participants.contains_key(&from) {
            acked.insert(from);
        }
        if acked.len() == c.participants.len() {
            let participants: Vec<NodeId> = c.participants.keys().cloned().collect();
            self.coordinating.remove(&txn);
            self.persist(out, TwoPcRecord::Ended { txn: txn.clone() });
            for p in &participants {
                self.send(out, p, TwoPcMsg::Forget { txn: txn.clone() });
            }
        }
    }

    fn on_query(&mut self, from: &NodeId, txn: TxnId, out: &mut TwoPcOut) {
        if txn.coordinator != self.config.id {
            return;
        }
        match self.coordinating.get(&txn).map(|c| &c.phase) {
            // Still collecting votes: the vote timeout will decide.
            Some(Phase::Voting { .. }) => {}
            Some(Phase::Committed { .. }) => {
                self.send(out, from, TwoPcMsg::Decision { txn, commit: true })
            }
            None => {
                if txn.epoch < self.epoch {
                    // Presumed abort for a transaction an earlier incarnation never decided;
                    // the record makes the answer part of the log.
                    self.persist(
                        out,
                        TwoPcRecord::Decision {
                            txn: txn.clone(),
                            commit: false,
                            participants: vec![from.clone()],
                        },
                    );
                }
                self.send(out, from, TwoPcMsg::Decision { txn, commit: false });
            }
        }
    }

    fn begin(&mut self, now: Now, token: ClientToken, op: ClientOp, out: &mut TwoPcOut) {
        let (requested, ops) = match plan(op) {
            Ok(plan) => plan,
            Err((code, message)) => {
                let error = ErrorReply {
                    code,
                    definite: true,
                    message,
                    leader: None,
                };
                out.reply.push((token, Response::error(0, error)));
                return;
            }
        };
        if ops.is_empty() {
            out.reply.push((token, Response::txn(0, Vec::new())));
            return;
        }
        let mut participants: BTreeMap<NodeId, Vec<(usize, ShardOp)>> = BTreeMap::new();
        for (idx, op) in ops.into_iter().enumerate() {
            // `members` always holds this node, so there is always an owner.
            let owner = owner_of(&self.members, op.key()).unwrap_or(&self.config.id);
            participants
                .entry(owner.clone())
                .or_default()
                .push((idx, op));
        }
        let txn = self.new_txn_id(out);
        for (p, ops) in &participants {
            let msg = TwoPcMsg::Prepare {
                txn: txn.clone(),
                ops: ops.clone(),
            };
            self.send(out, p, msg);
        }
        self.coordinating.insert(
            txn,
            Coordinated {
                client: Some((token, requested)),
                participants,
                phase: Phase::Voting {
                    votes: BTreeMap::new(),
                    deadline_ms: now.mono_ms + VOTE_TIMEOUT_MS,
                    next_resend_ms: now.mono_ms + RESEND_MS,
                },
            },
        );
    }

    fn coordinator_timers(&mut self, now: Now, out: &mut TwoPcOut) {
        let mut timed_out = Vec::new();
        let mut resend: Vec<(NodeId, TwoPcMsg)> = Vec::new();
        for (txn, c) in &mut self.coordinating {
            match &mut c.phase {
                Phase::Voting {
                    votes,
                    deadline_ms,
                    next_resend_ms,
                } => {
                    if now.mono_ms >= *deadline_ms {
                        timed_out.push(txn.clone());
                    } else if now.mono_ms >= *next_resend_ms {
                        *next_resend_ms = now.mono_ms + RESEND_MS;
                        for (p, ops) in &c.participants {
                            if !votes.contains_key(p) {
                                let msg = TwoPcMsg::Prepare {
                                    txn: txn.clone(),
                                    ops: ops.clone(),
                                };
                                resend.push((p.clone(), msg));
                            }
                        }
                    }
                }
                Phase::Committed {
                    acked,
                    next_resend_ms,
                } => {
                    if now.mono_ms >= *next_resend_ms {
                        *next_resend_ms = now.mono_ms + RESEND_MS;
                        for p in c.participants.keys() {
                            if !acked.contains(p) {
                                let msg = TwoPcMsg::Decision {
                                    txn: txn.clone(),
                                    commit: true,
                                };
                                resend.push((p.clone(), msg));
                            }
                        }
                    }
                }
            }
        }
        for (to, msg) in resend {
            self.send(out, &to, msg);
        }
        for txn in timed_out {
            let message = format!("not every participant voted within {VOTE_TIMEOUT_MS} ms");
            self.abort(txn, ErrorCode::Aborted, message, out);
        }
    }

    fn participant_timers(&mut self, now: Now, out: &mut TwoPcOut) {
        let mut queries = Vec::new();
        for (txn, p) in &mut self.prepared {
            if now.mono_ms >= p.next_query_ms {
                p.next_query_ms = now.mono_ms + QUERY_INTERVAL_MS;
                queries.push(txn.clone());
            }
        }
        for txn in queries {
            let to = txn.coordinator.clone();
            self.send(out, &to, TwoPcMsg::Query { txn });
        }
    }
}

/// Splits a client operation into shard operations, validating value types up front.
fn plan(op: ClientOp) -> Result<(Requested, Vec<ShardOp>), (ErrorCode, String)> {
    match op {
        ClientOp::Read { key } => Ok((Requested::Read, vec![ShardOp::Read { key }])),
        ClientOp::Write { key, value } => {
            Ok((Requested::Write, vec![ShardOp::Write { key, value }]))
        }
        ClientOp::Cas { key, from, to } => {
            Ok((Requested::Cas, vec![ShardOp::Cas { key, from, to }]))
        }
        ClientOp::Txn { txn } => {
            let mut ops = Vec::with_capacity(txn.len());
            for m in &txn {
                let key = m.key;
                let op = match (m.f, &m.value) {
                    (MicroF::Read, _) => ShardOp::Read { key },
                    (MicroF::Write, Some(Val::Int(value))) => ShardOp::Write { key, value: *value },
                    (MicroF::Append, Some(Val::Int(value))) => {
                        ShardOp::Append { key, value: *value }
                    }
                    (MicroF::Add, Some(Val::Int(delta))) => ShardOp::Add { key, delta: *delta },
                    (MicroF::Write, _) => {
                        return Err((
                            ErrorCode::TypeMismatch,
                            format!("w on key {key} needs an integer"),
                        ))
                    }
                    (MicroF::Append, _) => {
                        return Err((
                            ErrorCode::TypeMismatch,
                            format!("append on key {key} needs an integer"),
                        ))
                    }
                    (MicroF::Add, _) => {
                        return Err((
                            ErrorCode::TypeMismatch,
                            format!("add on key {key} needs an integer"),
                        ))
                    }
                };
                ops.push(op);
            }
            Ok((Requested::Txn(txn), ops))
        }
        ClientOp::Status => Err((
            ErrorCode::Malformed,
            "status is answered by the runtime, not the 2PC state machine".to_string(),
        )),
    }
}

/// The client's `ok` for a committed transaction. The id is 0: the runtime, which knows the
/// request id behind each token, fills it in.
fn committed_response(requested: Requested, mut reads: BTreeMap<usize, Option<Val>>) -> Response {
    match requested {
        Requested::Read => Response::value(0, reads.remove(&0).flatten()),
        Requested::Write | Requested::Cas => Response::ok(0),
        Requested::Txn(mut txn) => {
            for (idx, m) in txn.iter_mut().enumerate() {
                if m.f == MicroF::Read {
                    m.value = reads.remove(&idx).flatten();
                }
            }
            Response::txn(0, txn)
        }
    }
}

fn describe(v: Option<&Val>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(Val::Int(i)) => i.to_string(),
        Some(Val::List(l)) => format!("a list of {}", l.len()),
    }
}

impl StateMachine for TwoPc {
    type Msg = TwoPcMsg;
    type Record = TwoPcRecord;

    fn recover(config: Config, records: Vec<TwoPcRecord>, now: Now) -> Self {
        let members = members(&config);
        let mut node = TwoPc {
            config,
            members,
            epoch: 0,
            epoch_durable: false,
            durable_epoch: 0,
            next_seq: 0,
            store: BTreeMap::new(),
            locks: BTreeMap::new(),
            prepared: BTreeMap::new(),
            committed: BTreeSet::new(),
            aborted: BTreeSet::new(),
            aborted_order: VecDeque::new(),
            applied: 0,
            coordinating: BTreeMap::new(),
            log_len: records.len(),
            local: VecDeque::new(),
        };
        for record in records {
            node.apply_record(record);
        }
        node.epoch = node.durable_epoch + 1;
        // In-doubt transactions keep their locks across the restart and ask at once.
        let relock: Vec<(TxnId, Vec<(Key, LockMode)>)> = node
            .prepared
            .iter_mut()
            .map(|(txn, p)| {
                p.next_query_ms = now.mono_ms;
                (txn.clone(), p.locks.clone())
            })
            .collect();
        for (txn, locks) in relock {
            for (key, mode) in locks {
                let lock = node.locks.entry(key).or_default();
                match mode {
                    LockMode::Shared => {
                        lock.readers.insert(txn.clone());
                    }
                    LockMode::Exclusive => lock.writer = Some(txn.clone()),
                }
            }
        }
        node
    }

    fn on_tick(&mut self, now: Now, out: &mut TwoPcOut) {
        self.maybe_compact(out);
        self.coordinator_timers(now, out);
        self.participant_timers(now, out);
        self.drain_local(now, out);
    }

    fn on_message(&mut self, now: Now, from: NodeId, msg: TwoPcMsg, out: &mut TwoPcOut) {
        if !self.members.contains(&from) || from == self.config.id {
            return;
        }
        self.handle(now, from, msg, out);
        self.drain_local(now, out);
    }

    fn on_request(&mut self, now: Now, token: ClientToken, op: ClientOp, out: &mut TwoPcOut) {
        self.begin(now, token, op, out);
        self.drain_local(now, out);
    }

    fn status(&self, now: Now) -> NodeStatus {
        NodeStatus {
            node: self.config.id.clone(),
            role: if self.coordinating.is_empty() {
                "participant".to_string()
            } else {
                "coordinator".to_string()
            },
            term: 0,
            leader: None,
            time_ms: now.wall_ms,
            commit_index: self.applied,
            protocol: "2pc".to_string(),
        }
    }
}
