//! Safety of the Multi-Paxos state machine under thousands of simulated fault schedules.
mod paxos_sim;

use paxos_sim::{run, SimConfig, SimReport};
use targets::paxos::Tuning;

/// Runs `seeds` schedules built by `make`, fails on the first violation, returns totals.
fn assert_safe(seeds: std::ops::Range<u64>, make: impl Fn(u64) -> SimConfig) -> SimReport {
    let mut total = SimReport::default();
    for seed in seeds {
        let report = run(make(seed));
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {}",
            report
                .violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        total.events += report.events;
        total.decided_slots += report.decided_slots;
        total.acked += report.acked;
        total.crashes += report.crashes;
        total.elections += report.elections;
        total.max_log = total.max_log.max(report.max_log);
    }
    eprintln!("{total:?}");
    total
}

#[test]
fn three_nodes_with_loss_crashes_and_isolation() {
    let total = assert_safe(0..1000, SimConfig::new);
    assert!(total.acked > 10_000, "too little progress: {total:?}");
    assert!(total.crashes > 1_000, "too few crashes: {total:?}");
    // Compaction every 16 applied slots keeps every log short over ~60 000 decided slots.
    assert!(total.max_log < 300, "log not bounded: {total:?}");
}

#[test]
fn five_nodes() {
    let total = assert_safe(0..300, |seed| SimConfig {
        nodes: 5,
        ..SimConfig::new(seed)
    });
    assert!(total.acked > 1_000, "too little progress: {total:?}");
}

#[test]
fn heavy_loss_and_long_delays() {
    let total = assert_safe(0..300, |seed| SimConfig {
        drop: 0.3,
        duplicate: 0.1,
        max_delay_ms: 120,
        crash_every_ms: 200,
        ..SimConfig::new(seed)
    });
    assert!(total.acked > 100, "too little progress: {total:?}");
}

/// The node that crashes last stays down: the majority left must still converge, catching up
/// from whoever is alive.
#[test]
fn a_node_down_for_good() {
    let total = assert_safe(0..200, |seed| SimConfig {
        down_for_good: Some((seed % 3) as usize),
        ..SimConfig::new(seed)
    });
    assert!(total.acked > 1_000, "too little progress: {total:?}");
}

#[test]
fn single_node() {
    let total = assert_safe(0..50, |seed| SimConfig {
        nodes: 1,
        ..SimConfig::new(seed)
    });
    assert!(total.acked > 500, "too little progress: {total:?}");
}

/// Every message and record goes through JSON, as over the real wire and disk.
#[test]
fn wire_and_log_formats_roundtrip() {
    assert_safe(0..100, |seed| SimConfig {
        json: true,
        ..SimConfig::new(seed)
    });
}

/// Without faults, the cluster elects one leader and decides every request.
#[test]
fn fault_free_run_answers_every_request() {
    let total = assert_safe(0..20, |seed| SimConfig {
        drop: 0.0,
        duplicate: 0.0,
        crash_every_ms: 0,
        partition_every_ms: 0,
        ..SimConfig::new(seed)
    });
    assert!(total.acked > 20 * 50, "too little progress: {total:?}");
}

/// A longer soak over varied configurations: `PAXOS_SEEDS=20000 PAXOS_SEED_BASE=10000 cargo test
/// -p targets --test paxos_safety soak -- --ignored`.
#[test]
#[ignore]
fn soak() {
    let seeds: u64 = std::env::var("PAXOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let base: u64 = std::env::var("PAXOS_SEED_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    assert_safe(base..base + seeds, |seed| {
        let base = SimConfig::new(seed);
        match seed % 5 {
            0 => base,
            1 => SimConfig { nodes: 5, ..base },
            2 => SimConfig {
                drop: 0.3,
                duplicate: 0.1,
                max_delay_ms: 120,
                crash_every_ms: 150,
                ..base
            },
            3 => SimConfig {
                tuning: Tuning {
                    compact_every: 3,
                    max_inflight_slots: 2,
                    max_batch: 2,
                    catchup_max_entries: 2,
                    ..base.tuning.clone()
                },
                ..base
            },
            _ => SimConfig {
                crash_every_ms: 100,
                max_down_ms: 100,
                partition_every_ms: 150,
                client_every_ms: 5,
                down_for_good: Some((seed % 3) as usize),
                ..base
            },
        }
    });
}
