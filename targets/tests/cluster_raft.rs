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
    // Invalid UTF-8 is malformed too, with id 0.
    cl.send_bytes(b"\xff\xfe{\"id\":13}").expect("send");
    let r = cl.recv().expect("a response");
    assert_eq!(r.id, 0);
    assert_eq!(
        r.error.map(|e| e.code),
        Some(targets::protocol::ErrorCode::Malformed)
    );
    // The connection survived the malformed lines.
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

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The server's wall clock (what leases use, and what `status` reports) must follow libfaketime,
/// which only works because the binary reads the clock through libc and is dynamically linked.
#[test]
fn single_node_wall_clock_follows_libfaketime() {
    if !std::path::Path::new(LIBFAKETIME).exists() {
        eprintln!("SKIPPED: needs libfaketime ({LIBFAKETIME}; apt-get install libfaketime)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("faultline-faketime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let stamp = dir.join("faketime");
    std::fs::write(&stamp, "-1h\n").expect("stamp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faultline-server"))
        .args([
            "--protocol",
            "raft",
            "--id",
            "n1",
            "--listen",
            &addr,
            "--data-dir",
        ])
        .arg(dir.join("n1"))
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &stamp)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let status_time = || -> Option<i64> {
        let mut c = Client::connect(&addr)?;
        let r = c.call(json!({"op": "status"}))?;
        Some(r.status?.time_ms as i64)
    };
    let real_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64
    };
    let mut skew = None;
    for _ in 0..100 {
        if let Some(t) = status_time() {
            skew = Some(t - real_now());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let skew = skew.expect("node answered status");
    // An hour back, give or take ten minutes of slack for a slow machine.
    assert!((-4_200_000..=-3_000_000).contains(&skew), "skew {skew} ms");
    // A single-node cluster still serves writes and reads.
    let mut c = Client::connect(&addr).expect("connect");
    let mut ok = false;
    for _ in 0..100 {
        if c.call(json!({"op": "write", "key": 1, "value": 7}))
            .is_some_and(|r| r.ok)
        {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "single node never accepted a write");
    let r = c.call(json!({"op": "read", "key": 1})).expect("read");
    assert_eq!(r.value, Some(targets::protocol::Val::Int(7)));
    // Rewriting the file moves the running process's clock back to real time.
    std::fs::write(&stamp, "+0\n").expect("stamp");
    let skew = status_time().expect("status") - real_now();
    assert!(skew.abs() < 600_000, "skew after reset {skew} ms");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes through the leader, kill -9s every node, restarts them all and reads the key back.
fn read_after_killing_everyone(extra: &[&str]) -> Option<targets::protocol::Val> {
    let mut c = Cluster::start("raft", 3, extra);
    let leader = c.await_leader(Duration::from_secs(30));
    let r = cluster::call_retrying(&c, leader, json!({"op": "write", "key": 5, "value": 55}))
        .expect("write answered");
    assert!(r.ok, "{r:?}");
    for i in 0..3 {
        c.kill9(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    let leader = c.await_leader(Duration::from_secs(30));
    let r = cluster::call_retrying(&c, leader, json!({"op": "read", "key": 5})).expect("read");
    assert!(r.ok, "{r:?}");
    r.value
}

#[test]
fn no_fsync_flag_loses_acknowledged_writes_when_every_node_is_killed() {
    assert_eq!(
        read_after_killing_everyone(&[]),
        Some(targets::protocol::Val::Int(55))
    );
    assert_eq!(read_after_killing_everyone(&["--bug", "no-fsync"]), None);
}
