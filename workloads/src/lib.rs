//! Workloads: seeded generators of client operations, and the clients that carry them to a target
//! and turn replies into history completions.
//!
//! A generator only decides *what* to invoke; it never talks to the network. A client performs one
//! invocation and maps the reply faithfully: success -> `ok`; a definite error -> `fail`; a timeout,
//! a connection lost after sending, or an indefinite error -> `info` (except for read-only operations,
//! which cannot have taken effect and so `fail`).
pub mod bundled;
pub mod etcd;
pub mod gen;

pub use gen::{Generator, Invocation, WorkloadKind, WorkloadOptions};

use checkers::history::{OpType, Value};

/// How an invocation ended, ready to be recorded as the completion op.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub kind: OpType,
    /// The completion's value: read results filled in for `ok`; the invoked value otherwise.
    pub value: Value,
    pub error: Option<String>,
}
