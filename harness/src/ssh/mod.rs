//! The SSH control layer: [`SshRemote`] implements [`nemesis::Remote`] over russh.
//!
//! One authenticated connection per node; every command gets its own channel on it, at most
//! [`SshOptions::max_channels`] at a time (OpenSSH's `MaxSessions` defaults to 10).
//!
//! # Retry rules
//! - Connecting: a refused or reset TCP connection (a node whose sshd is still starting) is retried
//!   with exponential backoff, [`SshOptions::connect_attempts`] times in all. Refused
//!   authentication, a bad host key and a handshake timeout are final.
//! - Opening a channel: nothing has reached the node yet, so a failed open is retried with backoff;
//!   if the connection itself dropped, it is re-established once and the open retried.
//! - After a command was sent, a dropped connection is NOT retried by [`Remote::exec`]: the command
//!   may have run, and running it twice may not be harmless (appending a partition rule, starting
//!   a daemon). The error says so. Commands the caller knows to be idempotent can go through
//!   [`SshRemote::exec_idempotent`], which reconnects once and re-runs them; `upload` (an atomic
//!   rename of a complete temporary file) and `download` do this too.
//! - A connection whose server stops answering (a paused node, a partition between controller
//!   and node) is declared lost after `keepalive_interval * (keepalive_max + 1)` of silence; the
//!   commands running on it fail by the rule above, the next command reconnects.
//! - A timeout is never retried: the caller records an indeterminate outcome. The timed-out
//!   command's process group is killed (see [`shell::report_process_group`]).
//!
//! # Example
//! ```no_run
//! use harness::inventory::{Inventory, NodeDefaults};
//! use harness::ssh::{connect_all, SshOptions};
//! use nemesis::{Command, Remote};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let inventory = Inventory::from_yaml_file("cluster.yaml".as_ref(), &NodeDefaults::default())?;
//! let nodes = connect_all(&inventory, &SshOptions::default()).await?;
//! for node in &nodes {
//!     let kernel = node.run(Command::new("uname -r").sudo("root")).await?;
//!     println!("{}: {kernel}", node.name());
//! }
//! # Ok(()) }
//! ```
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nemesis::{Command, Output, Remote, RemoteError};
use russh::client::{self, Handle};
use russh::keys::{Algorithm, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Preferred, Sig};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::{sleep, timeout_at, Instant};

use crate::inventory::{HostKeyChecking, Inventory, Node};

mod auth;
mod host_keys;
pub mod shell;

pub use host_keys::{default_known_hosts, HostKeyPolicy};

/// How the controller talks SSH. One config for all nodes; where nodes differ (user, key,
/// known_hosts), the [`Node`] says so.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Limit for TCP connect + handshake + authentication, per attempt.
    pub connect_timeout: Duration,
    /// Attempts in all when the TCP connection is refused or reset (sshd still starting).
    pub connect_attempts: u32,
    /// First retry delay; doubled after each retry.
    pub backoff: Duration,
    /// Send a keepalive after this much silence from the server...
    pub keepalive_interval: Duration,
    /// ...and drop the connection after this many unanswered keepalives.
    pub keepalive_max: usize,
    /// Channels open at once on one connection.
    pub max_channels: usize,
    /// Time limit for one `upload` or `download`.
    pub transfer_timeout: Duration,
    /// Run `upload` and `download` as this user through sudo (e.g. `root` on Vagrant VMs that
    /// log in as `vagrant`); `None`: as the login user.
    pub transfer_user: Option<String>,
    /// Overrides every node's known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Overrides every node's host key checking.
    pub host_key_checking: Option<HostKeyChecking>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 4,
            backoff: Duration::from_millis(100),
            keepalive_interval: Duration::from_secs(10),
            keepalive_max: 3,
            max_channels: 8,
            transfer_timeout: Duration::from_secs(120),
            transfer_user: None,
            known_hosts: None,
            host_key_checking: None,
        }
    }
}

impl SshOptions {
    /// The host key policy for `node` after this config's overrides.
    pub fn host_key_policy(&self, node: &Node) -> HostKeyPolicy {
        HostKeyPolicy {
            known_hosts: self
                .known_hosts
                .clone()
                .or_else(|| node.known_hosts.clone())
                .unwrap_or_else(default_known_hosts),
            checking: self.host_key_checking.unwrap_or(node.host_key_checking),
        }
    }
}

/// Key exchange: curve25519-sha256 first (OpenSSH 9's default, sntrup761/mlkem768, costs ~180 ms
/// more per connection), then the rest of russh's safe list.
const KEX_ORDER: &[russh::kex::Name] = &[
    russh::kex::CURVE25519,
    russh::kex::CURVE25519_PRE_RFC_8731,
    russh::kex::MLKEM768X25519_SHA256,
    russh::kex::DH_GEX_SHA256,
    russh::kex::DH_G16_SHA512,
    russh::kex::DH_G14_SHA256,
    russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
    russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// Host key algorithms, those already recorded in known_hosts first.
fn host_key_order(recorded: &[Algorithm]) -> Vec<Algorithm> {
    let is_rsa = |a: &Algorithm| matches!(a, Algorithm::Rsa { .. });
    let same_family = |a: &Algorithm, b: &Algorithm| a == b || (is_rsa(a) && is_rsa(b));
    let mut algs: Vec<Algorithm> = Preferred::DEFAULT.key.to_vec();
    algs.sort_by_key(|a| !recorded.iter().any(|r| same_family(a, r)));
    algs
}

/// Errors inside the connection setup: russh's own, or ours (host key refused, auth refused).
#[derive(Debug)]
pub(crate) enum ConnectError {
    Ssh(russh::Error),
    Remote(RemoteError),
}

impl From<russh::Error> for ConnectError {
    fn from(e: russh::Error) -> Self {
        ConnectError::Ssh(e)
    }
}

/// russh's callbacks for one connection: checks the server's host key.
pub(crate) struct ClientHandler {
    node: String,
    host: String,
    port: u16,
    policy: HostKeyPolicy,
}

impl client::Handler for ClientHandler {
    type Error = ConnectError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                host_keys::verify(&self.node, &self.host, self.port, key, &self.policy)
                    .map_err(ConnectError::Remote)?;
                Ok(true)
            }
            PublicKeyOrCertificate::Certificate(_) => Err(ConnectError::Remote(
                RemoteError::HostKeyMismatch {
                    node: self.node.clone(),
                    detail: "the server presented a host certificate; only plain host keys are supported"
                        .into(),
                },
            )),
        }
    }
}

struct Conn {
    handle: Arc<Handle<ClientHandler>>,
    /// Bumped on every reconnect, so that concurrent callers that saw the same dead connection
    /// reconnect only once.
    generation: u64,
}

/// A node reached over SSH. Cheap to share (`Arc<SshRemote>`); calls may run concurrently.
pub struct SshRemote {
    node: Node,
    policy: HostKeyPolicy,
    sudo_password: Option<String>,
    opts: SshOptions,
    config: Arc<client::Config>,
    conn: Mutex<Conn>,
    channels: Semaphore,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("node", &self.node.name)
            .field(
                "addr",
                &format!("{}@{}:{}", self.node.user, self.node.host, self.node.port),
            )
            .finish()
    }
}

/// Why one channel attempt failed, and whether the command had been sent by then.
struct AttemptError {
    sent: bool,
    /// The channel's messages ended without a close: the connection is gone, even if the
    /// handle does not report it closed yet.
    lost: bool,
    error: RemoteError,
}

/// Nodes [`connect_all`] could not reach, each with its own error.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {} of {total} nodes: {}", .errors.len(), join_errors(.errors))]
pub struct ConnectAllError {
    /// One error per failed node, in inventory order (each names its node).
    pub errors: Vec<RemoteError>,
    pub total: usize,
}

fn join_errors(errors: &[RemoteError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Connects to every node of the inventory in parallel. Fails unless all nodes are reached; the
/// error lists every node that was not.
pub async fn connect_all(
    inventory: &Inventory,
    opts: &SshOptions,
) -> Result<Vec<Arc<SshRemote>>, ConnectAllError> {
    let tasks: Vec<_> = inventory
        .nodes
        .iter()
        .cloned()
        .map(|node| {
            let opts = opts.clone();
            tokio::spawn(async move { SshRemote::connect(node, &opts).await })
        })
        .collect();
    let mut remotes = Vec::with_capacity(tasks.len());
    let mut errors = Vec::new();
    for (task, node) in tasks.into_iter().zip(&inventory.nodes) {
        let result = task.await.unwrap_or_else(|e| {
            Err(RemoteError::Other {
                node: node.name.clone(),
                cause: format!("connect task failed: {e}"),
            })
        });
        match result {
            Ok(r) => remotes.push(Arc::new(r)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(remotes)
    } else {
        Err(ConnectAllError {
            errors,
            total: inventory.nodes.len(),
        })
    }
}

impl SshRemote {
    /// Connects and authenticates to `node`. Reads the sudo password from the environment
    /// variable the node names, if any.
    pub async fn connect(node: Node, opts: &SshOptions) -> Result<SshRemote, RemoteError> {
        let sudo_password = match &node.sudo_password_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| RemoteError::Other {
                node: node.name.clone(),
                cause: format!("sudo_password_env names ${var}, which is not set"),
            })?),
        };
        let policy = opts.host_key_policy(&node);
        let recorded = host_keys::recorded_algorithms(&node.host, node.port, &policy.known_hosts);
        let config = Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(opts.keepalive_interval),
            keepalive_max: opts.keepalive_max,
            inactivity_timeout: None,
            preferred: Preferred {
                kex: Cow::Borrowed(KEX_ORDER),
                key: Cow::Owned(host_key_order(&recorded)),
                ..Preferred::DEFAULT
            },
            ..Default::default()
        });
        let handle = establish(&node, &policy, &config, opts).await?;
        Ok(SshRemote {
            policy,
            sudo_password,
            config,
            conn: Mutex::new(Conn {
                handle: Arc::new(handle),
                generation: 0,
            }),
            channels: Semaphore::new(opts.max_channels.max(1)),
            opts: opts.clone(),
            node,
        })
    }

    /// The inventory entry this remote was built from.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Like [`Remote::exec`], but if the connection drops while the command runs, reconnects
    /// once and runs it again. Only for commands whose second run is harmless.
    pub async fn exec_idempotent(&self, cmd: Command) -> Result<Output, RemoteError> {
        self.exec_with(cmd, true).await
    }

    /// Closes the connection politely (dropping the remote closes it too).
    pub async fn close(&self) {
        let conn = self.conn.lock().await;
        let _ = conn
            .handle
            .disconnect(Disconnect::ByApplication, "faultline done", "en")
            .await;
    }

    async fn current(&self) -> (Arc<Handle<ClientHandler>>, u64) {
        let conn = self.conn.lock().await;
        (conn.handle.clone(), conn.generation)
    }

    /// Replaces the connection seen as dead at `generation`, unless someone already did.
    async fn reconnect(&self, generation: u64) -> Result<(), RemoteError> {
        let mut conn = self.conn.lock().await;
        if conn.generation == generation {
            tracing::info!(node = %self.node.name, "connection lost; reconnecting");
            let handle = establish(&self.node, &self.policy, &self.config, &self.opts).await?;
            conn.handle = Arc::new(handle);
            conn.generation += 1;
        }
        Ok(())
    }

    async fn exec_with(&self, cmd: Command, idempotent: bool) -> Result<Output, RemoteError> {
        let deadline = Instant::now() + cmd.timeout;
        let wrapped = shell::wrap_sudo(
            &cmd.script,
            &self.node.user,
            cmd.sudo_user.as_deref(),
            self.sudo_password.as_deref(),
        );
        let stdin = match (wrapped.stdin_prefix, cmd.stdin) {
            (None, s) => s,
            (Some(mut p), s) => {
                p.extend(s.unwrap_or_default());
                Some(p)
            }
        };
        let timed_out = || RemoteError::Timeout {
            node: self.node.name.clone(),
            command: cmd.script.clone(),
            after: cmd.timeout,
        };
        let Ok(_permit) = timeout_at(deadline, self.channels.acquire()).await else {
            return Err(timed_out());
        };
        let script = shell::report_process_group(&wrapped.script);
        let mut reconnected = false;
        let mut open_retries = 0;
        loop {
            let Ok((handle, generation)) = timeout_at(deadline, self.current()).await else {
                return Err(timed_out());
            };
            let group = AtomicU32::new(0);
            let attempt = self.attempt(
                &handle,
                &script,
                &cmd.script,
                stdin.as_deref(),
                deadline,
                &group,
            );
            let err = match attempt.await {
                Ok(out) => return Ok(out),
                Err(e) => e,
            };
            if matches!(err.error, RemoteError::Timeout { .. }) {
                if err.sent {
                    self.kill_group(&handle, group.load(Ordering::Relaxed), &cmd.script)
                        .await;
                }
                return Err(timed_out());
            }
            let closed = err.lost || handle.is_closed();
            if closed && !reconnected && (!err.sent || idempotent) {
                reconnected = true;
                match timeout_at(deadline, self.reconnect(generation)).await {
                    Ok(r) => r?,
                    Err(_) => return Err(timed_out()),
                }
                continue;
            }
            if !err.sent && !closed && open_retries + 1 < self.opts.connect_attempts {
                let delay = self.opts.backoff * 2u32.pow(open_retries);
                open_retries += 1;
                tracing::debug!(node = %self.node.name, error = %err.error, ?delay, "retrying channel open");
                if timeout_at(deadline, sleep(delay)).await.is_err() {
                    return Err(timed_out());
                }
                continue;
            }
            if closed && err.sent {
                let cause = if idempotent {
                    "connection lost again after reconnecting and re-running the command"
                } else {
                    "connection lost after the command was sent; not re-run because it may have \
                     taken effect"
                };
                return Err(RemoteError::Channel {
                    node: self.node.name.clone(),
                    command: cmd.script.clone(),
                    cause: cause.into(),
                });
            }
            return Err(err.error);
        }
    }

    /// Kills what is left of a timed-out command: its process group (sshd starts each command in a
    /// session of its own; daemons that called `setsid` themselves survive, as they should).
    /// OpenSSH ignores the SSH `signal` request in many setups ("session signalling requires
    /// privilege separation" for root logins), so this runs `kill` on a fresh channel.
    async fn kill_group(&self, handle: &Handle<ClientHandler>, group: u32, shown: &str) {
        if group <= 1 {
            tracing::warn!(node = %self.node.name, command = shown, "timed out before reporting its process group; it may still run");
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let kill = shell::kill_group_script(group);
        let unused = AtomicU32::new(0);
        if let Err(e) = self
            .attempt(handle, &kill, &kill, None, deadline, &unused)
            .await
        {
            tracing::warn!(node = %self.node.name, command = shown, error = %e.error, "cannot kill a timed-out command");
        }
    }

    /// One channel: open, exec, feed stdin, collect output until the server closes the channel.
    /// The process group the command reports on its first stderr line is stored in `group` (and
    /// that line removed from stderr).
    async fn attempt(
        &self,
        handle: &Handle<ClientHandler>,
        script: &str,
        shown: &str,
        stdin: Option<&[u8]>,
        deadline: Instant,
        group: &AtomicU32,
    ) -> Result<Output, AttemptError> {
        let node = &self.node.name;
        let channel_error = |sent: bool, cause: String| AttemptError {
            sent,
            lost: false,
            error: RemoteError::Channel {
                node: node.clone(),
                command: shown.to_string(),
                cause,
            },
        };
        // exec_with replaces this with the caller's time limit.
        let timeout_error = || AttemptError {
            sent: true,
            lost: false,
            error: RemoteError::Timeout {
                node: node.clone(),
                command: shown.to_string(),
                after: Duration::ZERO,
            },
        };
        let channel = match timeout_at(deadline, handle.channel_open_session()).await {
            Err(_) => {
                return Err(AttemptError {
                    sent: false,
                    ..timeout_error()
                })
            }
            Ok(Err(e)) => return Err(channel_error(false, format!("cannot open a channel: {e}"))),
            Ok(Ok(c)) => c,
        };
        let (mut reader, writer) = channel.split();
        let io = async {
            writer
                .exec(true, script)
                .await
                .map_err(|e| channel_error(true, format!("cannot send the command: {e}")))?;
            let write_stdin = async {
                if let Some(bytes) = stdin {
                    // An error here means the command stopped reading; its exit status tells why.
                    let _ = writer.data(bytes).await;
                }
                let _ = writer.eof().await;
            };
            tokio::pin!(write_stdin);
            let mut stdin_done = false;
            let mut out = Output {
                status: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
            };
            let mut closed_cleanly = false;
            let mut exit_seen = false;
            let mut first_line = Some(Vec::new());
            loop {
                let msg = tokio::select! {
                    () = &mut write_stdin, if !stdin_done => { stdin_done = true; continue; }
                    msg = reader.wait() => msg,
                };
                match msg {
                    Some(ChannelMsg::Data { data }) => out.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => match first_line.as_mut() {
                        None => out.stderr.extend_from_slice(&data),
                        Some(head) => {
                            head.extend_from_slice(&data);
                            if let Some((pgid, rest)) = shell::split_group_line(head) {
                                group.store(pgid.unwrap_or(0), Ordering::Relaxed);
                                out.stderr.extend_from_slice(rest);
                                first_line = None;
                            }
                        }
                    },
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        out.status = Some(exit_status);
                        exit_seen = true;
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        // Output::status stays None: "killed by a signal".
                        exit_seen = true;
                        tracing::debug!(node = %node, command = shown, signal = ?signal_name, "killed by a signal");
                    }
                    Some(ChannelMsg::Failure) if !exit_seen => {
                        return Err(channel_error(
                            true,
                            "the server refused the exec request".into(),
                        ));
                    }
                    Some(ChannelMsg::Close) => {
                        closed_cleanly = true;
                        break;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            if let Some(head) = first_line {
                out.stderr.extend_from_slice(&head);
            }
            if !closed_cleanly && !exit_seen {
                return Err(AttemptError {
                    lost: true,
                    ..channel_error(
                        true,
                        "the connection ended before the command finished".into(),
                    )
                });
            }
            Ok(out)
        };
        match timeout_at(deadline, io).await {
            Ok(result) => result,
            Err(_) => {
                // Ask sshd to signal the command (OpenSSH >= 7.9 does, where it allows it; the
                // caller also kills the process group), then close the channel so that it does
                // not stay open on the connection.
                let _ = writer.signal(Sig::KILL).await;
                let _ = writer.close().await;
                Err(timeout_error())
            }
        }
    }

    /// Runs an idempotent transfer command with the transfer time limit.
    async fn transfer(
        &self,
        script: String,
        stdin: Option<Vec<u8>>,
    ) -> Result<Output, RemoteError> {
        let mut cmd = Command::new(script).timeout(self.opts.transfer_timeout);
        cmd.stdin = stdin;
        cmd.sudo_user = self.opts.transfer_user.clone();
        let shown = cmd.script.clone();
        let out = self.exec_with(cmd, true).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(RemoteError::Failed {
                node: self.node.name.clone(),
                command: shown,
                status: out.status,
                stderr: out.stderr_str().trim().to_string(),
            })
        }
    }
}

/// Connects with retries for transient failures (see the module docs).
async fn establish(
    node: &Node,
    policy: &HostKeyPolicy,
    config: &Arc<client::Config>,
    opts: &SshOptions,
) -> Result<Handle<ClientHandler>, RemoteError> {
    let addr = format!("{}:{}", node.host, node.port);
    let mut delay = opts.backoff;
    let attempts = opts.connect_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let once = connect_once(node, policy, config.clone());
        let error = match tokio::time::timeout(opts.connect_timeout, once).await {
            Ok(Ok(handle)) => return Ok(handle),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(RemoteError::Unreachable {
                    node: node.name.clone(),
                    addr,
                    cause: format!(
                        "no SSH session within {:?} (connect, handshake and authentication)",
                        opts.connect_timeout
                    ),
                })
            }
        };
        let transient = matches!(error, RemoteError::Unreachable { .. });
        if !transient || attempt >= attempts {
            return Err(match error {
                RemoteError::Unreachable { node, addr, cause } if attempt > 1 => {
                    RemoteError::Unreachable {
                        node,
                        addr,
                        cause: format!("{cause} (after {attempt} attempts)"),
                    }
                }
                e => e,
            });
        }
        tracing::debug!(node = %node.name, %error, ?delay, "retrying connect");
        sleep(delay).await;
        delay *= 2;
    }
}

async fn connect_once(
    node: &Node,
    policy: &HostKeyPolicy,
    config: Arc<client::Config>,
) -> Result<Handle<ClientHandler>, RemoteError> {
    let addr = format!("{}:{}", node.host, node.port);
    let unreachable = |cause: String| RemoteError::Unreachable {
        node: node.name.clone(),
        addr: addr.clone(),
        cause,
    };
    let stream = tokio::net::TcpStream::connect((node.host.as_str(), node.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let handler = ClientHandler {
        node: node.name.clone(),
        host: node.host.clone(),
        port: node.port,
        policy: policy.clone(),
    };
    let map = |e: ConnectError| match e {
        ConnectError::Remote(r) => r,
        ConnectError::Ssh(russh::Error::IO(io)) => {
            unreachable(format!("connection broken during the SSH handshake: {io}"))
        }
        ConnectError::Ssh(russh::Error::Disconnect | russh::Error::HUP) => {
            unreachable("the server closed the connection during the SSH handshake".into())
        }
        ConnectError::Ssh(e) => RemoteError::Other {
            node: node.name.clone(),
            cause: format!("SSH handshake with {addr} failed: {e}"),
        },
    };
    let mut handle = client::connect_stream(config, stream, handler)
        .await
        .map_err(map)?;
    auth::authenticate(&mut handle, node).await.map_err(map)?;
    Ok(handle)
}

#[async_trait::async_trait]
impl Remote for SshRemote {
    fn name(&self) -> &str {
        &self.node.name
    }

    fn host(&self) -> &str {
        &self.node.host
    }

    async fn exec(&self, cmd: Command) -> Result<Output, RemoteError> {
        self.exec_with(cmd, false).await
    }

    async fn upload(&self, bytes: &[u8], path: &str, mode: u32) -> Result<(), RemoteError> {
        self.transfer(shell::upload_script(path, mode), Some(bytes.to_vec()))
            .await
            .map(|_| ())
    }

    async fn download(&self, path: &str) -> Result<Vec<u8>, RemoteError> {
        self.transfer(shell::download_script(path), None)
            .await
            .map(|out| out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_host_key_types_come_first() {
        let order = host_key_order(&[Algorithm::Rsa { hash: None }]);
        assert!(matches!(order[0], Algorithm::Rsa { .. }));
        assert!(!matches!(order.last(), Some(Algorithm::Rsa { .. })));
        let default = host_key_order(&[]);
        assert_eq!(default[0], Algorithm::Ed25519);
    }
}
