//! The replicated key-value state machine that Raft and Multi-Paxos apply committed commands to.
//!
//! Deterministic: the same commands in the same order give the same state and the same results.
use crate::protocol::{ClientOp, ErrorCode, ErrorReply, Key, MicroF, MicroOp, Response, Val};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The result of applying one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// `read`: the value read.
    Value(Option<Val>),
    /// `txn`: the micro-ops with read results filled in.
    Txn(Vec<MicroOp>),
    /// `write`, `cas`.
    Done,
    /// A definite failure: `cas` mismatch, type mismatch or insufficient funds in a txn (the txn
    /// had no effect).
    Rejected(ErrorCode, String),
}

impl Applied {
    /// The wire response for request `id`.
    pub fn into_response(self, id: u64) -> Response {
        match self {
            Applied::Value(v) => Response::value(id, v),
            Applied::Txn(t) => Response::txn(id, t),
            Applied::Done => Response::ok(id),
            Applied::Rejected(code, message) => Response::error(
                id,
                ErrorReply {
                    code,
                    definite: true,
                    message,
                    leader: None,
                },
            ),
        }
    }
}

/// Key -> value map with register and list-append semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    map: BTreeMap<Key, Val>,
}

impl KvStore {
    pub fn get(&self, key: Key) -> Option<&Val> {
        self.map.get(&key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Applies a command. `Status` is not a command and applies as a no-op.
    pub fn apply(&mut self, op: &ClientOp) -> Applied {
        match op {
            ClientOp::Read { key } => Applied::Value(self.map.get(key).cloned()),
            ClientOp::Write { key, value } => {
                self.map.insert(*key, Val::Int(*value));
                Applied::Done
            }
            ClientOp::Cas { key, from, to } => match self.map.get(key) {
                Some(Val::Int(cur)) if cur == from => {
                    self.map.insert(*key, Val::Int(*to));
                    Applied::Done
                }
                other => Applied::Rejected(
                    ErrorCode::CasMismatch,
                    format!(
                        "cas on key {key}: expected {from}, found {}",
                        describe(other)
                    ),
                ),
            },
            ClientOp::Txn { txn } => self.apply_txn(txn),
            ClientOp::Status => Applied::Done,
        }
    }

    /// Applies a transaction atomically: on a type error, or when an `add` would leave a key
    /// below zero, nothing changes.
    fn apply_txn(&mut self, txn: &[MicroOp]) -> Applied {
        // Writes go to an overlay first so that a failing micro-op leaves the store untouched.
        let mut overlay: BTreeMap<Key, Val> = BTreeMap::new();
        let mut done = Vec::with_capacity(txn.len());
        let mut added = BTreeSet::new();
        for m in txn {
            let current = overlay.get(&m.key).or_else(|| self.map.get(&m.key));
            match m.f {
                MicroF::Read => done.push(MicroOp {
                    f: m.f,
                    key: m.key,
                    value: current.cloned(),
                }),
                MicroF::Write => {
                    let Some(Val::Int(v)) = m.value else {
                        return Applied::Rejected(
                            ErrorCode::TypeMismatch,
                            format!("w on key {} needs an integer", m.key),
                        );
                    };
                    overlay.insert(m.key, Val::Int(v));
                    done.push(m.clone());
                }
                MicroF::Append => {
                    let Some(Val::Int(v)) = m.value else {
                        return Applied::Rejected(
                            ErrorCode::TypeMismatch,
                            format!("append on key {} needs an integer", m.key),
                        );
                    };
                    let mut list = match current {
                        None => Vec::new(),
                        Some(Val::List(l)) => l.clone(),
                        Some(Val::Int(_)) => {
                            return Applied::Rejected(
                                ErrorCode::TypeMismatch,
                                format!("append on key {} which holds an integer", m.key),
                            )
                        }
                    };
                    list.push(v);
                    overlay.insert(m.key, Val::List(list));
                    done.push(m.clone());
                }
                MicroF::Add => {
                    let Some(Val::Int(delta)) = m.value else {
                        return Applied::Rejected(
                            ErrorCode::TypeMismatch,
                            format!("add on key {} needs an integer", m.key),
                        );
                    };
                    match add(m.key, current, delta) {
                        Ok(sum) => overlay.insert(m.key, Val::Int(sum)),
                        Err(why) => return Applied::Rejected(ErrorCode::TypeMismatch, why),
                    };
                    added.insert(m.key);
                    done.push(m.clone());
                }
            }
        }
        if let Some(why) = overdrawn(&added, |k| overlay.get(&k)) {
            return Applied::Rejected(ErrorCode::InsufficientFunds, why);
        }
        self.map.extend(overlay);
        Applied::Txn(done)
    }
}

/// `current + delta` for an `add` micro-op on `key` (a missing key counts as 0).
pub fn add(key: Key, current: Option<&Val>, delta: i64) -> Result<i64, String> {
    let base = match current {
        None => 0,
        Some(Val::Int(v)) => *v,
        Some(Val::List(_)) => return Err(format!("add on key {key} which holds a list")),
    };
    base.checked_add(delta)
        .ok_or_else(|| format!("add of {delta} to key {key} overflows {base}"))
}

/// Why a transaction that added to `added` must not commit: the first of those keys whose value
/// afterwards (`after`) is below zero. `None` when all stay >= 0.
pub fn overdrawn<'a>(
    added: &BTreeSet<Key>,
    after: impl Fn(Key) -> Option<&'a Val>,
) -> Option<String> {
    added.iter().find_map(|k| match after(*k) {
        Some(Val::Int(v)) if *v < 0 => Some(format!(
            "key {k} would be {v} after the transaction; adds must leave every key >= 0"
        )),
        _ => None,
    })
}

fn describe(v: Option<&Val>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(Val::Int(i)) => i.to_string(),
        Some(Val::List(l)) => format!("a list of {}", l.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(f: MicroF, key: Key, value: Option<Val>) -> MicroOp {
        MicroOp { f, key, value }
    }

    #[test]
    fn registers_and_cas() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply(&ClientOp::Read { key: 1 }), Applied::Value(None));
        assert_eq!(
            kv.apply(&ClientOp::Write { key: 1, value: 5 }),
            Applied::Done
        );
        assert_eq!(
            kv.apply(&ClientOp::Cas {
                key: 1,
                from: 5,
                to: 6
            }),
            Applied::Done
        );
        assert!(matches!(
            kv.apply(&ClientOp::Cas {
                key: 1,
                from: 5,
                to: 7
            }),
            Applied::Rejected(ErrorCode::CasMismatch, _)
        ));
        assert_eq!(
            kv.apply(&ClientOp::Read { key: 1 }),
            Applied::Value(Some(Val::Int(6)))
        );
    }

    #[test]
    fn txn_reads_its_own_appends_and_aborts_atomically() {
        let mut kv = KvStore::default();
        let t = vec![
            m(MicroF::Append, 2, Some(Val::Int(1))),
            m(MicroF::Append, 2, Some(Val::Int(2))),
            m(MicroF::Read, 2, None),
        ];
        let Applied::Txn(done) = kv.apply(&ClientOp::Txn { txn: t }) else {
            panic!("txn failed")
        };
        assert_eq!(done[2].value, Some(Val::List(vec![1, 2])));
        kv.apply(&ClientOp::Write { key: 3, value: 9 });
        let bad = vec![
            m(MicroF::Append, 2, Some(Val::Int(3))),
            m(MicroF::Append, 3, Some(Val::Int(4))),
        ];
        assert!(matches!(
            kv.apply(&ClientOp::Txn { txn: bad }),
            Applied::Rejected(ErrorCode::TypeMismatch, _)
        ));
        assert_eq!(
            kv.get(2),
            Some(&Val::List(vec![1, 2])),
            "aborted txn must not change key 2"
        );
    }

    fn add(key: Key, delta: i64) -> MicroOp {
        m(MicroF::Add, key, Some(Val::Int(delta)))
    }

    fn txn(kv: &mut KvStore, t: Vec<MicroOp>) -> Applied {
        kv.apply(&ClientOp::Txn { txn: t })
    }

    #[test]
    fn adds_start_from_zero_and_reads_see_them() {
        let mut kv = KvStore::default();
        kv.apply(&ClientOp::Write { key: 1, value: 10 });
        let Applied::Txn(done) = txn(
            &mut kv,
            vec![
                add(1, -4),
                add(2, 4),
                m(MicroF::Read, 1, None),
                m(MicroF::Read, 2, None),
            ],
        ) else {
            panic!("transfer refused")
        };
        assert_eq!(done[0], add(1, -4), "an add is echoed as sent");
        assert_eq!(done[2].value, Some(Val::Int(6)));
        assert_eq!(
            done[3].value,
            Some(Val::Int(4)),
            "a missing key counts as 0"
        );
        assert_eq!(
            kv.apply(&ClientOp::Read { key: 2 }),
            Applied::Value(Some(Val::Int(4)))
        );
    }

    #[test]
    fn an_add_below_zero_rejects_the_whole_txn() {
        let mut kv = KvStore::default();
        kv.apply(&ClientOp::Write { key: 1, value: 3 });
        kv.apply(&ClientOp::Write { key: 2, value: 0 });
        let Applied::Rejected(code, why) = txn(&mut kv, vec![add(2, 5), add(1, -5)]) else {
            panic!("an overdraft committed")
        };
        assert_eq!(code, ErrorCode::InsufficientFunds);
        assert!(why.contains("key 1 would be -2"), "{why}");
        assert_eq!(kv.get(1), Some(&Val::Int(3)));
        assert_eq!(
            kv.get(2),
            Some(&Val::Int(0)),
            "the credit was not applied either"
        );
        // Only the state after the whole txn counts, and only keys that were added to.
        kv.apply(&ClientOp::Write { key: 3, value: -1 });
        assert!(matches!(
            txn(
                &mut kv,
                vec![add(1, -5), add(1, 2), m(MicroF::Read, 3, None)]
            ),
            Applied::Txn(_)
        ));
        assert_eq!(kv.get(1), Some(&Val::Int(0)));
    }

    #[test]
    fn add_to_a_list_or_without_an_integer_is_a_type_mismatch() {
        let mut kv = KvStore::default();
        txn(&mut kv, vec![m(MicroF::Append, 1, Some(Val::Int(1)))]);
        assert!(matches!(
            txn(&mut kv, vec![add(2, 1), add(1, 1)]),
            Applied::Rejected(ErrorCode::TypeMismatch, _)
        ));
        assert_eq!(kv.get(2), None);
        assert!(matches!(
            txn(&mut kv, vec![m(MicroF::Add, 2, None)]),
            Applied::Rejected(ErrorCode::TypeMismatch, _)
        ));
        kv.apply(&ClientOp::Write {
            key: 3,
            value: i64::MAX,
        });
        assert!(matches!(
            txn(&mut kv, vec![add(3, 1)]),
            Applied::Rejected(ErrorCode::TypeMismatch, _)
        ));
    }

    #[test]
    fn wire_format_of_micro_ops() {
        let req: crate::protocol::Request =
            serde_json::from_str(r#"{"id":7,"op":"txn","txn":[["r",3,null],["append",3,4]]}"#)
                .unwrap();
        assert_eq!(req.id, 7);
        let ClientOp::Txn { txn } = req.op else {
            panic!("not a txn")
        };
        assert_eq!(txn[1], m(MicroF::Append, 3, Some(Val::Int(4))));
        let resp =
            Applied::Txn(vec![m(MicroF::Read, 3, Some(Val::List(vec![1])))]).into_response(7);
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"id":7,"ok":true,"txn":[["r",3,[1]]]}"#
        );
        let add: MicroOp = serde_json::from_str(r#"["add",3,-5]"#).unwrap();
        assert_eq!(add, m(MicroF::Add, 3, Some(Val::Int(-5))));
        let refused = Applied::Rejected(ErrorCode::InsufficientFunds, "no".into()).into_response(8);
        assert!(serde_json::to_string(&refused)
            .unwrap()
            .contains(r#""code":"insufficient-funds","definite":true"#));
    }
}
