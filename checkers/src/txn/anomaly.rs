//! Anomaly names, the evidence attached to each, and how cycles become sentences.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::graph::{EdgeKind, Shape, Variant};
use crate::history::{OpType, Process, Value};

/// The base name of an anomaly (Adya's and Elle's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// A cycle of write-write dependencies.
    G0,
    /// A committed transaction read a write of an aborted one.
    G1a,
    /// A committed transaction read a version its writer later overwrote.
    G1b,
    /// A cycle of write-write and write-read dependencies.
    G1c,
    /// A cycle with exactly one anti-dependency (read skew).
    GSingle,
    /// A cycle with several anti-dependencies, none adjacent.
    GNonadjacent,
    /// A cycle with several anti-dependencies (e.g. write skew).
    G2Item,
    /// A transaction disagreed with its own earlier reads or writes.
    Internal,
    /// A read returned a list holding the same element twice.
    DuplicateElements,
    /// Two reads of a key imply different orders of its writes.
    IncompatibleOrder,
    /// A committed write was applied on top of an aborted one.
    DirtyUpdate,
    /// Two committed transactions read the same version of a key and both wrote it.
    LostUpdate,
    /// A read returned a value that no transaction wrote.
    GarbageRead,
    /// The inferred version order of a key is cyclic.
    CyclicVersions,
    /// The cycle search ran out of budget; there may be cycles it did not find.
    CycleSearchTimeout,
}

/// An anomaly name: a kind plus, for cycles, whether process or realtime order was needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnomalyType {
    pub kind: AnomalyKind,
    pub variant: Variant,
}

impl AnomalyType {
    pub const fn plain(kind: AnomalyKind) -> AnomalyType {
        AnomalyType {
            kind,
            variant: Variant::Plain,
        }
    }

    pub(crate) fn of_cycle(shape: Shape, variant: Variant) -> AnomalyType {
        let kind = match shape {
            Shape::G0 => AnomalyKind::G0,
            Shape::G1c => AnomalyKind::G1c,
            Shape::GSingle => AnomalyKind::GSingle,
            Shape::GNonadjacent => AnomalyKind::GNonadjacent,
            Shape::G2Item => AnomalyKind::G2Item,
        };
        AnomalyType { kind, variant }
    }

    pub fn is_cycle(self) -> bool {
        matches!(
            self.kind,
            AnomalyKind::G0
                | AnomalyKind::G1c
                | AnomalyKind::GSingle
                | AnomalyKind::GNonadjacent
                | AnomalyKind::G2Item
        )
    }
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::G0 => "G0",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::GNonadjacent => "G-nonadjacent",
            AnomalyKind::G2Item => "G2-item",
            AnomalyKind::Internal => "internal",
            AnomalyKind::DuplicateElements => "duplicate-elements",
            AnomalyKind::IncompatibleOrder => "incompatible-order",
            AnomalyKind::DirtyUpdate => "dirty-update",
            AnomalyKind::LostUpdate => "lost-update",
            AnomalyKind::GarbageRead => "garbage-read",
            AnomalyKind::CyclicVersions => "cyclic-versions",
            AnomalyKind::CycleSearchTimeout => "cycle-search-timeout",
        }
    }

    const ALL: [AnomalyKind; 15] = [
        AnomalyKind::G0,
        AnomalyKind::G1a,
        AnomalyKind::G1b,
        AnomalyKind::G1c,
        AnomalyKind::GSingle,
        AnomalyKind::GNonadjacent,
        AnomalyKind::G2Item,
        AnomalyKind::Internal,
        AnomalyKind::DuplicateElements,
        AnomalyKind::IncompatibleOrder,
        AnomalyKind::DirtyUpdate,
        AnomalyKind::LostUpdate,
        AnomalyKind::GarbageRead,
        AnomalyKind::CyclicVersions,
        AnomalyKind::CycleSearchTimeout,
    ];
}

impl fmt::Display for AnomalyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match self.variant {
            Variant::Plain => Ok(()),
            Variant::Process => f.write_str("-process"),
            Variant::Realtime => f.write_str("-realtime"),
        }
    }
}

/// An unknown anomaly name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown anomaly {0:?}")]
pub struct UnknownAnomaly(pub String);

impl FromStr for AnomalyType {
    type Err = UnknownAnomaly;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (base, variant) = if let Some(b) = s.strip_suffix("-realtime") {
            (b, Variant::Realtime)
        } else if let Some(b) = s.strip_suffix("-process") {
            (b, Variant::Process)
        } else {
            (s, Variant::Plain)
        };
        let kind = AnomalyKind::ALL
            .into_iter()
            .find(|k| k.name() == base)
            .ok_or_else(|| UnknownAnomaly(s.to_string()))?;
        let t = AnomalyType { kind, variant };
        if variant != Variant::Plain && !t.is_cycle() {
            return Err(UnknownAnomaly(s.to_string()));
        }
        Ok(t)
    }
}

impl Serialize for AnomalyType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AnomalyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A transaction named in an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnRef {
    /// The name used in the explanation: `T1`, `T2`, ...
    pub name: String,
    pub process: Process,
    /// History index of the invocation.
    pub invoke_index: u64,
    /// History index of the completion, if any.
    pub complete_index: Option<u64>,
    pub outcome: OpType,
    /// The transaction as completed (with read results) or, without an `ok`, as invoked.
    pub value: Value,
}

/// One edge of a cycle, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// `T1 < T2 because ...`
    pub explanation: String,
}

/// One anomaly and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    #[serde(rename = "type")]
    pub kind: AnomalyType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    pub txns: Vec<TxnRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<CycleStep>,
    /// A plain-language account of the anomaly.
    pub explanation: String,
}

/// Formats a JSON value compactly for sentences: strings without quotes.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "T1 and T2 both" / "T1, T2 and T3 all": the first `n` transaction names as a subject.
pub(crate) fn name_list(n: usize) -> String {
    let names: Vec<String> = (1..=n).map(|i| format!("T{i}")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b} both"),
        [rest @ .., last] => format!("{} and {last} all", rest.join(", ")),
    }
}
