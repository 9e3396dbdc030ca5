//! A deterministic simulated cluster for the Multi-Paxos state machine.
//!
//! One seeded RNG drives everything: message loss, duplication and delay (random delays reorder
//! messages), node crashes (a crashed node restarts from exactly the records it persisted),
//! isolated nodes and cut links, and client requests. No sockets, no sleeps: simulated time jumps
//! from event to event.
//!
//! While it runs, an observer checks safety after every step and collects [`Violation`]s:
//! - at most one node, in one incarnation, ever leads a given ballot;
//! - no slot is decided with two different values, across all nodes and restarts (every
//!   decision is seen in the `Decide` records a node persists);
//! - every node's applied store equals the store obtained by replaying the decided log to the
//!   same slot (replicas agree on common prefixes);
//! - a write acknowledged ok is already in the decided log, and a write that got a definite
//!   failure never enters it.
//!
//! After the faulty phase every node is restarted and the network heals; without bugs the run
//! must then converge: all nodes apply the same slots and hold equal stores.
#![allow(dead_code)]

pub mod script;

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use targets::kv::KvStore;
use targets::paxos::{Ballot, Paxos, PaxosMsg, Record, Role, Slot, Tuning, Value};
use targets::protocol::{ClientOp, ErrorCode, Response};
use targets::sm::{Config, Now, Out, ReadMode, StateMachine};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub bugs: Vec<&'static str>,
    /// Length of the faulty phase with client traffic.
    pub duration_ms: u64,
    /// Quiet phase afterwards: all nodes up, no loss, no clients.
    pub settle_ms: u64,
    pub drop: f64,
    pub duplicate: f64,
    pub max_delay_ms: u64,
    /// Mean time between crashes (0: none).
    pub crash_every_ms: u64,
    pub max_down_ms: u64,
    /// Mean time between partitions: one node isolated, or one link cut (0: never).
    pub partition_every_ms: u64,
    pub client_every_ms: u64,
    pub tick_ms: u64,
    pub tuning: Tuning,
    /// Send every message and record through JSON, as the real runtime does.
    pub json: bool,
    /// Print every event to stderr (for debugging one seed).
    pub trace: bool,
    /// This node is crashed for good when the quiet phase starts (the others must converge).
    pub down_for_good: Option<usize>,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            nodes: 3,
            bugs: Vec::new(),
            duration_ms: 2_000,
            settle_ms: 2_500,
            drop: 0.05,
            duplicate: 0.02,
            max_delay_ms: 20,
            crash_every_ms: 400,
            max_down_ms: 600,
            partition_every_ms: 700,
            client_every_ms: 15,
            tick_ms: 10,
            tuning: Tuning {
                heartbeat_ms: 50,
                election_timeout_min_ms: 150,
                election_timeout_max_ms: 300,
                retry_ms: 60,
                request_timeout_ms: 1_000,
                max_inflight_slots: 8,
                max_batch: 4,
                compact_every: 16,
                catchup_max_entries: 10,
            },
            json: false,
            trace: false,
            down_for_good: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    TwoLeaders {
        ballot: Ballot,
        first: String,
        second: String,
    },
    ConflictingDecision {
        slot: Slot,
        first: (String, Value),
        second: (String, Value),
    },
    StoreDiverges {
        node: String,
        slot: Slot,
    },
    AckedBeforeDecided {
        token: u64,
        op: ClientOp,
    },
    DefiniteFailureApplied {
        token: u64,
        op: ClientOp,
        message: String,
    },
    DuplicateReply {
        token: u64,
    },
    NoConvergence {
        detail: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::TwoLeaders {
                ballot,
                first,
                second,
            } => write!(f, "ballot {ballot:?} led by {first} and {second}"),
            Violation::ConflictingDecision {
                slot,
                first,
                second,
            } => write!(
                f,
                "slot {slot} decided as {:?} on {} and as {:?} on {}",
                first.1, first.0, second.1, second.0
            ),
            Violation::StoreDiverges { node, slot } => {
                write!(
                    f,
                    "{node}'s store after slot {slot} differs from the decided log"
                )
            }
            Violation::AckedBeforeDecided { token, op } => {
                write!(
                    f,
                    "request {token} ({op:?}) acknowledged before it was decided"
                )
            }
            Violation::DefiniteFailureApplied { token, op, message } => {
                write!(
                    f,
                    "request {token} ({op:?}) failed definitely ({message}) but was decided"
                )
            }
            Violation::DuplicateReply { token } => write!(f, "request {token} answered twice"),
            Violation::NoConvergence { detail } => write!(f, "no convergence: {detail}"),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub violations: Vec<Violation>,
    pub events: u64,
    pub decided_slots: u64,
    pub acked: u64,
    pub crashes: u64,
    pub elections: u64,
    /// The most records any node's log held at once.
    pub max_log: usize,
}

impl SimReport {
    pub fn has(&self, pred: impl Fn(&Violation) -> bool) -> bool {
        self.violations.iter().any(pred)
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: Box<PaxosMsg>,
    },
    Tick(usize),
    Client,
    Crash,
    Restart(usize),
    Partition,
    Settle,
}

struct SimNode {
    id: String,
    config: Config,
    sm: Option<Paxos>,
    log: Vec<Record>,
    /// How many times the node was started: a ballot may be led by one incarnation only.
    incarnation: u32,
    /// The longest the log has been.
    max_log: usize,
}

/// The decided log as the observer sees it, with the store replayed after each slot.
struct DecidedLog {
    values: BTreeMap<Slot, (String, Value)>,
    /// `stores[i]`: the store after applying slots `1..=i`.
    stores: Vec<KvStore>,
    /// Unique write values (write/cas targets) decided so far.
    written: BTreeSet<i64>,
}

impl DecidedLog {
    fn new() -> Self {
        DecidedLog {
            values: BTreeMap::new(),
            stores: vec![KvStore::default()],
            written: BTreeSet::new(),
        }
    }

    fn observe(&mut self, node: &str, slot: Slot, value: &Value, violations: &mut Vec<Violation>) {
        match self.values.get(&slot) {
            Some((first, known)) if known != value => {
                violations.push(Violation::ConflictingDecision {
                    slot,
                    first: (first.clone(), known.clone()),
                    second: (node.to_string(), value.clone()),
                })
            }
            Some(_) => {}
            None => {
                for c in &value.commands {
                    if let Some(v) = written_value(&c.op) {
                        self.written.insert(v);
                    }
                }
                self.values.insert(slot, (node.to_string(), value.clone()));
                while let Some((_, v)) = self.values.get(&(self.stores.len() as Slot)) {
                    let mut kv = self.stores.last().expect("non-empty").clone();
                    for c in &v.commands {
                        kv.apply(&c.op);
                    }
                    self.stores.push(kv);
                }
            }
        }
    }

    /// The store after `slot`, if the observer knows every slot up to it.
    fn store_at(&self, slot: Slot) -> Option<&KvStore> {
        self.stores.get(slot as usize)
    }
}

fn written_value(op: &ClientOp) -> Option<i64> {
    match op {
        ClientOp::Write { value, .. } => Some(*value),
        ClientOp::Cas { to, .. } => Some(*to),
        _ => None,
    }
}

pub struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    nodes: Vec<SimNode>,
    settled: bool,
    /// Cut links `(a, b)` (both directions) and when they heal.
    cuts: Vec<(usize, usize, u64)>,
    decided: DecidedLog,
    leaders: BTreeMap<Ballot, (String, u32)>,
    requests: BTreeMap<u64, ClientOp>,
    answered: BTreeSet<u64>,
    definitely_failed: Vec<(u64, ClientOp, String)>,
    /// Node stores found ahead of the observer's contiguous log, checked at the end.
    deferred: Vec<(String, Slot, KvStore)>,
    next_token: u64,
    next_value: i64,
    report: SimReport,
}

pub fn run(cfg: SimConfig) -> SimReport {
    Sim::new(cfg).run()
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let ids: Vec<String> = (0..cfg.nodes).map(|i| format!("n{}", i + 1)).collect();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let nodes = ids
            .iter()
            .map(|id| {
                let config = Config {
                    id: id.clone(),
                    peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                    bugs: cfg.bugs.iter().map(|b| b.to_string()).collect(),
                    read_mode: ReadMode::Quorum,
                    seed: rng.random(),
                };
                SimNode {
                    id: id.clone(),
                    config,
                    sm: None,
                    log: Vec::new(),
                    incarnation: 0,
                    max_log: 0,
                }
            })
            .collect();
        Sim {
            cfg,
            rng,
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            nodes,
            settled: false,
            cuts: Vec::new(),
            decided: DecidedLog::new(),
            leaders: BTreeMap::new(),
            requests: BTreeMap::new(),
            answered: BTreeSet::new(),
            definitely_failed: Vec::new(),
            deferred: Vec::new(),
            next_token: 1,
            next_value: 1,
            report: SimReport::default(),
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn now_for(&self, node: usize) -> Now {
        Now {
            mono_ms: self.now,
            wall_ms: 1_700_000_000_000 + self.now + node as u64 * 7,
        }
    }

    fn exp(&mut self, mean: u64) -> u64 {
        let u: f64 = self.rng.random_range(0.0001..1.0);
        ((-u.ln()) * mean as f64) as u64 + 1
    }

    pub fn run(mut self) -> SimReport {
        for i in 0..self.nodes.len() {
            self.start(i);
            let offset = self.rng.random_range(0..self.cfg.tick_ms);
            self.schedule(offset, Event::Tick(i));
        }
        self.schedule(1, Event::Client);
        if self.cfg.crash_every_ms > 0 {
            let at = self.exp(self.cfg.crash_every_ms);
            self.schedule(at, Event::Crash);
        }
        if self.cfg.partition_every_ms > 0 {
            let at = self.exp(self.cfg.partition_every_ms);
            self.schedule(at, Event::Partition);
        }
        self.schedule(self.cfg.duration_ms, Event::Settle);
        let end = self.cfg.duration_ms + self.cfg.settle_ms;
        while let Some(((at, _), event)) = self.events.pop_first() {
            if at > end {
                break;
            }
            self.now = at;
            self.report.events += 1;
            if self.cfg.trace {
                eprintln!("{at:>6} {event:?}");
            }
            self.handle(event);
        }
        self.finish()
    }

    fn start(&mut self, i: usize) {
        let now = self.now_for(i);
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        let records = if self.cfg.json {
            node.log.iter().map(roundtrip).collect()
        } else {
            node.log.clone()
        };
        node.sm = Some(Paxos::recover_with(
            node.config.clone(),
            self.cfg.tuning.clone(),
            records,
            now,
        ));
        self.check_node(i);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick(i) => {
                self.schedule(self.now + self.cfg.tick_ms, Event::Tick(i));
                let now = self.now_for(i);
                self.step(i, |sm, out| sm.on_tick(now, out));
            }
            Event::Deliver { to, from, msg } => {
                if self.cut(from, to) {
                    return;
                }
                let now = self.now_for(to);
                let from_id = self.nodes[from].id.clone();
                self.step(to, |sm, out| sm.on_message(now, from_id, *msg, out));
            }
            Event::Client => {
                if self.settled {
                    return;
                }
                let at = self.now + self.exp(self.cfg.client_every_ms);
                self.schedule(at, Event::Client);
                self.client_request();
            }
            Event::Crash => {
                if self.settled {
                    return;
                }
                let at = self.now + self.exp(self.cfg.crash_every_ms);
                self.schedule(at, Event::Crash);
                let i = self.rng.random_range(0..self.nodes.len());
                if self.nodes[i].sm.take().is_some() {
                    self.report.crashes += 1;
                    let down = self.rng.random_range(1..=self.cfg.max_down_ms);
                    self.schedule(self.now + down, Event::Restart(i));
                }
            }
            Event::Restart(i) => {
                let stays_down = self.settled && self.cfg.down_for_good == Some(i);
                if self.nodes[i].sm.is_none() && !stays_down {
                    self.start(i);
                }
            }
            Event::Partition => {
                if self.settled {
                    return;
                }
                let at = self.now + self.exp(self.cfg.partition_every_ms);
                self.schedule(at, Event::Partition);
                let n = self.nodes.len();
                let i = self.rng.random_range(0..n);
                let until = self.now + self.rng.random_range(100..800);
                if self.rng.random_bool(0.5) {
                    // Isolate node i.
                    self.cuts
                        .extend((0..n).filter(|j| *j != i).map(|j| (i, j, until)));
                } else if n > 1 {
                    // Cut one link: both ends still reach everybody else.
                    let j = (i + self.rng.random_range(1..n)) % n;
                    self.cuts.push((i, j, until));
                }
            }
            Event::Settle => {
                self.settled = true;
                self.cuts.clear();
                for i in 0..self.nodes.len() {
                    if self.cfg.down_for_good == Some(i) {
                        self.nodes[i].sm = None;
                    } else if self.nodes[i].sm.is_none() {
                        self.start(i);
                    }
                }
            }
        }
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.cuts.iter().any(|(a, b, until)| {
            self.now < *until && ((*a, *b) == (from, to) || (*a, *b) == (to, from))
        })
    }

    fn client_request(&mut self) {
        let i = self.rng.random_range(0..self.nodes.len());
        if self.nodes[i].sm.is_none() {
            return;
        }
        let key = self.rng.random_range(0..4u64);
        let op = match self.rng.random_range(0..10) {
            0..=4 => {
                self.next_value += 1;
                ClientOp::Write {
                    key,
                    value: self.next_value,
                }
            }
            5..=7 => ClientOp::Read { key },
            _ => {
                self.next_value += 1;
                let from = self
                    .rng
                    .random_range((self.next_value - 6).max(0)..self.next_value);
                ClientOp::Cas {
                    key,
                    from,
                    to: self.next_value,
                }
            }
        };
        let token = self.next_token;
        self.next_token += 1;
        self.requests.insert(token, op.clone());
        if self.cfg.trace {
            eprintln!("       request {token} to {}: {op:?}", self.nodes[i].id);
        }
        let now = self.now_for(i);
        self.step(i, |sm, out| sm.on_request(now, token, op, out));
    }

    /// Runs one step of node `i` and performs its effects like the real runtime: first the log
    /// (compaction, then appends), then messages and replies.
    fn step(&mut self, i: usize, f: impl FnOnce(&mut Paxos, &mut Out<PaxosMsg, Record>)) {
        let Some(sm) = self.nodes[i].sm.as_mut() else {
            return;
        };
        let mut out = Out::default();
        f(sm, &mut out);
        let id = self.nodes[i].id.clone();
        if let Some(records) = out.compact.take() {
            self.observe_records(&id, &records);
            self.nodes[i].log = records;
        }
        self.observe_records(&id, &out.persist);
        self.nodes[i].log.append(&mut out.persist);
        let len = self.nodes[i].log.len();
        self.nodes[i].max_log = self.nodes[i].max_log.max(len);
        self.report.max_log = self.report.max_log.max(len);
        for (to, msg) in out.send {
            let Some(j) = self.nodes.iter().position(|n| n.id == to) else {
                panic!("{id} sent to unknown node {to}");
            };
            let msg = if self.cfg.json { roundtrip(&msg) } else { msg };
            let (drop, dup) = if self.settled {
                (0.0, 0.0)
            } else {
                (self.cfg.drop, self.cfg.duplicate)
            };
            if self.rng.random_bool(drop) {
                continue;
            }
            let copies = if self.rng.random_bool(dup) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = self.rng.random_range(1..=self.cfg.max_delay_ms);
                self.schedule(
                    self.now + delay,
                    Event::Deliver {
                        to: j,
                        from: i,
                        msg: Box::new(msg.clone()),
                    },
                );
            }
        }
        if self.cfg.trace {
            for r in &self.nodes[i].log[self.nodes[i].log.len().saturating_sub(0)..] {
                let _ = r;
            }
            for (token, response) in &out.reply {
                eprintln!("       {id} replies {token}: {response:?}");
            }
        }
        for (token, response) in out.reply {
            self.observe_reply(token, response);
        }
        self.check_node(i);
    }

    fn observe_records(&mut self, node: &str, records: &[Record]) {
        for r in records {
            match r {
                Record::Decide { slot, value } => {
                    self.decided
                        .observe(node, *slot, value, &mut self.report.violations)
                }
                Record::Snapshot { slot, kv } => match self.decided.store_at(*slot) {
                    Some(expected) if expected != kv => {
                        self.report.violations.push(Violation::StoreDiverges {
                            node: node.to_string(),
                            slot: *slot,
                        })
                    }
                    Some(_) => {}
                    None => self.deferred.push((node.to_string(), *slot, kv.clone())),
                },
                _ => {}
            }
        }
    }

    fn observe_reply(&mut self, token: u64, response: Response) {
        if !self.answered.insert(token) {
            self.report
                .violations
                .push(Violation::DuplicateReply { token });
            return;
        }
        let op = self.requests[&token].clone();
        if response.ok {
            if let Some(v) = written_value(&op) {
                self.report.acked += 1;
                if !self.decided.written.contains(&v) {
                    self.report
                        .violations
                        .push(Violation::AckedBeforeDecided { token, op });
                }
            }
            return;
        }
        let error = response.error.expect("a failed response carries an error");
        let never_proposed = matches!(
            error.code,
            ErrorCode::NotLeader | ErrorCode::NoLeader | ErrorCode::Unavailable
        );
        if error.definite && never_proposed {
            self.definitely_failed.push((token, op, error.message));
        }
    }

    fn check_node(&mut self, i: usize) {
        let Some(sm) = self.nodes[i].sm.as_ref() else {
            return;
        };
        let id = &self.nodes[i].id;
        if sm.role() == Role::Leader {
            let ballot = sm.ballot().clone();
            if ballot.node != *id {
                self.report.violations.push(Violation::TwoLeaders {
                    ballot: ballot.clone(),
                    first: ballot.node.clone(),
                    second: id.clone(),
                });
            }
            let leader = (id.clone(), self.nodes[i].incarnation);
            match self.leaders.get(&ballot) {
                Some(first) if *first != leader => {
                    self.report.violations.push(Violation::TwoLeaders {
                        ballot,
                        first: format!("{} (start {})", first.0, first.1),
                        second: format!("{} (start {})", leader.0, leader.1),
                    })
                }
                Some(_) => {}
                None => {
                    self.report.elections += 1;
                    self.leaders.insert(ballot, leader);
                }
            }
        }
        let applied = sm.applied();
        match self.decided.store_at(applied) {
            Some(expected) if expected != sm.kv() => {
                self.report.violations.push(Violation::StoreDiverges {
                    node: id.clone(),
                    slot: applied,
                })
            }
            Some(_) => {}
            None => self.deferred.push((id.clone(), applied, sm.kv().clone())),
        }
    }

    fn finish(mut self) -> SimReport {
        for (node, slot, kv) in std::mem::take(&mut self.deferred) {
            if let Some(expected) = self.decided.store_at(slot) {
                if *expected != kv {
                    self.report
                        .violations
                        .push(Violation::StoreDiverges { node, slot });
                }
            }
        }
        for (token, op, message) in std::mem::take(&mut self.definitely_failed) {
            if written_value(&op).is_some_and(|v| self.decided.written.contains(&v)) {
                self.report
                    .violations
                    .push(Violation::DefiniteFailureApplied { token, op, message });
            }
        }
        self.report.decided_slots = self.decided.values.len() as u64;
        if self.cfg.bugs.is_empty() {
            let applied: Vec<(String, Slot)> = self
                .nodes
                .iter()
                .filter_map(|n| Some((n.id.clone(), n.sm.as_ref()?.applied())))
                .collect();
            let top = self.decided.stores.len().saturating_sub(1) as Slot;
            if applied.iter().any(|(_, a)| *a != top) {
                self.report.violations.push(Violation::NoConvergence {
                    detail: format!("applied slots {applied:?}, decided log reaches {top}"),
                });
            }
        }
        self.report
    }
}

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let text = serde_json::to_string(value).expect("serialises");
    serde_json::from_str(&text).expect("deserialises")
}
