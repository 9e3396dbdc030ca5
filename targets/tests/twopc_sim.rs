//! Randomised, deterministic schedules of the 2PC store under a simulated network.
//!
//! No sockets, no sleeps, no threads: a seeded RNG decides message loss, duplication, delay
//! (and so reordering), crashes (restarts recover from exactly the node's persisted records,
//! including crashes between a step's fsync and its sends) and the client workload. The workload
//! is a bank over list-append: a transfer of `x` from account `a` to `b` appends `-x` to `a`
//! and `+x` to `b` (each tagged with the transfer's id), and a read transaction reads every
//! account. Every balance starts at 0, so every committed read must total 0.
use std::collections::{BTreeMap, BTreeSet};
use targets::protocol::{ClientOp, ErrorCode, Key, MicroF, MicroOp, Response, Val};
use targets::sm::{Config, NodeId, Now, Out, ReadMode, StateMachine};
use targets::twopc::{
    members, owner_of, TwoPc, TwoPcMsg, TwoPcRecord, BUG_EARLY_UNLOCK, BUG_VOLATILE_PREPARE,
    COMPACT_AFTER_RECORDS,
};

/// xorshift64*: small, fast in debug builds and fully determined by the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Debug, Clone, Copy)]
struct Faults {
    loss: f64,
    duplicate: f64,
    max_delay_ms: u64,
    /// Per node and millisecond.
    crash: f64,
    /// Per step that persisted something: crash after the fsync, before anything was sent.
    crash_after_persist: f64,
    max_down_ms: u64,
    /// Per millisecond: cut one node off from all other nodes (clients still reach it).
    partition: f64,
    max_partition_ms: u64,
}

const CALM: Faults = Faults {
    loss: 0.0,
    duplicate: 0.0,
    max_delay_ms: 30,
    crash: 0.0,
    crash_after_persist: 0.0,
    max_down_ms: 0,
    partition: 0.0,
    max_partition_ms: 0,
};

const HOSTILE: Faults = Faults {
    loss: 0.05,
    duplicate: 0.05,
    max_delay_ms: 40,
    crash: 0.0004,
    crash_after_persist: 0.01,
    max_down_ms: 400,
    partition: 0.001,
    max_partition_ms: 600,
};

#[derive(Debug, Clone)]
struct Schedule {
    seed: u64,
    bugs: &'static [&'static str],
    faults: Faults,
    nodes: usize,
    accounts: u64,
    clients: usize,
    /// Length of the faulty, loaded phase; then the system heals and goes quiet.
    run_ms: u64,
    /// Share of transfers among new client operations (the rest read every account).
    transfer_share: f64,
    /// Chance per millisecond that an idle client starts its next operation.
    start_chance: f64,
    /// Round-trip every message and record through JSON (slow in debug builds).
    serde: bool,
}

impl Schedule {
    fn new(seed: u64, bugs: &'static [&'static str], faults: Faults) -> Schedule {
        Schedule {
            seed,
            bugs,
            faults,
            nodes: 3 + (seed % 3) as usize,
            accounts: 5,
            clients: 4,
            run_ms: 1_200,
            transfer_share: 0.7,
            start_chance: 0.05,
            serde: false,
        }
    }
}

const TICK_MS: u64 = 5;
const CLIENT_TIMEOUT_MS: u64 = 2_000;
const HEAL_LIMIT_MS: u64 = 10_000;

/// Something a harness would flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Anomaly {
    /// A committed read transaction saw balances not totalling 0.
    BankTotal { total: i64 },
    /// A committed read saw one half of a transfer but not the other.
    FracturedRead { transfer: i64 },
    /// A transfer the client saw commit is missing from the final state on some account.
    LostWrite { transfer: i64 },
    /// Final state holds one half of a transfer only (atomicity).
    PartialCommit { transfer: i64 },
    /// A transfer the client was told definitely aborted shows up.
    AbortedVisible { transfer: i64 },
    /// A transfer appears twice on an account.
    Duplicated { transfer: i64 },
    /// After healing, transactions stay in doubt or locks stay held.
    Stuck { detail: String },
}

impl Anomaly {
    fn kind(&self) -> &'static str {
        match self {
            Anomaly::BankTotal { .. } => "bank-total",
            Anomaly::FracturedRead { .. } => "fractured-read",
            Anomaly::LostWrite { .. } => "lost-write",
            Anomaly::PartialCommit { .. } => "partial-commit",
            Anomaly::AbortedVisible { .. } => "aborted-visible",
            Anomaly::Duplicated { .. } => "duplicated",
            Anomaly::Stuck { .. } => "stuck",
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    anomalies: BTreeSet<Anomaly>,
    committed_transfers: u64,
    committed_reads: u64,
    aborted: u64,
    indefinite: u64,
    crashes: u64,
    partitions: u64,
    compactions: u64,
    max_log_len: usize,
    messages: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Transfer { id: i64, keys: [Key; 2] },
    Read,
}

#[derive(Debug)]
enum Outcome {
    Ok(Box<Response>),
    Fail(ErrorCode),
    Info,
}

struct Pending {
    client: usize,
    node: usize,
    kind: Kind,
    sent_ms: u64,
}

struct Node {
    config: Config,
    sm: Option<TwoPc>,
    log: Vec<TwoPcRecord>,
    up_at: u64,
}

enum Event {
    Msg {
        from: usize,
        to: usize,
        msg: TwoPcMsg,
    },
}

struct Sim {
    s: Schedule,
    rng: Rng,
    faults: Faults,
    now: u64,
    nodes: Vec<Node>,
    ids: Vec<NodeId>,
    net: BTreeMap<(u64, u64), Event>,
    net_seq: u64,
    /// A node cut off from the others, and until when.
    isolated: Option<(usize, u64)>,
    pending: BTreeMap<u64, Pending>,
    busy: Vec<bool>,
    next_token: u64,
    next_transfer: i64,
    history: Vec<(Kind, Outcome)>,
    report: Report,
}

fn encode(transfer: i64, amount: i64) -> i64 {
    transfer * 100 + amount + 50
}

fn decode(v: i64) -> (i64, i64) {
    (v.div_euclid(100), v.rem_euclid(100) - 50)
}

fn now_of(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: 1_700_000_000_000 + ms,
    }
}

impl Sim {
    fn new(s: Schedule) -> Sim {
        let ids: Vec<NodeId> = (1..=s.nodes).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let config = Config {
                    id: id.clone(),
                    peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                    bugs: s.bugs.iter().map(|b| b.to_string()).collect(),
                    read_mode: ReadMode::Quorum,
                    seed: s.seed,
                };
                Node {
                    sm: Some(TwoPc::recover(config.clone(), Vec::new(), now_of(0))),
                    config,
                    log: Vec::new(),
                    up_at: 0,
                }
            })
            .collect();
        Sim {
            rng: Rng::new(s.seed),
            faults: s.faults,
            busy: vec![false; s.clients],
            s,
            now: 0,
            nodes,
            ids,
            net: BTreeMap::new(),
            net_seq: 0,
            isolated: None,
            pending: BTreeMap::new(),
            next_token: 1,
            next_transfer: 1,
            history: Vec::new(),
            report: Report::default(),
        }
    }

    fn index_of(&self, id: &NodeId) -> usize {
        self.ids.iter().position(|i| i == id).expect("known node")
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.isolated
            .is_some_and(|(n, until)| self.now < until && (n == a || n == b))
    }

    /// Performs a step's effects the way the runtime does: log first, then sends and replies.
    fn perform(&mut self, node: usize, out: Out<TwoPcMsg, TwoPcRecord>) {
        let wrote = out.compact.is_some() || !out.persist.is_empty();
        let n = &mut self.nodes[node];
        if let Some(snapshot) = out.compact {
            n.log = snapshot;
            self.report.compactions += 1;
        }
        n.log.extend(out.persist);
        self.report.max_log_len = self.report.max_log_len.max(n.log.len());
        if wrote && self.rng.chance(self.faults.crash_after_persist) {
            self.crash(node);
            return;
        }
        for (to, msg) in out.send {
            let to = self.index_of(&to);
            self.report.messages += 1;
            if self.cut(node, to) || self.rng.chance(self.faults.loss) {
                continue;
            }
            let copies = if self.rng.chance(self.faults.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let at = self.now + 1 + self.rng.below(self.faults.max_delay_ms);
                self.net_seq += 1;
                let msg = if self.s.serde {
                    serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap()
                } else {
                    msg.clone()
                };
                self.net.insert(
                    (at, self.net_seq),
                    Event::Msg {
                        from: node,
                        to,
                        msg,
                    },
                );
            }
        }
        for (token, resp) in out.reply {
            if let Some(p) = self.pending.remove(&token) {
                self.busy[p.client] = false;
                let outcome = if resp.ok {
                    Outcome::Ok(Box::new(resp))
                } else {
                    let e = resp.error.expect("an error reply carries an error");
                    assert!(e.definite, "2PC errors before a decision are definite");
                    Outcome::Fail(e.code)
                };
                self.history.push((p.kind, outcome));
            }
        }
    }

    fn crash(&mut self, node: usize) {
        self.report.crashes += 1;
        let down = 1 + self.rng.below(self.faults.max_down_ms.max(1));
        self.nodes[node].sm = None;
        self.nodes[node].up_at = self.now + down;
        // The clients' connections to the node break: their outcome is unknown.
        let lost: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(t, _)| *t)
            .collect();
        for t in lost {
            let p = self.pending.remove(&t).expect("pending");
            self.busy[p.client] = false;
            self.history.push((p.kind, Outcome::Info));
        }
    }

    fn restart(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let records = if self.s.serde {
            serde_json::from_str(&serde_json::to_string(&n.log).unwrap()).unwrap()
        } else {
            n.log.clone()
        };
        n.sm = Some(TwoPc::recover(n.config.clone(), records, now_of(self.now)));
    }

    fn step<F>(&mut self, node: usize, f: F)
    where
        F: FnOnce(&mut TwoPc, &mut Out<TwoPcMsg, TwoPcRecord>),
    {
        let Some(sm) = self.nodes[node].sm.as_mut() else {
            return;
        };
        let mut out = Out::default();
        f(sm, &mut out);
        self.perform(node, out);
    }

    fn request(&mut self, client: usize, node: usize, kind: Kind, op: ClientOp) {
        let token = self.next_token;
        self.next_token += 1;
        self.busy[client] = true;
        self.pending.insert(
            token,
            Pending {
                client,
                node,
                kind,
                sent_ms: self.now,
            },
        );
        let now = now_of(self.now);
        self.step(node, |sm, out| sm.on_request(now, token, op, out));
    }

    fn new_op(&mut self) -> (Kind, ClientOp) {
        let accounts = self.s.accounts;
        if self.rng.chance(self.s.transfer_share) {
            let a = self.rng.below(accounts);
            let b = (a + 1 + self.rng.below(accounts - 1)) % accounts;
            let amount = 1 + self.rng.below(9) as i64;
            let id = self.next_transfer;
            self.next_transfer += 1;
            let txn = vec![
                MicroOp {
                    f: MicroF::Append,
                    key: a,
                    value: Some(Val::Int(encode(id, -amount))),
                },
                MicroOp {
                    f: MicroF::Append,
                    key: b,
                    value: Some(Val::Int(encode(id, amount))),
                },
            ];
            (Kind::Transfer { id, keys: [a, b] }, ClientOp::Txn { txn })
        } else {
            let txn = (0..accounts)
                .map(|key| MicroOp {
                    f: MicroF::Read,
                    key,
                    value: None,
                })
                .collect();
            (Kind::Read, ClientOp::Txn { txn })
        }
    }

    /// One simulated millisecond.
    fn tick(&mut self, load: bool) {
        self.now += 1;
        while let Some(entry) = self.net.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let Event::Msg { from, to, msg } = entry.remove();
            if self.cut(from, to) {
                continue;
            }
            let from_id = self.ids[from].clone();
            let now = now_of(self.now);
            self.step(to, |sm, out| sm.on_message(now, from_id, msg, out));
        }
        for node in 0..self.nodes.len() {
            if self.nodes[node].sm.is_none() && self.nodes[node].up_at <= self.now {
                self.restart(node);
            }
            if (self.now + node as u64).is_multiple_of(TICK_MS) {
                let now = now_of(self.now);
                self.step(node, |sm, out| sm.on_tick(now, out));
            }
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| self.now - p.sent_ms > CLIENT_TIMEOUT_MS)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            let p = self.pending.remove(&t).expect("pending");
            self.busy[p.client] = false;
            self.history.push((p.kind, Outcome::Info));
        }
        if load {
            for client in 0..self.s.clients {
                if !self.busy[client] && self.rng.chance(self.s.start_chance) {
                    let node = self.rng.below(self.nodes.len() as u64) as usize;
                    if self.nodes[node].sm.is_some() {
                        let (kind, op) = self.new_op();
                        self.request(client, node, kind, op);
                    }
                }
            }
            if self.isolated.is_none_or(|(_, until)| until <= self.now)
                && self.rng.chance(self.faults.partition)
            {
                let node = self.rng.below(self.nodes.len() as u64) as usize;
                let len = 1 + self.rng.below(self.faults.max_partition_ms);
                self.isolated = Some((node, self.now + len));
                self.report.partitions += 1;
            }
            let live = self.nodes.iter().filter(|n| n.sm.is_some()).count();
            for node in 0..self.nodes.len() {
                // Keep at least one node up so that the workload goes on.
                if live > 1 && self.nodes[node].sm.is_some() && self.rng.chance(self.faults.crash) {
                    self.crash(node);
                    break;
                }
            }
        }
    }

    fn quiescent(&self) -> bool {
        self.net.is_empty()
            && self.nodes.iter().all(|n| {
                n.sm.as_ref().is_some_and(|sm| {
                    sm.in_doubt() == 0 && sm.coordinating() == 0 && sm.locked_keys() == 0
                })
            })
    }

    fn run(mut self) -> Report {
        while self.now < self.s.run_ms {
            self.tick(true);
        }
        // Heal: no more faults or new work; let in-doubt transactions resolve.
        self.faults = CALM;
        self.isolated = None;
        let heal_until = self.now + HEAL_LIMIT_MS;
        while (!self.quiescent() || !self.pending.is_empty()) && self.now < heal_until {
            self.tick(false);
        }
        if !self.quiescent() {
            let detail = self
                .nodes
                .iter()
                .filter_map(|n| n.sm.as_ref())
                .map(|sm| {
                    format!(
                        "in-doubt {} coordinating {} locked {}",
                        sm.in_doubt(),
                        sm.coordinating(),
                        sm.locked_keys()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            self.report.anomalies.insert(Anomaly::Stuck { detail });
        }
        // Even a stuck cluster may be readable: check what it holds if it is.
        if let Some(final_state) = self.final_read() {
            self.check(&final_state);
        }
        self.report
    }

    /// Reads every account through the protocol once the cluster is quiet.
    fn final_read(&mut self) -> Option<BTreeMap<Key, Vec<i64>>> {
        let accounts = self.s.accounts;
        for attempt in 0..10 {
            let txn: Vec<MicroOp> = (0..accounts)
                .map(|key| MicroOp {
                    f: MicroF::Read,
                    key,
                    value: None,
                })
                .collect();
            let before = self.history.len();
            self.request(
                0,
                attempt % self.nodes.len(),
                Kind::Read,
                ClientOp::Txn { txn },
            );
            while self.history.len() == before {
                self.tick(false);
            }
            let (_, outcome) = self.history.pop().expect("just recorded");
            if let Outcome::Ok(resp) = outcome {
                return Some(lists(&resp));
            }
        }
        self.report.anomalies.insert(Anomaly::Stuck {
            detail: "the final read never committed".to_string(),
        });
        None
    }

    fn check(&mut self, final_state: &BTreeMap<Key, Vec<i64>>) {
        let mut seen: BTreeMap<i64, Vec<Key>> = BTreeMap::new();
        for (key, list) in final_state {
            for v in list {
                seen.entry(decode(*v).0).or_default().push(*key);
            }
        }
        let history = std::mem::take(&mut self.history);
        let anomalies = &mut self.report.anomalies;
        for (kind, outcome) in &history {
            match (kind, outcome) {
                (Kind::Read, Outcome::Ok(resp)) => {
                    self.report.committed_reads += 1;
                    let read = lists(resp);
                    let total: i64 = read.values().flatten().map(|v| decode(*v).1).sum();
                    if total != 0 {
                        anomalies.insert(Anomaly::BankTotal { total });
                    }
                    let mut halves: BTreeMap<i64, usize> = BTreeMap::new();
                    for v in read.values().flatten() {
                        *halves.entry(decode(*v).0).or_default() += 1;
                    }
                    for (transfer, n) in halves {
                        if n != 2 {
                            anomalies.insert(Anomaly::FracturedRead { transfer });
                        }
                    }
                }
                (Kind::Transfer { id, keys }, outcome) => {
                    let mut found = seen.get(id).cloned().unwrap_or_default();
                    found.sort();
                    let mut want = keys.to_vec();
                    want.sort();
                    if found.windows(2).any(|w| w[0] == w[1]) {
                        anomalies.insert(Anomaly::Duplicated { transfer: *id });
                    }
                    found.dedup();
                    let whole = found == want;
                    match outcome {
                        Outcome::Ok(_) => {
                            self.report.committed_transfers += 1;
                            if !whole {
                                anomalies.insert(Anomaly::LostWrite { transfer: *id });
                            }
                        }
                        Outcome::Fail(code) => {
                            assert_eq!(
                                *code,
                                ErrorCode::Aborted,
                                "transfers only fail by aborting"
                            );
                            self.report.aborted += 1;
                            if !found.is_empty() {
                                anomalies.insert(Anomaly::AbortedVisible { transfer: *id });
                            }
                        }
                        Outcome::Info => {
                            self.report.indefinite += 1;
                            if !found.is_empty() && !whole {
                                anomalies.insert(Anomaly::PartialCommit { transfer: *id });
                            }
                        }
                    }
                }
                (Kind::Read, Outcome::Fail(_)) => self.report.aborted += 1,
                (Kind::Read, Outcome::Info) => self.report.indefinite += 1,
            }
        }
        let known: BTreeSet<i64> = history
            .iter()
            .filter_map(|(k, _)| match k {
                Kind::Transfer { id, .. } => Some(*id),
                Kind::Read => None,
            })
            .collect();
        for transfer in seen.keys().filter(|t| !known.contains(t)) {
            // A value no client ever sent.
            anomalies.insert(Anomaly::PartialCommit {
                transfer: *transfer,
            });
        }
    }
}

/// The lists a committed read transaction returned, by key.
fn lists(resp: &Response) -> BTreeMap<Key, Vec<i64>> {
    let mut out = BTreeMap::new();
    for m in resp.txn.as_ref().expect("a txn reply") {
        let list = match &m.value {
            None => Vec::new(),
            Some(Val::List(l)) => l.clone(),
            Some(Val::Int(i)) => panic!("account {} holds the integer {i}", m.key),
        };
        out.insert(m.key, list);
    }
    out
}

fn run_many(
    seeds: std::ops::Range<u64>,
    bugs: &'static [&'static str],
    faults: Faults,
) -> Vec<(u64, Report)> {
    seeds
        .map(|seed| (seed, Sim::new(Schedule::new(seed, bugs, faults)).run()))
        .collect()
}

fn summary(label: &str, reports: &[(u64, Report)]) {
    let sum = |f: fn(&Report) -> u64| reports.iter().map(|(_, r)| f(r)).sum::<u64>();
    println!(
        "{label}: {} schedules, {} committed transfers, {} committed reads, {} aborted, \
         {} indefinite, {} crashes, {} partitions, {} compactions, {} messages, max log {} records, \
         {} schedules with anomalies {:?}",
        reports.len(),
        sum(|r| r.committed_transfers),
        sum(|r| r.committed_reads),
        sum(|r| r.aborted),
        sum(|r| r.indefinite),
        sum(|r| r.crashes),
        sum(|r| r.partitions),
        sum(|r| r.compactions),
        sum(|r| r.messages),
        reports
            .iter()
            .map(|(_, r)| r.max_log_len)
            .max()
            .unwrap_or(0),
        reports
            .iter()
            .filter(|(_, r)| !r.anomalies.is_empty())
            .count(),
        anomaly_kinds(reports),
    );
}

/// How many schedules show each kind of anomaly.
fn anomaly_kinds(reports: &[(u64, Report)]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for (_, r) in reports {
        let names: BTreeSet<&'static str> = r.anomalies.iter().map(Anomaly::kind).collect();
        for name in names {
            *kinds.entry(name).or_default() += 1;
        }
    }
    kinds
}

fn assert_clean(reports: &[(u64, Report)]) {
    for (seed, r) in reports {
        assert!(
            r.anomalies.is_empty(),
            "seed {seed}: anomalies without any bug: {:?}",
            r.anomalies
        );
    }
}

#[test]
fn a_seed_determines_the_whole_schedule() {
    for seed in [1, 2, 3] {
        let first = Sim::new(Schedule::new(seed, &[], HOSTILE)).run();
        let again = Sim::new(Schedule::new(seed, &[], HOSTILE)).run();
        assert_eq!(format!("{first:?}"), format!("{again:?}"), "seed {seed}");
        assert!(first.messages > 0);
    }
}

#[test]
fn accounts_span_several_shards() {
    let m = members(&Config {
        id: "n1".into(),
        peers: vec!["n2".into(), "n3".into()],
        bugs: BTreeSet::new(),
        read_mode: ReadMode::Quorum,
        seed: 0,
    });
    let owners: BTreeSet<&NodeId> = (0..5).filter_map(|k| owner_of(&m, k)).collect();
    assert!(
        owners.len() >= 2,
        "the bank's accounts must live on several shards"
    );
}

#[test]
fn bank_invariants_hold_under_faults() {
    let reports = run_many(0..1_200, &[], HOSTILE);
    summary("hostile, no bugs", &reports);
    assert_clean(&reports);
    let total = |f: fn(&Report) -> u64| reports.iter().map(|(_, r)| f(r)).sum::<u64>();
    // The schedules must exercise what they claim to.
    assert!(total(|r| r.committed_transfers) > 5_000);
    assert!(total(|r| r.committed_reads) > 5_000);
    assert!(total(|r| r.crashes) > 500);
    assert!(total(|r| r.compactions) > 100);
    let max_log = reports.iter().map(|(_, r)| r.max_log_len).max().unwrap();
    assert!(
        max_log < 2 * COMPACT_AFTER_RECORDS,
        "log grew to {max_log} records despite compaction"
    );
}

#[test]
fn bank_invariants_hold_without_faults() {
    let reports = run_many(10_000..10_300, &[], CALM);
    summary("calm, no bugs", &reports);
    assert_clean(&reports);
}

#[test]
fn wire_and_log_records_round_trip_through_json() {
    let reports: Vec<(u64, Report)> = (0..20)
        .map(|seed| {
            let mut s = Schedule::new(seed, &[], HOSTILE);
            s.serde = true;
            (seed, Sim::new(s).run())
        })
        .collect();
    summary("hostile, JSON round trips", &reports);
    assert_clean(&reports);
}

#[test]
fn early_unlock_shows_read_skew() {
    let seeds = 20_000..20_300;
    let with_bug = run_many(seeds.clone(), &[BUG_EARLY_UNLOCK], CALM);
    let without = run_many(seeds, &[], CALM);
    summary("calm, early-unlock", &with_bug);
    summary("calm, same seeds without the bug", &without);
    assert_clean(&without);
    let skewed = with_bug
        .iter()
        .filter(|(_, r)| {
            r.anomalies
                .iter()
                .any(|a| matches!(a, Anomaly::BankTotal { .. }))
        })
        .count();
    assert!(
        skewed > 0,
        "early-unlock never produced a non-conserved bank total"
    );
}

#[test]
fn volatile_prepare_loses_committed_writes() {
    let seeds = 30_000..30_300;
    let with_bug = run_many(seeds.clone(), &[BUG_VOLATILE_PREPARE], HOSTILE);
    let without = run_many(seeds, &[], HOSTILE);
    summary("hostile, volatile-prepare", &with_bug);
    summary("hostile, same seeds without the bug", &without);
    assert_clean(&without);
    let lost = with_bug
        .iter()
        .filter(|(_, r)| {
            r.anomalies
                .iter()
                .any(|a| matches!(a, Anomaly::LostWrite { .. } | Anomaly::PartialCommit { .. }))
        })
        .count();
    assert!(lost > 0, "volatile-prepare never lost a committed write");
    for (seed, r) in &with_bug {
        if r.anomalies
            .iter()
            .any(|a| matches!(a, Anomaly::Stuck { .. }))
        {
            println!("seed {seed} stuck: {:?}", r.anomalies);
        }
    }
}
