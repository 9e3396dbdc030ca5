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

    /// The anomaly types the checkers reported, sorted and deduplicated: the transactional
    /// checker's names as in its report (`G-single`, `G2-item-realtime`, `lost-update`, ...),
    /// `nonlinearizable`, the bank's `wrong-total` and `negative-balance`, the set's `lost`,
    /// `unexpected` and `failed-present`. Campaign expectations are matched against these.
    pub fn anomaly_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .checkers
            .iter()
            .flat_map(|c| c.output.type_counts())
            .filter(|(_, n)| *n > 0)
            .map(|(t, _)| t)
            .collect();
        types.sort();
        types.dedup();
        types
    }

    /// One line for a person: the anomalies by type with counts, or the linearizability
    /// counterexample, or why the verdict is unknown. Empty when the run is valid.
    pub fn summary_line(&self) -> String {
        if self.verdict == Verdict::Valid {
            return String::new();
        }
        let parts: Vec<String> = self
            .checkers
            .iter()
            .filter(|c| c.verdict != Verdict::Valid || c.output.anomaly_count() > 0)
            .map(|c| c.output.summary_line())
            .filter(|s| !s.is_empty())
            .collect();
        let line = if parts.is_empty() {
            self.verdict.as_str().to_string()
        } else {
            parts.join("; ")
        };
        one_line(&line)
    }
}

/// Newlines and other control characters become spaces, so the result is one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Up to three values, for a summary.
fn some_values(vs: &[checkers::history::Value]) -> String {
    let mut shown: Vec<String> = vs.iter().take(3).map(|v| v.to_string()).collect();
    if vs.len() > 3 {
        shown.push("...".into());
    }
    shown.join(", ")
}

impl CheckerOutput {
    /// Anomaly type names with how many of each this output reports. For the bank only the
    /// kept bad reads (at most 32) are classified; `bad_reads` counts them all.
    fn type_counts(&self) -> Vec<(String, usize)> {
        match self {
            CheckerOutput::Linear(r) => {
                vec![(
                    "nonlinearizable".into(),
                    usize::from(r.counterexample.is_some()),
                )]
            }
            CheckerOutput::Txn(r) => r
                .anomaly_counts
                .iter()
                .map(|(t, n)| (t.clone(), *n))
                .collect(),
            CheckerOutput::Bank(r) => {
                let count =
                    |k: bank::BankAnomalyKind| r.anomalies.iter().filter(|a| a.kind == k).count();
                vec![
                    (
                        "wrong-total".into(),
                        count(bank::BankAnomalyKind::WrongTotal),
                    ),
                    (
                        "negative-balance".into(),
                        count(bank::BankAnomalyKind::NegativeBalance),
                    ),
                ]
            }
            CheckerOutput::Set(r) => vec![
                ("lost".into(), r.lost.len()),
                ("unexpected".into(), r.unexpected.len()),
                ("failed-present".into(), r.failed_present.len()),
            ],
        }
    }

    /// This output's part of [`Analysis::summary_line`] (may span lines before cleaning).
    fn summary_line(&self) -> String {
        let by_type = |counts: Vec<(String, usize)>| -> String {
            counts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(t, n)| format!("{t} \u{d7}{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            CheckerOutput::Linear(r) => match (&r.counterexample, &r.unknown_reason) {
                (Some(ce), _) => {
                    let key = ce
                        .key
                        .as_ref()
                        .map_or(String::new(), |k| format!(" key {k}"));
                    format!("nonlinearizable{key}: cannot linearize {}", ce.op)
                }
                (None, Some(reason)) => format!("linearizability unknown: {reason}"),
                (None, None) => format!("linearizability {}", r.verdict),
            },
            CheckerOutput::Txn(r) => {
                let n = r.anomaly_counts.values().sum();
                if n == 0 {
                    format!("{} {}", r.workload.name(), r.verdict)
                } else {
                    format!(
                        "{}: {}",
                        plural(n, "anomaly", "anomalies"),
                        by_type(self.type_counts())
                    )
                }
            }
            CheckerOutput::Bank(r) => {
                if r.bad_reads == 0 {
                    return match r.reads {
                        0 => "bank unknown: no successful reads".into(),
                        _ => format!("bank {}", r.verdict),
                    };
                }
                let mut s = format!(
                    "{}: {}",
                    plural(r.bad_reads, "bad read", "bad reads"),
                    by_type(self.type_counts())
                );
                if r.bad_reads > r.anomalies.len() {
                    s.push_str(&format!(" (types of the first {})", r.anomalies.len()));
                }
                s
            }
            CheckerOutput::Set(r) => {
                let n = self.anomaly_count();
                if n == 0 {
                    return match r.final_read {
                        None => "set unknown: no final read".into(),
                        Some(_) => format!("set {}", r.verdict),
                    };
                }
                let parts: Vec<String> = [
                    ("lost", &r.lost),
                    ("unexpected", &r.unexpected),
                    ("failed-present", &r.failed_present),
                ]
                .into_iter()
                .filter(|(_, vs)| !vs.is_empty())
                .map(|(t, vs)| format!("{t} \u{d7}{} [{}]", vs.len(), some_values(vs)))
                .collect();
                format!(
                    "{}: {}",
                    plural(n, "anomaly", "anomalies"),
                    parts.join(", ")
                )
            }
        }
    }
}

/// From the history's first operation to the earliest operation an anomaly implicates: the
/// invocation of the operation the linearizability search could not place, the earliest
/// invocation among the transactions of a transactional anomaly, the completion of the first
/// bad bank read, the completion of the first read showing a set anomaly. `None` when the
/// analysis is valid or implicates no operation of `history`.
///
/// Only the evidence a report keeps is looked at (the transactional checker keeps at most
/// `max_anomalies_per_type` of each type, the bank 32 bad reads), so for very anomalous runs this
/// is an upper bound of the earliest implicated operation.
pub fn detection_time(analysis: &Analysis, history: &checkers::History) -> Option<Duration> {
    if analysis.verdict == Verdict::Valid {
        return None;
    }
    let start = history.ops.first()?.time;
    let earliest = analysis
        .checkers
        .iter()
        .filter_map(|c| first_implicated(&c.output, history))
        .min()?;
    Some(Duration::from_nanos(
        u64::try_from(earliest.saturating_sub(start)).unwrap_or(0),
    ))
}

/// The `time` of the op whose `index` is `index`.
fn time_of(history: &checkers::History, index: u64) -> Option<i64> {
    let ops = &history.ops;
    match usize::try_from(index).ok().and_then(|i| ops.get(i)) {
        Some(op) if op.index == index => Some(op.time),
        _ => ops
            .binary_search_by_key(&index, |o| o.index)
            .ok()
            .map(|i| ops[i].time),
    }
}

/// The time of the earliest operation one checker's anomalies implicate.
fn first_implicated(output: &CheckerOutput, history: &checkers::History) -> Option<i64> {
    match output {
        CheckerOutput::Linear(r) => time_of(history, r.counterexample.as_ref()?.op.index),
        CheckerOutput::Txn(r) => r
            .anomalies
            .iter()
            .filter(|a| a.kind.kind != txn::AnomalyKind::CycleSearchTimeout)
            .flat_map(|a| &a.txns)
            .filter_map(|t| time_of(history, t.invoke_index))
            .min(),
        CheckerOutput::Bank(r) => r.anomalies.iter().map(|a| a.time).min(),
        CheckerOutput::Set(r) => set_first_implicated(r, history),
    }
}

/// Set anomalies carry elements, not operations, so the history is read again: an unexpected or
/// failed-present element is seen at the completion of the first read returning it; a lost
/// element at the completion of the first read, invoked after the add was acknowledged, from
/// which on no read returns it (the final read at the latest).
fn set_first_implicated(r: &set::Report, history: &checkers::History) -> Option<i64> {
    use checkers::history::OpType;
    use std::collections::HashMap;
    if r.lost.is_empty() && r.unexpected.is_empty() && r.failed_present.is_empty() {
        return None;
    }
    let pairs = history.pairs(false).ok()?;
    let key = |v: &checkers::history::Value| v.to_string();
    let mut lost: HashMap<String, Option<i64>> = r.lost.iter().map(|v| (key(v), None)).collect();
    let appeared: std::collections::HashSet<String> = r
        .unexpected
        .iter()
        .chain(&r.failed_present)
        .map(key)
        .collect();
    // (invoked, completed, elements) of every ok read, in invocation order.
    let mut reads: Vec<(i64, i64, std::collections::HashSet<String>)> = Vec::new();
    for p in &pairs {
        let inv = &history.ops[p.invoke];
        let Some(done) = p.complete.map(|c| &history.ops[c]) else {
            continue;
        };
        match (inv.f.as_str(), done.kind) {
            ("add", OpType::Ok) => {
                if let Some(acked) = lost.get_mut(&key(&inv.value)) {
                    // An element added twice counts from its last acknowledgement.
                    *acked = Some(acked.map_or(done.time, |t: i64| t.max(done.time)));
                }
            }
            ("read", OpType::Ok) => {
                let elems = done
                    .value
                    .as_array()
                    .map(|a| a.iter().map(key).collect())
                    .unwrap_or_default();
                reads.push((inv.time, done.time, elems));
            }
            _ => {}
        }
    }
    let mut seen_at: Vec<i64> = reads
        .iter()
        .filter(|(_, _, elems)| elems.iter().any(|e| appeared.contains(e)))
        .map(|(_, completed, _)| *completed)
        .collect();
    for (elem, acked) in &lost {
        let Some(acked) = acked else { continue };
        let after: Vec<_> = reads.iter().filter(|(inv, _, _)| inv >= acked).collect();
        // The first read of the trailing run of reads that all miss the element.
        let gone_from = after
            .iter()
            .rposition(|(_, _, elems)| elems.contains(elem))
            .map_or(0, |i| i + 1);
        if let Some((_, completed, _)) = after.get(gone_from) {
            seen_at.push(*completed);
        }
    }
    match seen_at.into_iter().min() {
        Some(t) => Some(t),
        None => time_of(history, r.final_read?),
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
