//! What the checkers concluded about one run: `results.json` in a run directory.
use std::time::Duration;

use checkers::verdict::Verdict;
use checkers::{bank, linear, set, txn};
use serde::{Deserialize, Serialize};

/// The checkers' outputs for one run, with their timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// All checkers combined: one invalid makes the run invalid, else one unknown makes it
    /// unknown.
    pub verdict: Verdict,
    pub checkers: Vec<CheckerRun>,
    /// Wall time of the whole analysis, in microseconds.
    pub elapsed_us: u64,
}

/// One checker's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerRun {
    /// A name for the page and the index, e.g. `linearizable` or `list-append`.
    pub name: String,
    pub verdict: Verdict,
    /// Wall time of this checker, in microseconds.
    pub elapsed_us: u64,
    #[serde(flatten)]
    pub output: CheckerOutput,
}

/// The evidence a checker produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "checker", content = "result", rename_all = "kebab-case")]
pub enum CheckerOutput {
    Linear(linear::LinResult),
    Txn(txn::Report),
    Bank(bank::Report),
    Set(set::Report),
}

/// The same outcome in the shared verdict type (the transactional checkers have their own).
pub fn verdict_of_txn(v: txn::Verdict) -> Verdict {
    match v {
        txn::Verdict::Valid => Verdict::Valid,
        txn::Verdict::Invalid => Verdict::Invalid,
        txn::Verdict::Unknown => Verdict::Unknown,
    }
}

impl CheckerOutput {
    /// The verdict this output carries.
    pub fn verdict(&self) -> Verdict {
        match self {
            CheckerOutput::Linear(r) => r.verdict,
            CheckerOutput::Txn(r) => verdict_of_txn(r.verdict),
            CheckerOutput::Bank(r) => verdict_of_txn(r.verdict),
            CheckerOutput::Set(r) => verdict_of_txn(r.verdict),
        }
    }

    /// How many anomalies this output reports (0 when valid).
    pub fn anomaly_count(&self) -> usize {
        match self {
            CheckerOutput::Linear(r) => usize::from(r.counterexample.is_some()),
            CheckerOutput::Txn(r) => r.anomaly_counts.values().sum(),
            CheckerOutput::Bank(r) => r.bad_reads,
            CheckerOutput::Set(r) => r.lost.len() + r.unexpected.len() + r.failed_present.len(),
        }
    }
}

impl CheckerRun {
    pub fn new(name: impl Into<String>, output: CheckerOutput, elapsed: Duration) -> CheckerRun {
        CheckerRun {
            name: name.into(),
            verdict: output.verdict(),
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            output,
        }
    }
}

impl Analysis {
    /// Combines checker results; `elapsed` is the wall time of the whole analysis.
    pub fn new(checkers: Vec<CheckerRun>, elapsed: Duration) -> Analysis {
        let verdict = checkers
            .iter()
            .fold(Verdict::Valid, |v, c| v.and(c.verdict));
        Analysis {
            verdict,
            checkers,
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Total anomalies over all checkers.
    pub fn anomaly_count(&self) -> usize {
        self.checkers.iter().map(|c| c.output.anomaly_count()).sum()
    }
}
