//! Throughput of the Multi-Paxos state machine alone (no IO): three nodes in one thread, every
//! message delivered at once, clients keeping the leader busy. Not a correctness test; run it
//! with `cargo test --release -p targets --test paxos_throughput -- --ignored --nocapture`.
mod paxos_sim;

use paxos_sim::script::Script;
use std::time::Instant;
use targets::paxos::Tuning;
use targets::protocol::ClientOp;

fn one_run(commands: u64, burst: u64) -> (f64, f64) {
    let mut s = Script::with_tuning(
        &[],
        Tuning {
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 1_001,
            ..Tuning::default()
        },
    );
    s.elect(0, &[]);
    let start = Instant::now();
    let mut token = 0;
    while token < commands {
        for _ in 0..burst {
            token += 1;
            let op = ClientOp::Write {
                key: token % 100,
                value: token as i64,
            };
            // Requests arrive at all nodes; followers forward them.
            s.request((token % 3) as usize, token, op);
        }
        s.settle(&[]);
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(s.replies.values().all(|r| r.ok));
    let slots = s.node(0).applied() as f64;
    (commands as f64 / secs, commands as f64 / slots)
}

#[test]
#[ignore]
fn throughput() {
    for burst in [1, 10, 100, 1000] {
        let mut runs: Vec<(f64, f64)> = (0..5).map(|_| one_run(20_000, burst)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rate, per_slot) = runs[2];
        println!(
            "burst {burst:>4}: median {rate:>9.0} commands/s, {per_slot:.1} commands per slot"
        );
    }
}
