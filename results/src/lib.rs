//! results crate (see ARCHITECTURE.md).
