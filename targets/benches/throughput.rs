//! Throughput of a 3-node reference cluster on loopback with 16 pipelining clients.
//!
//! `cargo bench -p targets --bench throughput -- [PROTOCOL] [--secs N] [--runs N] [--clients N]
//! [--window N] [--reads PERCENT]`. PROTOCOL defaults to raft. Prints the median of the runs, the
//! latency median and the cost of one fsync on the disk that holds the logs.
#[path = "../tests/cluster/mod.rs"]
mod cluster;

use cluster::{Client, Cluster};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Args {
    protocol: String,
    secs: u64,
    runs: usize,
    clients: usize,
    window: usize,
    read_percent: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        protocol: "raft".into(),
        secs: 10,
        runs: 3,
        clients: 16,
        window: 8,
        read_percent: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name}: expected a number"))
        };
        match arg.as_str() {
            "--bench" => {}
            "--secs" => a.secs = num("--secs")?,
            "--runs" => a.runs = num("--runs")? as usize,
            "--clients" => a.clients = num("--clients")? as usize,
            "--window" => a.window = num("--window")? as usize,
            "--reads" => a.read_percent = num("--reads")?.min(100),
            p if !p.starts_with('-') => a.protocol = p.to_string(),
            other => return Err(format!("{other}: unknown flag")),
        }
    }
    Ok(a)
}

struct ClientResult {
    ok: u64,
    failed: u64,
    latencies_us: Vec<u64>,
}

/// One client: keeps `window` requests in flight until `deadline`.
fn client_loop(
    mut c: Client,
    seed: u64,
    window: usize,
    reads: u64,
    deadline: Instant,
) -> ClientResult {
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut id = 0u64;
    let mut res = ClientResult {
        ok: 0,
        failed: 0,
        latencies_us: Vec::new(),
    };
    let send = |c: &mut Client, sent: &mut HashMap<u64, Instant>, id: &mut u64, r: u64, k: u64| {
        *id += 1;
        let req = if r % 100 < reads {
            json!({"id": *id, "op": "read", "key": k % 1000})
        } else {
            json!({"id": *id, "op": "write", "key": k % 1000, "value": *id as i64})
        };
        sent.insert(*id, Instant::now());
        c.send_raw(&req.to_string()).is_some()
    };
    for _ in 0..window {
        let (r, k) = (next(), next());
        if !send(&mut c, &mut sent, &mut id, r, k) {
            return res;
        }
    }
    while !sent.is_empty() {
        let Some(resp) = c.recv() else { break };
        if let Some(t) = sent.remove(&resp.id) {
            res.latencies_us.push(t.elapsed().as_micros() as u64);
            if resp.ok {
                res.ok += 1
            } else {
                res.failed += 1
            }
        }
        if Instant::now() < deadline {
            let (r, k) = (next(), next());
            if !send(&mut c, &mut sent, &mut id, r, k) {
                break;
            }
        }
    }
    res
}

fn one_run(c: &Cluster, a: &Args) -> (f64, u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..a.clients)
        .map(|i| {
            let client = c.client(i % c.nodes.len()).expect("connect");
            let (window, reads) = (a.window, a.read_percent);
            std::thread::spawn(move || client_loop(client, i as u64 + 1, window, reads, deadline))
        })
        .collect();
    let results: Vec<ClientResult> = handles
        .into_iter()
        .map(|h| h.join().expect("client"))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let ok: u64 = results.iter().map(|r| r.ok).sum();
    let failed: u64 = results.iter().map(|r| r.failed).sum();
    let mut lat: Vec<u64> = results.into_iter().flat_map(|r| r.latencies_us).collect();
    lat.sort_unstable();
    let median = lat.get(lat.len() / 2).copied().unwrap_or(0);
    (ok as f64 / elapsed, ok, failed, median)
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let c = Cluster::start(&a.protocol, 3, &[]);
    c.await_ready(Duration::from_secs(30));
    let fsync_us =
        targets::wal::measure_fsync_us(&c.dir.join("fsync-probe"), 50).expect("fsync probe");
    println!(
        "protocol={} nodes=3 clients={} window={} reads={}% secs={} runs={}",
        a.protocol, a.clients, a.window, a.read_percent, a.secs, a.runs
    );
    println!(
        "fsync (append+fdatasync, median of 50) on {}: {} us",
        c.dir.display(),
        fsync_us
    );
    let mut rates = Vec::new();
    for run in 1..=a.runs {
        let (rate, ok, failed, median_us) = one_run(&c, &a);
        println!(
            "run {run}: {rate:.0} ok ops/s ({ok} ok, {failed} failed), median latency {:.2} ms",
            median_us as f64 / 1000.0
        );
        rates.push(rate);
    }
    rates.sort_by(|x, y| x.total_cmp(y));
    println!("median: {:.0} ok ops/s", rates[rates.len() / 2]);
}
