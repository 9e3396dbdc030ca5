//! The bundled reference servers (Raft, Multi-Paxos, 2PC key-value stores) and their wire protocol.
//!
//! Each protocol is a deterministic, IO-free state machine (see [`sm`]); a thin tokio runtime
//! performs its effects. This crate never links harness code.
pub mod kv;
pub mod paxos;
pub mod protocol;
pub mod raft;
pub mod runtime;
pub mod sm;
pub mod twopc;
pub mod wal;
