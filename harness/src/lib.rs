//! The harness: the SSH control layer, clusters and inventories, the test runner and the
//! subcommands of the `faultline` binary. It performs IO; the decisions it records are
//! checked by the pure `checkers` crate.
pub mod campaign;
pub mod cli;
pub mod cluster;
pub mod db;
pub mod doctor;
pub mod inventory;
pub mod run;
pub mod spec;
pub mod ssh;
