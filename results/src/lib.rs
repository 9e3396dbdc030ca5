//! Results of a test run: the on-disk store of runs ([`store`]), the combined outcome of the
//! checkers ([`Analysis`]) and the self-contained HTML report ([`report::render`]).
//!
//! This crate reads and writes run directories but never runs a checker's IO, a cluster or a
//! network service; `faultline serve` lives in the harness and only reads what this crate wrote.
pub mod analysis;
pub mod campaign;
mod faults;
pub mod index;
mod plot;
pub mod report;
pub mod store;

pub use analysis::{
    analyse, analyse_with, Analysis, CheckInputError, CheckModel, CheckOptions, CheckerOutput,
    CheckerRun,
};
pub use report::{render, NodeLog, ReportInput};
pub use store::{RunDir, RunSummary, Store, StoreError};
