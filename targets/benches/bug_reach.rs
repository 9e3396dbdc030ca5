//! How often random faults reach each Raft and Paxos bug's anomaly at all, measured in the
//! deterministic simulator, where faults act on single messages: every message is delayed at
//! random (so messages reorder), lost or duplicated, and crashes and partitions fall between any
//! two messages. A real network under a black-box nemesis is gentler (sub-millisecond delays in
//! order, faults tens of milliseconds apart), so these rates are an upper bound for what
//! `faultline run` can catch against the same bug.
//!
//! `cargo bench -p targets --bench bug_reach -- [--short N] [--long N]`: N schedules of 2 s and of
//! 60 s of faults per bug (defaults 1000 and 50), the same seeds with the bug and without it.
//! Raft schedules are the `raft_sim` tests' (3 or 5 nodes, loss up to 20%, delays up to 40 ms,
//! crash/restart/partition every 50 ms round with some probability, a batch of 1-15 entries
//! per AppendEntries), and for `commit-old-term` also a flapping variant (five nodes, one entry
//! per AppendEntries, a new two- or three-way partition every 50 ms round, frequent crashes).
//! Paxos schedules are the `paxos_sim` tests' (3 nodes, loss 5%, delays up to
//! 20 ms, a crash every 400 ms and a partition every 700 ms on average), and an aggressive
//! variant (a crash every 100 ms, down at most 100 ms, a partition every 150 ms, a request every
//! 5 ms) under which `forget_promise_found_by_random_schedules` looks for that bug.
#[path = "../tests/paxos_sim/mod.rs"]
mod paxos_sim;
#[path = "../tests/raft_schedule/mod.rs"]
mod raft_schedule;
#[path = "../tests/sim/mod.rs"]
mod sim;

use paxos_sim::{SimConfig, Violation};
use std::time::Instant;
use targets::sm::ReadMode;

struct Args {
    short: u64,
    long: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        short: 1000,
        long: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut count = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--short" => a.short = count("--short")?,
            "--long" => a.long = count("--long")?,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// One row: schedules run, schedules where the bug's anomaly showed, and schedules of the
/// correct server (same seeds) with any safety violation.
struct Row {
    reached: u64,
    false_alarms: u64,
    runs: u64,
    secs: f64,
}

fn measure(runs: u64, buggy: impl Fn(u64) -> bool, correct: impl Fn(u64) -> bool) -> Row {
    let started = Instant::now();
    let reached = (0..runs).filter(|&s| buggy(s)).count() as u64;
    let false_alarms = (0..runs).filter(|&s| correct(s)).count() as u64;
    Row {
        reached,
        false_alarms,
        runs,
        secs: started.elapsed().as_secs_f64(),
    }
}

fn print(bug: &str, schedule: &str, r: &Row) {
    println!(
        "| {bug} | {schedule} | {}/{} ({:.1}%) | {}/{} | {:.1} s |",
        r.reached,
        r.runs,
        100.0 * r.reached as f64 / r.runs.max(1) as f64,
        r.false_alarms,
        r.runs,
        r.secs
    );
}

fn raft_fails(seed: u64, bug: Option<&str>, rounds: u64) -> bool {
    let bugs: Vec<&str> = bug.into_iter().collect();
    raft_schedule::random_schedule_for(seed, &bugs, ReadMode::Quorum, rounds).is_err()
}

/// A client-visible Paxos anomaly: one slot decided twice, or replicas that diverge.
fn paxos_conflict(cfg: SimConfig) -> bool {
    paxos_sim::run(cfg).has(|v| {
        matches!(
            v,
            Violation::ConflictingDecision { .. } | Violation::StoreDiverges { .. }
        )
    })
}

fn paxos_violates(cfg: SimConfig) -> bool {
    !paxos_sim::run(cfg).violations.is_empty()
}

fn aggressive(seed: u64, duration_ms: u64) -> SimConfig {
    SimConfig {
        duration_ms,
        crash_every_ms: 100,
        max_down_ms: 100,
        partition_every_ms: 150,
        client_every_ms: 5,
        ..SimConfig::new(seed)
    }
}

fn default_paxos(seed: u64, duration_ms: u64) -> SimConfig {
    SimConfig {
        duration_ms,
        ..SimConfig::new(seed)
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bug_reach: {e}");
            std::process::exit(254);
        }
    };
    println!("| bug | schedule | anomaly reached | correct server: violations | time |");
    println!("|---|---|---|---|---|");
    // (schedules, Raft rounds of 50 ms, simulated milliseconds, label)
    let lengths = [
        (args.short, raft_schedule::ROUNDS, 2_000, "2 s"),
        (args.long, 1_200, 60_000, "60 s"),
    ];
    for bug in ["stale-read", "no-fsync", "commit-old-term"] {
        for (runs, rounds, _, label) in lengths {
            let r = measure(
                runs,
                |s| raft_fails(s, Some(bug), rounds),
                |s| raft_fails(s, None, rounds),
            );
            print(bug, &format!("raft, {label}"), &r);
        }
    }
    for (runs, rounds, _, label) in lengths {
        let r = measure(
            runs,
            |s| raft_schedule::flapping_schedule(s, &["commit-old-term"], rounds).is_err(),
            |s| raft_schedule::flapping_schedule(s, &[], rounds).is_err(),
        );
        print("commit-old-term", &format!("raft flapping, {label}"), &r);
    }
    type Make = fn(u64, u64) -> SimConfig;
    let paxos: [(&str, Make); 2] = [("default", default_paxos), ("aggressive", aggressive)];
    for bug in [
        targets::paxos::BUG_NO_ADOPT,
        targets::paxos::BUG_FORGET_PROMISE,
    ] {
        for (name, make) in paxos {
            for (runs, _, ms, label) in lengths {
                let r = measure(
                    runs,
                    |s| {
                        paxos_conflict(SimConfig {
                            bugs: vec![bug],
                            ..make(s, ms)
                        })
                    },
                    |s| paxos_violates(make(s, ms)),
                );
                print(bug, &format!("paxos {name}, {label}"), &r);
            }
        }
    }
}
