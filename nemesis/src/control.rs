//! What the nemesis needs from the harness's process lifecycle.
//!
//! Starting, stopping and finding servers belongs to the harness (it knows the binary, its
//! flags and pid files). The nemesis only decides *which* nodes to crash or pause and records
//! what happened, so it asks through this trait.

/// Why a lifecycle action failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The action ran and failed on the node.
    #[error("{node}: {cause}")]
    Failed { node: String, cause: String },
    /// The target cannot do this at all (e.g. it has no notion of a leader).
    #[error("{node}: {what} is not supported by this target")]
    Unsupported { node: String, what: String },
    /// Talking to the node failed; the action may or may not have happened.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
}

/// Process control for the system under test, implemented by the harness.
///
/// Every method must be idempotent: `kill` on a dead node, `start` on a running one, `resume`
/// on a running one succeed without effect. `heal_all` relies on that.
#[async_trait::async_trait]
pub trait TargetControl: Send + Sync {
    /// Kills the node's server with SIGKILL.
    async fn kill(&self, node: &str) -> Result<(), ControlError>;
    /// Starts the node's server (under libfaketime with the node's offset file, see
    /// [`crate::clock::faketime_env`]).
    async fn start(&self, node: &str) -> Result<(), ControlError>;
    /// Stops the node's server with SIGSTOP.
    async fn pause(&self, node: &str) -> Result<(), ControlError>;
    /// Continues the node's server with SIGCONT.
    async fn resume(&self, node: &str) -> Result<(), ControlError>;
    /// The node currently leading, if the target has leaders and one is known.
    async fn leader(&self) -> Result<Option<String>, ControlError>;
    /// The server's own wall clock in Unix milliseconds (e.g. `status.time_ms`), if the target
    /// reports it. The nemesis then measures offsets on the server itself.
    async fn wall_clock_ms(&self, _node: &str) -> Result<Option<i64>, ControlError> {
        Ok(None)
    }
}
