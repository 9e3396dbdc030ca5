//! SSH control layer timings against five sshds on 127.0.0.1 (needs root).
//!
//! `cargo bench -p harness --bench ssh` prints the median (and min/max) of 20 runs of:
//! connecting to 5 nodes in parallel and running one command on each; connecting alone;
//! 20 parallel commands over one connection; a 1 MB upload.
#[path = "../tests/ssh_support/mod.rs"]
mod ssh_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::inventory::Inventory;
use harness::ssh::{connect_all, SshOptions, SshRemote};
use nemesis::{Command, Remote};
use ssh_support::{root_or_skip, TestSshd};

const RUNS: usize = 20;

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<58} median {:>7.1} ms  (min {:.1}, max {:.1}, n={})",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

async fn bench(servers: &[TestSshd]) {
    let inventory = Inventory {
        nodes: servers
            .iter()
            .enumerate()
            .map(|(i, s)| s.node(&format!("n{}", i + 1)))
            .collect(),
    };
    let opts = SshOptions::default();

    let mut connect_and_run = Vec::new();
    let mut connect_only = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let remotes = connect_all(&inventory, &opts).await.expect("connect");
        let connected = start.elapsed();
        let runs: Vec<_> = remotes
            .iter()
            .cloned()
            .map(|r| tokio::spawn(async move { r.run(Command::new("hostname")).await }))
            .collect();
        for t in runs {
            t.await.expect("join").expect("command");
        }
        connect_and_run.push(start.elapsed());
        connect_only.push(connected);
        for r in &remotes {
            r.close().await;
        }
    }
    report("connect to 5 nodes + one command on each", connect_and_run);
    report("connect to 5 nodes (handshake + auth)", connect_only);

    let one = Arc::new(
        SshRemote::connect(inventory.nodes[0].clone(), &opts)
            .await
            .expect("connect"),
    );
    let mut parallel = Vec::new();
    let mut single = Vec::new();
    let mut upload = Vec::new();
    let blob = vec![0x5au8; 1 << 20];
    let path = format!("{}/bench.bin", servers[0].dir.display());
    for _ in 0..RUNS {
        let start = Instant::now();
        one.run(Command::new("true")).await.expect("command");
        single.push(start.elapsed());

        let start = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let r = one.clone();
                tokio::spawn(async move { r.run(Command::new(format!("echo {i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("command");
        }
        parallel.push(start.elapsed());

        let start = Instant::now();
        one.upload(&blob, &path, 0o644).await.expect("upload");
        upload.push(start.elapsed());
    }
    report("one command on an open connection", single);
    report("20 commands in parallel over one connection", parallel);
    report("upload 1 MB (cat > tmp, chmod, rename)", upload);
}

fn main() {
    if !root_or_skip("ssh benchmark") {
        return;
    }
    let servers: Vec<TestSshd> = (0..5).map(|_| TestSshd::start()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench(&servers));
}
