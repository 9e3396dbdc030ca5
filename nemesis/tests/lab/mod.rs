//! A small lab of real nodes for the nemesis integration tests: each node is a network
//! namespace (its own `eth0` on a bridge in a hub namespace) with its own PID and mount
//! namespace (so `ps` on one node sees only that node's processes, as on the local cluster), and
//! a real [`Remote`] that runs commands there with `nsenter`. Also a [`TargetControl`] over a
//! `sleep` daemon with a pid file, written with plain commands.
//!
//! Tests call [`Lab::new`] first; when not root (or namespaces are unavailable) it prints a loud
//! SKIPPED line and returns `None`.
#![allow(dead_code)]

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nemesis::control::{ControlError, TargetControl};
use nemesis::remote::{Command, Output, Remote, RemoteError};

fn sh(script: &str) -> std::io::Result<std::process::Output> {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
}

fn must(script: &str) {
    let out = sh(script).expect("spawn sh");
    assert!(
        out.status.success(),
        "lab setup `{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A node of the lab, reached through `nsenter` into its namespaces.
pub struct NsRemote {
    name: String,
    host: String,
    /// Host pid of the node's PID 1 (tini).
    pid: u32,
}

#[async_trait::async_trait]
impl Remote for NsRemote {
    fn name(&self) -> &str {
        &self.name
    }
    fn host(&self) -> &str {
        &self.host
    }
    async fn exec(&self, cmd: Command) -> Result<Output, RemoteError> {
        if !init_alive(self.pid) {
            return Err(RemoteError::Unreachable {
                node: self.name.clone(),
                addr: self.host.clone(),
                cause: format!("the node's init (pid {}) is gone", self.pid),
            });
        }
        let script = match cmd.sudo_user.as_deref() {
            None | Some("root") => cmd.script.clone(),
            Some(user) => format!("exec runuser -u {user} -- sh -c {}", quote(&cmd.script)),
        };
        let mut c = tokio::process::Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid.to_string())
            .args(["-p", "-m", "-n", "sh", "-c"])
            .arg(&script)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().map_err(|e| RemoteError::Unreachable {
            node: self.name.clone(),
            addr: self.host.clone(),
            cause: e.to_string(),
        })?;
        if let Some(bytes) = cmd.stdin.clone() {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(&bytes)
                .await
                .map_err(|e| RemoteError::Channel {
                    node: self.name.clone(),
                    command: cmd.script.clone(),
                    cause: e.to_string(),
                })?;
        }
        match tokio::time::timeout(cmd.timeout, child.wait_with_output()).await {
            Err(_) => Err(RemoteError::Timeout {
                node: self.name.clone(),
                command: cmd.script.clone(),
                after: cmd.timeout,
            }),
            Ok(Err(e)) => Err(RemoteError::Channel {
                node: self.name.clone(),
                command: cmd.script.clone(),
                cause: e.to_string(),
            }),
            Ok(Ok(out)) => Ok(Output {
                status: out.status.code().map(|c| c as u32),
                stdout: out.stdout,
                stderr: out.stderr,
            }),
        }
    }
    async fn upload(&self, bytes: &[u8], path: &str, mode: u32) -> Result<(), RemoteError> {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
        let script = format!(
            "mkdir -p {} && cat > {} && chmod {mode:o} {}",
            quote(if dir.is_empty() { "/" } else { dir }),
            quote(path),
            quote(path)
        );
        self.run(Command::new(script).stdin(bytes.to_vec()))
            .await
            .map(|_| ())
    }
    async fn download(&self, path: &str) -> Result<Vec<u8>, RemoteError> {
        let out = self
            .exec(Command::new(format!("cat {}", quote(path))))
            .await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(RemoteError::Failed {
                node: self.name.clone(),
                command: format!("cat {path}"),
                status: out.status,
                stderr: out.stderr_str(),
            })
        }
    }
}

/// Whether host pid `pid` is a live (not zombie) process.
fn init_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `n` nodes on one bridge. Dropping the lab removes everything it made.
pub struct Lab {
    tag: u8,
    holders: Vec<Child>,
    pub remotes: Vec<Arc<NsRemote>>,
}

impl Lab {
    /// Builds lab `tag` (1..=200, unique per test) with `n` nodes named `t<tag>n<i>` at
    /// 10.231.<tag>.<i>.
    pub fn new(tag: u8, n: usize) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIPPED: needs root (network namespaces, iptables, tc)");
            return None;
        }
        for tool in ["ip", "nsenter", "unshare", "tini", "iptables", "tc"] {
            if sh(&format!("command -v {tool}"))
                .map(|o| !o.status.success())
                .unwrap_or(true)
            {
                eprintln!(
                    "SKIPPED: needs {tool} (apt-get install iproute2 iptables tini util-linux)"
                );
                return None;
            }
        }
        let hub = format!("fnm{tag}h");
        Lab::remove_namespaces(tag, n);
        let mut lab = Lab {
            tag,
            holders: Vec::new(),
            remotes: Vec::new(),
        };
        must(&format!(
            "ip netns add {hub} && ip netns exec {hub} ip link add br0 type bridge && \
             ip netns exec {hub} ip link set br0 up"
        ));
        for i in 1..=n {
            let ns = format!("fnm{tag}n{i}");
            let addr = format!("10.231.{tag}.{i}");
            must(&format!(
                "ip netns add {ns} && ip netns exec {ns} ip link set lo up && \
                 ip link add {ns}a type veth peer name {ns}b && \
                 ip link set {ns}a netns {ns} && ip netns exec {ns} ip link set {ns}a name eth0 && \
                 ip netns exec {ns} ip addr add {addr}/24 dev eth0 && ip netns exec {ns} ip link set eth0 up && \
                 ip link set {ns}b netns {hub} && ip netns exec {hub} ip link set {ns}b master br0 && \
                 ip netns exec {hub} ip link set {ns}b up"
            ));
            let holder = std::process::Command::new("ip")
                .args([
                    "netns", "exec", &ns, "unshare", "--pid", "--mount", "--fork",
                ])
                .args([
                    "--mount-proc",
                    "--kill-child",
                    "tini",
                    "-s",
                    "--",
                    "sleep",
                    "infinity",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn unshare");
            let upid = holder.id();
            lab.holders.push(holder);
            // The node's PID 1 is unshare's child (tini).
            let mut pid = None;
            for _ in 0..200 {
                let children =
                    std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                        .unwrap_or_default();
                if let Some(p) = children.split_whitespace().next() {
                    pid = p.parse().ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let pid = pid.expect("the node's init did not start");
            lab.remotes.push(Arc::new(NsRemote {
                name: format!("t{tag}n{i}"),
                host: addr,
                pid,
            }));
        }
        Some(lab)
    }

    fn remove_namespaces(tag: u8, n: usize) {
        for i in 1..=n {
            let _ = sh(&format!("ip netns del fnm{tag}n{i} 2>/dev/null"));
        }
        let _ = sh(&format!("ip netns del fnm{tag}h 2>/dev/null"));
    }

    /// Crashes node `i` as a whole (its PID namespace and everything in it), as a powered-off
    /// machine: its remote then reports it unreachable.
    pub fn crash_node(&mut self, i: usize) {
        let _ = self.holders[i].kill();
        let _ = self.holders[i].wait();
        for _ in 0..500 {
            if !init_alive(self.remotes[i].pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("node {i} did not die");
    }

    /// The nodes as the nemesis takes them.
    pub fn nodes(&self) -> Vec<Arc<dyn Remote>> {
        self.remotes
            .iter()
            .map(|r| r.clone() as Arc<dyn Remote>)
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.remotes.iter().map(|r| r.name.clone()).collect()
    }

    pub fn node(&self, i: usize) -> &Arc<NsRemote> {
        &self.remotes[i]
    }

    /// Runs `script` on node `i`, panicking on transport errors; returns the output.
    pub async fn on(&self, i: usize, script: &str) -> Output {
        self.remotes[i]
            .exec(Command::new(script))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether node `from` can open a TCP connection to node `to` on `port`.
    pub async fn tcp_ok(&self, from: usize, to: usize, port: u16) -> bool {
        let host = self.remotes[to].host.clone();
        self.on(from, &format!("nc -z -w 2 {host} {port}"))
            .await
            .success()
    }

    /// Starts a TCP listener on every node.
    pub async fn listen_everywhere(&self, port: u16) {
        for i in 0..self.remotes.len() {
            let out = self
                .on(i, &format!("setsid nc -lk {port} >/dev/null 2>&1 </dev/null & sleep 0.2; ss -ltn | grep -q ':{port} '"))
                .await;
            assert!(out.success(), "listener on node {i}: {}", out.stderr_str());
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &mut self.holders {
            let _ = h.kill();
            let _ = h.wait();
        }
        Lab::remove_namespaces(self.tag, self.remotes.len());
        for r in &self.remotes {
            let _ = std::fs::remove_file(nemesis::clock::faketime_file(&r.name));
            let _ = std::fs::remove_file(nemesis::clock::strobe_pidfile(&r.name));
            let _ = std::fs::remove_file(nemesis::clock::strobe_script(&r.name));
            let _ = std::fs::remove_file(SleepControl::pidfile(&r.name));
        }
    }
}

/// A [`TargetControl`] over a `sleep 1000` daemon per node, with a pid file.
pub struct SleepControl {
    pub nodes: Vec<Arc<NsRemote>>,
    pub leader: Option<String>,
}

impl SleepControl {
    fn node(&self, name: &str) -> Result<&Arc<NsRemote>, ControlError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ControlError::Failed {
                node: name.into(),
                cause: "no such node".into(),
            })
    }

    fn pidfile(name: &str) -> String {
        format!("/run/fnm-{name}.pid")
    }

    async fn sh(&self, name: &str, script: &str) -> Result<String, ControlError> {
        let node = self.node(name)?;
        Ok(node.run(Command::new(script)).await?)
    }

    /// `ps` state of the daemon: `S`, `T`, ... or `dead`.
    pub async fn state(&self, name: &str) -> String {
        let p = Self::pidfile(name);
        let out = self
            .sh(
                name,
                &format!("ps -o stat= -p \"$(cat {p} 2>/dev/null)\" || true"),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // A zombie (not yet reaped by the node's init) is dead too.
        match out.trim().chars().next() {
            None | Some('Z') => "dead".into(),
            Some(c) => c.to_string(),
        }
    }

    pub async fn pid(&self, name: &str) -> String {
        let p = Self::pidfile(name);
        self.sh(name, &format!("cat {p}"))
            .await
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

#[async_trait::async_trait]
impl TargetControl for SleepControl {
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        let p = Self::pidfile(node);
        // Returns once the process is gone or a zombie, so a `start` right after sees it dead.
        self.sh(
            node,
            &format!(
                "[ -f {p} ] || exit 0; pid=$(cat {p}); kill -9 \"$pid\" 2>/dev/null\n\
                 while :; do case \"$(ps -o stat= -p \"$pid\")\" in ''|Z*) exit 0;; esac; sleep 0.01; done"
            ),
        )
        .await
        .map(|_| ())
    }
    async fn start(&self, node: &str) -> Result<(), ControlError> {
        let p = Self::pidfile(node);
        self.sh(
            node,
            &format!(
                "if [ -f {p} ]; then case \"$(ps -o stat= -p \"$(cat {p})\")\" in ''|Z*) ;; *) exit 0;; esac; fi\n\
                 setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $! > {p}"
            ),
        )
        .await
        .map(|_| ())
    }
    async fn pause(&self, node: &str) -> Result<(), ControlError> {
        let p = Self::pidfile(node);
        // Signals are delivered asynchronously: return once the process is really stopped.
        self.sh(
            node,
            &format!(
                "pid=$(cat {p}); kill -STOP \"$pid\" || exit 1\n\
                 while :; do case \"$(ps -o stat= -p \"$pid\")\" in T*) exit 0;; '') exit 1;; esac; sleep 0.01; done"
            ),
        )
        .await
        .map(|_| ())
    }
    async fn resume(&self, node: &str) -> Result<(), ControlError> {
        let p = Self::pidfile(node);
        self.sh(
            node,
            &format!(
                "[ -f {p} ] || exit 0; pid=$(cat {p}); kill -CONT \"$pid\" 2>/dev/null\n\
                 while :; do case \"$(ps -o stat= -p \"$pid\")\" in T*) sleep 0.01;; *) exit 0;; esac; done"
            ),
        )
        .await
        .map(|_| ())
    }
    async fn leader(&self) -> Result<Option<String>, ControlError> {
        Ok(self.leader.clone())
    }
}
