//! workloads crate (see ARCHITECTURE.md).
