//! The client for etcd (v3.4+) over its v3 JSON gateway (`POST /v3/kv/range|put|txn`, keys and
//! values base64, 64-bit integers as JSON strings), one keep-alive HTTP/1.1 connection per client.
//!
//! Every history key `k` lives under `<prefix><k>` (default prefix `fl/`); values are stored as
//! JSON text (`5`, `[1,2,3]`), so reads parse them back and `cas` compares exact bytes.
//!
//! * register `read` -> range (`serializable: true` under [`ReadMode::Serializable`]);
//!   `write` -> put; `cas [from,to]` -> txn `value(k) == from` then put `to`
//!   (compare false -> definite `fail` "cas-mismatch").
//! * `txn` (list-append and rw-register) -> one atomic txn of ranges over all touched keys, then,
//!   if it writes, a txn that compares every touched key's `mod_revision` with the one seen and
//!   puts the new values. A failed compare means nothing was applied: the failure branch returns
//!   fresh ranges and the client tries again, up to [`TXN_ATTEMPTS`] times, then fails definitely
//!   ("txn-conflict"). Reads and appends see earlier micro-ops of the same txn.
//! * set `add v` -> append `v` to the list at [`SET_KEY`]; key-less `read` -> that list (`[]` if absent).
//! * bank `transfer {from, to, amount}` -> the `txn` path with two adds: range both accounts, then
//!   a txn comparing both `mod_revision`s and putting both new balances (a changed account means a
//!   fresh snapshot and another attempt, as above). If `from` would go below zero, nothing is
//!   written: definite `fail` "insufficient-funds". A bank `read` (key-less, its value the list of
//!   accounts) -> one txn of ranges over every account, served as the read mode says; an account
//!   never written reads as 0. Micro-op `["add", k, d]` in any `txn` works the same way.
//!
//! How outcomes map to completions (read-only invocations turn every `info` into `fail`: they
//! cannot have changed anything):
//!
//! | what happened                                                        | completion |
//! |----------------------------------------------------------------------|------------|
//! | HTTP 200                                                             | `ok` (or `fail` cas-mismatch / txn-conflict) |
//! | TCP connect refused / unreachable (nothing sent)                     | `fail` connect-failed |
//! | error while reading a txn's snapshot (no write sent yet)             | `fail` |
//! | no reply before the invocation's deadline                            | `info` timeout |
//! | connection dropped after the request was sent                        | `info` connection-lost |
//! | reply not understood (not HTTP, not JSON, unknown shape)             | `info` bad-reply |
//! | gRPC code 3 InvalidArgument (request too large, duplicate key, too many ops, empty key) | `fail` |
//! | gRPC code 5 NotFound, 6 AlreadyExists, 7 PermissionDenied, 12 Unimplemented, 16 Unauthenticated | `fail` |
//! | gRPC code 9 FailedPrecondition, 11 OutOfRange (compacted revision)   | `fail` |
//! | gRPC code 8 ResourceExhausted ("too many requests" before proposing; "database space exceeded" from the applier, which applies nothing) | `fail` |
//! | gRPC code 14 Unavailable: "request timed out", "…due to previous leader failure", "…connection lost", "leader changed", "no leader", "stopped" | `info` |
//! | gRPC code 1 Canceled, 2 Unknown, 4 DeadlineExceeded, 10 Aborted, 13 Internal, 15 DataLoss, anything else | `info` |
//! | non-200 HTTP reply without a gRPC error body (e.g. a 404 from a proxy) | `info` unless 4xx |
//!
//! "no leader" stays `info`: etcd 3.4 returns it both before proposing (require-leader
//! interceptor) and after a proposal was dropped or lost, and the text does not say which.
use crate::gen::{bank_read_accounts, transfer_of};
use crate::{Completion, Invocation};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use checkers::history::{OpType, Value};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The prefix every history key is stored under unless [`EtcdClient::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "fl/";
/// The key (under the prefix) that holds the `set` workload's elements as a list.
pub const SET_KEY: &str = "set";
/// How many times a read-modify-write txn is tried when another client changed its keys meanwhile.
pub const TXN_ATTEMPTS: usize = 5;

/// How register reads and read-only txns are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Through the Raft read index (etcd's default): linearizable.
    #[default]
    Linearizable,
    /// From the member's local state: may be stale, and the checkers should find it.
    Serializable,
}

impl std::str::FromStr for ReadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linearizable" => Ok(ReadMode::Linearizable),
            "serializable" => Ok(ReadMode::Serializable),
            other => Err(format!(
                "unknown etcd read mode {other:?} (expected linearizable or serializable)"
            )),
        }
    }
}

/// Why a request to etcd did not produce a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{node}: bad etcd address {addr:?}: {why}")]
    BadAddress {
        node: String,
        addr: String,
        why: String,
    },
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
    #[error("{node}: unreadable reply (HTTP {status}): {cause}")]
    BadReply {
        node: String,
        status: u16,
        cause: String,
    },
    /// An error body from the gateway: `{"error": .., "code": <gRPC code>, "message": ..}`.
    #[error("{node}: etcd says (HTTP {status}, gRPC code {code}): {message}")]
    Server {
        node: String,
        status: u16,
        code: i64,
        message: String,
    },
}

impl EtcdError {
    /// True when the request certainly had no effect (see the table in the module doc).
    pub fn definitely_not_applied(&self) -> bool {
        match self {
            EtcdError::BadAddress { .. } | EtcdError::Connect { .. } => true,
            EtcdError::Timeout { .. } | EtcdError::Lost { .. } => false,
            EtcdError::BadReply { status, .. } => (400..500).contains(status),
            EtcdError::Server { code, message, .. } => server_error_is_definite(*code, message),
        }
    }

    /// The short error code recorded in the history.
    pub fn code(&self) -> &'static str {
        match self {
            EtcdError::BadAddress { .. } => "bad-address",
            EtcdError::Connect { .. } => "connect-failed",
            EtcdError::Timeout { .. } => "timeout",
            EtcdError::Lost { .. } => "connection-lost",
            EtcdError::BadReply { .. } => "bad-reply",
            EtcdError::Server { .. } => "etcd-error",
        }
    }
}

/// Whether an etcd error reply (gRPC `code`, error text) proves the request was not applied.
pub fn server_error_is_definite(code: i64, message: &str) -> bool {
    match code {
        // InvalidArgument, NotFound, AlreadyExists, PermissionDenied, FailedPrecondition,
        // OutOfRange, Unimplemented, Unauthenticated: rejected before any proposal.
        3 | 5 | 6 | 7 | 9 | 11 | 12 | 16 => true,
        // ResourceExhausted: "too many requests" is refused before proposing; "database space
        // exceeded" is the NOSPACE alarm, under which the applier changes nothing.
        8 => message.contains("too many requests") || message.contains("database space exceeded"),
        _ => false,
    }
}

/// What a member says of itself (see [`EtcdClient::member_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// It believes it is the leader (a deposed leader may not know yet).
    pub leads: bool,
    pub raft_term: u64,
}

/// One logical client's connection to one etcd member. One request outstanding at a time; the
/// connection is dropped after any transport error and made again on the next request.
pub struct EtcdClient {
    node: String,
    /// `host:port`, or why the address given could not be used.
    addr: Result<String, String>,
    given_addr: String,
    timeout: Duration,
    read_mode: ReadMode,
    prefix: String,
    conn: Option<Conn>,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A txn's view of its keys: stored value (parsed JSON, `None` if absent) and `mod_revision`
/// (0 if absent, which etcd's compare treats the same way).
type Snapshot = BTreeMap<String, (Option<Value>, i64)>;

/// A micro-op of a `txn` invocation.
#[derive(Debug)]
struct MicroOp {
    f: MicroF,
    key: String,
    value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MicroF {
    Read,
    Write,
    Append,
    /// Adds an integer to the key's integer (absent: 0); refused if the key would go below 0.
    Add,
}

impl EtcdClient {
    /// `addr` is `host:port` or `http://host:port[/]` (the gateway has no TLS here). Each
    /// invocation, including its retries, gets `timeout` in total.
    pub fn new(
        node: impl Into<String>,
        addr: impl Into<String>,
        timeout: Duration,
        read_mode: ReadMode,
    ) -> Self {
        let given_addr = addr.into();
        EtcdClient {
            node: node.into(),
            addr: parse_addr(&given_addr),
            given_addr,
            timeout,
            read_mode,
            prefix: DEFAULT_PREFIX.to_string(),
            conn: None,
        }
    }

    /// Stores keys under `prefix` instead of [`DEFAULT_PREFIX`] (e.g. one prefix per test run).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Performs one invocation and maps the outcome to a completion.
    pub async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let deadline = Instant::now() + self.timeout;
        if let Some(accounts) = bank_read_accounts(inv) {
            let mops = accounts
                .iter()
                .map(|a| MicroOp {
                    f: MicroF::Read,
                    key: a.to_string(),
                    value: Value::Null,
                })
                .collect();
            let mut done = self.txn(inv, mops, deadline).await;
            if done.kind == OpType::Ok {
                done.value = bank_balances(&done.value);
            }
            return done;
        }
        match inv.f.as_str() {
            "transfer" => match transfer_of(inv) {
                Ok((from, to, amount)) => {
                    let add = |key: u64, d: i64| MicroOp {
                        f: MicroF::Add,
                        key: key.to_string(),
                        value: json!(d),
                    };
                    let mops = vec![add(from, -amount), add(to, amount)];
                    let mut done = self.txn(inv, mops, deadline).await;
                    done.value = inv.value.clone();
                    done
                }
                Err(why) => bad_invocation(inv, why),
            },
            "read" if inv.key.is_none() => {
                let mops = vec![MicroOp {
                    f: MicroF::Read,
                    key: SET_KEY.into(),
                    value: Value::Null,
                }];
                let mut done = self.txn(inv, mops, deadline).await;
                if done.kind == OpType::Ok {
                    done.value = match done.value.pointer("/0/2") {
                        Some(Value::Null) | None => json!([]),
                        Some(list) => list.clone(),
                    };
                }
                done
            }
            "read" => match key_text(inv.key.as_ref()) {
                Ok(k) => self.read(inv, &k, deadline).await,
                Err(why) => bad_invocation(inv, why),
            },
            "write" => match (key_text(inv.key.as_ref()), int(&inv.value)) {
                (Ok(k), Ok(v)) => self.write(inv, &k, v, deadline).await,
                (Err(why), _) | (_, Err(why)) => bad_invocation(inv, why),
            },
            "cas" => match (key_text(inv.key.as_ref()), cas_pair(&inv.value)) {
                (Ok(k), Ok((from, to))) => self.cas(inv, &k, from, to, deadline).await,
                (Err(why), _) | (_, Err(why)) => bad_invocation(inv, why),
            },
            "add" => match int(&inv.value) {
                Ok(v) => {
                    let mops = vec![MicroOp {
                        f: MicroF::Append,
                        key: SET_KEY.into(),
                        value: json!(v),
                    }];
                    let mut done = self.txn(inv, mops, deadline).await;
                    done.value = inv.value.clone();
                    done
                }
                Err(why) => bad_invocation(inv, why),
            },
            "txn" => match micro_ops(&inv.value) {
                Ok(mops) => self.txn(inv, mops, deadline).await,
                Err(why) => bad_invocation(inv, why),
            },
            other => bad_invocation(inv, format!("etcd has no operation {other:?}")),
        }
    }

    async fn read(&mut self, inv: &Invocation, key: &str, deadline: Instant) -> Completion {
        let body = json!({
            "key": self.b64_key(key),
            "serializable": self.read_mode == ReadMode::Serializable,
        });
        let resp = match self.post("/v3/kv/range", body, deadline).await {
            Ok(r) => r,
            Err(e) => return failed(inv, &e),
        };
        match parse_range(&resp) {
            Ok((value, _)) => ok(value.unwrap_or(Value::Null)),
            Err(why) => failed(inv, &self.bad_reply(why)),
        }
    }

    async fn write(
        &mut self,
        inv: &Invocation,
        key: &str,
        v: i64,
        deadline: Instant,
    ) -> Completion {
        let body = json!({ "key": self.b64_key(key), "value": b64_value(&json!(v)) });
        match self.post("/v3/kv/put", body, deadline).await {
            Ok(_) => ok(inv.value.clone()),
            Err(e) => failed(inv, &e),
        }
    }

    async fn cas(
        &mut self,
        inv: &Invocation,
        key: &str,
        from: i64,
        to: i64,
        deadline: Instant,
    ) -> Completion {
        let k = self.b64_key(key);
        let body = json!({
            "compare": [{
                "key": k,
                "target": "VALUE",
                "result": "EQUAL",
                "value": b64_value(&json!(from)),
            }],
            "success": [{ "request_put": { "key": k, "value": b64_value(&json!(to)) } }],
        });
        match self.post("/v3/kv/txn", body, deadline).await {
            // proto3 JSON leaves `succeeded: false` out.
            Ok(resp) if resp["succeeded"] == json!(true) => ok(inv.value.clone()),
            Ok(_) => Completion {
                kind: OpType::Fail,
                value: inv.value.clone(),
                error: Some(format!("cas-mismatch: value of {key} is not {from}")),
            },
            Err(e) => failed(inv, &e),
        }
    }

    async fn txn(&mut self, inv: &Invocation, mops: Vec<MicroOp>, deadline: Instant) -> Completion {
        let mut keys: Vec<String> = mops.iter().map(|m| m.key.clone()).collect();
        keys.sort();
        keys.dedup();
        let read_only = mops.iter().all(|m| m.f == MicroF::Read);
        let serializable = read_only && self.read_mode == ReadMode::Serializable;
        let ranges: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "request_range": { "key": self.b64_key(k), "serializable": serializable } }))
            .collect();
        // Nothing is written while taking the snapshot, so any error here is a definite fail.
        let snapshot = self
            .post("/v3/kv/txn", json!({ "success": ranges }), deadline)
            .await
            .and_then(|resp| {
                parse_ranges(&resp["responses"], &keys).map_err(|why| self.bad_reply(why))
            });
        let mut snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                return Completion {
                    kind: OpType::Fail,
                    value: inv.value.clone(),
                    error: Some(format!("{}: {e} (before writing)", e.code())),
                }
            }
        };
        for _ in 0..TXN_ATTEMPTS {
            let (results, writes) = match apply(&mops, &snapshot) {
                Ok(r) => r,
                Err(why) => return bad_invocation(inv, why),
            };
            if let Some(why) = overdrawn(&mops, &writes) {
                // Decided on a snapshot read through the Raft log; nothing was written.
                return Completion {
                    kind: OpType::Fail,
                    value: inv.value.clone(),
                    error: Some(format!("insufficient-funds: {why}")),
                };
            }
            if writes.is_empty() {
                return ok(Value::Array(results));
            }
            let compare: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({
                        "key": self.b64_key(k),
                        "target": "MOD",
                        "result": "EQUAL",
                        "mod_revision": snapshot[k].1.to_string(),
                    })
                })
                .collect();
            let puts: Vec<Value> = writes
                .iter()
                .map(|(k, v)| json!({ "request_put": { "key": self.b64_key(k), "value": b64_value(v) } }))
                .collect();
            let body = json!({ "compare": compare, "success": puts, "failure": ranges });
            match self.post("/v3/kv/txn", body, deadline).await {
                Ok(resp) if resp["succeeded"] == json!(true) => return ok(Value::Array(results)),
                Ok(resp) => match parse_ranges(&resp["responses"], &keys) {
                    Ok(fresh) => snapshot = fresh,
                    Err(why) => return failed(inv, &self.bad_reply(why)),
                },
                Err(e) => return failed(inv, &e),
            }
        }
        Completion {
            kind: OpType::Fail,
            value: inv.value.clone(),
            error: Some(format!(
                "txn-conflict: keys changed under {TXN_ATTEMPTS} attempts in a row; nothing applied"
            )),
        }
    }

    fn b64_key(&self, key: &str) -> String {
        B64.encode(format!("{}{key}", self.prefix))
    }

    fn bad_reply(&self, cause: String) -> EtcdError {
        EtcdError::BadReply {
            node: self.node.clone(),
            status: 200,
            cause,
        }
    }

    /// The member's own view of the cluster (`POST /v3/maintenance/status`): whether it
    /// believes it leads, and its Raft term.
    pub async fn member_status(&mut self) -> Result<MemberStatus, EtcdError> {
        let deadline = Instant::now() + self.timeout;
        let v = self
            .post("/v3/maintenance/status", json!({}), deadline)
            .await?;
        // The gateway writes uint64 fields as JSON strings.
        let field = |v: &Value| match v {
            Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        };
        let member = field(&v["header"]["member_id"]);
        let leader = field(&v["leader"]);
        match member {
            Some(m) => Ok(MemberStatus {
                leads: leader == Some(m),
                raft_term: field(&v["raftTerm"]).unwrap_or(0),
            }),
            None => Err(self.bad_reply(format!("status without header.member_id: {v}"))),
        }
    }

    /// POSTs `body` to the gateway and returns the JSON reply of an HTTP 200.
    async fn post(
        &mut self,
        path: &str,
        body: Value,
        deadline: Instant,
    ) -> Result<Value, EtcdError> {
        let result = tokio::time::timeout_at(deadline, self.round_trip(path, body)).await;
        let result = result.unwrap_or_else(|_| {
            Err(EtcdError::Timeout {
                node: self.node.clone(),
                after: self.timeout,
            })
        });
        if matches!(
            result,
            Err(EtcdError::Timeout { .. } | EtcdError::Lost { .. } | EtcdError::BadReply { .. })
        ) {
            // A late reply must never be taken for the answer to a later request.
            self.conn = None;
        }
        result
    }

    async fn round_trip(&mut self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let addr = self.addr.clone().map_err(|why| EtcdError::BadAddress {
            node: self.node.clone(),
            addr: self.given_addr.clone(),
            why,
        })?;
        // A kept-alive connection the member has closed is noticed here, before anything is sent.
        if let Some(c) = &mut self.conn {
            if c.sender.ready().await.is_err() {
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect(&addr).await?);
        }
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, &addr)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a static path and valid headers always build");
        let lost = |cause: String| EtcdError::Lost {
            node: self.node.clone(),
            cause,
        };
        let sender = &mut self.conn.as_mut().expect("connected above").sender;
        let response = match sender.try_send_request(request).await {
            Ok(r) => r,
            Err(mut e) => match e.take_message() {
                // hyper hands the request back when none of it was written (the connection
                // closed while idle): send it on a fresh connection.
                Some(request) => {
                    self.conn = None;
                    let conn = self.connect(&addr).await?;
                    let conn = self.conn.insert(conn);
                    conn.sender
                        .send_request(request)
                        .await
                        .map_err(|e| lost(e.to_string()))?
                }
                None => return Err(lost(e.into_error().to_string())),
            },
        };
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| lost(e.to_string()))?
            .to_bytes();
        let reply: Result<Value, _> = serde_json::from_slice(&bytes);
        match (status, reply) {
            (200, Ok(v)) => Ok(v),
            (_, Ok(v)) if v.get("code").and_then(Value::as_i64).is_some() => {
                Err(EtcdError::Server {
                    node: self.node.clone(),
                    status,
                    code: v["code"].as_i64().unwrap_or(2),
                    message: v
                        .get("error")
                        .or_else(|| v.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_string(),
                })
            }
            (_, Ok(_)) | (_, Err(_)) => Err(EtcdError::BadReply {
                node: self.node.clone(),
                status,
                cause: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    async fn connect(&self, addr: &str) -> Result<Conn, EtcdError> {
        let connect_err = |cause: String| EtcdError::Connect {
            node: self.node.clone(),
            addr: addr.to_string(),
            cause,
        };
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        // The handshake only sets up hyper's state; it sends no bytes.
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, driver })
    }
}

fn parse_addr(given: &str) -> Result<String, String> {
    let rest = match given.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => return Err(format!("scheme {scheme:?} unsupported (only http)")),
        None => given,
    };
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') {
        return Err("expected host:port or http://host:port".into());
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(hostport.to_string())
        }
        _ => Err("expected host:port with a numeric port".into()),
    }
}

fn ok(value: Value) -> Completion {
    Completion {
        kind: OpType::Ok,
        value,
        error: None,
    }
}

/// The completion for a request that did not get a usable answer.
fn failed(inv: &Invocation, e: &EtcdError) -> Completion {
    let kind = if e.definitely_not_applied() || inv.is_read_only() {
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

fn bad_invocation(inv: &Invocation, why: String) -> Completion {
    Completion {
        kind: OpType::Fail,
        value: inv.value.clone(),
        error: Some(format!("bad-invocation: {why}")),
    }
}

fn key_text(key: Option<&Value>) -> Result<String, String> {
    match key {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        other => Err(format!(
            "key must be a number or a non-empty string, got {other:?}"
        )),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("value must be an integer, got {v}"))
}

fn cas_pair(v: &Value) -> Result<(i64, i64), String> {
    match v.as_array().map(Vec::as_slice) {
        Some([from, to]) => Ok((int(from)?, int(to)?)),
        _ => Err(format!("cas needs [from, to], got {v}")),
    }
}

fn micro_ops(v: &Value) -> Result<Vec<MicroOp>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("txn needs a list of micro-ops, got {v}"))?;
    list.iter()
        .map(|m| {
            let parts = m
                .as_array()
                .filter(|p| p.len() == 3)
                .ok_or_else(|| format!("micro-op {m} is not [f, key, value]"))?;
            let f = match parts[0].as_str() {
                Some("r") => MicroF::Read,
                Some("w") => MicroF::Write,
                Some("append") => MicroF::Append,
                Some("add") => MicroF::Add,
                _ => return Err(format!("micro-op {m}: unknown function")),
            };
            if f != MicroF::Read {
                int(&parts[2]).map_err(|why| format!("micro-op {m}: {why}"))?;
            }
            Ok(MicroOp {
                f,
                key: key_text(Some(&parts[1])).map_err(|why| format!("micro-op {m}: {why}"))?,
                value: parts[2].clone(),
            })
        })
        .collect()
}

/// Runs the micro-ops against the snapshot: the completed micro-ops, and the new value of every
/// key written.
#[allow(clippy::type_complexity)]
fn apply(
    mops: &[MicroOp],
    snapshot: &Snapshot,
) -> Result<(Vec<Value>, BTreeMap<String, Value>), String> {
    let mut state: BTreeMap<&str, Option<Value>> = snapshot
        .iter()
        .map(|(k, (v, _))| (k.as_str(), v.clone()))
        .collect();
    let mut writes = BTreeMap::new();
    let mut results = Vec::with_capacity(mops.len());
    for m in mops {
        let current = state.get(m.key.as_str()).cloned().flatten();
        let f = match m.f {
            MicroF::Read => {
                results.push(json!([
                    "r",
                    key_json(&m.key),
                    current.unwrap_or(Value::Null)
                ]));
                continue;
            }
            MicroF::Write => {
                state.insert(&m.key, Some(m.value.clone()));
                "w"
            }
            MicroF::Append => {
                let mut list = match current {
                    None => Vec::new(),
                    Some(Value::Array(l)) => l,
                    Some(other) => {
                        return Err(format!("cannot append to {} holding {other}", m.key))
                    }
                };
                list.push(m.value.clone());
                state.insert(&m.key, Some(Value::Array(list)));
                "append"
            }
            MicroF::Add => {
                let base = match &current {
                    None => 0,
                    Some(v) => v
                        .as_i64()
                        .ok_or_else(|| format!("cannot add to {} holding {v}", m.key))?,
                };
                let delta = int(&m.value)?;
                let sum = base
                    .checked_add(delta)
                    .ok_or_else(|| format!("adding {delta} to {} overflows {base}", m.key))?;
                state.insert(&m.key, Some(json!(sum)));
                "add"
            }
        };
        writes.insert(
            m.key.clone(),
            state[m.key.as_str()].clone().expect("just set"),
        );
        results.push(json!([f, key_json(&m.key), m.value]));
    }
    Ok((results, writes))
}

/// Why a txn with adds must not be written: the first key it adds to that would end below zero.
fn overdrawn(mops: &[MicroOp], writes: &BTreeMap<String, Value>) -> Option<String> {
    mops.iter().filter(|m| m.f == MicroF::Add).find_map(|m| {
        match writes.get(&m.key).and_then(Value::as_i64) {
            Some(v) if v < 0 => Some(format!(
                "account {} would be {v}; nothing was written",
                m.key
            )),
            _ => None,
        }
    })
}

/// A bank read's balances from the completed read micro-ops: account -> balance, an account
/// never written as 0 (as an add counts it); other values are kept for the checker to report.
fn bank_balances(results: &Value) -> Value {
    let mut balances = serde_json::Map::new();
    for r in results.as_array().into_iter().flatten() {
        let key = match &r[1] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let balance = match &r[2] {
            Value::Null => json!(0),
            v => v.clone(),
        };
        balances.insert(key, balance);
    }
    Value::Object(balances)
}

/// The history form of a key: the number it came from, or the string.
fn key_json(key: &str) -> Value {
    key.parse::<u64>()
        .map(|n| json!(n))
        .unwrap_or_else(|_| json!(key))
}

fn b64_value(v: &Value) -> String {
    B64.encode(v.to_string())
}

/// The value and mod_revision of the first kv of a range response (`None`, 0 when absent).
fn parse_range(resp: &Value) -> Result<(Option<Value>, i64), String> {
    let kv = match resp.get("kvs").and_then(Value::as_array) {
        None => return Ok((None, 0)),
        Some(kvs) if kvs.is_empty() => return Ok((None, 0)),
        Some(kvs) => &kvs[0],
    };
    let rev = kv
        .get("mod_revision")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("kv without a mod_revision: {kv}"))?;
    let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
    let bytes = B64
        .decode(raw)
        .map_err(|e| format!("value {raw:?} is not base64: {e}"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "stored value {:?} is not JSON (written by someone else?): {e}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((Some(value), rev))
}

/// The snapshot from a txn's `responses`, one `response_range` per key in `keys` order.
fn parse_ranges(responses: &Value, keys: &[String]) -> Result<Snapshot, String> {
    let list = responses.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if list.len() != keys.len() {
        return Err(format!(
            "expected {} range responses, got {responses}",
            keys.len()
        ));
    }
    keys.iter()
        .zip(list)
        .map(|(k, r)| {
            let range = r
                .get("response_range")
                .ok_or_else(|| format!("not a range response: {r}"))?;
            Ok((k.clone(), parse_range(range)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_modes_parse() {
        assert_eq!("serializable".parse(), Ok(ReadMode::Serializable));
        assert_eq!("linearizable".parse(), Ok(ReadMode::Linearizable));
        assert!("stale".parse::<ReadMode>().unwrap_err().contains("stale"));
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:2379").unwrap(), "127.0.0.1:2379");
        assert_eq!(
            parse_addr("http://10.0.0.1:2379/").unwrap(),
            "10.0.0.1:2379"
        );
        assert!(parse_addr("https://10.0.0.1:2379")
            .unwrap_err()
            .contains("https"));
        assert!(parse_addr("10.0.0.1").is_err());
        assert!(parse_addr("http://h:2379/v3").is_err());
    }

    #[test]
    fn micro_ops_see_earlier_ones_and_only_writes_are_put() {
        let mops = micro_ops(&json!([
            ["r", 1, null],
            ["append", 1, 5],
            ["r", 1, null],
            ["w", 2, 7]
        ]))
        .unwrap();
        let snapshot: Snapshot = [
            ("1".to_string(), (Some(json!([4])), 9)),
            ("2".into(), (None, 0)),
        ]
        .into_iter()
        .collect();
        let (results, writes) = apply(&mops, &snapshot).unwrap();
        assert_eq!(
            Value::Array(results),
            json!([
                ["r", 1, [4]],
                ["append", 1, 5],
                ["r", 1, [4, 5]],
                ["w", 2, 7]
            ])
        );
        assert_eq!(writes["1"], json!([4, 5]));
        assert_eq!(writes["2"], json!(7));
    }

    #[test]
    fn appending_to_a_register_is_refused() {
        let mops = micro_ops(&json!([["append", 1, 5]])).unwrap();
        let snapshot: Snapshot = [("1".to_string(), (Some(json!(3)), 2))]
            .into_iter()
            .collect();
        assert!(apply(&mops, &snapshot)
            .unwrap_err()
            .contains("cannot append"));
    }

    #[test]
    fn malformed_micro_ops_are_named() {
        assert!(micro_ops(&json!([["x", 1, 2]]))
            .unwrap_err()
            .contains("unknown function"));
        assert!(micro_ops(&json!([["append", 1, "a"]]))
            .unwrap_err()
            .contains("integer"));
        assert!(micro_ops(&json!([["r", null, null]]))
            .unwrap_err()
            .contains("key"));
    }

    #[test]
    fn adds_start_from_zero_and_overdrafts_are_found_before_writing() {
        let mops = micro_ops(&json!([["add", 1, -3], ["add", 2, 3], ["r", 2, null]])).unwrap();
        let snapshot: Snapshot = [
            ("1".to_string(), (Some(json!(5)), 4)),
            ("2".into(), (None, 0)),
        ]
        .into_iter()
        .collect();
        let (results, writes) = apply(&mops, &snapshot).unwrap();
        assert_eq!(
            Value::Array(results),
            json!([["add", 1, -3], ["add", 2, 3], ["r", 2, 3]])
        );
        assert_eq!(
            (writes["1"].clone(), writes["2"].clone()),
            (json!(2), json!(3))
        );
        assert_eq!(overdrawn(&mops, &writes), None);

        let over = micro_ops(&json!([["add", 1, -6], ["add", 2, 6]])).unwrap();
        let (_, writes) = apply(&over, &snapshot).unwrap();
        assert!(overdrawn(&over, &writes)
            .unwrap()
            .contains("account 1 would be -1"));

        let on_list: Snapshot = [("1".to_string(), (Some(json!([1])), 4))]
            .into_iter()
            .collect();
        let add = micro_ops(&json!([["add", 1, 1]])).unwrap();
        assert!(apply(&add, &on_list).unwrap_err().contains("cannot add"));
        assert_eq!(
            bank_balances(&json!([["r", 1, 7], ["r", 2, null]])),
            json!({"1": 7, "2": 0})
        );
    }
}
