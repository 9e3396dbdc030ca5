//! The client for Faultline's bundled servers (Raft, Multi-Paxos, 2PC): newline-delimited JSON over
//! TCP as described in `targets/PROTOCOL.md`.
use crate::gen::{bank_read_accounts, transfer_of};
use crate::{Completion, Invocation};
use checkers::history::{OpType, Value};
use serde_json::json;
use std::time::Duration;
use targets::protocol::{ClientOp, Key, MicroF, MicroOp, NodeStatus, Request, Response, Val};
use targets::twopc::owner_of;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The key that holds the `set` workload's elements (as a list).
pub const SET_KEY: Key = 0;

/// One logical client's connection to one node. It keeps a single request outstanding at a time,
/// like a Jepsen client process, and reconnects after any transport error.
pub struct BundledClient {
    node: String,
    addr: String,
    timeout: Duration,
    conn: Option<Conn>,
    next_id: u64,
}

struct Conn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

/// A failure to talk to the node, with whether the request may have reached it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{node}: cannot connect to {addr}: {cause}")]
    Connect {
        node: String,
        addr: String,
        cause: String,
    },
    #[error("{node}: no reply within {after:?}")]
    Timeout { node: String, after: Duration },
    #[error("{node}: connection lost after sending: {cause}")]
    Lost { node: String, cause: String },
    #[error("{node}: unreadable reply: {cause}")]
    BadReply { node: String, cause: String },
}

impl TransportError {
    /// True when the request certainly never reached the node.
    pub fn definitely_not_sent(&self) -> bool {
        matches!(self, TransportError::Connect { .. })
    }

    fn code(&self) -> &'static str {
        match self {
            TransportError::Connect { .. } => "connect-failed",
            TransportError::Timeout { .. } => "timeout",
            TransportError::Lost { .. } => "connection-lost",
            TransportError::BadReply { .. } => "bad-reply",
        }
    }
}

impl BundledClient {
    pub fn new(node: impl Into<String>, addr: impl Into<String>, timeout: Duration) -> Self {
        BundledClient {
            node: node.into(),
            addr: addr.into(),
            timeout,
            conn: None,
            next_id: 1,
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Performs one invocation and maps the outcome to a completion.
    pub async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let op = match to_client_op(inv) {
            Ok(op) => op,
            Err(why) => {
                return Completion {
                    kind: OpType::Fail,
                    value: inv.value.clone(),
                    error: Some(why),
                };
            }
        };
        match self.request(op).await {
            Ok(resp) => complete(inv, &resp),
            Err(e) => {
                let kind = if e.definitely_not_sent() || inv.is_read_only() {
                    OpType::Fail
                } else {
                    OpType::Info
                };
                Completion {
                    kind,
                    value: inv.value.clone(),
                    error: Some(format!("{}: {e}", e.code())),
                }
            }
        }
    }

    /// Asks the node for its status.
    pub async fn status(&mut self) -> Result<NodeStatus, TransportError> {
        let resp = self.request(ClientOp::Status).await?;
        resp.status.ok_or_else(|| TransportError::BadReply {
            node: self.node.clone(),
            cause: format!("status reply without status: {:?}", resp.error),
        })
    }

    async fn request(&mut self, op: ClientOp) -> Result<Response, TransportError> {
        let id = self.next_id;
        self.next_id += 1;
        let result = tokio::time::timeout(self.timeout, self.round_trip(Request { id, op })).await;
        let result = result.unwrap_or_else(|_| {
            Err(TransportError::Timeout {
                node: self.node.clone(),
                after: self.timeout,
            })
        });
        if result.is_err() {
            // A late reply must never be taken for the answer to a later request.
            self.conn = None;
        }
        result
    }

    async fn round_trip(&mut self, req: Request) -> Result<Response, TransportError> {
        if self.conn.is_none() {
            let stream =
                TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| TransportError::Connect {
                        node: self.node.clone(),
                        addr: self.addr.clone(),
                        cause: e.to_string(),
                    })?;
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            self.conn = Some(Conn {
                reader: BufReader::new(r),
                writer: w,
            });
        }
        let node = self.node.clone();
        let conn = self.conn.as_mut().expect("connected above");
        let mut line = serde_json::to_vec(&req).expect("requests always serialise");
        line.push(b'\n');
        let lost = |e: std::io::Error| TransportError::Lost {
            node: node.clone(),
            cause: e.to_string(),
        };
        conn.writer.write_all(&line).await.map_err(lost)?;
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = conn.reader.read_line(&mut buf).await.map_err(lost)?;
            if n == 0 {
                return Err(TransportError::Lost {
                    node,
                    cause: "connection closed by the node".into(),
                });
            }
            let resp: Response =
                serde_json::from_str(buf.trim_end()).map_err(|e| TransportError::BadReply {
                    node: node.clone(),
                    cause: format!("{e}: {}", buf.trim_end()),
                })?;
            if resp.id == req.id {
                return Ok(resp);
            }
        }
    }
}

/// `count` account keys for the bank workload that the 2PC server spreads over as many of
/// `members`' shards as it can (round robin over the shards, the smallest free key of each), so
/// that transfers and whole-table reads are distributed transactions. `members` are the node
/// names given to the servers as `--id`/`--peers`, in any order. Harmless for Raft and Paxos,
/// which do not shard.
pub fn spread_accounts(count: usize, members: &[String]) -> Vec<u64> {
    let mut sorted = members.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return (0..count as u64).collect();
    }
    let mut accounts: Vec<u64> = Vec::with_capacity(count);
    for i in 0..count {
        let shard = &sorted[i % sorted.len()];
        // The hash spreads keys evenly, so every shard owns a key within a few dozen.
        let key = (0u64..)
            .find(|k| !accounts.contains(k) && owner_of(&sorted, *k) == Some(shard))
            .expect("every shard owns infinitely many keys");
        accounts.push(key);
    }
    accounts.sort_unstable();
    accounts
}

/// Translates a history invocation into a wire operation.
///
/// Bank: `transfer {from, to, amount}` is the transaction `[add from -amount, add to amount]`,
/// refused as a whole (`insufficient-funds`) if `from` would go below zero; a key-less `read`
/// whose value lists accounts is one transaction reading all of them.
pub fn to_client_op(inv: &Invocation) -> Result<ClientOp, String> {
    let key = || -> Result<Key, String> {
        inv.key
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{} needs a non-negative integer key", inv.f))
    };
    let int = |v: &Value| {
        v.as_i64()
            .ok_or_else(|| format!("{} needs an integer value, got {v}", inv.f))
    };
    let add = |key: Key, delta: i64| MicroOp {
        f: MicroF::Add,
        key,
        value: Some(Val::Int(delta)),
    };
    if let Some(accounts) = bank_read_accounts(inv) {
        let txn = accounts
            .into_iter()
            .map(|key| MicroOp {
                f: MicroF::Read,
                key,
                value: None,
            })
            .collect();
        return Ok(ClientOp::Txn { txn });
    }
    match inv.f.as_str() {
        "transfer" => {
            let (from, to, amount) = transfer_of(inv)?;
            Ok(ClientOp::Txn {
                txn: vec![add(from, -amount), add(to, amount)],
            })
        }
        "read" if inv.key.is_none() => Ok(ClientOp::Txn {
            txn: vec![MicroOp {
                f: MicroF::Read,
                key: SET_KEY,
                value: None,
            }],
        }),
        "read" => Ok(ClientOp::Read { key: key()? }),
        "write" => Ok(ClientOp::Write {
            key: key()?,
            value: int(&inv.value)?,
        }),
        "cas" => {
            let pair = inv
                .value
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or("cas needs [from, to]")?;
            Ok(ClientOp::Cas {
                key: key()?,
                from: int(&pair[0])?,
                to: int(&pair[1])?,
            })
        }
        "add" => Ok(ClientOp::Txn {
            txn: vec![MicroOp {
                f: MicroF::Append,
                key: SET_KEY,
                value: Some(Val::Int(int(&inv.value)?)),
            }],
        }),
        "txn" => {
            let mops = inv
                .value
                .as_array()
                .ok_or("txn needs a list of micro-ops")?;
            let txn = mops
                .iter()
                .map(to_micro_op)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ClientOp::Txn { txn })
        }
        other => Err(format!("the bundled servers have no operation {other:?}")),
    }
}

fn to_micro_op(m: &Value) -> Result<MicroOp, String> {
    let parts = m
        .as_array()
        .filter(|a| a.len() == 3)
        .ok_or_else(|| format!("micro-op {m} is not [f, key, value]"))?;
    let key = parts[1]
        .as_u64()
        .ok_or_else(|| format!("micro-op {m}: key must be a non-negative integer"))?;
    let value = || {
        parts[2]
            .as_i64()
            .map(Val::Int)
            .ok_or_else(|| format!("micro-op {m}: value must be an integer"))
    };
    match parts[0].as_str() {
        Some("r") => Ok(MicroOp {
            f: MicroF::Read,
            key,
            value: None,
        }),
        Some("w") => Ok(MicroOp {
            f: MicroF::Write,
            key,
            value: Some(value()?),
        }),
        Some("append") => Ok(MicroOp {
            f: MicroF::Append,
            key,
            value: Some(value()?),
        }),
        Some("add") => Ok(MicroOp {
            f: MicroF::Add,
            key,
            value: Some(value()?),
        }),
        _ => Err(format!("micro-op {m}: unknown function")),
    }
}

fn val_to_value(v: Option<&Val>) -> Value {
    match v {
        None => Value::Null,
        Some(Val::Int(i)) => json!(i),
        Some(Val::List(l)) => json!(l),
    }
}

/// Maps a reply to the completion of `inv`.
pub fn complete(inv: &Invocation, resp: &Response) -> Completion {
    if !resp.ok {
        let (definite, code, msg) = match &resp.error {
            Some(e) => (
                e.definite,
                serde_json::to_value(e.code).ok(),
                e.message.clone(),
            ),
            None => (false, None, "error reply without an error".to_string()),
        };
        let code = code
            .and_then(|c| c.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let kind = if definite || inv.is_read_only() {
            OpType::Fail
        } else {
            OpType::Info
        };
        return Completion {
            kind,
            value: inv.value.clone(),
            error: Some(format!("{code}: {msg}")),
        };
    }
    let value = match inv.f.as_str() {
        "read" if bank_read_accounts(inv).is_some() => bank_balances(resp),
        "read" if inv.key.is_none() => {
            let list = resp
                .txn
                .as_ref()
                .and_then(|t| t.first())
                .and_then(|m| m.value.as_ref());
            match list {
                Some(Val::List(l)) => json!(l),
                _ => json!([]),
            }
        }
        "read" => val_to_value(resp.value.as_ref()),
        "txn" => match &resp.txn {
            Some(mops) => Value::Array(
                mops.iter()
                    .map(|m| {
                        let f = match m.f {
                            MicroF::Read => "r",
                            MicroF::Write => "w",
                            MicroF::Append => "append",
                            MicroF::Add => "add",
                        };
                        json!([f, m.key, val_to_value(m.value.as_ref())])
                    })
                    .collect(),
            ),
            None => inv.value.clone(),
        },
        _ => inv.value.clone(),
    };
    Completion {
        kind: OpType::Ok,
        value,
        error: None,
    }
}

/// A bank read's balances: account (as a string) -> balance. An account that was never written
/// reads as 0, as an `add` would count it; a non-integer value is kept as it is, for the checker
/// to report.
fn bank_balances(resp: &Response) -> Value {
    let mut balances = serde_json::Map::new();
    for m in resp.txn.iter().flatten() {
        let balance = match &m.value {
            None => json!(0),
            Some(v) => val_to_value(Some(v)),
        };
        balances.insert(m.key.to_string(), balance);
    }
    Value::Object(balances)
}
