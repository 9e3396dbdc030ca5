//! Raft as a deterministic [`StateMachine`]: leader election, log replication, snapshots, and
//! linearizable reads (ReadIndex, or a wall-clock lease with `--read-mode lease`).
//!
//! Safety rules this code keeps (and which `--bug` switches break on purpose, see `BUGS.md`):
//! term, vote and log entries are persisted before any vote or acknowledgement leaves the node; a
//! leader commits by counting replicas only entries of its own term; a read is answered only after
//! the leader has confirmed, with a heartbeat round, that it still leads.
use crate::kv::KvStore;
use crate::protocol::{ClientOp, ErrorCode, ErrorReply, NodeStatus, Response};
use crate::sm::{ClientToken, Config, NodeId, Now, Out, ReadMode, StateMachine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The bugs this implementation can switch on (`--bug NAME`).
pub const BUGS: &[&str] = &["stale-read", "no-fsync", "commit-old-term"];

/// Timing and size parameters. The defaults suit a loopback or LAN cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// Election timeouts are drawn uniformly from `[election_min_ms, election_max_ms)`.
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Most entries in one AppendEntries message.
    pub max_append_entries: usize,
    /// Take a snapshot once the log holds more entries than this.
    pub snapshot_threshold: usize,
    /// A proposal not applied within this time is answered with an indefinite `timeout`.
    pub request_timeout_ms: u64,
    /// How long (wall clock) after a heartbeat round a lease-mode leader serves reads alone.
    /// Must be below `election_min_ms`.
    pub lease_ms: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            election_min_ms: 300,
            election_max_ms: 600,
            heartbeat_ms: 50,
            max_append_entries: 1024,
            snapshot_threshold: 10_000,
            request_timeout_ms: 1500,
            lease_ms: 200,
        }
    }
}

/// A log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub cmd: Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Appended by every new leader, so that it can commit (and so know) everything before it.
    Noop,
    Op(ClientOp),
}

/// Messages between Raft nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Msg {
    RequestVote {
        term: u64,
        last_index: u64,
        last_term: u64,
    },
    Vote {
        term: u64,
        granted: bool,
    },
    /// AppendEntries; also the heartbeat. `seq` numbers the leader's heartbeat rounds so that
    /// replies confirm leadership for reads and leases.
    Append {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        seq: u64,
    },
    /// Reply to `Append` or `Snapshot`. When `ok`, `index` is the last index known to match the
    /// leader; otherwise it is a hint: the leader should resend from `index + 1`.
    AppendReply {
        term: u64,
        ok: bool,
        index: u64,
        seq: u64,
    },
    /// InstallSnapshot: the whole key-value state as of `last_index`.
    Snapshot {
        term: u64,
        last_index: u64,
        last_term: u64,
        kv: KvStore,
        seq: u64,
    },
    /// A client request a follower passes on to the leader.
    Forward {
        fid: u64,
        op: ClientOp,
    },
    ForwardReply {
        fid: u64,
        response: Response,
    },
}

/// Write-ahead log records. Replaying them in order rebuilds the durable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "kebab-case")]
pub enum Record {
    Hard {
        term: u64,
        vote: Option<NodeId>,
    },
    /// Entries starting at `index`; any entries at or after `index` already held are replaced.
    Entries {
        index: u64,
        entries: Vec<Entry>,
    },
    /// Everything up to `last_index` is summarised by `kv`.
    Snapshot {
        last_index: u64,
        last_term: u64,
        kv: KvStore,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiter {
    Local(ClientToken),
    Remote(NodeId, u64),
}

#[derive(Debug)]
struct Pending {
    term: u64,
    waiter: Waiter,
    deadline: u64,
}

#[derive(Debug)]
struct PendingRead {
    waiter: Waiter,
    key: u64,
    read_index: u64,
    seq: u64,
    deadline: u64,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    next: u64,
    matched: u64,
    acked_seq: u64,
    last_ack_mono: u64,
    last_sent_mono: u64,
}

/// One Raft node.
pub struct Raft {
    cfg: Config,
    tun: Tuning,
    rng: StdRng,
    // Durable state.
    term: u64,
    vote: Option<NodeId>,
    log: Vec<Entry>,
    snap_index: u64,
    snap_term: u64,
    // Volatile state.
    kv: KvStore,
    commit: u64,
    applied: u64,
    role: Role,
    leader: Option<NodeId>,
    election_deadline: u64,
    last_leader_contact: Option<u64>,
    votes: BTreeSet<NodeId>,
    // Leader state.
    progress: BTreeMap<NodeId, Progress>,
    leader_since: u64,
    noop_index: u64,
    seq: u64,
    seq_sent_wall: BTreeMap<u64, u64>,
    lease_until_wall: u64,
    want_round: bool,
    pending: BTreeMap<u64, Pending>,
    reads: Vec<PendingRead>,
    seen_forwards: HashSet<(NodeId, u64)>,
    // Follower state: requests passed on to the leader.
    forwarded: BTreeMap<u64, (ClientToken, u64)>,
    next_fid: u64,
}

fn error(code: ErrorCode, definite: bool, message: impl Into<String>) -> Response {
    Response::error(
        0,
        ErrorReply {
            code,
            definite,
            message: message.into(),
            leader: None,
        },
    )
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

type RaftOut = Out<Msg, Record>;

impl Raft {
    /// Like [`StateMachine::recover`] with explicit tuning.
    pub fn recover_with(config: Config, tuning: Tuning, records: Vec<Record>, now: Now) -> Self {
        let rng = StdRng::seed_from_u64(config.seed ^ fnv(&config.id));
        let mut r = Raft {
            cfg: config,
            tun: tuning,
            rng,
            term: 0,
            vote: None,
            log: Vec::new(),
            snap_index: 0,
            snap_term: 0,
            kv: KvStore::default(),
            commit: 0,
            applied: 0,
            role: Role::Follower,
            leader: None,
            election_deadline: 0,
            last_leader_contact: None,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            leader_since: 0,
            noop_index: 0,
            seq: 0,
            seq_sent_wall: BTreeMap::new(),
            lease_until_wall: 0,
            want_round: false,
            pending: BTreeMap::new(),
            reads: Vec::new(),
            seen_forwards: HashSet::new(),
            forwarded: BTreeMap::new(),
            next_fid: 0,
        };
        for rec in records {
            match rec {
                Record::Hard { term, vote } => {
                    r.term = term;
                    r.vote = vote;
                }
                Record::Entries {
                    mut index,
                    mut entries,
                } => {
                    if index <= r.snap_index {
                        // Partly behind the snapshot: that part is already summarised.
                        let skip = (r.snap_index + 1 - index) as usize;
                        if skip >= entries.len() {
                            continue;
                        }
                        entries.drain(..skip);
                        index = r.snap_index + 1;
                    }
                    if index > r.last_index() + 1 {
                        // A gap cannot come from records this code writes; ignore it.
                        continue;
                    }
                    r.log.truncate((index - r.snap_index - 1) as usize);
                    r.log.extend(entries);
                }
                Record::Snapshot {
                    last_index,
                    last_term,
                    kv,
                } => r.install_snapshot_state(last_index, last_term, kv),
            }
        }
        r.commit = r.snap_index;
        r.applied = r.snap_index;
        // Forward ids must not repeat across restarts, or a leader's answer to a request from a
        // previous incarnation would be taken for the answer to a new one. The seeded RNG
        // repeats itself after a restart, so the base also mixes in the time of recovery.
        r.next_fid =
            splitmix(r.cfg.seed ^ fnv(&r.cfg.id) ^ now.wall_ms.rotate_left(20) ^ now.mono_ms) << 32;
        r.reset_election_timer(now);
        r
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn voted_for(&self) -> Option<&NodeId> {
        self.vote.as_ref()
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn commit_index(&self) -> u64 {
        self.commit
    }
    pub fn snapshot_index(&self) -> u64 {
        self.snap_index
    }
    pub fn last_index(&self) -> u64 {
        self.snap_index + self.log.len() as u64
    }
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }
    /// The entry at `index`, if it is in the log (not compacted away, not beyond the end).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snap_index {
            return None;
        }
        self.log.get((index - self.snap_index - 1) as usize)
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snap_index {
            Some(self.snap_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    fn last_term(&self) -> u64 {
        self.term_at(self.last_index()).unwrap_or(self.snap_term)
    }

    fn majority(&self) -> usize {
        let cluster = self.cfg.peers.len() + 1;
        cluster / 2 + 1
    }

    fn persist(&self, out: &mut RaftOut, rec: Record) {
        // The no-fsync bug: state is never made durable, so a restart forgets it.
        if !self.cfg.has_bug("no-fsync") {
            out.persist.push(rec);
        }
    }

    fn persist_hard(&self, out: &mut RaftOut) {
        self.persist(
            out,
            Record::Hard {
                term: self.term,
                vote: self.vote.clone(),
            },
        );
    }

    fn reset_election_timer(&mut self, now: Now) {
        let span = self
            .tun
            .election_max_ms
            .saturating_sub(self.tun.election_min_ms)
            .max(1);
        self.election_deadline =
            now.mono_ms + self.tun.election_min_ms + self.rng.random_range(0..span);
    }

    fn install_snapshot_state(&mut self, last_index: u64, last_term: u64, kv: KvStore) {
        if self.term_at(last_index) == Some(last_term) && last_index > self.snap_index {
            self.log.drain(..(last_index - self.snap_index) as usize);
        } else {
            self.log.clear();
        }
        self.snap_index = last_index;
        self.snap_term = last_term;
        self.kv = kv;
    }

    fn answer(&self, waiter: Waiter, resp: Response, out: &mut RaftOut) {
        match waiter {
            Waiter::Local(token) => out.reply.push((token, resp)),
            Waiter::Remote(node, fid) => out.send.push((
                node,
                Msg::ForwardReply {
                    fid,
                    response: resp,
                },
            )),
        }
    }

    fn not_leader_error(&self) -> Response {
        let mut resp = match &self.leader {
            Some(l) if *l != self.cfg.id => error(
                ErrorCode::NotLeader,
                true,
                format!("{} is not the leader; try {l}", self.cfg.id),
            ),
            _ => error(
                ErrorCode::NoLeader,
                true,
                format!("{} knows no leader", self.cfg.id),
            ),
        };
        if let Some(e) = resp.error.as_mut() {
            e.leader = self.leader.clone().filter(|l| *l != self.cfg.id);
        }
        resp
    }

    /// Leaves leadership or candidacy; answers everything pending with `leadership-lost`.
    fn become_follower(&mut self, now: Now, out: &mut RaftOut) {
        if self.role == Role::Leader {
            let pending = std::mem::take(&mut self.pending);
            for (_, p) in pending {
                self.answer(
                    p.waiter,
                    error(
                        ErrorCode::LeadershipLost,
                        false,
                        "leadership lost before the command was known to commit",
                    ),
                    out,
                );
            }
            let reads = std::mem::take(&mut self.reads);
            for r in reads {
                self.answer(
                    r.waiter,
                    error(
                        ErrorCode::LeadershipLost,
                        false,
                        "leadership lost before the read was confirmed",
                    ),
                    out,
                );
            }
            self.progress.clear();
            self.seen_forwards.clear();
            self.lease_until_wall = 0;
            self.leader = None;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.reset_election_timer(now);
        }
        // A follower keeps its timer: only a leader's message or a granted vote resets it.
        // (Otherwise a candidate that cannot win, its log being behind, would keep everyone
        // else from ever timing out by raising the term again and again.)
    }

    fn observe_term(&mut self, term: u64, now: Now, out: &mut RaftOut) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.leader = None;
            self.persist_hard(out);
            self.become_follower(now, out);
        }
    }

    fn start_election(&mut self, now: Now, out: &mut RaftOut) {
        self.term += 1;
        self.vote = Some(self.cfg.id.clone());
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.cfg.id.clone()]);
        self.persist_hard(out);
        self.reset_election_timer(now);
        tracing::debug!(node = %self.cfg.id, term = self.term, "starting election");
        for p in &self.cfg.peers {
            out.send.push((
                p.clone(),
                Msg::RequestVote {
                    term: self.term,
                    last_index: self.last_index(),
                    last_term: self.last_term(),
                },
            ));
        }
        if self.votes.len() >= self.majority() {
            self.become_leader(now, out);
        }
    }

    fn become_leader(&mut self, now: Now, out: &mut RaftOut) {
        tracing::info!(node = %self.cfg.id, term = self.term, "became leader");
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.leader_since = now.mono_ms;
        let next = self.last_index() + 1;
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Progress {
                        next,
                        matched: 0,
                        acked_seq: 0,
                        last_ack_mono: now.mono_ms,
                        last_sent_mono: 0,
                    },
                )
            })
            .collect();
        self.seq_sent_wall.clear();
        self.lease_until_wall = 0;
        self.append_local(Command::Noop, out);
        self.noop_index = self.last_index();
        self.broadcast(now, out);
        self.advance_commit(out);
    }

    fn append_local(&mut self, cmd: Command, out: &mut RaftOut) -> u64 {
        let entry = Entry {
            term: self.term,
            cmd,
        };
        self.log.push(entry.clone());
        let index = self.last_index();
        // Consecutive appends in one step share one record.
        if !self.cfg.has_bug("no-fsync") {
            if let Some(Record::Entries {
                index: first,
                entries,
            }) = out.persist.last_mut()
            {
                if *first + entries.len() as u64 == index {
                    entries.push(entry);
                    return index;
                }
            }
        }
        self.persist(
            out,
            Record::Entries {
                index,
                entries: vec![entry],
            },
        );
        index
    }

    /// A new heartbeat round to every peer (carrying any unsent entries).
    fn broadcast(&mut self, now: Now, out: &mut RaftOut) {
        self.seq += 1;
        self.seq_sent_wall.insert(self.seq, now.wall_ms);
        self.want_round = false;
        let peers: Vec<NodeId> = self.cfg.peers.clone();
        for p in peers {
            self.send_append(&p, now, out);
        }
    }

    fn send_append(&mut self, peer: &NodeId, now: Now, out: &mut RaftOut) {
        let Some(pr) = self.progress.get(peer) else {
            return;
        };
        let next = pr.next;
        let msg = if next <= self.snap_index {
            // The entries the peer needs are compacted away: send the state instead, as of the
            // last applied entry (which is committed, so every future leader holds it).
            let last_index = self.applied;
            let last_term = self.term_at(last_index).unwrap_or(self.snap_term);
            let m = Msg::Snapshot {
                term: self.term,
                last_index,
                last_term,
                kv: self.kv.clone(),
                seq: self.seq,
            };
            let pr = self.progress.get_mut(peer).expect("peer exists");
            pr.next = last_index + 1;
            m
        } else {
            let prev_index = next - 1;
            let prev_term = self.term_at(prev_index).unwrap_or(0);
            let end = self
                .last_index()
                .min(prev_index + self.tun.max_append_entries as u64);
            let entries: Vec<Entry> = ((prev_index + 1)..=end)
                .filter_map(|i| self.entry(i).cloned())
                .collect();
            let pr = self.progress.get_mut(peer).expect("peer exists");
            pr.next = end + 1;
            Msg::Append {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit,
                seq: self.seq,
            }
        };
        if let Some(pr) = self.progress.get_mut(peer) {
            pr.last_sent_mono = now.mono_ms;
        }
        out.send.push((peer.clone(), msg));
    }

    fn advance_commit(&mut self, out: &mut RaftOut) {
        if self.role != Role::Leader {
            return;
        }
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[self.majority() - 1];
        if n > self.commit {
            // Figure 8 of the Raft paper: an entry from an earlier term may be on a majority
            // and still be overwritten, so only current-term entries commit by counting.
            let current = self.term_at(n) == Some(self.term);
            if current || self.cfg.has_bug("commit-old-term") {
                if !current {
                    tracing::warn!(
                        node = %self.cfg.id, term = self.term, index = n,
                        entry_term = ?self.term_at(n),
                        "commit-old-term: committing an earlier term's entry by counting replicas"
                    );
                }
                self.commit = n;
            }
        }
        self.apply(out);
    }

    fn apply(&mut self, out: &mut RaftOut) {
        while self.applied < self.commit {
            let index = self.applied + 1;
            let Some(entry) = self.entry(index).cloned() else {
                break;
            };
            self.applied = index;
            let result = match &entry.cmd {
                Command::Noop => None,
                Command::Op(op) => Some(self.kv.apply(op)),
            };
            if let Some(p) = self.pending.remove(&index) {
                let resp = match result {
                    Some(applied) if p.term == entry.term => applied.into_response(0),
                    _ => error(
                        ErrorCode::LeadershipLost,
                        false,
                        "another entry took this log slot",
                    ),
                };
                self.answer(p.waiter, resp, out);
            }
        }
        self.serve_reads(out);
        self.maybe_compact(out);
    }

    fn maybe_compact(&mut self, out: &mut RaftOut) {
        if self.log.len() <= self.tun.snapshot_threshold || self.applied <= self.snap_index {
            return;
        }
        let last_index = self.applied;
        let last_term = self.term_at(last_index).unwrap_or(self.snap_term);
        self.install_snapshot_state(last_index, last_term, self.kv.clone());
        self.write_compacted(out);
    }

    /// Replaces the durable log by the current state (snapshot, hard state, remaining entries).
    fn write_compacted(&self, out: &mut RaftOut) {
        if self.cfg.has_bug("no-fsync") {
            return;
        }
        let mut recs = vec![
            Record::Snapshot {
                last_index: self.snap_index,
                last_term: self.snap_term,
                kv: self.kv_at_snapshot(),
            },
            Record::Hard {
                term: self.term,
                vote: self.vote.clone(),
            },
        ];
        if !self.log.is_empty() {
            recs.push(Record::Entries {
                index: self.snap_index + 1,
                entries: self.log.clone(),
            });
        }
        // Everything persisted earlier in this step is contained in the compacted state.
        out.persist.clear();
        out.compact = Some(recs);
    }

    /// Snapshots are only ever taken at `applied` (or installed, which sets `applied`), so the
    /// live store is the snapshot's state whenever this is called.
    fn kv_at_snapshot(&self) -> KvStore {
        debug_assert_eq!(self.applied, self.snap_index);
        self.kv.clone()
    }

    fn quorum_seq(&self) -> u64 {
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.push(self.seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked[self.majority() - 1]
    }

    fn serve_reads(&mut self, out: &mut RaftOut) {
        if self.role != Role::Leader || self.reads.is_empty() {
            return;
        }
        let confirmed = self.quorum_seq();
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|r| r.seq <= confirmed && r.read_index <= applied);
        self.reads = waiting;
        for r in ready {
            let v = self.kv.get(r.key).cloned();
            self.answer(r.waiter, Response::value(0, v), out);
        }
        if self.reads.iter().any(|r| r.seq > self.seq) {
            self.want_round = true;
        }
    }

    fn update_lease(&mut self) {
        let q = self.quorum_seq();
        if let Some(&sent) = self.seq_sent_wall.get(&q) {
            self.lease_until_wall = self.lease_until_wall.max(sent + self.tun.lease_ms);
        }
        // Rounds older than the confirmed one are no longer needed.
        self.seq_sent_wall = self.seq_sent_wall.split_off(&q);
    }

    /// A request arriving at (or forwarded to) this node.
    fn handle_request(&mut self, now: Now, waiter: Waiter, op: ClientOp, out: &mut RaftOut) {
        if self.role != Role::Leader {
            match (&self.leader, &waiter) {
                (Some(leader), Waiter::Local(token)) if *leader != self.cfg.id => {
                    let fid = self.next_fid;
                    self.next_fid += 1;
                    let deadline = now.mono_ms + self.tun.request_timeout_ms + 500;
                    self.forwarded.insert(fid, (*token, deadline));
                    out.send.push((leader.clone(), Msg::Forward { fid, op }));
                }
                _ => {
                    let resp = self.not_leader_error();
                    self.answer(waiter, resp, out);
                }
            }
            return;
        }
        let deadline = now.mono_ms + self.tun.request_timeout_ms;
        if let ClientOp::Read { key } = op {
            if self.cfg.has_bug("stale-read") {
                // The bug: answer from local state without confirming leadership.
                let v = self.kv.get(key).cloned();
                self.answer(waiter, Response::value(0, v), out);
                return;
            }
            let read_index = self.commit.max(self.noop_index);
            let lease_ok = self.cfg.read_mode == ReadMode::Lease
                && now.wall_ms < self.lease_until_wall
                && self.applied >= read_index;
            if lease_ok {
                let v = self.kv.get(key).cloned();
                self.answer(waiter, Response::value(0, v), out);
                return;
            }
            self.reads.push(PendingRead {
                waiter,
                key,
                read_index,
                seq: self.seq + 1,
                deadline,
            });
            self.want_round = true;
            // A single-node cluster confirms at once.
            if self.cfg.peers.is_empty() {
                self.broadcast(now, out);
                self.serve_reads(out);
            }
            return;
        }
        let index = self.append_local(Command::Op(op), out);
        self.pending.insert(
            index,
            Pending {
                term: self.term,
                waiter,
                deadline,
            },
        );
        if self.cfg.peers.is_empty() {
            self.advance_commit(out);
        }
    }

    fn on_append(
        &mut self,
        now: Now,
        from: NodeId,
        m: (u64, u64, u64, Vec<Entry>, u64, u64),
        out: &mut RaftOut,
    ) {
        let (term, prev_index, prev_term, entries, leader_commit, seq) = m;
        if term < self.term {
            out.send.push((
                from,
                Msg::AppendReply {
                    term: self.term,
                    ok: false,
                    index: 0,
                    seq,
                },
            ));
            return;
        }
        self.observe_term(term, now, out);
        self.accept_leader(&from, now, out);
        let reply = |ok: bool, index: u64| Msg::AppendReply {
            term,
            ok,
            index,
            seq,
        };
        if prev_index > self.last_index() {
            out.send.push((from, reply(false, self.last_index())));
            return;
        }
        if prev_index >= self.snap_index {
            let mine = self.term_at(prev_index);
            if mine != Some(prev_term) {
                // Skip back over the whole conflicting term in one round trip.
                let conflict = mine.unwrap_or(0);
                let mut hint = prev_index - 1;
                while hint > self.snap_index && self.term_at(hint) == Some(conflict) {
                    hint -= 1;
                }
                out.send
                    .push((from, reply(false, hint.max(self.snap_index))));
                return;
            }
        }
        let n = entries.len() as u64;
        let mut new: Option<(u64, Vec<Entry>)> = None;
        for (k, e) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + k as u64;
            if let Some((_, ref mut v)) = new {
                v.push(e);
                continue;
            }
            if index <= self.snap_index {
                continue;
            }
            match self.term_at(index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if index <= self.commit {
                        tracing::error!(node = %self.cfg.id, index, "overwriting a committed entry");
                    }
                    self.log.truncate((index - self.snap_index - 1) as usize);
                    new = Some((index, vec![e]));
                }
                None => new = Some((index, vec![e])),
            }
        }
        if let Some((index, v)) = new {
            self.log.extend(v.iter().cloned());
            self.persist(out, Record::Entries { index, entries: v });
        }
        let last_new = prev_index + n;
        if leader_commit > self.commit {
            self.commit = self.commit.max(leader_commit.min(last_new));
        }
        self.apply(out);
        out.send
            .push((from, reply(true, last_new.max(self.snap_index))));
    }

    fn accept_leader(&mut self, from: &NodeId, now: Now, out: &mut RaftOut) {
        if self.role != Role::Follower {
            self.become_follower(now, out);
        }
        self.leader = Some(from.clone());
        self.last_leader_contact = Some(now.mono_ms);
        self.reset_election_timer(now);
    }

    fn on_reply(&mut self, now: Now, from: NodeId, m: (u64, bool, u64, u64), out: &mut RaftOut) {
        let (term, ok, index, seq) = m;
        self.observe_term(term, now, out);
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let last = self.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.last_ack_mono = now.mono_ms;
        pr.acked_seq = pr.acked_seq.max(seq);
        let resend;
        if ok {
            pr.matched = pr.matched.max(index);
            pr.next = pr.next.max(pr.matched + 1);
            resend = pr.next <= last;
        } else {
            pr.next = (index + 1).min(last + 1);
            pr.matched = pr.matched.min(index);
            resend = true;
        }
        if resend {
            self.send_append(&from, now, out);
        }
        self.update_lease();
        self.advance_commit(out);
    }

    fn on_vote_request(&mut self, now: Now, from: NodeId, m: (u64, u64, u64), out: &mut RaftOut) {
        let (term, last_index, last_term) = m;
        // A follower that heard from a live leader recently ignores candidates: this keeps a
        // partitioned node from deposing a working leader, and is what makes leases sound.
        let recent = self
            .last_leader_contact
            .is_some_and(|t| now.mono_ms < t + self.tun.election_min_ms);
        if term > self.term && self.role == Role::Follower && self.leader.is_some() && recent {
            return;
        }
        self.observe_term(term, now, out);
        let up_to_date = (last_term, last_index) >= (self.last_term(), self.last_index());
        let free = self.vote.is_none() || self.vote.as_ref() == Some(&from);
        let granted = term == self.term && free && up_to_date;
        if granted {
            self.vote = Some(from.clone());
            self.persist_hard(out);
            self.reset_election_timer(now);
        }
        out.send.push((
            from,
            Msg::Vote {
                term: self.term,
                granted,
            },
        ));
    }

    fn on_snapshot(
        &mut self,
        now: Now,
        from: NodeId,
        m: (u64, u64, u64, KvStore, u64),
        out: &mut RaftOut,
    ) {
        let (term, last_index, last_term, kv, seq) = m;
        if term < self.term {
            out.send.push((
                from,
                Msg::AppendReply {
                    term: self.term,
                    ok: false,
                    index: 0,
                    seq,
                },
            ));
            return;
        }
        self.observe_term(term, now, out);
        self.accept_leader(&from, now, out);
        if last_index > self.commit {
            self.install_snapshot_state(last_index, last_term, kv);
            self.commit = last_index;
            self.applied = last_index;
            self.write_compacted(out);
        }
        out.send.push((
            from,
            Msg::AppendReply {
                term,
                ok: true,
                index: last_index,
                seq,
            },
        ));
    }
}

impl StateMachine for Raft {
    type Msg = Msg;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>, now: Now) -> Self {
        Raft::recover_with(config, Tuning::default(), records, now)
    }

    fn on_tick(&mut self, now: Now, out: &mut RaftOut) {
        // Requests passed on to a leader that never answered.
        let expired: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, (_, d))| *d <= now.mono_ms)
            .map(|(f, _)| *f)
            .collect();
        for fid in expired {
            if let Some((token, _)) = self.forwarded.remove(&fid) {
                out.reply.push((
                    token,
                    error(
                        ErrorCode::Timeout,
                        false,
                        "the leader did not answer in time",
                    ),
                ));
            }
        }
        if self.role != Role::Leader {
            if now.mono_ms >= self.election_deadline {
                self.start_election(now, out);
            }
            return;
        }
        // Check quorum: a leader cut off from a majority for a while steps down.
        let horizon = now.mono_ms.saturating_sub(2 * self.tun.election_max_ms);
        let live = 1 + self
            .progress
            .values()
            .filter(|p| p.last_ack_mono >= horizon)
            .count();
        if live < self.majority() && now.mono_ms >= self.leader_since + 2 * self.tun.election_max_ms
        {
            tracing::info!(node = %self.cfg.id, term = self.term, "lost contact with a majority; stepping down");
            self.become_follower(now, out);
            return;
        }
        // Expire proposals and reads.
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now.mono_ms)
            .map(|(i, _)| *i)
            .collect();
        for i in late {
            let p = self.pending.remove(&i).expect("present");
            self.answer(
                p.waiter,
                error(ErrorCode::Timeout, false, "not committed in time"),
                out,
            );
        }
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|r| r.deadline <= now.mono_ms);
        self.reads = keep;
        for r in late {
            self.answer(
                r.waiter,
                error(ErrorCode::Timeout, false, "read not confirmed in time"),
                out,
            );
        }
        let heartbeat_due = self
            .progress
            .values()
            .any(|p| now.mono_ms >= p.last_sent_mono + self.tun.heartbeat_ms);
        if self.want_round || heartbeat_due {
            self.broadcast(now, out);
        } else {
            let last = self.last_index();
            let behind: Vec<NodeId> = self
                .progress
                .iter()
                .filter(|(_, p)| p.next <= last)
                .map(|(n, _)| n.clone())
                .collect();
            for p in behind {
                self.send_append(&p, now, out);
            }
        }
    }

    fn on_message(&mut self, now: Now, from: NodeId, msg: Msg, out: &mut RaftOut) {
        match msg {
            Msg::RequestVote {
                term,
                last_index,
                last_term,
            } => self.on_vote_request(now, from, (term, last_index, last_term), out),
            Msg::Vote { term, granted } => {
                self.observe_term(term, now, out);
                if self.role == Role::Candidate && term == self.term && granted {
                    self.votes.insert(from);
                    if self.votes.len() >= self.majority() {
                        self.become_leader(now, out);
                    }
                }
            }
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                seq,
            } => self.on_append(
                now,
                from,
                (term, prev_index, prev_term, entries, commit, seq),
                out,
            ),
            Msg::AppendReply {
                term,
                ok,
                index,
                seq,
            } => self.on_reply(now, from, (term, ok, index, seq), out),
            Msg::Snapshot {
                term,
                last_index,
                last_term,
                kv,
                seq,
            } => self.on_snapshot(now, from, (term, last_index, last_term, kv, seq), out),
            Msg::Forward { fid, op } => {
                // The network may deliver a message twice; a command must be proposed once.
                if self.role == Role::Leader {
                    if self.seen_forwards.len() > 100_000 {
                        self.seen_forwards.clear();
                    }
                    if !self.seen_forwards.insert((from.clone(), fid)) {
                        return;
                    }
                }
                self.handle_request(now, Waiter::Remote(from, fid), op, out);
            }
            Msg::ForwardReply { fid, response } => {
                if let Some((token, _)) = self.forwarded.remove(&fid) {
                    out.reply.push((token, response));
                }
            }
        }
    }

    fn on_request(&mut self, now: Now, token: ClientToken, op: ClientOp, out: &mut RaftOut) {
        self.handle_request(now, Waiter::Local(token), op, out);
    }

    fn status(&self, now: Now) -> NodeStatus {
        NodeStatus {
            node: self.cfg.id.clone(),
            role: match self.role {
                Role::Follower => "follower",
                Role::Candidate => "candidate",
                Role::Leader => "leader",
            }
            .to_string(),
            term: self.term,
            leader: self.leader.clone(),
            time_ms: now.wall_ms,
            commit_index: self.commit,
            protocol: "raft".to_string(),
        }
    }
}
