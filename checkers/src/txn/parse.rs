//! Turns a [`History`] of `txn` operations into arenas of transactions and micro-operations.
use crate::history::{History, OpType, PairingError, Process, Value};

use super::intern::{Atoms, Elements};

/// A transactional history that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("op {index}: {reason}")]
    Malformed { index: u64, reason: String },
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    Fail,
    /// Unknown outcome: `info`, or no completion in the history.
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MopKind {
    Read,
    Write,
    Append,
}

/// The argument or result of a micro-operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MopValue {
    /// A read whose result is not known (invocations, failed or indeterminate transactions).
    Unknown,
    /// `null`: an empty list or an unwritten register.
    Nil,
    /// One value: the argument of a write or append, or a register read.
    Atom(u32),
    /// A list read: `elems[start..start + len]`.
    List { start: u32, len: u32 },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Mop {
    pub kind: MopKind,
    pub key: u32,
    pub value: MopValue,
}

#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Position of the invocation in `History::ops`.
    pub invoke: u32,
    /// History index of the invocation, for error messages.
    pub index: u64,
    /// Position of the completion in `History::ops`.
    pub complete: Option<u32>,
    pub process: Process,
    pub status: Status,
    pub mops_start: u32,
    pub mops_end: u32,
}

/// All transactions of a history, in invocation order, with interned keys and values.
#[derive(Default)]
pub(crate) struct Txns {
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    /// Owning transaction of each micro-operation.
    pub mop_txn: Vec<u32>,
    /// Elements of list reads.
    pub elems: Vec<u32>,
    pub keys: Atoms,
    pub values: Elements,
}

/// Whether list reads are expected (list-append) or single values (rw-register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    ListAppend,
    RwRegister,
}

impl Txns {
    pub fn mops_of(&self, t: u32) -> std::ops::Range<usize> {
        let t = &self.txns[t as usize];
        t.mops_start as usize..t.mops_end as usize
    }

    pub fn list(&self, v: MopValue) -> &[u32] {
        match v {
            MopValue::List { start, len } => &self.elems[start as usize..(start + len) as usize],
            _ => &[],
        }
    }

    /// The history index of the completion (or the invocation when there is none).
    pub fn index_of(&self, h: &History, t: u32) -> u64 {
        let t = &self.txns[t as usize];
        h.ops[t.complete.unwrap_or(t.invoke) as usize].index
    }
}

pub(crate) fn parse(h: &History, shape: Shape) -> Result<Txns, InputError> {
    let pairs = h.pairs(false)?;
    let mut out = Txns {
        txns: Vec::with_capacity(pairs.len()),
        mops: Vec::with_capacity(pairs.len() * 4),
        mop_txn: Vec::with_capacity(pairs.len() * 4),
        ..Default::default()
    };
    for p in pairs {
        let inv = &h.ops[p.invoke];
        if inv.f != "txn" {
            continue;
        }
        let status = match p.outcome(h) {
            OpType::Ok => Status::Ok,
            OpType::Fail => Status::Fail,
            _ => Status::Info,
        };
        // Only an `ok` completion carries trustworthy read results.
        let src = match (status, p.complete) {
            (Status::Ok, Some(c)) => &h.ops[c],
            _ => inv,
        };
        let t = out.txns.len() as u32;
        let mops_start = out.mops.len() as u32;
        let Some(list) = src.value.as_array() else {
            return Err(malformed(
                src.index,
                "a txn value must be an array of micro-ops",
            ));
        };
        for m in list {
            let mop = parse_mop(&mut out, m, src.index, status == Status::Ok, shape)?;
            out.mops.push(mop);
            out.mop_txn.push(t);
        }
        out.txns.push(Txn {
            invoke: p.invoke as u32,
            index: inv.index,
            complete: p.complete.map(|c| c as u32),
            process: inv.process,
            status,
            mops_start,
            mops_end: out.mops.len() as u32,
        });
    }
    Ok(out)
}

/// The error for a value written (or appended) twice to one key: the checkers rely on every
/// write being unique to tell which transaction a read observed.
pub(crate) fn duplicate_write(txns: &Txns, first_mop: u32, second_mop: u32) -> InputError {
    let (a, b) = (
        &txns.txns[txns.mop_txn[first_mop as usize] as usize],
        &txns.txns[txns.mop_txn[second_mop as usize] as usize],
    );
    let m = txns.mops[second_mop as usize];
    let v = match m.value {
        MopValue::Atom(v) => txns.values.value(v).to_string(),
        _ => "?".into(),
    };
    malformed(
        b.index,
        format!(
            "value {v} is written to key {} again (first by op {}); the checker needs every write to a key to be unique",
            txns.keys.value(m.key),
            a.index
        ),
    )
}

fn malformed(index: u64, reason: impl Into<String>) -> InputError {
    InputError::Malformed {
        index,
        reason: reason.into(),
    }
}

fn parse_mop(
    out: &mut Txns,
    m: &Value,
    index: u64,
    reads_known: bool,
    shape: Shape,
) -> Result<Mop, InputError> {
    let bad = |why: &str| malformed(index, format!("micro-op {m}: {why}"));
    let Some([f, k, v]) = m.as_array().map(Vec::as_slice) else {
        return Err(bad("expected [f, key, value]"));
    };
    let kind = match f.as_str() {
        Some("r") => MopKind::Read,
        Some("w") if shape == Shape::RwRegister => MopKind::Write,
        Some("append") if shape == Shape::ListAppend => MopKind::Append,
        Some("w") => return Err(bad("a write in a list-append history")),
        Some("append") => return Err(bad("an append in a rw-register history")),
        _ => return Err(bad("f must be \"r\", \"w\" or \"append\"")),
    };
    let key = out.keys.intern(k);
    let value = match kind {
        MopKind::Write | MopKind::Append => {
            if v.is_null() {
                return Err(bad("writes and appends need a non-null value"));
            }
            MopValue::Atom(out.values.intern(v))
        }
        MopKind::Read if !reads_known => MopValue::Unknown,
        MopKind::Read if v.is_null() => MopValue::Nil,
        MopKind::Read => match shape {
            Shape::RwRegister => MopValue::Atom(out.values.intern(v)),
            Shape::ListAppend => {
                let Some(items) = v.as_array() else {
                    return Err(bad("a list-append read must return a list or null"));
                };
                let start = out.elems.len() as u32;
                for item in items {
                    let e = out.values.intern(item);
                    out.elems.push(e);
                }
                MopValue::List {
                    start,
                    len: items.len() as u32,
                }
            }
        },
    };
    Ok(Mop { kind, key, value })
}
