//! The etcd client against real etcd processes (Debian's /usr/bin/etcd) on 127.0.0.1: a single
//! member and 3-member clusters, each on free ports with its own temporary data directory, killed
//! when the test ends.
use checkers::history::OpType;
use serde_json::{json, Value};
use std::time::Duration;
use workloads::etcd::{server_error_is_definite, EtcdClient, ReadMode};
use workloads::{Completion, Invocation};

mod etcd_support;

use etcd_support::{cluster, etcd_missing};

fn inv(f: &str, key: Option<u64>, value: Value) -> Invocation {
    Invocation {
        f: f.into(),
        key: key.map(|k| json!(k)),
        value,
    }
}

fn read(k: u64) -> Invocation {
    inv("read", Some(k), Value::Null)
}

fn write(k: u64, v: i64) -> Invocation {
    inv("write", Some(k), json!(v))
}

fn txn(mops: Value) -> Invocation {
    inv("txn", None, mops)
}

fn kind_value(c: Completion) -> (OpType, Value) {
    (c.kind, c.value)
}

const LONG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn writes_reads_and_cas_on_one_member() {
    if etcd_missing() {
        return;
    }
    let members = cluster(1).await;
    let mut c = members[0].client(LONG, ReadMode::Linearizable);
    assert_eq!(
        kind_value(c.invoke(&read(1)).await),
        (OpType::Ok, Value::Null)
    );
    assert_eq!(c.invoke(&write(1, 3)).await.kind, OpType::Ok);
    assert_eq!(kind_value(c.invoke(&read(1)).await), (OpType::Ok, json!(3)));

    let cas = c.invoke(&inv("cas", Some(1), json!([3, 4]))).await;
    assert_eq!(kind_value(cas), (OpType::Ok, json!([3, 4])));
    let mismatch = c.invoke(&inv("cas", Some(1), json!([3, 5]))).await;
    assert_eq!(mismatch.kind, OpType::Fail);
    assert!(mismatch.error.unwrap().starts_with("cas-mismatch"));
    let on_missing = c.invoke(&inv("cas", Some(2), json!([0, 1]))).await;
    assert_eq!(on_missing.kind, OpType::Fail, "cas on an absent key");
    assert_eq!(kind_value(c.invoke(&read(1)).await), (OpType::Ok, json!(4)));

    // Serializable reads are served by the member itself and see its own writes here.
    let mut s = members[0].client(LONG, ReadMode::Serializable);
    assert_eq!(kind_value(s.invoke(&read(1)).await), (OpType::Ok, json!(4)));

    // Keys live under the prefix: another prefix sees none of them.
    let mut other = members[0]
        .client(LONG, ReadMode::Linearizable)
        .with_prefix("other/");
    assert_eq!(
        kind_value(other.invoke(&read(1)).await),
        (OpType::Ok, Value::Null)
    );

    let bad = c.invoke(&inv("write", Some(1), json!("x"))).await;
    assert_eq!(bad.kind, OpType::Fail);
    assert!(bad.error.unwrap().starts_with("bad-invocation"));
}

#[tokio::test]
async fn list_append_rw_register_and_set() {
    if etcd_missing() {
        return;
    }
    let members = cluster(1).await;
    let mut c = members[0].client(LONG, ReadMode::Linearizable);
    let t1 = c
        .invoke(&txn(json!([["append", 1, 1], ["r", 1, null]])))
        .await;
    assert_eq!(
        kind_value(t1),
        (OpType::Ok, json!([["append", 1, 1], ["r", 1, [1]]]))
    );
    let t2 = c
        .invoke(&txn(json!([
            ["r", 1, null],
            ["append", 2, 5],
            ["append", 1, 2]
        ])))
        .await;
    assert_eq!(
        kind_value(t2),
        (
            OpType::Ok,
            json!([["r", 1, [1]], ["append", 2, 5], ["append", 1, 2]])
        )
    );
    let r = c
        .invoke(&txn(json!([
            ["r", 1, null],
            ["r", 2, null],
            ["r", 3, null]
        ])))
        .await;
    assert_eq!(
        kind_value(r),
        (
            OpType::Ok,
            json!([["r", 1, [1, 2]], ["r", 2, [5]], ["r", 3, null]])
        )
    );

    let w = c
        .invoke(&txn(json!([
            ["w", 10, 1],
            ["r", 10, null],
            ["r", 11, null]
        ])))
        .await;
    assert_eq!(
        kind_value(w),
        (
            OpType::Ok,
            json!([["w", 10, 1], ["r", 10, 1], ["r", 11, null]])
        )
    );
    let w2 = c.invoke(&txn(json!([["r", 10, null], ["w", 11, 2]]))).await;
    assert_eq!(
        kind_value(w2),
        (OpType::Ok, json!([["r", 10, 1], ["w", 11, 2]]))
    );

    let wrong_type = c.invoke(&txn(json!([["append", 10, 3]]))).await;
    assert_eq!(wrong_type.kind, OpType::Fail);

    let empty = c.invoke(&inv("read", None, Value::Null)).await;
    assert_eq!(kind_value(empty), (OpType::Ok, json!([])));
    for v in [7, 8, 9] {
        assert_eq!(c.invoke(&inv("add", None, json!(v))).await.kind, OpType::Ok);
    }
    let set = c.invoke(&inv("read", None, Value::Null)).await;
    assert_eq!(kind_value(set), (OpType::Ok, json!([7, 8, 9])));
}

/// Clients appending to the same keys at once: every acknowledged append is in the final list
/// exactly once, and no failed one is (the mod_revision compare makes each txn atomic).
#[tokio::test]
async fn concurrent_appends_lose_nothing() {
    if etcd_missing() {
        return;
    }
    let members = cluster(3).await;
    let mut tasks = Vec::new();
    for (w, m) in members.iter().enumerate() {
        let mut c = m.client(LONG, ReadMode::Linearizable);
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..15 {
                let v = (w * 100 + i) as i64;
                let done = c
                    .invoke(&txn(json!([
                        ["r", 2, null],
                        ["append", 1, v],
                        ["append", 2, v]
                    ])))
                    .await;
                outcomes.push((v, done));
            }
            outcomes
        }));
    }
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for t in tasks {
        for (v, done) in t.await.unwrap() {
            match done.kind {
                OpType::Ok => acked.push(v),
                OpType::Fail => {
                    assert!(done.error.as_deref().unwrap().starts_with("txn-conflict"));
                    failed.push(v)
                }
                other => panic!("unexpected {other:?}: {:?}", done.error),
            }
        }
    }
    eprintln!(
        "{} appends acknowledged, {} failed on conflicts",
        acked.len(),
        failed.len()
    );
    assert!(!acked.is_empty());
    let mut c = members[0].client(LONG, ReadMode::Linearizable);
    let r = c
        .invoke(&txn(json!([["r", 1, null], ["r", 2, null]])))
        .await;
    assert_eq!(r.kind, OpType::Ok);
    let list1 = r.value[0][2].as_array().unwrap().clone();
    assert_eq!(
        list1,
        r.value[1][2].as_array().unwrap().clone(),
        "both keys got the same appends in the same order"
    );
    let mut got: Vec<i64> = list1.iter().map(|v| v.as_i64().unwrap()).collect();
    got.sort();
    acked.sort();
    assert_eq!(got, acked, "failed appends: {failed:?}");
}

#[tokio::test]
async fn serializable_and_linearizable_reads_on_every_member() {
    if etcd_missing() {
        return;
    }
    let members = cluster(3).await;
    let mut w = members[0].client(LONG, ReadMode::Linearizable);
    assert_eq!(w.invoke(&write(5, 42)).await.kind, OpType::Ok);
    for m in &members {
        let mut lin = m.client(LONG, ReadMode::Linearizable);
        assert_eq!(
            kind_value(lin.invoke(&read(5)).await),
            (OpType::Ok, json!(42)),
            "linearizable read on {}",
            m.name
        );
        // A serializable read may lag; it must still answer, and catch up.
        let mut ser = m.client(LONG, ReadMode::Serializable);
        let mut seen = Vec::new();
        for _ in 0..100 {
            let done = ser.invoke(&read(5)).await;
            assert_eq!(done.kind, OpType::Ok, "{:?}", done.error);
            seen.push(done.value.clone());
            if done.value == json!(42) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.last(), Some(&json!(42)), "{}: {seen:?}", m.name);
        let txn_read = ser.invoke(&txn(json!([["r", 5, null]]))).await;
        assert_eq!(kind_value(txn_read), (OpType::Ok, json!([["r", 5, 42]])));
    }
}

/// A frozen member accepts connections but never answers: writes time out as `info`, reads as
/// `fail`. Once killed, the refused connection is a definite `fail` for everything.
#[tokio::test]
async fn frozen_and_killed_members() {
    if etcd_missing() {
        return;
    }
    let mut members = cluster(3).await;
    let short = Duration::from_millis(700);
    let mut c = members[2].client(short, ReadMode::Linearizable);
    assert_eq!(c.invoke(&write(1, 1)).await.kind, OpType::Ok);

    members[2].signal("-STOP");
    let w = c.invoke(&write(1, 2)).await;
    assert_eq!(w.kind, OpType::Info, "{:?}", w.error);
    assert!(w.error.unwrap().starts_with("timeout"));
    let cas = c.invoke(&inv("cas", Some(1), json!([1, 3]))).await;
    assert_eq!(cas.kind, OpType::Info);
    let r = c.invoke(&read(1)).await;
    assert_eq!(r.kind, OpType::Fail);
    assert!(r.error.unwrap().starts_with("timeout"));
    // A txn that cannot take its snapshot has written nothing.
    let t = c.invoke(&txn(json!([["append", 1, 4]]))).await;
    assert_eq!(t.kind, OpType::Fail);
    assert!(t.error.unwrap().contains("before writing"));

    // A write in flight when the member dies: the request was sent, so its outcome is unknown.
    // (If the kill wins the race with the send, the connection is refused: a definite fail.)
    let mut slow = members[2].client(LONG, ReadMode::Linearizable);
    members[2].signal("-CONT");
    assert_eq!(slow.invoke(&read(1)).await.kind, OpType::Ok);
    members[2].signal("-STOP");
    let in_flight = tokio::spawn(async move { slow.invoke(&write(1, 5)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    members[2].kill();
    let w = in_flight.await.unwrap();
    let err = w.error.clone().unwrap();
    match w.kind {
        OpType::Info => assert!(err.starts_with("connection-lost"), "{err}"),
        OpType::Fail => assert!(err.starts_with("connect-failed"), "{err}"),
        other => panic!("{other:?}: {err}"),
    }

    let mut c = members[2].client(LONG, ReadMode::Linearizable);
    for op in [write(1, 6), read(1), txn(json!([["append", 1, 7]]))] {
        let done = c.invoke(&op).await;
        assert_eq!(done.kind, OpType::Fail, "{}", op.f);
        let err = done.error.unwrap();
        assert!(
            err.starts_with("connect-failed") && err.contains("m2"),
            "{err}"
        );
    }
    // The other two still form a quorum.
    let mut ok = members[0].client(LONG, ReadMode::Linearizable);
    assert_eq!(ok.invoke(&write(1, 8)).await.kind, OpType::Ok);
}

/// With two of three members gone the survivor cannot commit: etcd itself answers "request timed
/// out", which may still commit later, so a write is `info` and a read is `fail`.
#[tokio::test]
async fn etcd_timeouts_without_quorum() {
    if etcd_missing() {
        return;
    }
    let mut members = cluster(3).await;
    members[0].kill();
    members[1].kill();
    let mut c = members[2].client(Duration::from_secs(60), ReadMode::Linearizable);
    let w = c.invoke(&write(3, 1)).await;
    eprintln!("write without quorum: {:?}", w.error);
    assert_eq!(w.kind, OpType::Info, "{:?}", w.error);
    assert!(w.error.unwrap().starts_with("etcd-error"));
    let r = c.invoke(&read(3)).await;
    eprintln!("read without quorum: {:?}", r.error);
    assert_eq!(r.kind, OpType::Fail, "{:?}", r.error);
    // The member still serves its local state.
    let mut s = members[2].client(Duration::from_secs(60), ReadMode::Serializable);
    assert_eq!(s.invoke(&read(3)).await.kind, OpType::Ok);
}

#[tokio::test]
async fn bad_addresses_fail_with_the_node_named() {
    let mut c = EtcdClient::new("n7", "https://127.0.0.1:2379", LONG, ReadMode::Linearizable);
    let done = c.invoke(&write(1, 1)).await;
    assert_eq!(done.kind, OpType::Fail);
    let err = done.error.unwrap();
    assert!(
        err.starts_with("bad-address") && err.contains("n7"),
        "{err}"
    );
}

#[test]
fn etcd_error_codes() {
    // (gRPC code, etcd's text, definitely not applied)
    let cases = [
        (3, "etcdserver: request is too large", true),
        (3, "etcdserver: duplicate key given in txn request", true),
        (9, "etcdserver: some precondition", true),
        (
            11,
            "etcdserver: mvcc: required revision has been compacted",
            true,
        ),
        (8, "etcdserver: too many requests", true),
        (8, "etcdserver: mvcc: database space exceeded", true),
        (8, "etcdserver: something else exhausted", false),
        (14, "etcdserver: request timed out", false),
        (
            14,
            "etcdserver: request timed out, possibly due to previous leader failure",
            false,
        ),
        (14, "etcdserver: leader changed", false),
        (14, "etcdserver: no leader", false),
        (4, "context deadline exceeded", false),
        (1, "context canceled", false),
        (13, "internal", false),
        (2, "unknown", false),
    ];
    for (code, message, definite) in cases {
        assert_eq!(
            server_error_is_definite(code, message),
            definite,
            "{code} {message}"
        );
    }
}
