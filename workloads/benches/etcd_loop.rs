//! One client loop against a 3-member etcd cluster on 127.0.0.1 (Debian's /usr/bin/etcd): ops/s
//! and median latency per operation kind. Informative only; etcd's fsync dominates writes.
//! `cargo bench -p workloads --bench etcd_loop`
#[path = "../tests/etcd_support/mod.rs"]
mod etcd_support;

use checkers::history::OpType;
use serde_json::json;
use std::time::{Duration, Instant};
use workloads::etcd::ReadMode;
use workloads::Invocation;

const OPS: usize = 500;

/// Builds the `i`-th invocation of one kind.
type MakeOp = Box<dyn Fn(usize) -> Invocation>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if etcd_support::etcd_missing() {
        return;
    }
    let members = etcd_support::cluster(3).await;
    let timeout = Duration::from_secs(10);
    let kinds: Vec<(&str, ReadMode, MakeOp)> = vec![
        (
            "write",
            ReadMode::Linearizable,
            Box::new(|i| inv("write", Some(i % 8), json!(i))),
        ),
        (
            "read linearizable",
            ReadMode::Linearizable,
            Box::new(|i| inv("read", Some(i % 8), json!(null))),
        ),
        (
            "read serializable",
            ReadMode::Serializable,
            Box::new(|i| inv("read", Some(i % 8), json!(null))),
        ),
        (
            "cas",
            ReadMode::Linearizable,
            Box::new(|i| inv("cas", Some(100), json!([i, i + 1]))),
        ),
        (
            "txn r+append+append",
            ReadMode::Linearizable,
            Box::new(|i| {
                inv(
                    "txn",
                    None,
                    json!([
                        ["r", 200 + i % 4, null],
                        ["append", 200 + i % 4, i],
                        ["append", 204 + i % 4, i]
                    ]),
                )
            }),
        ),
    ];
    // cas [i, i+1] succeeds when the key holds i.
    let mut c = members[1].client(timeout, ReadMode::Linearizable);
    c.invoke(&inv("write", Some(100), json!(0))).await;
    println!("etcd 3-member loopback cluster, one client to a member, {OPS} ops per kind");
    for (name, mode, make) in kinds {
        let mut c = members[1].client(timeout, mode);
        let mut lat = Vec::with_capacity(OPS);
        let mut oks = 0;
        let mut first_error = None;
        let start = Instant::now();
        for i in 0..OPS {
            let t = Instant::now();
            let done = c.invoke(&make(i)).await;
            lat.push(t.elapsed());
            if done.kind == OpType::Ok {
                oks += 1;
            } else if first_error.is_none() {
                first_error = done.error;
            }
        }
        let total = start.elapsed();
        lat.sort();
        println!(
            "{name:22} {:8.0} ops/s  median {:7.3} ms  p99 {:7.3} ms  ok {oks}/{OPS}",
            OPS as f64 / total.as_secs_f64(),
            lat[OPS / 2].as_secs_f64() * 1e3,
            lat[OPS * 99 / 100].as_secs_f64() * 1e3,
        );
        if let Some(e) = first_error {
            println!("  first error: {e}");
        }
    }
}

fn inv(f: &str, key: Option<usize>, value: serde_json::Value) -> Invocation {
    Invocation {
        f: f.into(),
        key: key.map(|k| json!(k)),
        value,
    }
}
