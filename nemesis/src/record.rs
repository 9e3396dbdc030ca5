//! What the nemesis did, as the runner records it in the history.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The outcome of one fault action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// The action was carried out on every node it concerned.
    Installed,
    /// Nothing was changed: the fault is not possible here (the reason says why and where).
    Skipped(String),
    /// The state of some node is unknown (e.g. SSH failed mid-install): a harness failure.
    Indeterminate(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Installed => "installed",
            Outcome::Skipped(_) => "skipped",
            Outcome::Indeterminate(_) => "indeterminate",
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Installed => None,
            Outcome::Skipped(r) | Outcome::Indeterminate(r) => Some(r),
        }
    }
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Outcome::Indeterminate(_))
    }
}

/// One fault action: its history function name, what it did, and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    /// The history `f`: `start-partition`, `stop-partition`, `bump-clock`, `strobe-clock`,
    /// `reset-clock`, `kill`, `start`, `pause`, `resume`, `start-packet`, `stop-packet`, `heal`.
    pub f: String,
    /// Details (`grudge`, `nodes`, `offsets_ms`, `measured`, ...); `outcome` and `reason` are
    /// added by [`FaultRecord::value`].
    pub details: Map<String, Value>,
    pub outcome: Outcome,
}

impl FaultRecord {
    pub fn new(f: impl Into<String>, outcome: Outcome) -> Self {
        FaultRecord {
            f: f.into(),
            details: Map::new(),
            outcome,
        }
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// The history `value`: the details plus `"outcome"` and, unless installed, `"reason"`.
    pub fn value(&self) -> Value {
        let mut m = self.details.clone();
        m.insert("outcome".into(), Value::from(self.outcome.as_str()));
        if let Some(r) = self.outcome.reason() {
            m.insert("reason".into(), Value::from(r));
        }
        Value::Object(m)
    }

    /// The history entry: process `nemesis`, type `info`. `index` and `time` are the runner's.
    pub fn to_op(&self, index: u64, time_ns: i64) -> checkers::history::Op {
        checkers::history::Op {
            index,
            time: time_ns,
            process: checkers::history::Process::Nemesis,
            kind: checkers::history::OpType::Info,
            f: self.f.clone(),
            key: None,
            value: self.value(),
            error: None,
        }
    }
}

impl Serialize for FaultRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("f", &self.f)?;
        m.serialize_entry("value", &self.value())?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge::Grudge;
    use serde_json::json;

    #[test]
    fn partition_record_becomes_a_nemesis_info_op() {
        let g = Grudge::from_components(&[vec!["n1".into()], vec!["n2".into()]]);
        let rec = FaultRecord::new("start-partition", Outcome::Installed).with("grudge", &g);
        let op = rec.to_op(7, 1_000);
        let line = serde_json::to_value(&op).unwrap();
        assert_eq!(
            line,
            json!({"index": 7, "time": 1000, "process": "nemesis", "type": "info",
                   "f": "start-partition",
                   "value": {"grudge": {"n1": ["n2"], "n2": ["n1"]}, "outcome": "installed"}})
        );
        let back: checkers::history::Op = serde_json::from_value(line).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn skipped_and_indeterminate_carry_reasons() {
        let rec = FaultRecord::new(
            "start-packet",
            Outcome::Skipped("netem unavailable on n2".into()),
        );
        assert_eq!(
            rec.value(),
            json!({"outcome": "skipped", "reason": "netem unavailable on n2"})
        );
        assert_eq!(
            serde_json::to_value(&rec).unwrap(),
            json!({"f": "start-packet", "value": {"outcome": "skipped", "reason": "netem unavailable on n2"}})
        );
        let rec = FaultRecord::new("kill", Outcome::Indeterminate("n1: ssh broke".into()));
        assert!(rec.outcome.is_indeterminate());
        assert_eq!(rec.value()["reason"], json!("n1: ssh broke"));
    }
}
