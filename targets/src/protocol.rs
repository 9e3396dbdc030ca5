//! The client wire protocol shared by the Raft, Multi-Paxos and 2PC servers (see `PROTOCOL.md`).
//!
//! Newline-delimited JSON over TCP. Each request carries a client-chosen `id` that its response
//! echoes; requests may be pipelined and responses may come back in any order.
use serde::{Deserialize, Serialize};

pub type Key = u64;

/// A stored value: an integer register or a list of integers (list-append).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Val {
    Int(i64),
    List(Vec<i64>),
}

/// A client request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: ClientOp,
}

/// The operations a client may ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ClientOp {
    /// Read a key; `null` if never written.
    Read { key: Key },
    /// Write an integer to a key.
    Write { key: Key, value: i64 },
    /// Compare-and-set: if the key holds `from`, set it to `to`; otherwise a definite `cas-mismatch`.
    Cas { key: Key, from: i64, to: i64 },
    /// An atomic transaction of micro-operations, applied in order.
    Txn { txn: Vec<MicroOp> },
    /// The node's view of the cluster.
    Status,
}

/// The function of a transaction micro-operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MicroF {
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "w")]
    Write,
    #[serde(rename = "append")]
    Append,
    /// Adds an integer to the key's integer value (a missing key counts as 0). A transaction
    /// with adds commits only if every key it adds to is >= 0 afterwards.
    #[serde(rename = "add")]
    Add,
}

/// One micro-operation of a transaction, on the wire as `[f, key, value]`:
/// `["r", 3, null]`, `["w", 3, 5]`, `["append", 3, 7]`, `["add", 3, -5]`. In a reply, reads carry
/// the value read (`["r", 3, [1, 7]]`, `["r", 4, 5]` or `["r", 5, null]`); writes, appends and
/// adds are echoed as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "(MicroF, Key, Option<Val>)",
    into = "(MicroF, Key, Option<Val>)"
)]
pub struct MicroOp {
    pub f: MicroF,
    pub key: Key,
    pub value: Option<Val>,
}

impl From<(MicroF, Key, Option<Val>)> for MicroOp {
    fn from((f, key, value): (MicroF, Key, Option<Val>)) -> Self {
        MicroOp { f, key, value }
    }
}

impl From<MicroOp> for (MicroF, Key, Option<Val>) {
    fn from(m: MicroOp) -> Self {
        (m.f, m.key, m.value)
    }
}

/// A response: exactly one of `value`, `txn`, `status` or `error` is meaningful.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request id this answers (0 when the request could not be parsed far enough to find one).
    pub id: u64,
    pub ok: bool,
    /// The result of `read` (the value read) and of `write`/`cas` (omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Val>,
    /// The completed micro-ops of a `txn`, with read values filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<Vec<MicroOp>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
}

impl Response {
    pub fn ok(id: u64) -> Self {
        Response {
            id,
            ok: true,
            value: None,
            txn: None,
            status: None,
            error: None,
        }
    }
    pub fn value(id: u64, value: Option<Val>) -> Self {
        Response {
            value,
            ..Response::ok(id)
        }
    }
    pub fn txn(id: u64, txn: Vec<MicroOp>) -> Self {
        Response {
            txn: Some(txn),
            ..Response::ok(id)
        }
    }
    pub fn status(id: u64, status: NodeStatus) -> Self {
        Response {
            status: Some(status),
            ..Response::ok(id)
        }
    }
    pub fn error(id: u64, error: ErrorReply) -> Self {
        Response {
            ok: false,
            error: Some(error),
            ..Response::ok(id)
        }
    }
}

/// Why a request did not succeed, and whether it may still have taken effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    /// `true`: the operation certainly did not happen (a client records `fail`).
    /// `false`: it may have happened (a client records `info`).
    pub definite: bool,
    pub message: String,
    /// The leader this node believes in, when it is not the leader itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The request was not valid JSON or not a known operation (definite).
    Malformed,
    /// This node is not the leader and did not propose the operation (definite).
    NotLeader,
    /// No leader is known (definite).
    NoLeader,
    /// `cas` found a different value (definite).
    CasMismatch,
    /// A transaction was aborted, e.g. on a lock conflict (definite).
    Aborted,
    /// A micro-op applied to a value of the wrong type, e.g. append to an integer (definite).
    TypeMismatch,
    /// A transaction's `add` would leave a key below zero; nothing was applied (definite).
    InsufficientFunds,
    /// The request was proposed but its outcome is not known in time (indefinite).
    Timeout,
    /// Leadership was lost after proposing (indefinite).
    LeadershipLost,
    /// The node is shutting down or overloaded (definite unless stated).
    Unavailable,
}

/// A node's view of the cluster, returned by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    /// `leader`, `follower`, `candidate`, `proposer`, `acceptor`, `participant`...
    pub role: String,
    /// Raft term or Paxos ballot number (0 for 2PC).
    pub term: u64,
    #[serde(default)]
    pub leader: Option<String>,
    /// The node's wall-clock time in milliseconds since the Unix epoch (as skewed by faketime).
    pub time_ms: u64,
    pub commit_index: u64,
    pub protocol: String,
}
