//! Faultline's checkers: the history model, history readers and the checkers that judge a history
//! (linearizability, transactional anomalies, bank and set invariants).
//!
//! This crate is the pure core. It never opens a socket, spawns a task, touches the filesystem
//! beyond reading a caller-supplied `Read`, or prints. A checker takes a [`History`] and returns a
//! verdict plus the evidence for it.
pub mod bank;
pub mod history;
pub mod linear;
pub mod read;
pub mod set;
pub mod txn;
pub mod verdict;

pub use history::{History, Op, OpType, Process, Value};
pub use verdict::Verdict;
