//! Multi-process clusters of the real `faultline-server` binary on 127.0.0.1, for any protocol.
//!
//! Used by `cluster_*.rs`: start N nodes, talk to them over the client protocol, kill -9 and
//! restart them. Waiting loops have generous limits (they bound liveness, they do not measure it).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use targets::protocol::Response;

pub struct Node {
    pub id: String,
    pub addr: String,
    args: Vec<String>,
    child: Option<Child>,
}

pub struct Cluster {
    pub protocol: String,
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Cluster {
    /// Starts `n` nodes of `protocol` with `extra` flags for every node.
    pub fn start(protocol: &str, n: usize, extra: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "faultline-cluster-{protocol}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let addrs: Vec<(String, String)> = (1..=n)
            .map(|i| (format!("n{i}"), format!("127.0.0.1:{}", free_port())))
            .collect();
        let nodes = addrs
            .iter()
            .map(|(id, addr)| {
                let peers: Vec<String> = addrs
                    .iter()
                    .filter(|(p, _)| p != id)
                    .map(|(p, a)| format!("{p}={a}"))
                    .collect();
                let mut args = vec![
                    "--protocol".to_string(),
                    protocol.to_string(),
                    "--id".into(),
                    id.clone(),
                    "--listen".into(),
                    addr.clone(),
                    "--peers".into(),
                    peers.join(","),
                    "--data-dir".into(),
                    dir.join(id).display().to_string(),
                    "--log-file".into(),
                    dir.join(format!("{id}.log")).display().to_string(),
                ];
                args.extend(extra.iter().map(|s| s.to_string()));
                Node {
                    id: id.clone(),
                    addr: addr.clone(),
                    args,
                    child: None,
                }
            })
            .collect();
        let mut c = Cluster {
            protocol: protocol.to_string(),
            nodes,
            dir,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = Command::new(env!("CARGO_BIN_EXE_faultline-server"))
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start faultline-server");
        node.child = Some(child);
    }

    /// SIGKILL, like `kill -9`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.spawn(i);
    }

    pub fn client(&self, i: usize) -> Option<Client> {
        Client::connect(&self.nodes[i].addr)
    }

    /// Polls `status` until node `i` answers (it may still be starting).
    pub fn status(&self, i: usize) -> Option<Value> {
        let mut c = self.client(i)?;
        let r = c.call(json!({"op": "status"}))?;
        r.status
            .map(|s| serde_json::to_value(s).expect("status encodes"))
    }

    /// Waits until every running node reports the same leader; returns its index.
    pub fn await_leader(&self, limit: Duration) -> usize {
        let start = Instant::now();
        while start.elapsed() < limit {
            let views: Vec<Option<String>> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].child.is_some())
                .map(|i| {
                    self.status(i)
                        .and_then(|s| s["leader"].as_str().map(str::to_string))
                })
                .collect();
            if let Some(Some(l)) = views.first() {
                if views.iter().all(|v| v.as_ref() == Some(l)) {
                    if let Some(i) = self.nodes.iter().position(|n| n.id == *l) {
                        return i;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{}: no agreed leader within {limit:?}", self.protocol);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("node logs kept in {}", self.dir.display());
        }
    }
}

/// A blocking client connection speaking the newline-delimited JSON protocol.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
}

impl Client {
    pub fn connect(addr: &str) -> Option<Client> {
        let s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.set_nodelay(true).ok()?;
        let reader = BufReader::new(s.try_clone().ok()?);
        Some(Client {
            writer: s,
            reader,
            next_id: 1,
        })
    }

    /// Sends one request (an object with `op` and its fields) and waits for its response.
    pub fn call(&mut self, mut req: Value) -> Option<Response> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        self.send_raw(&req.to_string())?;
        loop {
            let r = self.recv()?;
            if r.id == id {
                return Some(r);
            }
        }
    }

    pub fn send_raw(&mut self, line: &str) -> Option<()> {
        self.writer.write_all(line.as_bytes()).ok()?;
        self.writer.write_all(b"\n").ok()
    }

    /// Sends arbitrary bytes (e.g. invalid UTF-8) as one line.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Option<()> {
        self.writer.write_all(bytes).ok()?;
        self.writer.write_all(b"\n").ok()
    }

    pub fn recv(&mut self) -> Option<Response> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }
}

/// Retries a request through node `i` while the answer is a definite error that means "not now"
/// (no leader, not the leader). Returns the final response, or `None` if the node is unreachable.
pub fn call_retrying(c: &Cluster, i: usize, req: Value) -> Option<Response> {
    use targets::protocol::ErrorCode;
    for _ in 0..100 {
        let r = c.client(i).and_then(|mut cl| cl.call(req.clone()));
        let retry = r.as_ref().is_some_and(|resp| {
            resp.error.as_ref().is_some_and(|e| {
                e.definite
                    && matches!(
                        e.code,
                        ErrorCode::NoLeader | ErrorCode::NotLeader | ErrorCode::Unavailable
                    )
            })
        });
        if r.is_some() && !retry {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Reads a key for the final check. A restarted 2PC participant may make the first transactions
/// that touch it abort (definitely) until its peers reconnect, so definite aborts are retried too.
fn read_back(c: &Cluster, i: usize, key: u64) -> Option<Response> {
    let mut last = None;
    for _ in 0..50 {
        let r = call_retrying(c, i, json!({"op": "read", "key": key}))?;
        let aborted = r
            .error
            .as_ref()
            .is_some_and(|e| e.definite && e.code == targets::protocol::ErrorCode::Aborted);
        if !aborted {
            return Some(r);
        }
        last = Some(r);
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

/// Whether the protocol elects a leader that `status` reports (2PC has none).
pub fn has_leader(protocol: &str) -> bool {
    protocol != "2pc"
}

impl Cluster {
    /// Waits until the cluster can serve: an agreed leader where the protocol has one (returns its
    /// index), otherwise every running node answering `status` (returns 0).
    pub fn await_ready(&self, limit: Duration) -> usize {
        if has_leader(&self.protocol) {
            return self.await_leader(limit);
        }
        let start = Instant::now();
        while start.elapsed() < limit {
            if (0..self.nodes.len())
                .filter(|i| self.nodes[*i].child.is_some())
                .all(|i| self.status(i).is_some())
            {
                return 0;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{}: nodes not answering within {limit:?}", self.protocol);
    }
}

/// The generic scenario: write and read through every node, kill -9 the leader (node 1 for a
/// leaderless protocol), keep writing, restart it, and check every acknowledged write is readable
/// through every node.
pub fn write_read_kill_restart(protocol: &str, n: usize) {
    let mut c = Cluster::start(protocol, n, &[]);
    c.await_ready(Duration::from_secs(30));
    let mut acked: Vec<(u64, i64)> = Vec::new();
    let mut uncertain: Vec<(u64, i64)> = Vec::new();
    let mut write = |c: &Cluster, i: usize, key: u64, value: i64| {
        let r = call_retrying(c, i, json!({"op": "write", "key": key, "value": value}));
        match r {
            Some(r) if r.ok => acked.push((key, value)),
            Some(r) if r.error.as_ref().is_some_and(|e| e.definite) => {}
            _ => uncertain.push((key, value)),
        }
    };
    // Each key is written once, through node key % n.
    for key in 0..(2 * n as u64) {
        write(&c, key as usize % n, key, 1000 + key as i64);
    }
    let leader = c.await_ready(Duration::from_secs(30));
    c.kill9(leader);
    for key in (2 * n as u64)..(4 * n as u64) {
        let i = (key as usize % n + usize::from(key as usize % n == leader)) % n;
        write(&c, i, key, 1000 + key as i64);
    }
    c.restart(leader);
    c.await_ready(Duration::from_secs(30));
    assert!(
        acked.len() >= 2 * n,
        "{protocol}: too few writes acknowledged: {acked:?}, uncertain {uncertain:?}"
    );
    for i in 0..n {
        for (key, value) in &acked {
            let r = read_back(&c, i, *key)
                .unwrap_or_else(|| panic!("{protocol}: node {i} unreachable"));
            assert!(
                r.ok,
                "{protocol}: read of {key} via n{} failed: {r:?}",
                i + 1
            );
            assert_eq!(
                r.value,
                Some(targets::protocol::Val::Int(*value)),
                "{protocol}: acknowledged write {key}={value} not read back via n{}",
                i + 1
            );
        }
    }
}
