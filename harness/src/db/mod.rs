//! The life cycle of the system under test on each node, as the runner and the nemesis drive it:
//! install, configure, start, stop, kill, pause, resume, wipe, collect logs.
//!
//! [`Database`] is written against [`nemesis::Remote`], so it works the same on the local
//! namespace cluster and on VMs. [`FaultlineServer`] implements it for the bundled reference
//! servers (`faultline-server --protocol raft|paxos|2pc`).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemesis::{Remote, RemoteError};

mod daemon;
mod etcd;
mod faultline_server;

pub use etcd::{Etcd, EtcdBinary, EtcdConfig, CLOCK_FAULT_REASON};
pub use faultline_server::{members_of, BinarySource, FaultlineServer, Protocol, ServerConfig};

/// libfaketime as Debian installs it (package `libfaketime`).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The libfaketime offset file of a server started with the default base directory
/// (`/opt/faultline`): what `faultline cluster heal` resets when no run is there to say.
pub const FAKETIME_FILE: &str = "/opt/faultline/run/faketime";

/// Why a life-cycle step failed. Every variant names the node or the local path.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The node answered, but the step did not have the effect asked for.
    #[error("{node}: {detail}")]
    Node { node: String, detail: String },
    #[error("{path}: {source}")]
    Local {
        path: String,
        source: std::io::Error,
    },
    #[error("database configuration: {0}")]
    Config(String),
}

impl DbError {
    pub(crate) fn node(node: &dyn Remote, detail: impl Into<String>) -> Self {
        DbError::Node {
            node: node.name().to_string(),
            detail: detail.into(),
        }
    }
}

/// What `install` did on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The binary was uploaded (`bytes` long).
    Uploaded { bytes: u64 },
    /// Install commands ran.
    Ran,
    /// The same content was already installed; nothing was transferred.
    Cached,
}

/// A system under test. Every method acts on one node and is safe to call on many nodes at once.
#[async_trait::async_trait]
pub trait Database: Send + Sync {
    /// Short name for reports (`faultline-server/raft`).
    fn name(&self) -> String;
    /// Puts the software on the node. Cached by content: a second install transfers nothing.
    async fn install(&self, node: &dyn Remote) -> Result<Installed, DbError>;
    /// Writes the node's configuration (membership, flags, clock offset file).
    async fn configure(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Starts the daemon (pid file, log file) and returns once it serves; a no-op if it runs.
    async fn start(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Stops it politely (SIGTERM, then SIGKILL after a grace period); a no-op if it is not running.
    async fn stop(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Kills it with SIGKILL (a crash).
    async fn kill(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Freezes it with SIGSTOP.
    async fn pause(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Thaws it with SIGCONT.
    async fn resume(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Deletes its data and logs (the installed software stays).
    async fn wipe(&self, node: &dyn Remote) -> Result<(), DbError>;
    /// Copies its logs into `into/nodes/<node>/`; returns the local files written.
    async fn collect_logs(&self, node: &dyn Remote, into: &Path) -> Result<Vec<PathBuf>, DbError>;
    /// Whether its process exists (a paused process counts as running).
    async fn is_running(&self, node: &dyn Remote) -> Result<bool, DbError>;
    /// The file the nemesis rewrites to shift this node's clock (libfaketime), when clock faults
    /// are enabled for this database.
    fn faketime_file(&self) -> Option<String>;
    /// Why libfaketime clock faults cannot reach this database (e.g. a Go program reads the clock
    /// without libc); the runner then reports clock faults as `skipped` with this reason.
    fn clock_fault_unsupported(&self) -> Option<String> {
        None
    }
    /// The address clients use to reach the database on `node`.
    fn client_addr(&self, node: &str) -> Option<String>;
}

/// Runs `step` on every node at once; fails with the first error in node order after all finished.
pub async fn on_all<'a, T, F, Fut>(nodes: &'a [Arc<dyn Remote>], step: F) -> Result<Vec<T>, DbError>
where
    F: Fn(&'a dyn Remote) -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let results = futures::future::join_all(nodes.iter().map(|n| step(n.as_ref()))).await;
    results.into_iter().collect()
}

/// Install, configure and start on every node in parallel (each node's steps in order).
pub async fn setup(
    db: &dyn Database,
    nodes: &[Arc<dyn Remote>],
) -> Result<Vec<Installed>, DbError> {
    on_all(nodes, |n| async move {
        let installed = db.install(n).await?;
        db.configure(n).await?;
        db.start(n).await?;
        Ok(installed)
    })
    .await
}

/// Stops the database on every node and collects logs into `logs` (when given).
pub async fn teardown(
    db: &dyn Database,
    nodes: &[Arc<dyn Remote>],
    logs: Option<&Path>,
) -> Result<(), DbError> {
    on_all(nodes, |n| async move {
        // A paused process must be thawed before it can handle SIGTERM; stop does that.
        db.stop(n).await?;
        if let Some(dir) = logs {
            db.collect_logs(n, dir).await?;
        }
        Ok(())
    })
    .await
    .map(|_| ())
}
