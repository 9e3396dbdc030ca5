//! Running one script on many nodes at once and classifying what happened.
use std::sync::Arc;
use std::time::Duration;

use crate::remote::{Command, Remote, RemoteError};
use crate::scripts::EXIT_UNSUPPORTED;

/// How a script ended on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeResult {
    /// Exit 0; the script's stdout.
    Done(String),
    /// The fault is not possible on this node (exit [`EXIT_UNSUPPORTED`]); the message.
    Unsupported(String),
    /// The script failed; nothing is known to have changed beyond what it reached.
    Failed(String),
    /// Talking to the node failed: the node's state is unknown.
    Lost(String),
}

impl NodeResult {
    pub fn is_done(&self) -> bool {
        matches!(self, NodeResult::Done(_))
    }
}

/// How the nemesis acts on nodes: privilege, timeouts, and where the lifecycle keeps the
/// libfaketime offset files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Run scripts through `sudo -u root` (when the login user is not root).
    pub sudo: bool,
    /// Give up on one script after this long (the node's state is then unknown).
    pub timeout: Duration,
    /// Where each node's offset file is (shared by the nemesis, heal and residue).
    pub offset_files: crate::clock::OffsetFiles,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            sudo: false,
            timeout: Duration::from_secs(30),
            offset_files: crate::clock::OffsetFiles::PerNode,
        }
    }
}

impl Access {
    pub fn command(&self, script: impl Into<String>) -> Command {
        let c = Command::new(script).timeout(self.timeout);
        if self.sudo {
            c.sudo("root")
        } else {
            c
        }
    }
}

fn message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.iter().find(|l| l.starts_with("faultline: ")) {
        Some(l) => l.trim_start_matches("faultline: ").to_string(),
        None => lines.join("; "),
    }
}

/// Runs `script` on `node` and classifies the result.
pub async fn run_on(node: &dyn Remote, access: &Access, script: &str) -> NodeResult {
    run_command(node, access.command(script)).await
}

/// Runs `cmd` on `node` and classifies the result.
pub async fn run_command(node: &dyn Remote, cmd: Command) -> NodeResult {
    match node.exec(cmd).await {
        Ok(out) if out.success() => NodeResult::Done(out.stdout_str()),
        Ok(out) if out.status == Some(EXIT_UNSUPPORTED) => {
            NodeResult::Unsupported(message(&out.stderr_str()))
        }
        Ok(out) => NodeResult::Failed(format!(
            "exit {}: {}",
            out.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "by signal".into()),
            message(&out.stderr_str())
        )),
        Err(e @ RemoteError::Failed { .. }) => NodeResult::Failed(e.to_string()),
        Err(e) => NodeResult::Lost(e.to_string()),
    }
}

/// Runs each node's script concurrently; results in the order given.
pub async fn run_all(
    jobs: Vec<(Arc<dyn Remote>, String)>,
    access: &Access,
) -> Vec<(String, NodeResult)> {
    let cmds = jobs
        .into_iter()
        .map(|(node, script)| (node, access.command(script)))
        .collect();
    run_commands(cmds).await
}

/// Runs each node's command concurrently; results in the order given.
pub async fn run_commands(jobs: Vec<(Arc<dyn Remote>, Command)>) -> Vec<(String, NodeResult)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (node, cmd)) in jobs.into_iter().enumerate() {
        set.spawn(async move {
            let r = run_command(node.as_ref(), cmd).await;
            (i, node.name().to_string(), r)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(x) => out.push(x),
            Err(e) => out.push((usize::MAX, "?".into(), NodeResult::Lost(e.to_string()))),
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, n, r)| (n, r)).collect()
}
