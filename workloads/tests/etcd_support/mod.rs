//! Real etcd members on 127.0.0.1 for the etcd client tests and the etcd bench: free ports, a
//! temporary data directory each, killed (and the directory removed) on drop.
#![allow(dead_code)]

use checkers::history::OpType;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use workloads::etcd::{EtcdClient, ReadMode};
use workloads::Invocation;

pub const ETCD: &str = "/usr/bin/etcd";

pub fn etcd_missing() -> bool {
    if Path::new(ETCD).exists() {
        return false;
    }
    eprintln!("SKIPPED: {ETCD} is missing (apt-get install etcd-server)");
    true
}

/// One etcd member; killed and its directory removed on drop.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    pub fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {}", self.name);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn client(&self, timeout: Duration, mode: ReadMode) -> EtcdClient {
        EtcdClient::new(&self.name, &self.client_url, timeout, mode)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A stopped process must be continued to die promptly on some kernels; harmless otherwise.
            let _ = Command::new("kill").args(["-CONT", &self.pid()]).status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts an `n`-member cluster and waits until every member answers a linearizable read. The
/// free ports are picked before etcd binds them, so another process may take one meanwhile: a
/// cluster whose member exits at once is started again on fresh ports.
pub async fn cluster(n: usize) -> Vec<Member> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let mut members = spawn_cluster(n);
        match await_ready(&mut members).await {
            Ok(()) => return members,
            Err((why, exited)) if exited && attempt < ATTEMPTS => {
                eprintln!("etcd cluster attempt {attempt} failed, retrying on new ports: {why}");
            }
            Err((why, _)) => panic!("{why}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

fn spawn_cluster(n: usize) -> Vec<Member> {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let run = format!(
        "fl-etcd-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::SeqCst)
    );
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect();
    let mut members = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("{run}-m{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(ETCD)
            .arg(format!("--name=m{i}"))
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={}", initial.join(",")))
            .arg("--initial-cluster-state=new")
            .arg(format!("--initial-cluster-token={run}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        members.push(Member {
            name: format!("m{i}"),
            client_url,
            dir,
            child: Some(child),
        });
    }
    members
}

/// Waits (up to ~30 s per member) for a linearizable read on every member; on failure, says why
/// and whether some member process exited.
async fn await_ready(members: &mut [Member]) -> Result<(), (String, bool)> {
    for i in 0..members.len() {
        let mut c = members[i].client(Duration::from_secs(2), ReadMode::Linearizable);
        let mut last = None;
        for _ in 0..300 {
            let done = c.invoke(&read(0)).await;
            if done.kind == OpType::Ok {
                last = None;
                break;
            }
            last = done.error;
            let exited = members.iter_mut().position(|m| {
                m.child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some())
            });
            if let Some(j) = exited {
                let m = &members[j];
                return Err((format!("{} exited:\n{}", m.name, m.log_tail()), true));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(e) = last {
            let m = &members[i];
            return Err((
                format!("{} never served a read: {e}\n{}", m.name, m.log_tail()),
                false,
            ));
        }
    }
    Ok(())
}

/// A register read of key `k`.
pub fn read(k: u64) -> Invocation {
    Invocation {
        f: "read".into(),
        key: Some(json!(k)),
        value: Value::Null,
    }
}
