//! [`Database`] for etcd (tested with Debian's etcd 3.4.23, package `etcd-server`), one member
//! per node, all members listed up front (`--initial-cluster`).
//!
//! Layout on every node, below [`EtcdConfig::base_dir`] (`/opt/faultline/etcd`):
//! - `bin/<sha256>/etcd` and the symlink `bin/etcd` when the binary is uploaded
//! - `etc/etcd.run`: the command line `configure` wrote; `start` runs it
//! - `run/etcd.pid`, `log/etcd.log` (etcd's stderr and stdout), `data/` (`--data-dir`)
//!
//! Clock faults: etcd is a Go program and reads the clock without libc, so libfaketime cannot
//! shift it. [`Database::faketime_file`] is therefore `None` and
//! [`Database::clock_fault_unsupported`] gives the reason the runner reports with `skipped`.
//!
//! `start` returns once the member listens for clients. A member serves (linearizable) requests
//! only once a majority of members runs; [`Etcd::wait_healthy`] waits for that from the controller.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nemesis::{Command, Remote};
use sha2::{Digest, Sha256};
use workloads::etcd::{EtcdClient, ReadMode};
use workloads::Invocation;

use super::daemon::{self, Daemon, Launch};
use super::{Database, DbError, Installed};
use crate::cluster::shell_quote as q;

/// Why the runner skips libfaketime clock faults for etcd.
pub const CLOCK_FAULT_REASON: &str =
    "etcd is a Go program: it reads the clock without libc, so libfaketime cannot shift it";

/// Where the etcd binary comes from.
#[derive(Debug, Clone)]
pub enum EtcdBinary {
    /// `/usr/bin/etcd` from Debian's `etcd-server`, installed with apt-get when missing (its
    /// systemd unit is disabled and stopped so it cannot hold the ports).
    Apt,
    /// A binary on the controller, uploaded to each node (cached by its sha256).
    Local(PathBuf),
}

/// How to run etcd on a set of nodes.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    pub binary: EtcdBinary,
    /// Every member as (node name, address other nodes and clients reach it at).
    pub members: Vec<(String, String)>,
    pub client_port: u16,
    pub peer_port: u16,
    /// `--initial-cluster-token`: keeps members of different test clusters apart.
    pub cluster_token: String,
    /// More flags, passed as they are (e.g. `--heartbeat-interval=50`).
    pub extra_args: Vec<String>,
    /// Root of everything etcd keeps on a node.
    pub base_dir: String,
    /// How long `start` waits for the member to listen.
    pub start_timeout: Duration,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl EtcdConfig {
    /// Defaults: ports 2379/2380, Debian's binary, `/opt/faultline/etcd`.
    pub fn new(members: Vec<(String, String)>) -> Self {
        EtcdConfig {
            binary: EtcdBinary::Apt,
            members,
            client_port: 2379,
            peer_port: 2380,
            cluster_token: "faultline".into(),
            extra_args: Vec::new(),
            base_dir: format!("{}/etcd", crate::cluster::NODE_OPT_DIR),
            start_timeout: Duration::from_secs(15),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// etcd as a [`Database`].
#[derive(Debug, Clone)]
pub struct Etcd {
    cfg: EtcdConfig,
    /// The binary's bytes and sha256 (hex) for [`EtcdBinary::Local`].
    binary: Option<(Arc<Vec<u8>>, String)>,
}

const APT_ETCD: &str = "/usr/bin/etcd";

impl Etcd {
    /// Validates the configuration and, for a local binary, reads and hashes it once.
    pub fn new(cfg: EtcdConfig) -> Result<Self, DbError> {
        if cfg.members.is_empty() {
            return Err(DbError::Config("etcd members: no nodes".into()));
        }
        for (i, (name, host)) in cfg.members.iter().enumerate() {
            if cfg.members[..i].iter().any(|(n, _)| n == name) {
                return Err(DbError::Config(format!("etcd members: {name} given twice")));
            }
            if name.is_empty() || name.contains([',', '=', ' ']) || host.is_empty() {
                return Err(DbError::Config(format!(
                    "etcd members: {name:?} at {host:?} cannot be a member name and host"
                )));
            }
        }
        if cfg.client_port == cfg.peer_port {
            return Err(DbError::Config(format!(
                "etcd ports: client and peer port are both {}",
                cfg.client_port
            )));
        }
        if !cfg.base_dir.starts_with('/') || cfg.base_dir.len() < 2 {
            return Err(DbError::Config(format!(
                "etcd base_dir: {:?} must be an absolute path below /",
                cfg.base_dir
            )));
        }
        let binary = match &cfg.binary {
            EtcdBinary::Local(path) => {
                let bytes = std::fs::read(path).map_err(|source| DbError::Local {
                    path: path.display().to_string(),
                    source,
                })?;
                let hash = hex::encode(Sha256::digest(&bytes));
                Some((Arc::new(bytes), hash))
            }
            EtcdBinary::Apt => None,
        };
        Ok(Etcd { cfg, binary })
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.cfg
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.cfg.base_dir.trim_end_matches('/'))
    }
    fn pid_file(&self) -> String {
        self.path("run/etcd.pid")
    }
    fn run_script(&self) -> String {
        self.path("etc/etcd.run")
    }
    fn log_file(&self) -> String {
        self.path("log/etcd.log")
    }
    fn exe(&self) -> String {
        match self.cfg.binary {
            EtcdBinary::Apt => APT_ETCD.to_string(),
            EtcdBinary::Local(_) => self.path("bin/etcd"),
        }
    }

    /// etcd's command line on `node`.
    pub fn command_line(&self, node: &str) -> Result<String, DbError> {
        let host = self
            .cfg
            .members
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, h)| h)
            .ok_or_else(|| DbError::Config(format!("etcd members: node {node} is not a member")))?;
        let initial: Vec<String> = self
            .cfg
            .members
            .iter()
            .map(|(n, h)| format!("{n}=http://{h}:{}", self.cfg.peer_port))
            .collect();
        let client_url = format!("http://{host}:{}", self.cfg.client_port);
        let peer_url = format!("http://{host}:{}", self.cfg.peer_port);
        let mut args = vec![
            q(&self.exe()),
            format!("--name={}", q(node)),
            format!("--data-dir={}", q(&self.path("data"))),
            format!("--listen-client-urls={}", q(&client_url)),
            format!("--advertise-client-urls={}", q(&client_url)),
            format!("--listen-peer-urls={}", q(&peer_url)),
            format!("--initial-advertise-peer-urls={}", q(&peer_url)),
            format!("--initial-cluster={}", q(&initial.join(","))),
            "--initial-cluster-state=new".into(),
            format!("--initial-cluster-token={}", q(&self.cfg.cluster_token)),
        ];
        args.extend(self.cfg.extra_args.iter().map(|a| q(a)));
        Ok(args.join(" "))
    }

    /// Waits until every node answers a linearizable read from the controller (so a majority is
    /// up and a leader elected), at most `timeout` in all.
    pub async fn wait_healthy(
        &self,
        nodes: &[Arc<dyn Remote>],
        timeout: Duration,
    ) -> Result<(), DbError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let probe = Invocation {
            f: "read".into(),
            key: Some(serde_json::json!("probe")),
            value: serde_json::Value::Null,
        };
        for node in nodes {
            let addr = self.client_addr(node.name()).ok_or_else(|| {
                DbError::Config(format!(
                    "etcd members: node {} is not a member",
                    node.name()
                ))
            })?;
            let mut client = EtcdClient::new(
                node.name(),
                addr,
                Duration::from_secs(2),
                ReadMode::Linearizable,
            )
            .with_prefix("faultline-health/");
            loop {
                let done = client.invoke(&probe).await;
                if done.error.is_none() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(DbError::node(
                        node.as_ref(),
                        format!(
                            "etcd not healthy after {timeout:?} (is a majority running?): {}",
                            done.error.unwrap_or_default()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn daemon(&self) -> Daemon<'_> {
        Daemon {
            name: "etcd",
            pid_file: self.pid_file(),
        }
    }

    async fn install_upload(
        &self,
        node: &dyn Remote,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Installed, DbError> {
        let dir = self.path(&format!("bin/{hash}"));
        let target = format!("{dir}/etcd");
        let link = format!("ln -sfn {hash}/etcd {}", q(&self.path("bin/etcd")));
        let short = Duration::from_secs(30);
        let check = format!(
            "if test -x {t}; then {link}; echo cached; fi",
            t = q(&target)
        );
        if daemon::as_root(node, check, short).await?.trim() == "cached" {
            return Ok(Installed::Cached);
        }
        let staging = format!("/tmp/faultline-etcd-{hash}");
        node.upload(bytes, &staging, 0o755).await?;
        daemon::as_root(
            node,
            format!(
                "mkdir -p {d} && mv -f {s} {t} && chmod 755 {t} && {link}",
                d = q(&dir),
                s = q(&staging),
                t = q(&target)
            ),
            short,
        )
        .await?;
        Ok(Installed::Uploaded {
            bytes: bytes.len() as u64,
        })
    }
}

#[async_trait::async_trait]
impl Database for Etcd {
    fn name(&self) -> String {
        "etcd".into()
    }

    async fn install(&self, node: &dyn Remote) -> Result<Installed, DbError> {
        if let Some((bytes, hash)) = &self.binary {
            return self.install_upload(node, bytes, hash).await;
        }
        let check = format!("if test -x {APT_ETCD}; then echo cached; fi");
        if daemon::as_root(node, check, Duration::from_secs(30))
            .await?
            .trim()
            == "cached"
        {
            return Ok(Installed::Cached);
        }
        // Debian's package enables and starts etcd.service where systemd runs: take it down so
        // it holds neither the ports nor a data directory of its own making.
        let script = format!(
            "export DEBIAN_FRONTEND=noninteractive\n\
             apt-get install -y --no-install-recommends etcd-server || \
             {{ apt-get update && apt-get install -y --no-install-recommends etcd-server; }}\n\
             if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi\n\
             test -x {APT_ETCD} || {{ echo 'etcd-server installed no {APT_ETCD}' >&2; exit 1; }}\n"
        );
        daemon::as_root(node, script, Duration::from_secs(600)).await?;
        Ok(Installed::Ran)
    }

    async fn configure(&self, node: &dyn Remote) -> Result<(), DbError> {
        let line = self.command_line(node.name())?;
        let script = format!("#!/bin/sh\n# Written by faultline (configure).\nexec {line}\n");
        daemon::as_root(
            node,
            format!(
                "set -e\nmkdir -p {etc} {run} {log}\ncat > {rs} <<'FAULTLINE_EOF'\n{script}FAULTLINE_EOF\nchmod 755 {rs}\n",
                etc = q(&self.path("etc")),
                run = q(&self.path("run")),
                log = q(&self.path("log")),
                rs = q(&self.run_script()),
            ),
            Duration::from_secs(30),
        )
        .await?;
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> Result<(), DbError> {
        let launch = Launch {
            run_script: &self.run_script(),
            dir: &self.cfg.base_dir,
            mkdirs: &[self.path("run"), self.path("log")],
            setup: "",
            output: &self.log_file(),
            port: self.cfg.client_port,
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
        // Healing must be safe to repeat: resuming a member that is gone is not an error.
        self.daemon().signal(node, "CONT", true).await
    }

    async fn wipe(&self, node: &dyn Remote) -> Result<(), DbError> {
        if self.is_running(node).await? {
            return Err(DbError::node(
                node,
                "etcd is running; stop or kill it before wiping its data",
            ));
        }
        daemon::as_root(
            node,
            format!(
                "rm -rf {data} {log}",
                data = q(&self.path("data")),
                log = q(&self.path("log"))
            ),
            Duration::from_secs(60),
        )
        .await?;
        Ok(())
    }

    async fn collect_logs(&self, node: &dyn Remote, into: &Path) -> Result<Vec<PathBuf>, DbError> {
        let remote = self.log_file();
        let out = node
            .exec(
                Command::new(format!("test -f {r} || exit 3; cat -- {r}", r = q(&remote)))
                    .sudo("root")
                    .timeout(Duration::from_secs(120)),
            )
            .await?;
        match out.status {
            Some(0) => {}
            // Never started (or wiped): nothing to collect.
            Some(3) => return Ok(Vec::new()),
            _ => {
                return Err(DbError::node(
                    node,
                    format!("cannot read {remote}: {}", out.stderr_str().trim()),
                ))
            }
        }
        let dir = into.join("nodes").join(node.name());
        std::fs::create_dir_all(&dir).map_err(|source| DbError::Local {
            path: dir.display().to_string(),
            source,
        })?;
        let local = dir.join("etcd.log");
        std::fs::write(&local, &out.stdout).map_err(|source| DbError::Local {
            path: local.display().to_string(),
            source,
        })?;
        Ok(vec![local])
    }

    async fn is_running(&self, node: &dyn Remote) -> Result<bool, DbError> {
        self.daemon().is_running(node).await
    }

    fn faketime_file(&self) -> Option<String> {
        None
    }

    fn clock_fault_unsupported(&self) -> Option<String> {
        Some(CLOCK_FAULT_REASON.to_string())
    }

    fn client_addr(&self, node: &str) -> Option<String> {
        self.cfg
            .members
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, host)| format!("{host}:{}", self.cfg.client_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn command_line_lists_every_member() {
        let etcd = Etcd::new(EtcdConfig {
            extra_args: vec!["--heartbeat-interval=50".into()],
            ..EtcdConfig::new(members(&[("n1", "10.0.0.1"), ("n2", "10.0.0.2")]))
        })
        .unwrap();
        assert_eq!(
            etcd.command_line("n2").unwrap(),
            "/usr/bin/etcd --name=n2 --data-dir=/opt/faultline/etcd/data \
             --listen-client-urls=http://10.0.0.2:2379 --advertise-client-urls=http://10.0.0.2:2379 \
             --listen-peer-urls=http://10.0.0.2:2380 --initial-advertise-peer-urls=http://10.0.0.2:2380 \
             --initial-cluster=n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380 \
             --initial-cluster-state=new --initial-cluster-token=faultline --heartbeat-interval=50"
        );
        assert_eq!(etcd.client_addr("n1").as_deref(), Some("10.0.0.1:2379"));
        assert!(etcd
            .command_line("n3")
            .unwrap_err()
            .to_string()
            .contains("n3"));
        assert_eq!(etcd.faketime_file(), None);
        assert!(etcd
            .clock_fault_unsupported()
            .unwrap()
            .contains("libfaketime"));
    }

    #[test]
    fn bad_configs_are_rejected_with_the_field_named() {
        let base = || EtcdConfig::new(members(&[("n1", "h1")]));
        let cases: Vec<(EtcdConfig, &str)> = vec![
            (
                EtcdConfig {
                    members: vec![],
                    ..base()
                },
                "members",
            ),
            (
                EtcdConfig {
                    members: members(&[("n1", "a"), ("n1", "b")]),
                    ..base()
                },
                "given twice",
            ),
            (
                EtcdConfig {
                    members: members(&[("n=1", "a")]),
                    ..base()
                },
                "n=1",
            ),
            (
                EtcdConfig {
                    peer_port: 2379,
                    ..base()
                },
                "ports",
            ),
            (
                EtcdConfig {
                    base_dir: "etcd".into(),
                    ..base()
                },
                "base_dir",
            ),
            (
                EtcdConfig {
                    binary: EtcdBinary::Local("/nonexistent/etcd".into()),
                    ..base()
                },
                "/nonexistent/etcd",
            ),
        ];
        for (cfg, needle) in cases {
            let err = Etcd::new(cfg).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
