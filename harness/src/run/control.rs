//! [`TargetControl`] for `faultline-server` ([`ServerControl`]: process control through the
//! [`Database`] life cycle, leaders and server clocks through the servers' own `status` request)
//! and for etcd ([`EtcdControl`]: process control through the life cycle, the leader through
//! each member's `/v3/maintenance/status`).
use std::sync::Arc;
use std::time::Duration;

use nemesis::{ControlError, Remote, TargetControl};
use targets::protocol::NodeStatus;
use workloads::bundled::BundledClient;
use workloads::etcd::{EtcdClient, ReadMode};

use crate::db::{Database, Etcd, FaultlineServer};

/// How long one `status` request may take (a paused server never answers).
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// The process-control half every [`TargetControl`] shares: the database's life cycle applied to
/// a node named by the nemesis.
struct Members {
    db: Arc<dyn Database>,
    nodes: Vec<Arc<dyn Remote>>,
}

/// A life-cycle step on one node.
#[derive(Clone, Copy)]
enum Step {
    Kill,
    Start,
    Pause,
    Resume,
}

impl Members {
    fn node(&self, name: &str) -> Result<&dyn Remote, ControlError> {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .map(|n| n.as_ref())
            .ok_or_else(|| failed(name, "not in the inventory"))
    }

    async fn apply(&self, step: Step, node: &str) -> Result<(), ControlError> {
        let remote = self.node(node)?;
        let done = match step {
            Step::Kill => self.db.kill(remote).await,
            Step::Start => self.db.start(remote).await,
            Step::Pause => self.db.pause(remote).await,
            Step::Resume => self.db.resume(remote).await,
        };
        done.map_err(|e| failed(node, e))
    }
}

/// What the nemesis and the runner use to act on the servers of one run.
pub struct ServerControl {
    db: Arc<FaultlineServer>,
    nodes: Vec<Arc<dyn Remote>>,
    members: Members,
}

impl ServerControl {
    pub fn new(db: Arc<FaultlineServer>, nodes: Vec<Arc<dyn Remote>>) -> Self {
        let members = Members {
            db: db.clone(),
            nodes: nodes.clone(),
        };
        ServerControl { db, nodes, members }
    }

    /// The `status` of `node`'s server.
    pub async fn status(&self, node: &str) -> Result<NodeStatus, ControlError> {
        let addr = self
            .db
            .client_addr(node)
            .ok_or_else(|| failed(node, "no client address"))?;
        BundledClient::new(node, addr, STATUS_TIMEOUT)
            .status()
            .await
            .map_err(|e| failed(node, e))
    }

    /// Every node's status, asked in parallel, in node order.
    pub async fn statuses(&self) -> Vec<Result<NodeStatus, ControlError>> {
        futures::future::join_all(self.nodes.iter().map(|n| self.status(n.name()))).await
    }

    /// Waits until every server answers `status` and, when `need_leader`, one says it leads.
    /// Returns what was missing when `timeout` passes first.
    pub async fn await_ready(&self, timeout: Duration, need_leader: bool) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = self.statuses().await;
            let down: Vec<String> = all
                .iter()
                .filter_map(|r| r.as_ref().err().map(ToString::to_string))
                .collect();
            let led = all
                .iter()
                .any(|r| r.as_ref().is_ok_and(|s| s.role == "leader"));
            let missing = if !down.is_empty() {
                Some(down.join("; "))
            } else if need_leader && !led {
                Some("no server says it leads".to_string())
            } else {
                None
            };
            match missing {
                None => return Ok(()),
                Some(why) if tokio::time::Instant::now() >= deadline => return Err(why),
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

fn failed(node: &str, e: impl std::fmt::Display) -> ControlError {
    ControlError::Failed {
        node: node.into(),
        cause: e.to_string(),
    }
}

#[async_trait::async_trait]
impl TargetControl for ServerControl {
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Kill, node).await
    }
    async fn start(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Start, node).await
    }
    async fn pause(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Pause, node).await
    }
    async fn resume(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Resume, node).await
    }
    /// The node that says it leads with the highest term (a deposed leader may not know yet).
    async fn leader(&self) -> Result<Option<String>, ControlError> {
        let best = self
            .statuses()
            .await
            .into_iter()
            .filter_map(Result::ok)
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term);
        Ok(best.map(|s| s.node))
    }
    async fn wall_clock_ms(&self, node: &str) -> Result<Option<i64>, ControlError> {
        Ok(Some(self.status(node).await?.time_ms as i64))
    }
}

/// What the nemesis and the runner use to act on the etcd members of one run.
pub struct EtcdControl {
    db: Arc<Etcd>,
    nodes: Vec<Arc<dyn Remote>>,
    members: Members,
}

impl EtcdControl {
    pub fn new(db: Arc<Etcd>, nodes: Vec<Arc<dyn Remote>>) -> Self {
        let members = Members {
            db: db.clone(),
            nodes: nodes.clone(),
        };
        EtcdControl { db, nodes, members }
    }

    /// Waits until every member answers a linearizable read ([`Etcd::wait_healthy`]).
    pub async fn await_ready(&self, timeout: Duration) -> Result<(), String> {
        self.db
            .wait_healthy(&self.nodes, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl TargetControl for EtcdControl {
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Kill, node).await
    }
    async fn start(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Start, node).await
    }
    async fn pause(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Pause, node).await
    }
    async fn resume(&self, node: &str) -> Result<(), ControlError> {
        self.members.apply(Step::Resume, node).await
    }
    /// The member that says it leads with the highest Raft term (`/v3/maintenance/status`).
    async fn leader(&self) -> Result<Option<String>, ControlError> {
        let asks = self.nodes.iter().map(|n| async move {
            let addr = self.db.client_addr(n.name())?;
            let mut client =
                EtcdClient::new(n.name(), addr, STATUS_TIMEOUT, ReadMode::Linearizable);
            let status = client.member_status().await.ok()?;
            status
                .leads
                .then(|| (status.raft_term, n.name().to_string()))
        });
        let best = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .max();
        Ok(best.map(|(_, node)| node))
    }
}
