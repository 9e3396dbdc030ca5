//! A generated 1,000,000-operation cas-register history over 1,000 keys with 20 concurrent
//! processes and some `info` ops: times reading it (JSON lines) and checking it, and reports
//! peak memory (VmHWM). `cargo bench -p checkers --bench big_history [-- OPS [INFO_PER_MILLE [KEYS]]]`.
use std::collections::VecDeque;
use std::time::Instant;

use checkers::linear::{check, Limits, Model};
use checkers::read::{read_history, write_jsonl, Format};
use checkers::verdict::Verdict;
use checkers::{Op, OpType, Process, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const PROCESSES: usize = 20;
/// Ops take 1..=MAX_LEN ticks; each takes effect at a random tick inside its interval.
const MAX_LEN: usize = 20;

struct Pending {
    process: u64,
    key: u64,
    f: &'static str,
    arg: Value,
    /// Whether the op takes effect (a failed cas or a lost info op does not).
    applies: bool,
    info: bool,
    result: Value,
}

/// Simulates 20 clients against a linearizable store, tick by tick.
fn generate(ops: usize, info_per_mille: u32, keys: u64, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = vec![Value::Null; keys as usize];
    let mut pending: Vec<Pending> = Vec::new();
    // Per future tick: ops taking effect, ops completing.
    let mut effects: VecDeque<Vec<usize>> = (0..=MAX_LEN).map(|_| Vec::new()).collect();
    let mut completions: VecDeque<Vec<usize>> = (0..=MAX_LEN + 1).map(|_| Vec::new()).collect();
    let mut idle: Vec<u64> = (0..PROCESSES as u64).collect();
    let mut next_process = PROCESSES as u64;
    let mut history = Vec::with_capacity(2 * ops);
    let mut invoked = 0;
    let mut tick: i64 = 0;
    let push = |history: &mut Vec<Op>, process, kind, f: &str, key, value, tick| {
        history.push(Op {
            index: history.len() as u64,
            time: tick,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some(json!(key)),
            value,
            error: (kind == OpType::Info).then(|| "timeout".to_string()),
        });
    };
    let mut outstanding = 0usize;
    while invoked < ops || outstanding > 0 {
        // Idle processes invoke.
        while invoked < ops {
            let Some(process) = idle.pop() else { break };
            let key = rng.random_range(0..keys);
            let (f, arg) = match rng.random_range(0..10) {
                0..=4 => ("read", Value::Null),
                5..=7 => ("write", json!(rng.random_range(0..5))),
                _ => (
                    "cas",
                    json!([rng.random_range(0..5), rng.random_range(0..5)]),
                ),
            };
            let len = rng.random_range(1..=MAX_LEN);
            let at = rng.random_range(0..len);
            let info = rng.random_ratio(info_per_mille, 1000);
            let applies = !info || rng.random_bool(0.5);
            let id = pending.len();
            pending.push(Pending {
                process,
                key,
                f,
                arg: arg.clone(),
                applies,
                info,
                result: Value::Null,
            });
            effects[at].push(id);
            completions[len].push(id);
            push(&mut history, process, OpType::Invoke, f, key, arg, tick);
            invoked += 1;
            outstanding += 1;
        }
        for id in effects.pop_front().unwrap() {
            let p = &mut pending[id];
            let cur = &mut state[p.key as usize];
            match p.f {
                "read" => p.result = cur.clone(),
                "write" if p.applies => *cur = p.arg.clone(),
                "cas" if p.applies => {
                    if p.arg[0] == *cur {
                        *cur = p.arg[1].clone();
                    } else {
                        p.applies = false;
                    }
                }
                _ => {}
            }
        }
        effects.push_back(Vec::new());
        for id in completions.pop_front().unwrap() {
            let p = &mut pending[id];
            let (kind, value) = if p.info {
                (OpType::Info, p.arg.clone())
            } else if p.f == "read" {
                (OpType::Ok, std::mem::take(&mut p.result))
            } else if p.applies {
                (OpType::Ok, p.arg.clone())
            } else {
                (OpType::Fail, p.arg.clone())
            };
            push(&mut history, p.process, kind, p.f, p.key, value, tick);
            if kind == OpType::Info {
                // A process that saw info never invokes again: a fresh one takes its place.
                idle.push(next_process);
                next_process += 1;
            } else {
                idle.push(p.process);
            }
            outstanding -= 1;
        }
        completions.push_back(Vec::new());
        tick += 1;
    }
    history
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "VmHWM unavailable".into())
}

fn main() {
    // Arguments: [OPS [INFO_PER_MILLE [KEYS]]]; defaults 1,000,000, 5 (0.5% of ops end in
    // info) and 1,000.
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ops = numbers.first().copied().unwrap_or(1_000_000);
    let info_per_mille = numbers.get(1).copied().unwrap_or(5) as u32;
    let keys = numbers.get(2).copied().unwrap_or(1000) as u64;
    let t = Instant::now();
    let ops_vec = generate(ops, info_per_mille, keys, 7);
    let infos = ops_vec.iter().filter(|o| o.kind == OpType::Info).count();
    let entries = ops_vec.len();
    let mut jsonl = Vec::new();
    write_jsonl(&mut jsonl, &ops_vec).unwrap();
    drop(ops_vec);
    println!(
        "generated {ops} operations ({entries} entries, {infos} info, {keys} keys, {PROCESSES} processes) as {} MB of JSON lines in {:.2} s",
        jsonl.len() >> 20,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let h = read_history(&jsonl[..], "generated.jsonl", Format::Auto).unwrap();
    println!("read: {:.2} s", t.elapsed().as_secs_f64());
    drop(jsonl);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = check(&h, Model::CasRegister, &Limits::default()).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(r.verdict, Verdict::Valid, "{r}");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "check: median {:.2} s (runs {:?}), {} threads; peak memory {}",
        times[1],
        times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>(),
        rayon::current_num_threads(),
        vm_hwm()
    );
}
