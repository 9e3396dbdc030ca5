//! The linearizability checker.
//!
//! A history is split by `Op::key` (P-compositionality: a history of independent objects is
//! linearizable iff each object's sub-history is), and each key is checked on its own, keys in
//! parallel. Per key, [`search`] runs Wing–Gong/Lowe just-in-time linearization over a linked
//! list of call/return entries, memoising every (set of linearized ops, model state) it has
//! reached, as Porcupine does.
//!
//! Semantics: `fail` ops are dropped. `info` ops and invocations that never complete may take
//! effect at any point after their invocation, or never: they have no return entry, so the
//! search may linearize them whenever it likes and need not linearize them at all. An unfinished
//! read constrains nothing and is dropped.
//!
//! A time limit or the memory guard (a cap on the memo tables) makes the answer
//! [`Verdict::Unknown`]; the checker never guesses.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::{History, OpType, PairingError, Process, Value};
use crate::verdict::Verdict;

mod model;
mod report;
mod search;

pub use model::Model;
pub use report::{Counterexample, OpSummary};

use model::{Machine, Step};

/// Resource limits for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget for the whole check; `None` means no limit.
    pub time: Option<Duration>,
    /// Cap on the memory of the memo tables, summed over keys checked at the same time.
    /// Reaching it makes the verdict `Unknown` instead of exhausting memory.
    pub max_cache_bytes: usize,
    /// Keys with more operations than this remember search configurations by a 128-bit
    /// fingerprint (24 bytes each) instead of an exact bitset (one bit per operation of the key).
    pub exact_memo_max_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: None,
            max_cache_bytes: 1 << 30,
            exact_memo_max_ops: 1024,
        }
    }
}

/// The outcome of a linearizability check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinResult {
    pub verdict: Verdict,
    pub model: Model,
    /// Number of keys (independent objects) checked.
    pub keys: usize,
    /// Number of operations considered (after dropping `fail` ops and unfinished reads).
    pub operations: usize,
    /// Why the verdict is `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// Evidence when the verdict is `Invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// A history the checker cannot interpret under the chosen model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("op {index}: model {model} has no function {f:?} (expected one of: {expected})")]
    UnsupportedFunction {
        index: u64,
        model: Model,
        f: String,
        expected: String,
    },
    #[error("op {index}: {f} expects {expected}, found {found}")]
    BadValue {
        index: u64,
        f: String,
        expected: &'static str,
        found: String,
    },
}

/// Checks `history` for linearizability against `model`, key by key.
pub fn check(history: &History, model: Model, limits: &Limits) -> Result<LinResult, CheckError> {
    let started = Instant::now();
    let mut partitions = partition(history, model)?;
    let operations = partitions.iter().map(|p| p.calls.len()).sum();
    let keys = partitions.len();
    let shared = search::Shared {
        deadline: limits.time.map(|t| started + t),
        cancel: AtomicBool::new(false),
        cache_bytes: AtomicUsize::new(0),
        max_cache_bytes: limits.max_cache_bytes,
        exact_memo_max_ops: limits.exact_memo_max_ops,
    };
    let outcomes = search_all(&mut partitions, &shared);

    let mut verdict = Verdict::Valid;
    let mut unknown_reason = None;
    let mut counterexample: Option<(usize, Counterexample)> = None;
    for (p, outcome) in partitions.iter().zip(outcomes) {
        match outcome {
            search::Outcome::Valid => {}
            search::Outcome::Unknown(reason) => {
                verdict = verdict.and(Verdict::Unknown);
                unknown_reason.get_or_insert(reason);
            }
            search::Outcome::Invalid(evidence) => {
                verdict = Verdict::Invalid;
                let ce = report::counterexample(history, p, &evidence);
                // Report the first key in history order, so the answer does not depend on
                // which worker finished first.
                if counterexample
                    .as_ref()
                    .is_none_or(|(first, _)| p.first_position < *first)
                {
                    counterexample = Some((p.first_position, ce));
                }
            }
        }
    }
    if verdict != Verdict::Unknown {
        unknown_reason = None;
    }
    Ok(LinResult {
        verdict,
        model,
        keys,
        operations,
        unknown_reason,
        counterexample: counterexample.map(|(_, ce)| ce),
    })
}

/// Searches all keys: a single key runs to the end; several keys run in rounds of growing
/// step budgets, in parallel, until each is decided or one is found not linearizable.
fn search_all(partitions: &mut [Partition], shared: &search::Shared) -> Vec<search::Outcome> {
    if let [only] = partitions {
        let mut s = search::KeySearch::new(only, shared);
        let outcome = s.run(only, shared, u64::MAX);
        return vec![outcome.expect("an unlimited search decides")];
    }
    let mut slots: Vec<(search::KeySearch, Option<search::Outcome>)> = partitions
        .iter()
        .map(|p| (search::KeySearch::new(p, shared), None))
        .collect();
    let mut budget = 1u64 << 12;
    loop {
        slots
            .par_iter_mut()
            .zip(partitions.par_iter_mut())
            .filter(|((_, done), _)| done.is_none())
            .for_each(|((s, done), p)| {
                *done = s.run(p, shared, budget);
                if matches!(done, Some(search::Outcome::Invalid(_))) {
                    shared.cancel.store(true, Ordering::Relaxed);
                }
            });
        if slots.iter().all(|(_, d)| d.is_some()) {
            break;
        }
        if shared.cancel.load(Ordering::Relaxed) {
            for (_, d) in slots.iter_mut().filter(|(_, d)| d.is_none()) {
                *d = Some(search::Outcome::Unknown(
                    "cancelled: another key is not linearizable".into(),
                ));
            }
            break;
        }
        budget = budget.saturating_mul(2);
    }
    slots
        .into_iter()
        .map(|(_, d)| d.expect("every key decided"))
        .collect()
}

/// One operation of a key, ready for the search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) step: Step,
    /// Positions in `History::ops` of the invocation and the completion (if any).
    pub(crate) invoke: usize,
    pub(crate) complete: Option<usize>,
    /// Completed `ok`: it must be linearized before its return.
    pub(crate) must: bool,
}

/// The sub-history of one key.
pub(crate) struct Partition {
    pub(crate) key: Option<Value>,
    pub(crate) calls: Vec<Call>,
    /// Call and return events in history order: (operation, is_call).
    pub(crate) events: Vec<(u32, bool)>,
    pub(crate) machine: Machine,
    /// Position of the key's first invocation, for a deterministic choice among invalid keys.
    pub(crate) first_position: usize,
}

fn partition(history: &History, model: Model) -> Result<Vec<Partition>, CheckError> {
    let pairs = history.pairs(false)?;
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut parts: Vec<Partition> = Vec::new();
    let mut positions: Vec<Vec<(usize, u32, bool)>> = Vec::new();
    for pair in pairs {
        let outcome = pair.outcome(history);
        if outcome == OpType::Fail {
            continue;
        }
        let inv = &history.ops[pair.invoke];
        if inv.process == Process::Nemesis {
            continue;
        }
        let done = pair.complete.map(|c| &history.ops[c]);
        let key = inv.key.clone().or_else(|| done.and_then(|d| d.key.clone()));
        if !model.functions().contains(&inv.f.as_str()) {
            return Err(CheckError::UnsupportedFunction {
                index: inv.index,
                model,
                f: inv.f.clone(),
                expected: model.functions().join(", "),
            });
        }
        let key_text = key.as_ref().map_or_else(String::new, |k| k.to_string());
        let slot = *by_key.entry(key_text).or_insert_with(|| {
            parts.push(Partition {
                key: key.clone(),
                calls: Vec::new(),
                events: Vec::new(),
                machine: Machine::new(model),
                first_position: pair.invoke,
            });
            positions.push(Vec::new());
            parts.len() - 1
        });
        let part = &mut parts[slot];
        let must = outcome == OpType::Ok;
        let bad = |expected: &'static str, found: &Value| CheckError::BadValue {
            index: inv.index,
            f: inv.f.clone(),
            expected,
            found: found.to_string(),
        };
        let kv_string = |v: &Value| -> Result<Value, CheckError> {
            match v {
                Value::Null => Ok(Value::String(String::new())),
                Value::String(_) => Ok(v.clone()),
                other => Err(bad("a string", other)),
            }
        };
        let step = match (model, inv.f.as_str()) {
            (_, "read") | (_, "get") => {
                if !must {
                    continue; // an unfinished read constrains nothing
                }
                let out = &done.expect("an ok op has a completion").value;
                let out = if model == Model::Kv {
                    kv_string(out)?
                } else {
                    out.clone()
                };
                Step::Read(part.machine.intern(out))
            }
            (Model::Kv, "put") => Step::Write(part.machine.intern(kv_string(&inv.value)?)),
            (Model::Kv, _) => Step::Append(part.machine.intern(kv_string(&inv.value)?)),
            (_, "write") => Step::Write(part.machine.intern(inv.value.clone())),
            _ => match inv.value.as_array().map(Vec::as_slice) {
                Some([from, to]) => {
                    let from = part.machine.intern(from.clone());
                    let to = part.machine.intern(to.clone());
                    Step::Cas { from, to }
                }
                _ => return Err(bad("a [from to] pair", &inv.value)),
            },
        };
        let op = part.calls.len() as u32;
        part.calls.push(Call {
            step,
            invoke: pair.invoke,
            complete: pair.complete,
            must,
        });
        positions[slot].push((pair.invoke, op, true));
        if must {
            positions[slot].push((pair.complete.expect("ok has a completion"), op, false));
        }
    }
    for (part, mut pos) in parts.iter_mut().zip(positions) {
        pos.sort_unstable_by_key(|&(p, _, _)| p);
        part.events = pos.into_iter().map(|(_, op, call)| (op, call)).collect();
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
