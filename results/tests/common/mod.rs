//! Histories for report tests and benchmarks, built in code.
#![allow(dead_code)]
use std::time::Instant;

use checkers::history::{History, Op, OpType, Process, Value};
use checkers::linear::{self, Limits, Model};
use checkers::txn;
use results::{Analysis, CheckerOutput, CheckerRun};
use serde_json::json;

/// A small deterministic PRNG (xorshift64*), so the histories need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn op(time: i64, process: Process, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index: 0,
        time,
        process,
        kind,
        f: f.to_string(),
        key: None,
        value,
        error: None,
    }
}

pub fn client(p: u64) -> Process {
    Process::Client(p)
}

/// Numbers ops in order.
pub fn history(mut ops: Vec<Op>) -> History {
    ops.sort_by_key(|o| o.time);
    let mut h = History::new(ops);
    h.reindex();
    h
}

/// A linearizable multi-key register history (registers start as `null`): every operation takes effect at its completion
/// instant. `info` operations (timeouts) take no effect and retire their process. With
/// `faults`, the nemesis cycles through partition, kill, pause, clock and packet faults.
pub fn register_history(ops: usize, procs: u64, keys: u64, seed: u64, faults: bool) -> History {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(ops + 64);
    let mut regs = vec![Value::Null; keys as usize];
    let mut next_value = 1u64;
    // Per slot: the process id now using it and its open operation.
    let mut slots: Vec<(u64, Option<Op>)> = (0..procs).map(|p| (p, None)).collect();
    let mut next_proc = procs;
    let mut time: i64 = 0;
    let fault_kinds = ["partition", "kill", "pause", "clock", "packet"];
    let mut fault_at = 0usize;
    let mut active: Option<&str> = None;
    let mut last_fault_switch = 0usize;
    let fault_every = (ops / 16).max(6);
    while out.len() < ops {
        time += 50_000 + rng.below(400_000) as i64;
        if faults && out.len() - last_fault_switch >= fault_every {
            last_fault_switch = out.len();
            let nemesis = |f: String, value: Value| op(time, Process::Nemesis, OpType::Info, &f, value);
            match active.take() {
                Some("clock") => out.push(nemesis("reset-clock".into(), json!({"offsets_ms": {"n1": 0, "n2": 0, "n3": 0}, "outcome": "installed"}))),
                Some(kind) => out.push(nemesis(format!("stop-{kind}"), json!({"outcome": "installed"}))),
                None => {
                    let kind = fault_kinds[fault_at % fault_kinds.len()];
                    fault_at += 1;
                    let value = match kind {
                        "partition" => json!({"grudge": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}, "outcome": "installed"}),
                        "clock" => json!({"offsets_ms": {"n1": 120, "n2": -80, "n3": 0}, "outcome": "installed"}),
                        _ => json!({"nodes": ["n2"], "outcome": "installed"}),
                    };
                    let f = if kind == "clock" { "bump-clock".to_string() } else { format!("start-{kind}") };
                    out.push(nemesis(f, value));
                    active = Some(kind);
                }
            }
            continue;
        }
        let s = rng.below(procs) as usize;
        let (p, open) = &mut slots[s];
        match open.take() {
            None => {
                let key = rng.below(keys);
                let mut o = if rng.below(2) == 0 {
                    op(time, client(*p), OpType::Invoke, "read", Value::Null)
                } else {
                    next_value += 1;
                    op(time, client(*p), OpType::Invoke, "write", json!(next_value))
                };
                o.key = Some(json!(key));
                out.push(o.clone());
                *open = Some(o);
            }
            Some(inv) => {
                let key = inv.key.as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
                let roll = rng.below(100);
                let faulty = active.is_some();
                let mut done = inv.clone();
                done.time = time;
                if roll < if faulty { 6 } else { 1 } {
                    done.kind = OpType::Info;
                    done.error = Some("timeout".into());
                    out.push(done);
                    *p = next_proc;
                    next_proc += 1;
                } else if roll < if faulty { 15 } else { 3 } {
                    done.kind = OpType::Fail;
                    done.error = Some("unavailable".into());
                    out.push(done);
                } else {
                    done.kind = OpType::Ok;
                    if inv.f == "read" {
                        done.value = regs[key].clone();
                    } else {
                        regs[key] = inv.value.clone();
                    }
                    out.push(done);
                }
            }
        }
    }
    history(out)
}

/// Checks a register history for linearizability and wraps the result as an analysis.
pub fn analyse_register(h: &History) -> Analysis {
    let started = Instant::now();
    let r = linear::check(h, Model::Register, &Limits::default()).expect("checkable history");
    let run = CheckerRun::new("linearizable", CheckerOutput::Linear(r), started.elapsed());
    Analysis::new(vec![run], started.elapsed())
}

/// Checks a list-append history and wraps the result as an analysis.
pub fn analyse_list_append(h: &History) -> Analysis {
    let started = Instant::now();
    let r = txn::check(h, &txn::Options::list_append()).expect("checkable history");
    let run = CheckerRun::new("list-append", CheckerOutput::Txn(r), started.elapsed());
    Analysis::new(vec![run], started.elapsed())
}

/// A register history with a stale read: the read after the second write returns the first.
pub fn stale_read_history() -> History {
    let ms = 1_000_000;
    history(vec![
        op(0, client(0), OpType::Invoke, "write", json!(1)),
        op(10 * ms, client(0), OpType::Ok, "write", json!(1)),
        op(20 * ms, client(1), OpType::Invoke, "write", json!(2)),
        op(25 * ms, Process::Nemesis, OpType::Info, "start-partition", json!({"grudge": {"n1": ["n2", "n3"]}, "outcome": "installed"})),
        op(30 * ms, client(1), OpType::Ok, "write", json!(2)),
        op(35 * ms, client(2), OpType::Invoke, "read", Value::Null),
        op(38 * ms, client(0), OpType::Invoke, "read", Value::Null),
        op(45 * ms, client(2), OpType::Ok, "read", json!(2)),
        op(50 * ms, client(0), OpType::Ok, "read", json!(1)),
        op(60 * ms, Process::Nemesis, OpType::Info, "stop-partition", json!({"outcome": "installed"})),
    ])
}

/// Two list-append cycles: a G1c on keys x and y (each transaction read the other's append)
/// and a G2-item write skew on keys a and b.
pub fn cycles_history() -> History {
    let ms = 1_000_000;
    let t = |p: u64, at: i64, kind: OpType, v: Value| op(at * ms, client(p), kind, "txn", v);
    history(vec![
        t(0, 0, OpType::Invoke, json!([["append", "x", 1], ["r", "y", null]])),
        t(1, 1, OpType::Invoke, json!([["append", "y", 2], ["r", "x", null]])),
        t(0, 2, OpType::Ok, json!([["append", "x", 1], ["r", "y", [2]]])),
        t(1, 3, OpType::Ok, json!([["append", "y", 2], ["r", "x", [1]]])),
        op(4 * ms, Process::Nemesis, OpType::Info, "start-pause", json!({"nodes": ["n2"], "outcome": "installed"})),
        t(2, 5, OpType::Invoke, json!([["r", "a", null], ["append", "b", 1]])),
        t(3, 6, OpType::Invoke, json!([["r", "b", null], ["append", "a", 2]])),
        t(2, 7, OpType::Ok, json!([["r", "a", []], ["append", "b", 1]])),
        t(3, 8, OpType::Ok, json!([["r", "b", []], ["append", "a", 2]])),
        op(9 * ms, Process::Nemesis, OpType::Info, "stop-pause", json!({"outcome": "installed"})),
        t(4, 10, OpType::Invoke, json!([["r", "a", null], ["r", "b", null]])),
        t(4, 11, OpType::Ok, json!([["r", "a", [2]], ["r", "b", [1]]])),
    ])
}
