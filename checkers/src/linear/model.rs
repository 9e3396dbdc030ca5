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

/// A fast non-cryptographic hasher (the Fx multiply-rotate scheme) for the interning maps;
/// their keys come from the history, so flooding resistance buys nothing here.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// How a value is stored: appended strings are kept as (head, tail) pairs, not copied, so that
/// the many intermediate strings of an append-heavy key cost a few words each.
enum Repr {
    Plain(Value),
    Concat { head: Sym, tail: Sym },
}

/// Per-value string facts, for hashing concatenations without building them.
#[derive(Clone, Copy)]
struct StrMeta {
    is_str: bool,
    len: u64,
    /// Polynomial hash of the bytes modulo 2^61 - 1.
    hash: u64,
    /// BASE^len modulo 2^61 - 1.
    pow: u64,
}

const MERSENNE: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1F35_A7BD_2C61_0B57 % MERSENNE;

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    let r = (p as u64 & MERSENNE) + (p >> 61) as u64;
    if r >= MERSENNE {
        r - MERSENNE
    } else {
        r
    }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= MERSENNE {
        r - MERSENNE
    } else {
        r
    }
}

/// The values of one key: interning plus cached `append` transitions. Every distinct value
/// has exactly one id (strings are compared byte for byte when their hashes agree), so a state
/// comparison is an integer comparison.
pub(crate) struct Machine {
    reprs: Vec<Repr>,
    meta: Vec<StrMeta>,
    /// String ids by hash; ids with the same hash are chained through `same_hash`.
    strings: FxMap<u64, Sym>,
    same_hash: Vec<Sym>,
    /// Other values by their JSON text.
    others: FxMap<String, Sym>,
    appends: FxMap<(Sym, Sym), Sym>,
    scratch: (Vec<u8>, Vec<u8>),
}

const NO_SYM: Sym = Sym::MAX;

impl Machine {
    pub(crate) fn new(model: Model) -> Self {
        let mut m = Machine {
            reprs: Vec::new(),
            meta: Vec::new(),
            strings: FxMap::default(),
            same_hash: Vec::new(),
            others: FxMap::default(),
            appends: FxMap::default(),
            scratch: (Vec::new(), Vec::new()),
        };
        m.intern(model.initial());
        m
    }

    fn push(&mut self, repr: Repr, meta: StrMeta) -> Sym {
        let id = self.reprs.len() as Sym;
        self.reprs.push(repr);
        self.meta.push(meta);
        self.same_hash.push(NO_SYM);
        if meta.is_str {
            if let Some(prev) = self.strings.insert(meta.hash, id) {
                self.same_hash[id as usize] = prev;
            }
        }
        id
    }

    /// The id of an existing string with this hash and length whose bytes `bytes` writes.
    /// The bytes are only built when a candidate exists (hash collisions are rare).
    fn find_string(
        &mut self,
        hash: u64,
        len: u64,
        bytes: impl Fn(&Machine, &mut Vec<u8>),
    ) -> Option<Sym> {
        let mut c = self.strings.get(&hash).copied().unwrap_or(NO_SYM);
        if c == NO_SYM {
            return None;
        }
        let (mut want, mut have) = std::mem::take(&mut self.scratch);
        want.clear();
        bytes(self, &mut want);
        let mut found = None;
        while c != NO_SYM {
            if self.meta[c as usize].len == len {
                have.clear();
                self.write_bytes(c, &mut have);
                if have == want {
                    found = Some(c);
                    break;
                }
            }
            c = self.same_hash[c as usize];
        }
        self.scratch = (want, have);
        found
    }

    fn write_bytes(&self, s: Sym, out: &mut Vec<u8>) {
        // Heads nest deeply (one level per append), tails rarely: loop on heads, recurse on
        // tails, writing the head chain's tails in reverse at the end.
        let mut tails = Vec::new();
        let mut s = s;
        loop {
            match &self.reprs[s as usize] {
                Repr::Plain(Value::String(text)) => {
                    out.extend_from_slice(text.as_bytes());
                    break;
                }
                Repr::Plain(_) => break,
                Repr::Concat { head, tail } => {
                    tails.push(*tail);
                    s = *head;
                }
            }
        }
        for &t in tails.iter().rev() {
            self.write_bytes(t, out);
        }
    }

    pub(crate) fn intern(&mut self, v: Value) -> Sym {
        match v {
            Value::String(text) => {
                let bytes = text.as_bytes();
                let (mut hash, mut pow) = (0u64, 1u64);
                for &b in bytes {
                    hash = addmod(mulmod(hash, BASE), u64::from(b) + 1);
                    pow = mulmod(pow, BASE);
                }
                let len = bytes.len() as u64;
                if let Some(id) = self.find_string(hash, len, |_, out| out.extend_from_slice(bytes))
                {
                    return id;
                }
                let meta = StrMeta {
                    is_str: true,
                    len,
                    hash,
                    pow,
                };
                self.push(Repr::Plain(Value::String(text)), meta)
            }
            other => {
                let text = other.to_string();
                if let Some(&id) = self.others.get(&text) {
                    return id;
                }
                let meta = StrMeta {
                    is_str: false,
                    len: 0,
                    hash: 0,
                    pow: 1,
                };
                let id = self.push(Repr::Plain(other), meta);
                self.others.insert(text, id);
                id
            }
        }
    }

    pub(crate) fn value(&self, s: Sym) -> Value {
        match &self.reprs[s as usize] {
            Repr::Plain(v) => v.clone(),
            Repr::Concat { .. } => {
                let mut buf = Vec::new();
                self.write_bytes(s, &mut buf);
                Value::String(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    }

    fn concat(&mut self, head: Sym, tail: Sym) -> Sym {
        let (h, t) = (self.meta[head as usize], self.meta[tail as usize]);
        // A non-string appended to or appended is read as "" (kv ops are checked to be strings).
        let (h, t) = (
            if h.is_str { h } else { self.meta[0] },
            if t.is_str { t } else { self.meta[0] },
        );
        let hash = addmod(mulmod(h.hash, t.pow), t.hash);
        let len = h.len + t.len;
        let found = self.find_string(hash, len, |m, out| {
            m.write_bytes(head, out);
            m.write_bytes(tail, out);
        });
        found.unwrap_or_else(|| {
            let meta = StrMeta {
                is_str: true,
                len,
                hash,
                pow: mulmod(h.pow, t.pow),
            };
            self.push(Repr::Concat { head, tail }, meta)
        })
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
                let next = self.concat(state, a);
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
        assert_eq!(kv.value(xy), json!("xy"));
        assert_eq!(
            kv.intern(json!("xy")),
            xy,
            "a read value and an appended state share one id"
        );
        let x_again = kv.intern(json!("x"));
        let xx = kv.step(x_again, Step::Append(x)).unwrap();
        let xxy = kv.step(xx, Step::Append(y)).unwrap();
        let y_after = kv.step(x, Step::Append(xy)).unwrap();
        assert_eq!(xxy, y_after, "x+x+y and x+xy are one value");
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
