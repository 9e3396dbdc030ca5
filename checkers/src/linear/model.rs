//! Sequential specifications for the linearizability checker, compiled to a compact form:
//! every value a key ever holds is interned to a `u32`, so a model state is one number.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::history::Value;

/// The sequential object a history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// A register with `read` and `write`; initial value `nil`.
    Register,
    /// A register with `read`, `write` and `cas` (value `[from to]`); initial value `nil`.
    CasRegister,
    /// A map from keys to strings with `get`, `put` and `append`; every key starts as `""`.
    /// Ops carry their key in `Op::key`.
    Kv,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Register, Model::CasRegister, Model::Kv];

    pub fn as_str(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::Kv => "kv",
        }
    }

    /// The functions (`Op::f`) this model understands.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Model::Register => &["read", "write"],
            Model::CasRegister => &["read", "write", "cas"],
            Model::Kv => &["get", "put", "append"],
        }
    }

    /// Guesses the model from the functions used by client ops: `get`/`put`/`append` mean
    /// `kv`, anything else `cas-register` (which also checks plain read/write registers).
    pub fn infer(history: &crate::History) -> Model {
        let kv = history
            .ops
            .iter()
            .any(|op| op.is_client() && matches!(op.f.as_str(), "get" | "put" | "append"));
        if kv {
            Model::Kv
        } else {
            Model::CasRegister
        }
    }

    fn initial(self) -> Value {
        match self {
            Model::Register | Model::CasRegister => Value::Null,
            Model::Kv => Value::String(String::new()),
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown model {s:?} (expected register, cas-register or kv)"))
    }
}

/// Interned value id. Id 0 is always the model's initial value.
pub(crate) type Sym = u32;

/// One operation's effect, with values interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Succeeds when the state equals the value; no change.
    Read(Sym),
    /// Sets the state.
    Write(Sym),
    /// Sets the state to `to` when it equals `from`.
    Cas { from: Sym, to: Sym },
    /// Appends a string to the state.
    Append(Sym),
}

/// The values of one key: interning plus cached `append` transitions.
pub(crate) struct Machine {
    values: Vec<Value>,
    ids: HashMap<String, Sym>,
    appends: HashMap<(Sym, Sym), Sym>,
}

impl Machine {
    pub(crate) fn new(model: Model) -> Self {
        let mut m = Machine {
            values: Vec::new(),
            ids: HashMap::new(),
            appends: HashMap::new(),
        };
        m.intern(model.initial());
        m
    }

    pub(crate) fn intern(&mut self, v: Value) -> Sym {
        let text = v.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.values.len() as Sym;
        self.values.push(v);
        self.ids.insert(text, id);
        id
    }

    pub(crate) fn value(&self, s: Sym) -> &Value {
        &self.values[s as usize]
    }

    /// Applies a step to a state; `None` when the step is not allowed there.
    #[inline]
    pub(crate) fn step(&mut self, state: Sym, step: Step) -> Option<Sym> {
        match step {
            Step::Read(v) => (v == state).then_some(state),
            Step::Write(v) => Some(v),
            Step::Cas { from, to } => (from == state).then_some(to),
            Step::Append(a) => {
                if let Some(&next) = self.appends.get(&(state, a)) {
                    return Some(next);
                }
                let mut s = self.values[state as usize].as_str().unwrap_or("").to_string();
                s.push_str(self.values[a as usize].as_str().unwrap_or(""));
                let next = self.intern(Value::String(s));
                self.appends.insert((state, a), next);
                Some(next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_follow_the_sequential_specs() {
        let mut m = Machine::new(Model::CasRegister);
        let nil = 0;
        let one = m.intern(json!(1));
        let two = m.intern(json!(2));
        assert_eq!(m.step(nil, Step::Read(nil)), Some(nil));
        assert_eq!(m.step(nil, Step::Read(one)), None);
        assert_eq!(m.step(nil, Step::Write(one)), Some(one));
        assert_eq!(m.step(one, Step::Cas { from: one, to: two }), Some(two));
        assert_eq!(m.step(two, Step::Cas { from: one, to: two }), None);

        let mut kv = Machine::new(Model::Kv);
        let x = kv.intern(json!("x"));
        let y = kv.intern(json!("y"));
        let x_only = kv.step(0, Step::Append(x)).unwrap();
        let xy = kv.step(x_only, Step::Append(y)).unwrap();
        assert_eq!(kv.value(xy), &json!("xy"));
        assert_eq!(kv.step(xy, Step::Write(y)), Some(y));
    }

    #[test]
    fn models_parse_and_print() {
        for m in Model::ALL {
            assert_eq!(m.as_str().parse::<Model>().unwrap(), m);
        }
        assert!("queue".parse::<Model>().is_err());
    }
}
