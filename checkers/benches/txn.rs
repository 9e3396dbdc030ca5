//! Benchmark of the list-append checker on generated valid histories of 10k, 100k and 1M
//! transactions: median wall time, throughput, and peak heap allocated by the check (beyond the
//! history itself), measured with a counting allocator.
//!
//! Run: `cargo bench -p checkers --bench txn` (add `-- 10000 100000` to pick sizes).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use checkers::txn::{self, Options, Verdict};
use checkers::{History, Op, OpType, Process, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PROCESSES: usize = 10;
const ACTIVE_KEYS: usize = 5;
const WRITES_PER_KEY: usize = 16;

/// A valid list-append history: `PROCESSES` clients interleave invocations and completions;
/// each transaction (1-4 micro-ops) takes effect atomically between the two. Keys retire after
/// `WRITES_PER_KEY` appends, as Elle's generator does, so reads stay short.
fn generate(n: usize, seed: u64, stale: f64) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops: Vec<Op> = Vec::with_capacity(2 * n);
    let mut lists: Vec<Vec<i64>> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let mut next_value = 0i64;
    let mut pending: Vec<Option<Value>> = vec![None; PROCESSES];
    let mut started = 0;
    let emit = |ops: &mut Vec<Op>, p: usize, kind: OpType, value: Value| {
        let i = ops.len() as u64;
        ops.push(Op {
            index: i,
            time: i as i64 * 1000,
            process: Process::Client(p as u64),
            kind,
            f: "txn".into(),
            key: None,
            value,
            error: None,
        });
    };
    while started < n || pending.iter().any(Option::is_some) {
        let p = rng.random_range(0..PROCESSES);
        if let Some(done) = pending[p].take() {
            emit(&mut ops, p, OpType::Ok, done);
            continue;
        }
        if started == n {
            continue;
        }
        started += 1;
        let len = rng.random_range(1..=4);
        let mut invoke = Vec::with_capacity(len);
        let mut complete = Vec::with_capacity(len);
        for _ in 0..len {
            while active.len() < ACTIVE_KEYS {
                active.push(lists.len());
                lists.push(Vec::new());
            }
            let slot = rng.random_range(0..ACTIVE_KEYS);
            let k = active[slot];
            if rng.random_bool(0.5) {
                invoke.push(json!(["r", k, null]));
                let mut l = &lists[k][..];
                // The seeded bug: a read that misses the latest append.
                if stale > 0.0 && !l.is_empty() && rng.random_bool(stale) {
                    l = &l[..l.len() - 1];
                }
                complete.push(json!([
                    "r",
                    k,
                    if l.is_empty() { Value::Null } else { json!(l) }
                ]));
            } else {
                next_value += 1;
                lists[k].push(next_value);
                invoke.push(json!(["append", k, next_value]));
                complete.push(json!(["append", k, next_value]));
                if lists[k].len() >= WRITES_PER_KEY {
                    active.swap_remove(slot);
                }
            }
        }
        // The transaction takes effect now, between its invocation and its completion.
        emit(&mut ops, p, OpType::Invoke, Value::Array(invoke));
        pending[p] = Some(Value::Array(complete));
    }
    History::new(ops)
}

/// CPU time of this thread in seconds (Linux), so that a loaded machine does not inflate the
/// figures; `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--invalid`: 1% of reads miss the latest append, so the history is full of anomalies.
    let stale = if args.iter().any(|a| a == "--invalid") {
        0.01
    } else {
        0.0
    };
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let kind = if stale > 0.0 {
        "invalid (1% stale reads)"
    } else {
        "valid"
    };
    println!("list-append check, {kind} histories ({PROCESSES} processes, 1-4 micro-ops, {WRITES_PER_KEY} appends per key)");
    println!(
        "{:>9} {:>5} {:>12} {:>11} {:>13} {:>14} {:>11}",
        "txns", "runs", "wall ms", "cpu ms", "txn/s (cpu)", "peak check MB", "history MB"
    );
    for n in sizes {
        let before = CURRENT.load(Ordering::Relaxed);
        let h = generate(n, 42, stale);
        let history_mb = (CURRENT.load(Ordering::Relaxed) - before) as f64 / 1e6;
        let runs = if n <= 10_000 {
            11
        } else if n <= 100_000 {
            5
        } else {
            3
        };
        let mut times = Vec::new();
        let mut cpus = Vec::new();
        let mut peaks = Vec::new();
        for run in 0..runs {
            let base = CURRENT.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let t = Instant::now();
            let c = thread_cpu_seconds();
            let r =
                txn::check(&h, &Options::list_append()).expect("generated history is well-formed");
            let wall = t.elapsed().as_secs_f64();
            times.push(wall);
            cpus.push(c.zip(thread_cpu_seconds()).map_or(wall, |(a, b)| b - a));
            peaks.push((PEAK.load(Ordering::Relaxed) - base) as f64 / 1e6);
            if run == 0 {
                println!("  {} dependency edges after merging", r.stats.edges);
            }
            if stale == 0.0 {
                assert_eq!(r.verdict, Verdict::Valid, "{}", txn::render_text(&r));
            } else if run == 0 {
                println!(
                    "  verdict {}, anomalies {:?}, cyclic components {}",
                    r.verdict, r.anomaly_counts, r.stats.cyclic_components
                );
            }
            assert_eq!(r.stats.txns, n);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (wall, cpu, peak) = (median(&mut times), median(&mut cpus), median(&mut peaks));
        println!(
            "{n:>9} {runs:>5} {:>12.1} {:>11.1} {:>13.0} {peak:>14.1} {history_mb:>11.1}",
            wall * 1e3,
            cpu * 1e3,
            n as f64 / cpu,
        );
    }
}
