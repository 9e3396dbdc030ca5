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

impl CheckerOutput {
    /// The verdict this output carries.
    pub fn verdict(&self) -> Verdict {
        match self {
            CheckerOutput::Linear(r) => r.verdict,
            CheckerOutput::Txn(r) => r.verdict,
            CheckerOutput::Bank(r) => r.verdict,
            CheckerOutput::Set(r) => r.verdict,
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

/// Every checker a history can be checked with: the `--model` of `faultline check` and
/// `faultline report`, and what a workload implies for `faultline run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckModel {
    Register,
    CasRegister,
    Kv,
    ListAppend,
    RwRegister,
    Bank,
    Set,
}

impl CheckModel {
    pub fn name(self) -> &'static str {
        match self {
            CheckModel::Register => "register",
            CheckModel::CasRegister => "cas-register",
            CheckModel::Kv => "kv",
            CheckModel::ListAppend => "list-append",
            CheckModel::RwRegister => "rw-register",
            CheckModel::Bank => "bank",
            CheckModel::Set => "set",
        }
    }

    /// The model for a history given without one: the format's own model for Porcupine logs,
    /// otherwise a linearizability model guessed from the operations.
    pub fn guess(format: checkers::read::Format, history: &checkers::History) -> CheckModel {
        use checkers::read::Format;
        match format {
            Format::PorcupineEtcd => CheckModel::CasRegister,
            Format::PorcupineKv => CheckModel::Kv,
            _ => match linear::Model::infer(history) {
                linear::Model::Register => CheckModel::Register,
                linear::Model::CasRegister => CheckModel::CasRegister,
                linear::Model::Kv => CheckModel::Kv,
            },
        }
    }
}

/// A history the chosen checker cannot read (an unknown function, a malformed value): the
/// message names the operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckInputError(pub String);

/// What a run knows about its workload that its history does not say.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The bank's total and whether balances may go negative. Without a total, the first `ok`
    /// read sets it.
    pub bank: bank::Options,
}

/// Runs one checker over a history, timed, and wraps its output as an [`Analysis`].
/// `time_limit` bounds the linearizability search (its verdict is then `unknown`).
pub fn analyse(
    history: &checkers::History,
    model: CheckModel,
    time_limit: Option<Duration>,
) -> Result<Analysis, CheckInputError> {
    analyse_with(history, model, time_limit, &CheckOptions::default())
}

/// [`analyse`] with what the run recorded about its workload (e.g. the bank's total).
pub fn analyse_with(
    history: &checkers::History,
    model: CheckModel,
    time_limit: Option<Duration>,
    opts: &CheckOptions,
) -> Result<Analysis, CheckInputError> {
    let started = std::time::Instant::now();
    let bad = |e: &dyn std::fmt::Display| CheckInputError(e.to_string());
    let linear = |m: linear::Model| -> Result<CheckerOutput, CheckInputError> {
        let limits = linear::Limits {
            time: time_limit,
            ..linear::Limits::default()
        };
        linear::check(history, m, &limits)
            .map(CheckerOutput::Linear)
            .map_err(|e| bad(&e))
    };
    let transactional = |opts: txn::Options| -> Result<CheckerOutput, CheckInputError> {
        txn::check(history, &opts)
            .map(CheckerOutput::Txn)
            .map_err(|e| bad(&e))
    };
    let (checker, output) = match model {
        CheckModel::Register => ("linearizable", linear(linear::Model::Register)?),
        CheckModel::CasRegister => ("linearizable", linear(linear::Model::CasRegister)?),
        CheckModel::Kv => ("linearizable", linear(linear::Model::Kv)?),
        CheckModel::ListAppend => ("list-append", transactional(txn::Options::list_append())?),
        CheckModel::RwRegister => ("rw-register", transactional(txn::Options::rw_register())?),
        CheckModel::Bank => (
            "bank",
            bank::check(history, &opts.bank)
                .map(CheckerOutput::Bank)
                .map_err(|e| bad(&e))?,
        ),
        CheckModel::Set => (
            "set",
            set::check(history, &set::Options::default())
                .map(CheckerOutput::Set)
                .map_err(|e| bad(&e))?,
        ),
    };
    let run = CheckerRun::new(checker, output, started.elapsed());
    Ok(Analysis::new(vec![run], started.elapsed()))
}

impl std::fmt::Display for CheckerOutput {
    /// The checker's own plain-text rendering of its evidence.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckerOutput::Linear(r) => write!(f, "{r}"),
            CheckerOutput::Txn(r) => f.write_str(txn::render_text(r).trim_end()),
            CheckerOutput::Bank(r) => f.write_str(bank::render_text(r).trim_end()),
            CheckerOutput::Set(r) => f.write_str(set::render_text(r).trim_end()),
        }
    }
}
