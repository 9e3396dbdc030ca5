//! Property tests: histories from a simulated store that applies each transaction atomically
//! between its invocation and completion are strict-serializable by construction, so the
//! checker must find nothing; a store with a seeded stale-read bug must be caught.
use std::collections::HashMap;

use checkers::txn::{self, Options, Verdict};
use checkers::{History, Op, OpType, Process, Value};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    ListAppend,
    RwRegister,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// Reads miss the latest append to a key once the appending transaction has completed, as
    /// a replica lagging one commit behind would.
    StaleRead,
}

#[derive(Clone)]
enum Mop {
    Read(u32),
    Write(u32, i64),
}

struct Busy {
    txn: usize,
    mops: Vec<Mop>,
    results: Option<Value>,
}

struct Sim {
    store: Store,
    bug: Bug,
    rng: StdRng,
    ops: Vec<Op>,
    lists: HashMap<u32, Vec<i64>>,
    /// Per key: the transaction that wrote it last.
    last_writer: HashMap<u32, usize>,
    completed: Vec<bool>,
    next_value: i64,
    next_pid: u64,
    stale_reads: usize,
}

impl Sim {
    fn emit(&mut self, pid: u64, kind: OpType, value: Value) {
        let i = self.ops.len() as u64;
        self.ops.push(Op {
            index: i,
            time: i as i64 * 1_000,
            process: Process::Client(pid),
            kind,
            f: "txn".into(),
            key: None,
            value,
            error: None,
        });
    }

    fn encode(&self, mops: &[Mop], results: Option<&[Value]>) -> Value {
        let w = match self.store {
            Store::ListAppend => "append",
            Store::RwRegister => "w",
        };
        Value::Array(
            mops.iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Mop::Read(k) => json!(["r", k, results.map_or(Value::Null, |r| r[i].clone())]),
                    Mop::Write(k, v) => json!([w, k, v]),
                })
                .collect(),
        )
    }

    fn random_txn(&mut self, keys: u32) -> Vec<Mop> {
        let n = self.rng.random_range(1..=4);
        (0..n)
            .map(|_| {
                let k = self.rng.random_range(0..keys);
                if self.rng.random_bool(0.5) {
                    Mop::Read(k)
                } else {
                    self.next_value += 1;
                    Mop::Write(k, self.next_value)
                }
            })
            .collect()
    }

    /// Runs a transaction atomically against the store; returns the encoded completion value.
    fn apply(&mut self, txn: usize, mops: &[Mop], may_bug: bool) -> Value {
        let mut results = Vec::with_capacity(mops.len());
        let mut touched: Vec<u32> = Vec::new();
        for m in mops {
            match *m {
                Mop::Read(k) => {
                    let list = self.lists.get(&k).cloned().unwrap_or_default();
                    let stale = may_bug
                        && self.bug == Bug::StaleRead
                        && !touched.contains(&k)
                        && self.last_writer.get(&k).is_some_and(|&t| self.completed[t])
                        && !list.is_empty();
                    let seen = if stale {
                        self.stale_reads += 1;
                        &list[..list.len() - 1]
                    } else {
                        &list[..]
                    };
                    results.push(match self.store {
                        Store::ListAppend if seen.is_empty() => Value::Null,
                        Store::ListAppend => json!(seen),
                        Store::RwRegister => seen.last().map_or(Value::Null, |v| json!(v)),
                    });
                }
                Mop::Write(k, v) => {
                    self.lists.entry(k).or_default().push(v);
                    self.last_writer.insert(k, txn);
                    touched.push(k);
                    results.push(Value::Null);
                }
            }
        }
        self.encode(mops, Some(&results))
    }
}

/// Simulates `procs` clients running `txns` random transactions over `keys` keys, then a fixed
/// tail (a write that completes, then a read of it by another process) and a final read of
/// every key.
fn simulate(
    store: Store,
    bug: Bug,
    seed: u64,
    procs: usize,
    txns: usize,
    keys: u32,
) -> (History, usize) {
    let mut sim = Sim {
        store,
        bug,
        rng: StdRng::seed_from_u64(seed),
        ops: Vec::new(),
        lists: HashMap::new(),
        last_writer: HashMap::new(),
        completed: Vec::new(),
        next_value: 0,
        next_pid: procs as u64,
        stale_reads: 0,
    };
    let mut pids: Vec<u64> = (0..procs as u64).collect();
    let mut busy: Vec<Option<Busy>> = (0..procs).map(|_| None).collect();
    let mut started = 0;
    while started < txns || busy.iter().any(Option::is_some) {
        let p = sim.rng.random_range(0..procs);
        match busy[p].take() {
            None if started < txns => {
                let mops = sim.random_txn(keys);
                let v = sim.encode(&mops, None);
                sim.emit(pids[p], OpType::Invoke, v);
                sim.completed.push(false);
                busy[p] = Some(Busy {
                    txn: started,
                    mops,
                    results: None,
                });
                started += 1;
            }
            None => {}
            Some(mut b) if b.results.is_none() => {
                let roll: f64 = sim.rng.random();
                if roll < 0.8 {
                    b.results = Some(sim.apply(b.txn, &b.mops, true));
                    busy[p] = Some(b);
                } else if roll < 0.9 {
                    let v = sim.encode(&b.mops, None);
                    sim.emit(pids[p], OpType::Fail, v);
                } else {
                    // A crash: the transaction may or may not have taken effect.
                    if sim.rng.random_bool(0.5) {
                        sim.apply(b.txn, &b.mops, true);
                    }
                    let v = sim.encode(&b.mops, None);
                    sim.emit(pids[p], OpType::Info, v);
                    pids[p] = sim.next_pid;
                    sim.next_pid += 1;
                }
            }
            Some(b) => {
                let v = b.results.expect("applied");
                sim.emit(pids[p], OpType::Ok, v);
                sim.completed[b.txn] = true;
            }
        }
    }
    // The tail: a write that completes, then another process reads that key.
    let sequential = |sim: &mut Sim, mops: Vec<Mop>| {
        let t = sim.completed.len();
        sim.completed.push(false);
        let pid = sim.next_pid;
        sim.next_pid += 1;
        let v = sim.encode(&mops, None);
        sim.emit(pid, OpType::Invoke, v);
        let v = sim.apply(t, &mops, true);
        sim.emit(pid, OpType::Ok, v);
        sim.completed[t] = true;
    };
    sim.next_value += 1;
    let v = sim.next_value;
    sequential(&mut sim, vec![Mop::Write(0, v)]);
    sequential(&mut sim, vec![Mop::Read(0)]);
    // A final read of everything, never stale, so that every version order is known.
    let bug = sim.bug;
    sim.bug = Bug::None;
    sequential(&mut sim, (0..keys).map(Mop::Read).collect());
    sim.bug = bug;
    (History::new(sim.ops), sim.stale_reads)
}

fn options(store: Store) -> Options {
    match store {
        Store::ListAppend => Options::list_append(),
        Store::RwRegister => Options::rw_register(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn serializable_list_append_store_is_strict_serializable(
        seed in any::<u64>(), procs in 1usize..6, txns in 0usize..60, keys in 1u32..6,
    ) {
        let (h, _) = simulate(Store::ListAppend, Bug::None, seed, procs, txns, keys);
        let r = txn::check(&h, &options(Store::ListAppend)).unwrap();
        prop_assert!(r.anomaly_counts.is_empty(), "{}", txn::render_text(&r));
        prop_assert_eq!(r.verdict, Verdict::Valid);
    }

    #[test]
    fn serializable_rw_register_store_is_strict_serializable(
        seed in any::<u64>(), procs in 1usize..6, txns in 0usize..60, keys in 1u32..6,
        linearizable in any::<bool>(),
    ) {
        let (h, _) = simulate(Store::RwRegister, Bug::None, seed, procs, txns, keys);
        let mut opts = options(Store::RwRegister);
        opts.linearizable_keys = linearizable;
        let r = txn::check(&h, &opts).unwrap();
        prop_assert!(r.anomaly_counts.is_empty(), "{}", txn::render_text(&r));
        prop_assert_eq!(r.verdict, Verdict::Valid);
    }

    #[test]
    fn stale_reads_are_caught(
        seed in any::<u64>(), procs in 1usize..6, txns in 0usize..60, keys in 1u32..6,
    ) {
        let (h, stale) = simulate(Store::ListAppend, Bug::StaleRead, seed, procs, txns, keys);
        prop_assert!(stale >= 1, "the tail always reads stale");
        let r = txn::check(&h, &options(Store::ListAppend)).unwrap();
        prop_assert_eq!(r.verdict, Verdict::Invalid, "{}", txn::render_text(&r));
    }

    #[test]
    fn stale_reads_are_caught_in_rw_registers_with_linearizable_keys(
        seed in any::<u64>(), procs in 1usize..6, txns in 0usize..60, keys in 1u32..6,
    ) {
        let (h, _) = simulate(Store::RwRegister, Bug::StaleRead, seed, procs, txns, keys);
        let mut opts = options(Store::RwRegister);
        opts.linearizable_keys = true;
        let r = txn::check(&h, &opts).unwrap();
        prop_assert_eq!(r.verdict, Verdict::Invalid, "{}", txn::render_text(&r));
    }
}
