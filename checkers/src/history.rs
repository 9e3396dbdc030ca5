//! The history model, with Jepsen's semantics.
//!
//! A history is a sequence of [`Op`]s. A client operation appears twice: once as an `invoke`
//! and once as its completion (`ok`, `fail` or `info`) by the same process.
//! - `ok`: the operation took effect, exactly once, between its invocation and completion.
//! - `fail`: the operation certainly did not take effect.
//! - `info`: unknown outcome; it may take effect at any point after its invocation, or never.
//!   A process that saw `info` never invokes again (the client takes a fresh process id).
//! - an invocation with no completion in the history is treated as `info`.
//!
//! Nemesis operations use [`Process::Nemesis`] and are not paired with client operations.
use serde::{Deserialize, Serialize};

/// A value recorded in a history: JSON's data model (EDN keywords become strings).
pub type Value = serde_json::Value;

/// Who performed an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A logical client process.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a non-negative process number or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom("negative process number"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                match v {
                    "nemesis" => Ok(Process::Nemesis),
                    other => other
                        .parse::<u64>()
                        .map(Process::Client)
                        .map_err(|_| E::custom(format!("unknown process {other:?}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The kind of a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// One history entry. This is also one line of Faultline's JSON-lines history format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, 0-based, strictly increasing.
    #[serde(default)]
    pub index: u64,
    /// Nanoseconds since the start of the test (monotonic).
    #[serde(default)]
    pub time: i64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The function: `read`, `write`, `cas`, `txn`, `get`, `put`, `append`, `add`, `transfer`,
    /// or a nemesis function such as `start-partition`.
    pub f: String,
    /// For independent (multi-key) tests: the key this operation is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or has an unknown outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}

/// A history: operations in the order they were recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
}

/// An invocation paired with its completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Position of the `invoke` in `History::ops`.
    pub invoke: usize,
    /// Position of the completion in `History::ops`; `None` when the history ends first.
    pub complete: Option<usize>,
}

impl Pair {
    /// The completion type, with an absent completion read as `info`.
    pub fn outcome(&self, h: &History) -> OpType {
        self.complete.map_or(OpType::Info, |c| h.ops[c].kind)
    }
}

/// A history that breaks the rules of pairing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("op {index}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { index: u64, process: Process },
    #[error(
        "op {index}: process {process} invokes while its operation from op {open} is still open"
    )]
    DoubleInvoke {
        index: u64,
        process: Process,
        open: u64,
    },
    #[error("op {index}: process {process} invokes again after an info (a process that saw info must not invoke again)")]
    InvokeAfterInfo { index: u64, process: Process },
}

impl History {
    pub fn new(ops: Vec<Op>) -> Self {
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Renumbers `index` to each op's position: readers call this for formats without indices.
    pub fn reindex(&mut self) {
        for (i, op) in self.ops.iter_mut().enumerate() {
            op.index = i as u64;
        }
    }

    /// Pairs every client invocation with its completion, in invocation order.
    ///
    /// Nemesis operations are skipped. With `strict`, a process that invokes again after
    /// an `info` is an error; otherwise it is tolerated (some recorders reuse process ids).
    pub fn pairs(&self, strict: bool) -> Result<Vec<Pair>, PairingError> {
        use std::collections::HashMap;
        let mut open: HashMap<u64, usize> = HashMap::new();
        let mut crashed: std::collections::HashSet<u64> = Default::default();
        let mut pairs: Vec<Pair> = Vec::new();
        // Map from the invoke position to its index in `pairs`.
        let mut slot: HashMap<usize, usize> = HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            let Process::Client(p) = op.process else {
                continue;
            };
            match op.kind {
                OpType::Invoke => {
                    if let Some(&prev) = open.get(&p) {
                        return Err(PairingError::DoubleInvoke {
                            index: op.index,
                            process: op.process,
                            open: self.ops[prev].index,
                        });
                    }
                    if strict && crashed.contains(&p) {
                        return Err(PairingError::InvokeAfterInfo {
                            index: op.index,
                            process: op.process,
                        });
                    }
                    open.insert(p, i);
                    slot.insert(i, pairs.len());
                    pairs.push(Pair {
                        invoke: i,
                        complete: None,
                    });
                }
                OpType::Ok | OpType::Fail | OpType::Info => {
                    let Some(inv) = open.remove(&p) else {
                        return Err(PairingError::CompletionWithoutInvoke {
                            index: op.index,
                            process: op.process,
                        });
                    };
                    if op.kind == OpType::Info {
                        crashed.insert(p);
                    }
                    pairs[slot[&inv]].complete = Some(i);
                }
            }
        }
        Ok(pairs)
    }
}
