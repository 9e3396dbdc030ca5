//! The replicated key-value state machine that Raft and Multi-Paxos apply committed commands to.
//!
//! Deterministic: the same commands in the same order give the same state and the same results.
use crate::protocol::{ClientOp, ErrorCode, ErrorReply, Key, MicroF, MicroOp, Response, Val};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The result of applying one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// `read`: the value read.
    Value(Option<Val>),
    /// `txn`: the micro-ops with read results filled in.
    Txn(Vec<MicroOp>),
    /// `write`, `cas`.
    Done,
    /// A definite failure: `cas` mismatch, type mismatch in a txn (the txn had no effect).
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

    /// Applies a transaction atomically: on a type error nothing changes.
    fn apply_txn(&mut self, txn: &[MicroOp]) -> Applied {
        // Writes go to an overlay first so that a failing micro-op leaves the store untouched.
        let mut overlay: BTreeMap<Key, Val> = BTreeMap::new();
        let mut done = Vec::with_capacity(txn.len());
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
            }
        }
        self.map.extend(overlay);
        Applied::Txn(done)
    }
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
    }
}
