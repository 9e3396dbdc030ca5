//! What the harness and the nemesis need from a node: run commands, move files.
//!
//! The trait lives here (not in `harness`) so that `nemesis` can drive nodes without depending on
//! the SSH implementation; `harness` implements it over russh and depends on `nemesis`.
use std::time::Duration;

/// A command to run on a node through a POSIX shell (`sh -c`).
#[derive(Debug, Clone)]
pub struct Command {
    /// Shell text, run by the node's login user (or `sudo_user` when set).
    pub script: String,
    /// Bytes fed to the command's standard input, then closed.
    pub stdin: Option<Vec<u8>>,
    /// Give up (and report [`RemoteError::Timeout`]) after this long.
    pub timeout: Duration,
    /// Run as this user through `sudo -u` (`root` for privileged actions).
    pub sudo_user: Option<String>,
}

impl Command {
    pub fn new(script: impl Into<String>) -> Self {
        Command {
            script: script.into(),
            stdin: None,
            timeout: Duration::from_secs(30),
            sudo_user: None,
        }
    }
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn sudo(mut self, user: impl Into<String>) -> Self {
        self.sudo_user = Some(user.into());
        self
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when the command was killed by a signal or the status was not sent.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why talking to a node failed. Every variant names the node; command-level variants name the command.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{node}: authentication refused for user {user} ({detail})")]
    AuthRefused {
        node: String,
        user: String,
        detail: String,
    },
    #[error("{node}: host key mismatch: {detail}")]
    HostKeyMismatch { node: String, detail: String },
    #[error("{node}: unreachable at {addr}: {cause}")]
    Unreachable {
        node: String,
        addr: String,
        cause: String,
    },
    #[error("{node}: `{command}` timed out after {after:?}")]
    Timeout {
        node: String,
        command: String,
        after: Duration,
    },
    #[error("{node}: `{command}` failed: {cause}")]
    Channel {
        node: String,
        command: String,
        cause: String,
    },
    #[error("{node}: `{command}` exited with {status:?}: {stderr}")]
    Failed {
        node: String,
        command: String,
        status: Option<u32>,
        stderr: String,
    },
    #[error("{node}: {cause}")]
    Other { node: String, cause: String },
}

impl RemoteError {
    /// The node the error is about.
    pub fn node(&self) -> &str {
        match self {
            RemoteError::AuthRefused { node, .. }
            | RemoteError::HostKeyMismatch { node, .. }
            | RemoteError::Unreachable { node, .. }
            | RemoteError::Timeout { node, .. }
            | RemoteError::Channel { node, .. }
            | RemoteError::Failed { node, .. }
            | RemoteError::Other { node, .. } => node,
        }
    }
}

/// A node the controller can act on. Implementations must be cheap to share (`Arc<dyn Remote>`)
/// and allow concurrent calls (channels multiplexed over one connection).
#[async_trait::async_trait]
pub trait Remote: Send + Sync {
    /// The node's name in the inventory (`n1`).
    fn name(&self) -> &str;
    /// The address other nodes reach this node at (used in partition rules).
    fn host(&self) -> &str;
    /// Runs a command and returns its output, whatever its exit status.
    async fn exec(&self, cmd: Command) -> Result<Output, RemoteError>;
    /// Writes `bytes` to `path` on the node with the given mode (creating parent directories).
    async fn upload(&self, bytes: &[u8], path: &str, mode: u32) -> Result<(), RemoteError>;
    /// Reads the file at `path` on the node.
    async fn download(&self, path: &str) -> Result<Vec<u8>, RemoteError>;

    /// Runs a command and fails with [`RemoteError::Failed`] unless it exits 0; returns stdout.
    async fn run(&self, cmd: Command) -> Result<String, RemoteError> {
        let script = cmd.script.clone();
        let out = self.exec(cmd).await?;
        if out.success() {
            Ok(out.stdout_str())
        } else {
            Err(RemoteError::Failed {
                node: self.name().to_string(),
                command: script,
                status: out.status,
                stderr: out.stderr_str().trim().to_string(),
            })
        }
    }
}
