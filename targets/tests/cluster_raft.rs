//! Raft clusters of the real binary on loopback: writes and reads through every node survive a
//! kill -9 of the leader and its restart.
mod cluster;

use cluster::{Client, Cluster};
use serde_json::json;
use std::time::Duration;

#[test]
fn three_node_raft_keeps_acknowledged_writes_across_a_leader_crash() {
    cluster::write_read_kill_restart("raft", 3);
}

#[test]
fn five_node_raft_keeps_acknowledged_writes_across_a_leader_crash() {
    cluster::write_read_kill_restart("raft", 5);
}

#[test]
fn pipelined_requests_and_malformed_lines_on_one_connection() {
    let c = Cluster::start("raft", 3, &[]);
    let leader = c.await_leader(Duration::from_secs(30));
    let mut cl: Client = c.client(leader).expect("connect");
    // Ten writes, a malformed line and a status, all sent before reading anything.
    for i in 1..=10u64 {
        cl.send_raw(&json!({"id": i, "op": "write", "key": i, "value": i}).to_string())
            .expect("send");
    }
    cl.send_raw(r#"{"id": 11, "op": "explode"}"#).expect("send");
    cl.send_raw(r#"{"id": 12, "op": "status"}"#).expect("send");
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..12 {
        let r = cl.recv().expect("a response");
        seen.insert(r.id, r);
    }
    assert_eq!(seen.len(), 12, "one response per request id");
    assert!((1..=10).all(|i| seen[&i].ok), "{seen:?}");
    let bad = seen[&11].error.as_ref().expect("malformed is an error");
    assert_eq!(bad.code, targets::protocol::ErrorCode::Malformed);
    assert_eq!(
        seen[&12].status.as_ref().map(|s| s.protocol.as_str()),
        Some("raft")
    );
    // The connection survived the malformed line.
    let r = cl.call(json!({"op": "read", "key": 3})).expect("read");
    assert_eq!(r.value, Some(targets::protocol::Val::Int(3)));
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--protocol",
                "zab",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                "/tmp/x",
            ],
            "--protocol",
        ),
        (
            &[
                "--protocol",
                "raft",
                "--id",
                "n1",
                "--listen",
                "nowhere",
                "--data-dir",
                "/tmp/x",
            ],
            "--listen",
        ),
        (
            &[
                "--protocol",
                "raft",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                "/tmp/x",
                "--peers",
                "n2",
            ],
            "--peers",
        ),
        (
            &[
                "--protocol",
                "raft",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                "/tmp/x",
                "--bug",
                "nope",
            ],
            "--bug",
        ),
        (
            &[
                "--protocol",
                "raft",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                "/tmp/x",
                "--read-mode",
                "fast",
            ],
            "--read-mode",
        ),
        (
            &[
                "--protocol",
                "raft",
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
            ],
            "--data-dir",
        ),
    ];
    for (args, flag) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline-server"))
            .args(*args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} should name {flag}: {err}");
    }
}
