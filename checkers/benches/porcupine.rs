//! Checks every Porcupine fixture repeatedly and prints median times next to Porcupine's.
//!
//! `cargo bench -p checkers --bench porcupine` (set `FAULTLINE_SHARED_DIR` when the repository
//! does not sit next to `shared/`). Parsing is not timed, as in Porcupine's figures.
#[path = "../tests/common/fixtures.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use checkers::linear::{check, Limits};
use checkers::read::read_history;

/// CPU time of this process (all threads), from /proc/self/stat (Linux), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut rows = Vec::new();
    let (mut cpu_total, mut runs_total, mut per_pass_cpu) = (0.0, 0usize, 0.0);
    let load_before = load_average();
    for fx in fixtures::all() {
        if only.as_ref().is_some_and(|o| !fx.file.contains(o.as_str())) {
            continue;
        }
        let file = std::fs::File::open(&fx.path).expect("open fixture");
        let h = read_history(file, &fx.file, fx.format).expect("parse fixture");
        let limits = Limits::default();
        // At least 5 runs and 0.3 s, at most 1000 runs (as for Porcupine's figures).
        let mut times = Vec::new();
        let started = Instant::now();
        let cpu_start = cpu_seconds();
        while times.len() < 1000
            && (times.len() < 5 || started.elapsed() < Duration::from_millis(300))
        {
            let t = Instant::now();
            let r = check(&h, fx.model, &limits).expect("check");
            times.push(t.elapsed());
            assert_eq!(
                r.verdict == checkers::verdict::Verdict::Valid,
                fx.linearizable,
                "{}: wrong verdict",
                fx.file
            );
        }
        cpu_total += cpu_seconds() - cpu_start;
        runs_total += times.len();
        per_pass_cpu += (cpu_seconds() - cpu_start) / times.len() as f64;
        rows.push((fx.file.clone(), median(times), fx.porcupine_seconds));
    }
    let total: f64 = rows.iter().map(|r| r.1.as_secs_f64()).sum();
    let porcupine_total: f64 = rows.iter().map(|r| r.2).sum();
    let slower: Vec<(String, Duration, f64)> = rows
        .iter()
        .filter(|r| r.1.as_secs_f64() > r.2)
        .cloned()
        .collect();
    println!(
        "{} fixtures: total of medians {:.4} s (Porcupine {:.4} s); {} files slower than Porcupine",
        rows.len(),
        total,
        porcupine_total,
        slower.len()
    );
    println!(
        "CPU time (all threads) for one pass over the fixtures: {per_pass_cpu:.4} s \
         ({runs_total} checks, {cpu_total:.2} CPU s); {} threads; load average {load_before} before, {} after",
        rayon::current_num_threads(),
        load_average()
    );
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!(
        "{:<24} {:>12} {:>12} {:>8}",
        "slowest 10", "faultline s", "porcupine s", "ratio"
    );
    for (file, t, p) in rows.iter().take(10) {
        println!(
            "{file:<24} {:>12.6} {p:>12.6} {:>8.2}",
            t.as_secs_f64(),
            p / t.as_secs_f64()
        );
    }
    for (file, t, p) in &slower {
        println!(
            "SLOWER than Porcupine: {file} {:.6} s vs {p:.6} s",
            t.as_secs_f64()
        );
    }
}
