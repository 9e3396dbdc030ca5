//! Fault injection: partitions, clock skew, crashes, pauses and packet faults, their seeded
//! schedules, and healing. Acts on nodes only through [`remote::Remote`]; never depends on the
//! SSH implementation in `harness`.
pub mod remote;

pub use remote::{Command, Output, Remote, RemoteError};
