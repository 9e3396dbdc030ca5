//! Campaign results: what `faultline campaign` ran, what each entry was expected to do and did,
//! and the files it leaves in the store (`summary.json`, `junit.xml`, `index.html`, and the
//! trends file that accumulates over campaign runs).
//!
//! Layout, under the store root:
//! ```text
//! campaigns/<campaign>/<timestamp>/summary.json
//! campaigns/<campaign>/<timestamp>/junit.xml
//! campaigns/<campaign>/<timestamp>/index.html
//! campaigns/<campaign>/trends.jsonl       one line per entry per campaign run, appended
//! campaigns/<campaign>/latest -> <timestamp>
//! ```
//! The runs themselves are ordinary run directories (`<test>/<timestamp>/`) of the same store.
use serde::{Deserialize, Serialize};

/// What an entry is expected to conclude.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    Valid,
    /// Invalid, with at least one anomaly of each listed type (none listed: any anomaly).
    Invalid { anomalies: Vec<String> },
}

/// What an entry concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Valid,
    Invalid,
    Unknown,
    /// The harness failed (setup impossible, SSH lost, a fault that could not be installed):
    /// whatever the verdict of what was recorded, the entry is an error, not a test failure.
    HarnessError,
    /// Not run: the campaign was interrupted before this entry.
    Skipped,
}

/// One entry of a campaign: one run of one configuration with one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryResult {
    /// Stable across campaign runs (trends are keyed by it), e.g.
    /// `raft-register-partition+kill-bug=stale-read-s3`.
    pub id: String,
    pub target: String,
    pub workload: String,
    /// Fault kinds, comma-separated as on the command line (`none` for no faults).
    pub nemesis: String,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub read_mode: Option<String>,
    pub time_limit_s: f64,
    pub expect: Expectation,
    pub outcome: Outcome,
    /// Anomaly types the checkers reported (`Analysis::anomaly_types`).
    pub anomalies: Vec<String>,
    /// One line for a person: the anomaly summary, or the harness error.
    pub summary: String,
    /// `outcome` met `expect`.
    pub passed: bool,
    /// The run directory relative to the store root (`<test>/<timestamp>`), when a run happened.
    pub run: Option<String>,
    /// From the start of the main phase to the first operation an anomaly implicates.
    pub detection_s: Option<f64>,
    /// Wall time of the whole entry (setup, test, check).
    pub duration_s: f64,
    /// Completed client operations.
    pub client_ops: u64,
}

/// One campaign run: `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// The campaign's name (a valid test name: one path component).
    pub name: String,
    /// The campaign file as given on the command line.
    pub file: String,
    /// RFC 3339.
    pub started: String,
    pub finished: String,
    pub entries: Vec<EntryResult>,
    /// The run stopped early (Ctrl-C, SIGTERM): entries not run are `Skipped`.
    pub interrupted: bool,
}
