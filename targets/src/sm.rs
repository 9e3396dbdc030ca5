//! The contract between a protocol's deterministic state machine and the runtime that drives it.
//!
//! A state machine never performs IO and never reads a clock or a random source of its own: time
//! comes in as [`Now`], randomness from a seeded RNG it owns, and everything it wants done goes into
//! [`Out`]. The runtime performs an `Out` in this order: first `persist` (appended to the write-ahead
//! log and fsynced, or `compact` which replaces the log atomically), then `send` and `reply`. So a
//! message or reply never leaves before the state it depends on is durable.
use crate::protocol::{ClientOp, NodeStatus, Response};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeSet;

pub type NodeId = String;

/// An opaque handle for a client request, chosen by the runtime (connection and request id).
pub type ClientToken = u64;

/// Time as seen by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic milliseconds (timeouts, heartbeats).
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch, read through the system clock so that
    /// libfaketime can skew it (leases, `status`).
    pub wall_ms: u64,
}

/// How a node is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// All other members.
    pub peers: Vec<NodeId>,
    /// Known bugs switched on (`--bug`), documented in `BUGS.md`.
    pub bugs: BTreeSet<String>,
    /// `quorum` (default) or `lease` (Raft only).
    pub read_mode: ReadMode,
    /// Seed for the state machine's own RNG (election timeouts).
    pub seed: u64,
}

impl Config {
    pub fn has_bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    #[default]
    Quorum,
    Lease,
}

/// What a state machine asks the runtime to do after one step.
#[derive(Debug)]
pub struct Out<M, R> {
    /// Records to append to the write-ahead log and fsync before anything below is sent.
    pub persist: Vec<R>,
    /// Replace the whole log with these records (a snapshot), atomically, before `persist`.
    pub compact: Option<Vec<R>>,
    pub send: Vec<(NodeId, M)>,
    pub reply: Vec<(ClientToken, Response)>,
}

impl<M, R> Default for Out<M, R> {
    fn default() -> Self {
        Out {
            persist: Vec::new(),
            compact: None,
            send: Vec::new(),
            reply: Vec::new(),
        }
    }
}

impl<M, R> Out<M, R> {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.compact.is_none()
            && self.send.is_empty()
            && self.reply.is_empty()
    }
}

/// A protocol's node as a deterministic state machine.
pub trait StateMachine: Sized {
    /// Messages between nodes (serialised as JSON lines on peer connections).
    type Msg: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + 'static;
    /// Write-ahead log records.
    type Record: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + 'static;

    /// Builds a node from its configuration and the records recovered from its log
    /// (empty on first start).
    fn recover(config: Config, records: Vec<Self::Record>, now: Now) -> Self;

    /// Called periodically (every few milliseconds) by the runtime.
    fn on_tick(&mut self, now: Now, out: &mut Out<Self::Msg, Self::Record>);

    /// A message from a peer.
    fn on_message(
        &mut self,
        now: Now,
        from: NodeId,
        msg: Self::Msg,
        out: &mut Out<Self::Msg, Self::Record>,
    );

    /// A client request (never `Status`: the runtime answers that with [`StateMachine::status`]).
    /// The reply goes into `out.reply` with the same token, now or in a later step.
    fn on_request(
        &mut self,
        now: Now,
        token: ClientToken,
        op: ClientOp,
        out: &mut Out<Self::Msg, Self::Record>,
    );

    /// The node's view for `status` replies.
    fn status(&self, now: Now) -> NodeStatus;
}
