//! Fault injection: partitions, clock skew, crashes, pauses and packet faults, their seeded
//! schedules, and healing.
//!
//! Acts on nodes only through [`remote::Remote`] and on server processes only through
//! [`control::TargetControl`]; never depends on the SSH implementation or the lifecycle in
//! `harness`. Shell text is built by pure functions in [`scripts`] and [`clock`] (unit-tested);
//! [`Nemesis`] runs it and reports each action as a [`FaultRecord`] whose outcome is
//! `installed`, `skipped` (with a reason) or `indeterminate`. [`heal_all`] and [`residue`] need
//! nothing but the nodes, so they work after the controller that installed the faults died.
pub mod clock;
pub mod control;
pub mod exec;
pub mod fault;
pub mod grudge;
pub mod heal;
pub mod nemesis;
pub mod record;
pub mod remote;
pub mod schedule;
pub mod scripts;

pub use clock::{faketime_env, faketime_file, ClockChange, ClockMechanism, OffsetFiles, CLOCK_DIR};
pub use control::{ControlError, TargetControl};
pub use exec::Access;
pub use fault::{FaultKind, FaultOp, PacketFault, TargetSpec, Targets};
pub use grudge::{Grudge, Shape};
pub use heal::{heal_all, residue, residue_with, HealOptions, Residue, ResidueKind};
pub use nemesis::{Nemesis, NemesisConfig};
pub use record::{FaultRecord, Outcome};
pub use remote::{Command, Output, Remote, RemoteError};
pub use schedule::{schedule, ScheduleConfig, ScheduleMode, Scheduled};
