//! [`Database`] for the bundled `faultline-server` (Raft, Paxos or 2PC).
//!
//! Layout on every node, below [`ServerConfig::base_dir`] (`/opt/faultline`):
//! - `bin/<sha256>/faultline-server` (content-addressed cache) and the symlink `bin/faultline-server`
//! - `etc/faultline-server.run`: the command line `configure` wrote; `start` runs it
//! - `run/faultline-server.pid`, `run/faketime` (libfaketime offset, rewritten by the nemesis)
//! - `log/faultline-server.log` (`--log-file`) and `log/faultline-server.stdout`
//! - `data/faultline-server/` (`--data-dir`)
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nemesis::{Command, Remote};
use sha2::{Digest, Sha256};

use super::daemon::{self, Daemon, Launch};
use super::{Database, DbError, Installed, FAKETIME_LIB};
use crate::cluster::shell_quote as q;

/// Which reference protocol the servers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Raft,
    Paxos,
    TwoPc,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Raft => "raft",
            Protocol::Paxos => "paxos",
            Protocol::TwoPc => "2pc",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, DbError> {
        match s {
            "raft" => Ok(Protocol::Raft),
            "paxos" => Ok(Protocol::Paxos),
            "2pc" => Ok(Protocol::TwoPc),
            other => Err(DbError::Config(format!(
                "protocol: unknown {other:?} (expected raft, paxos or 2pc)"
            ))),
        }
    }
}

/// Where the server binary comes from.
#[derive(Debug, Clone)]
pub enum BinarySource {
    /// A binary on the controller, uploaded to each node (cached by its sha256).
    Local(PathBuf),
    /// Shell commands that install the server on the node (run once per distinct script, as root),
    /// and the path of the binary they install.
    Commands { script: String, binary: String },
}

/// How to run `faultline-server` on a set of nodes.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub protocol: Protocol,
    pub binary: BinarySource,
    /// Every member as (node name, address other nodes and clients reach it at), in cluster order.
    pub members: Vec<(String, String)>,
    /// Port for clients and peers alike.
    pub port: u16,
    /// Known bugs to switch on (`--bug`).
    pub bugs: Vec<String>,
    /// `quorum` or `lease` (`--read-mode`); the server's default when `None`.
    pub read_mode: Option<String>,
    /// Seed for the servers' own randomness; each node adds its index.
    pub seed: Option<u64>,
    /// More flags, passed as they are.
    pub extra_args: Vec<String>,
    /// Run under libfaketime with a per-node offset file, so the nemesis can shift its clock.
    pub faketime: bool,
    /// Root of everything the server keeps on a node.
    pub base_dir: String,
    /// How long `start` waits for the server to listen.
    pub start_timeout: Duration,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl ServerConfig {
    /// Defaults: port 7000, no bugs, no faketime, `/opt/faultline`.
    pub fn new(protocol: Protocol, binary: BinarySource, members: Vec<(String, String)>) -> Self {
        ServerConfig {
            protocol,
            binary,
            members,
            port: 7000,
            bugs: Vec::new(),
            read_mode: None,
            seed: None,
            extra_args: Vec::new(),
            faketime: false,
            base_dir: crate::cluster::NODE_OPT_DIR.to_string(),
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// The members of a cluster as the remotes know them (name, host).
pub fn members_of(nodes: &[Arc<dyn Remote>]) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|n| (n.name().to_string(), n.host().to_string()))
        .collect()
}

/// The bundled reference server as a [`Database`].
#[derive(Debug, Clone)]
pub struct FaultlineServer {
    cfg: ServerConfig,
    /// The binary's bytes and sha256 (hex) for [`BinarySource::Local`].
    binary: Option<(Arc<Vec<u8>>, String)>,
}

const SERVER: &str = "faultline-server";

impl FaultlineServer {
    /// Validates the configuration and, for a local binary, reads and hashes it once.
    pub fn new(cfg: ServerConfig) -> Result<Self, DbError> {
        if cfg.members.is_empty() {
            return Err(DbError::Config("members: no nodes".into()));
        }
        for (i, (name, _)) in cfg.members.iter().enumerate() {
            if cfg.members[..i].iter().any(|(n, _)| n == name) {
                return Err(DbError::Config(format!("members: {name} given twice")));
            }
        }
        if !cfg.base_dir.starts_with('/') || cfg.base_dir.len() < 2 {
            return Err(DbError::Config(format!(
                "base_dir: {:?} must be an absolute path below /",
                cfg.base_dir
            )));
        }
        if let Some(mode) = &cfg.read_mode {
            if mode != "quorum" && mode != "lease" {
                return Err(DbError::Config(format!(
                    "read_mode: {mode:?} (expected quorum or lease)"
                )));
            }
        }
        let binary = match &cfg.binary {
            BinarySource::Local(path) => {
                let bytes = std::fs::read(path).map_err(|source| DbError::Local {
                    path: path.display().to_string(),
                    source,
                })?;
                let hash = hex::encode(Sha256::digest(&bytes));
                Some((Arc::new(bytes), hash))
            }
            BinarySource::Commands { binary, .. } => {
                if !binary.starts_with('/') {
                    return Err(DbError::Config(format!(
                        "binary: {binary:?} must be an absolute path"
                    )));
                }
                None
            }
        };
        Ok(FaultlineServer { cfg, binary })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.cfg.base_dir.trim_end_matches('/'))
    }

    fn pid_file(&self) -> String {
        self.path("run/faultline-server.pid")
    }
    fn run_script(&self) -> String {
        self.path("etc/faultline-server.run")
    }
    fn data_dir(&self) -> String {
        self.path("data/faultline-server")
    }
    fn log_dir(&self) -> String {
        self.path("log")
    }
    fn exe(&self) -> String {
        match &self.cfg.binary {
            BinarySource::Local(_) => self.path("bin/faultline-server"),
            BinarySource::Commands { binary, .. } => binary.clone(),
        }
    }

    /// The server's command line on `node`.
    fn command_line(&self, node: &str) -> Result<String, DbError> {
        let index = self
            .cfg
            .members
            .iter()
            .position(|(n, _)| n == node)
            .ok_or_else(|| DbError::Config(format!("members: node {node} is not a member")))?;
        let peers: Vec<String> = self
            .cfg
            .members
            .iter()
            .filter(|(n, _)| n != node)
            .map(|(n, host)| format!("{n}={host}:{}", self.cfg.port))
            .collect();
        let mut args = vec![
            q(&self.exe()),
            "--protocol".into(),
            self.cfg.protocol.as_str().into(),
            "--id".into(),
            q(node),
            "--listen".into(),
            format!("0.0.0.0:{}", self.cfg.port),
        ];
        if !peers.is_empty() {
            args.push("--peers".into());
            args.push(q(&peers.join(",")));
        }
        args.extend([
            "--data-dir".into(),
            q(&self.data_dir()),
            "--log-file".into(),
            q(&format!("{}/faultline-server.log", self.log_dir())),
        ]);
        for bug in &self.cfg.bugs {
            args.push("--bug".into());
            args.push(q(bug));
        }
        if let Some(mode) = &self.cfg.read_mode {
            args.push("--read-mode".into());
            args.push(q(mode));
        }
        if let Some(seed) = self.cfg.seed {
            args.push("--seed".into());
            args.push((seed + index as u64).to_string());
        }
        args.extend(self.cfg.extra_args.iter().map(|a| q(a)));
        Ok(args.join(" "))
    }

    fn daemon(&self) -> Daemon<'_> {
        Daemon {
            name: SERVER,
            pid_file: self.pid_file(),
        }
    }

    async fn root(&self, node: &dyn Remote, script: String) -> Result<String, DbError> {
        let timeout = self.cfg.start_timeout + self.cfg.stop_grace + Duration::from_secs(20);
        daemon::as_root(node, script, timeout).await
    }
}

#[async_trait::async_trait]
impl Database for FaultlineServer {
    fn name(&self) -> String {
        format!("{SERVER}/{}", self.cfg.protocol.as_str())
    }

    async fn install(&self, node: &dyn Remote) -> Result<Installed, DbError> {
        match (&self.cfg.binary, &self.binary) {
            (BinarySource::Local(_), Some((bytes, hash))) => {
                let dir = self.path(&format!("bin/{hash}"));
                let target = format!("{dir}/{SERVER}");
                let link = format!(
                    "ln -sfn {hash}/{SERVER} {link}",
                    link = q(&self.path("bin/faultline-server"))
                );
                let check = format!(
                    "if test -x {t}; then {link}; echo cached; fi",
                    t = q(&target)
                );
                if self.root(node, check).await?.trim() == "cached" {
                    return Ok(Installed::Cached);
                }
                // Uploaded as the login user, moved into place as root.
                let staging = format!("/tmp/faultline-upload-{hash}");
                node.upload(bytes, &staging, 0o755).await?;
                self.root(
                    node,
                    format!(
                        "mkdir -p {d} && mv -f {s} {t} && chmod 755 {t} && {link}",
                        d = q(&dir),
                        s = q(&staging),
                        t = q(&target)
                    ),
                )
                .await?;
                Ok(Installed::Uploaded {
                    bytes: bytes.len() as u64,
                })
            }
            (BinarySource::Commands { script, binary }, _) => {
                let hash = hex::encode(Sha256::digest(script.as_bytes()));
                let marker = self.path(&format!("installed/{hash}"));
                let check = format!(
                    "if test -e {m} && test -x {b}; then echo cached; fi",
                    m = q(&marker),
                    b = q(binary)
                );
                if self.root(node, check).await?.trim() == "cached" {
                    return Ok(Installed::Cached);
                }
                self.root(node, script.clone()).await?;
                self.root(
                    node,
                    format!(
                        "test -x {b} || {{ echo 'install commands did not produce {b}' >&2; exit 1; }}; mkdir -p {d} && touch {m}",
                        b = q(binary),
                        d = q(&self.path("installed")),
                        m = q(&marker)
                    ),
                )
                .await?;
                Ok(Installed::Ran)
            }
            (BinarySource::Local(p), None) => Err(DbError::Config(format!(
                "{}: binary was not loaded",
                p.display()
            ))),
        }
    }

    async fn configure(&self, node: &dyn Remote) -> Result<(), DbError> {
        let line = self.command_line(node.name())?;
        let script = format!("#!/bin/sh\n# Written by faultline (configure).\nexec {line}\n");
        let faketime = if self.cfg.faketime {
            format!("printf '+0\\n' > {}\n", q(&self.path("run/faketime")))
        } else {
            String::new()
        };
        self.root(
            node,
            format!(
                "set -e\nmkdir -p {etc} {run} {log} {data}\ncat > {rs} <<'FAULTLINE_EOF'\n{script}FAULTLINE_EOF\nchmod 755 {rs}\n{faketime}",
                etc = q(&self.path("etc")),
                run = q(&self.path("run")),
                log = q(&self.log_dir()),
                data = q(&self.data_dir()),
                rs = q(&self.run_script()),
            ),
        )
        .await?;
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> Result<(), DbError> {
        let env = if self.cfg.faketime {
            format!(
                "test -r {lib} || {{ echo 'libfaketime is not installed ({lib}): apt-get install libfaketime' >&2; exit 3; }}\n\
                 test -f {ft} || printf '+0\\n' > {ft}\n\
                 envs=\"LD_PRELOAD={lib} FAKETIME_TIMESTAMP_FILE={ft} FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1\"\n",
                lib = FAKETIME_LIB,
                ft = q(&self.path("run/faketime")),
            )
        } else {
            String::new()
        };
        let launch = Launch {
            run_script: &self.run_script(),
            dir: &self.cfg.base_dir,
            mkdirs: &[self.path("run"), self.log_dir()],
            setup: &env,
            output: &format!("{}/faultline-server.stdout", self.log_dir()),
            port: self.cfg.port,
            timeout: self.cfg.start_timeout,
        };
        self.daemon().start(node, &launch).await
    }

    async fn stop(&self, node: &dyn Remote) -> Result<(), DbError> {
        self.daemon().stop(node, self.cfg.stop_grace).await
    }

    async fn kill(&self, node: &dyn Remote) -> Result<(), DbError> {
        self.daemon().kill(node).await
    }

    async fn pause(&self, node: &dyn Remote) -> Result<(), DbError> {
        self.daemon().signal(node, "STOP", false).await
    }

    async fn resume(&self, node: &dyn Remote) -> Result<(), DbError> {
        // Healing must be safe to repeat: resuming a server that is gone is not an error.
        self.daemon().signal(node, "CONT", true).await
    }

    async fn wipe(&self, node: &dyn Remote) -> Result<(), DbError> {
        if self.is_running(node).await? {
            return Err(DbError::node(
                node,
                format!("{SERVER} is running; stop or kill it before wiping its data"),
            ));
        }
        self.root(
            node,
            format!(
                "rm -rf {data} {log} && rm -f {ft}",
                data = q(&self.data_dir()),
                log = q(&self.log_dir()),
                ft = q(&self.path("run/faketime")),
            ),
        )
        .await?;
        Ok(())
    }

    async fn collect_logs(&self, node: &dyn Remote, into: &Path) -> Result<Vec<PathBuf>, DbError> {
        let listing = self
            .root(
                node,
                format!(
                    "cd {} 2>/dev/null && for f in *; do [ -f \"$f\" ] && echo \"$f\"; done; true",
                    q(&self.log_dir())
                ),
            )
            .await?;
        let dir = into.join("nodes").join(node.name());
        std::fs::create_dir_all(&dir).map_err(|source| DbError::Local {
            path: dir.display().to_string(),
            source,
        })?;
        let mut written = Vec::new();
        for name in listing.lines().filter(|l| !l.is_empty()) {
            let remote = format!("{}/{name}", self.log_dir());
            let out = node
                .exec(
                    Command::new(format!("cat -- {}", q(&remote)))
                        .sudo("root")
                        .timeout(Duration::from_secs(120)),
                )
                .await?;
            if !out.success() {
                return Err(DbError::node(
                    node,
                    format!("cannot read {remote}: {}", out.stderr_str().trim()),
                ));
            }
            let local = dir.join(name);
            std::fs::write(&local, &out.stdout).map_err(|source| DbError::Local {
                path: local.display().to_string(),
                source,
            })?;
            written.push(local);
        }
        Ok(written)
    }

    async fn is_running(&self, node: &dyn Remote) -> Result<bool, DbError> {
        self.daemon().is_running(node).await
    }

    fn faketime_file(&self) -> Option<String> {
        self.cfg.faketime.then(|| self.path("run/faketime"))
    }

    fn client_addr(&self, node: &str) -> Option<String> {
        self.cfg
            .members
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, host)| format!("{host}:{}", self.cfg.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(members: &[(&str, &str)]) -> FaultlineServer {
        let cfg = ServerConfig {
            bugs: vec!["stale-read".into()],
            read_mode: Some("lease".into()),
            seed: Some(10),
            ..ServerConfig::new(
                Protocol::Raft,
                BinarySource::Commands {
                    script: "true".into(),
                    binary: "/usr/local/bin/faultline-server".into(),
                },
                members
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            )
        };
        FaultlineServer::new(cfg).unwrap()
    }

    #[test]
    fn command_line_lists_the_other_members_as_peers() {
        let s = server(&[("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")]);
        assert_eq!(
            s.command_line("n2").unwrap(),
            "/usr/local/bin/faultline-server --protocol raft --id n2 --listen 0.0.0.0:7000 \
             --peers n1=10.0.0.1:7000,n3=10.0.0.3:7000 --data-dir /opt/faultline/data/faultline-server \
             --log-file /opt/faultline/log/faultline-server.log --bug stale-read --read-mode lease --seed 11"
        );
        assert_eq!(s.client_addr("n3").as_deref(), Some("10.0.0.3:7000"));
        let err = s.command_line("n9").unwrap_err().to_string();
        assert!(err.contains("n9"), "{err}");
    }

    #[test]
    fn single_node_has_no_peers_flag() {
        let s = server(&[("n1", "10.0.0.1")]);
        assert!(!s.command_line("n1").unwrap().contains("--peers"));
    }

    #[test]
    fn bad_configs_are_rejected_with_the_field_named() {
        let base = || {
            ServerConfig::new(
                Protocol::Paxos,
                BinarySource::Commands {
                    script: "true".into(),
                    binary: "/x".into(),
                },
                vec![("n1".into(), "h".into())],
            )
        };
        let cases: Vec<(ServerConfig, &str)> = vec![
            (
                ServerConfig {
                    members: vec![],
                    ..base()
                },
                "members",
            ),
            (
                ServerConfig {
                    members: vec![("n1".into(), "a".into()), ("n1".into(), "b".into())],
                    ..base()
                },
                "given twice",
            ),
            (
                ServerConfig {
                    read_mode: Some("fast".into()),
                    ..base()
                },
                "read_mode",
            ),
            (
                ServerConfig {
                    base_dir: "opt".into(),
                    ..base()
                },
                "base_dir",
            ),
            (
                ServerConfig {
                    binary: BinarySource::Local("/nonexistent/faultline-server".into()),
                    ..base()
                },
                "/nonexistent/faultline-server",
            ),
        ];
        for (cfg, needle) in cases {
            let err = FaultlineServer::new(cfg).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        assert!("3pc".parse::<Protocol>().is_err());
        assert_eq!("2pc".parse::<Protocol>().unwrap(), Protocol::TwoPc);
    }
}
