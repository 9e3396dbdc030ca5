//! Counterexamples a person can read: JSON through serde, text through `Display`.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::search::Evidence;
use super::{Call, LinResult, Partition};
use crate::history::{History, OpType, Process, Value};
use crate::verdict::Verdict;

/// One operation as it appears in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// `index` of the invocation.
    pub index: u64,
    /// `index` of the completion, if the history has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_index: Option<u64>,
    pub process: Process,
    pub f: String,
    /// The invocation's value (what was asked).
    pub value: Value,
    /// `ok` or `info` (`info` also stands for "never completed").
    pub outcome: OpType,
    /// The completion's value (what was returned), for `ok` ops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// Why a key is not linearizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The key (`None` for a single-object history).
    pub key: Option<Value>,
    /// The operation the search could not linearize in time: every linearization of the ops
    /// before it leaves the object in a state where it cannot take effect.
    pub op: OpSummary,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpSummary>,
    /// Model states reachable at the point where `op` had to take effect (at most 16).
    pub states: Vec<Value>,
    /// True when more states were reachable than are listed.
    #[serde(default)]
    pub more_states: bool,
}

pub(crate) fn counterexample(history: &History, p: &Partition, e: &Evidence) -> Counterexample {
    let summary = |op: u32| summarize(history, &p.calls[op as usize]);
    Counterexample {
        key: p.key.clone(),
        op: summary(e.blocked),
        prefix: e.prefix.iter().map(|&o| summary(o)).collect(),
        states: sorted_values(e.states.iter().map(|&s| p.machine.value(s))),
        more_states: e.more_states,
    }
}

/// Numbers in numeric order, then everything else by its JSON text.
fn sorted_values(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut v: Vec<Value> = values.collect();
    v.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    });
    v
}

fn summarize(history: &History, call: &Call) -> OpSummary {
    let inv = &history.ops[call.invoke];
    let done = call.complete.map(|c| &history.ops[c]);
    let outcome = done.map_or(OpType::Info, |d| d.kind);
    OpSummary {
        index: inv.index,
        completed_index: done.map(|d| d.index),
        process: inv.process,
        f: inv.f.clone(),
        value: inv.value.clone(),
        outcome,
        result: done
            .filter(|d| d.kind == OpType::Ok)
            .map(|d| d.value.clone()),
    }
}

impl fmt::Display for OpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {}: {}", self.process, self.f)?;
        let shows_result = matches!(self.f.as_str(), "read" | "get");
        if !(shows_result && self.value.is_null()) {
            write!(f, " {}", self.value)?;
        }
        match (&self.result, self.outcome) {
            (Some(r), _) if shows_result => write!(f, " -> {r}")?,
            (_, OpType::Ok) => f.write_str(" -> ok")?,
            (_, other) => write!(f, " -> {} (outcome unknown)", other.as_str())?,
        }
        match self.completed_index {
            Some(c) => write!(f, "  [ops {}..{}]", self.index, c),
            None => write!(f, "  [op {}, never completed]", self.index),
        }
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => writeln!(f, "key {k} is not linearizable.")?,
            None => writeln!(f, "The history is not linearizable.")?,
        }
        writeln!(f, "Cannot linearize: {}", self.op)?;
        writeln!(
            f,
            "Longest linearizable prefix found ({} ops):",
            self.prefix.len()
        )?;
        for (i, op) in self.prefix.iter().enumerate() {
            writeln!(f, "  {:>4}. {op}", i + 1)?;
        }
        let states: Vec<String> = self.states.iter().map(Value::to_string).collect();
        write!(
            f,
            "Model states reachable at that point: {}{}",
            states.join(", "),
            if self.more_states { ", ..." } else { "" }
        )
    }
}

impl fmt::Display for LinResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.verdict {
            Verdict::Valid => "linearizable",
            Verdict::Invalid => "NOT linearizable",
            Verdict::Unknown => "unknown",
        };
        write!(
            f,
            "{what} (model {}, {} operations, {} key{})",
            self.model,
            self.operations,
            self.keys,
            if self.keys == 1 { "" } else { "s" }
        )?;
        if let Some(reason) = &self.unknown_reason {
            write!(f, ": {reason}")?;
        }
        if let Some(ce) = &self.counterexample {
            write!(f, "\n{ce}")?;
        }
        Ok(())
    }
}
