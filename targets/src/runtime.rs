//! The tokio runtime that drives any [`StateMachine`] over TCP.
//!
//! One listener serves both clients and peers: a connection whose first line is a peer hello
//! (`{"hello":"n2"}`) carries peer messages, any other connection is a client (see `PROTOCOL.md`).
//! The state machine itself runs on one dedicated thread that owns it and the write-ahead log; it
//! takes every event waiting in its queue, feeds them to the machine, then performs the collected
//! effects in the order [`crate::sm`] prescribes: log writes and one fsync first, then peer messages
//! and client replies. Batching all waiting events into one fsync is the group commit that gives
//! throughput under many concurrent clients.
use crate::protocol::{ClientOp, ErrorCode, ErrorReply, Request, Response};
use crate::sm::{ClientToken, Config, NodeId, Now, Out, StateMachine};
use crate::wal::{Wal, WalError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How to run one node.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: Config,
    /// Where clients and peers connect.
    pub listen: SocketAddr,
    /// Every other member's listen address (`host:port`), by node id.
    pub peer_addrs: BTreeMap<NodeId, String>,
    /// Holds the write-ahead log.
    pub data_dir: PathBuf,
    /// How often `on_tick` runs.
    pub tick: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("--listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    #[error("--peers: no address for peer {0}")]
    MissingPeer(NodeId),
    #[error("state machine thread: {0}")]
    Thread(String),
}

/// The first line a node sends on a connection it opens to a peer.
#[derive(serde::Serialize, serde::Deserialize)]
struct Hello {
    hello: NodeId,
}

enum Event<M> {
    Tick,
    Client {
        conn: mpsc::UnboundedSender<Response>,
        id: u64,
        op: ClientOp,
    },
    Peer {
        from: NodeId,
        msg: M,
    },
}

/// Messages queued for one peer before they are dropped.
const PEER_QUEUE: usize = 16_384;
/// Events handled in one batch at most (bounds the latency of a batch).
const MAX_BATCH: usize = 8_192;

/// Runs a node until a fatal error (the listener cannot bind, the log cannot be written).
pub async fn run<S: StateMachine + 'static>(opts: RunOptions) -> Result<(), RuntimeError> {
    run_with(opts, S::recover).await
}

/// Like [`run`], with the machine built by `recover` instead of [`StateMachine::recover`] (for a
/// protocol's own tuning, e.g. `Raft::recover_with`).
pub async fn run_with<S, F>(opts: RunOptions, recover: F) -> Result<(), RuntimeError>
where
    S: StateMachine + 'static,
    F: FnOnce(Config, Vec<S::Record>, Now) -> S + Send + 'static,
{
    for p in &opts.config.peers {
        if !opts.peer_addrs.contains_key(p) {
            return Err(RuntimeError::MissingPeer(p.clone()));
        }
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| RuntimeError::Bind {
            addr: opts.listen,
            source,
        })?;
    // Open the log before accepting anyone, so a corrupt log fails fast.
    let (wal, records) = Wal::<S::Record>::open(&opts.data_dir)?;
    tracing::info!(
        node = %opts.config.id,
        listen = %opts.listen,
        recovered_records = records.len(),
        "node starting"
    );

    let (events_tx, events_rx) = mpsc::unbounded_channel::<Event<S::Msg>>();

    let mut peer_queues = HashMap::new();
    for (peer, addr) in &opts.peer_addrs {
        let (tx, rx) = mpsc::channel::<String>(PEER_QUEUE);
        peer_queues.insert(peer.clone(), tx);
        tokio::spawn(peer_sender(
            opts.config.id.clone(),
            peer.clone(),
            addr.clone(),
            rx,
        ));
    }

    let tick_tx = events_tx.clone();
    let tick = opts.tick;
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if tick_tx.send(Event::Tick).is_err() {
                return;
            }
        }
    });

    let config = opts.config.clone();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<(), RuntimeError>>();
    std::thread::Builder::new()
        .name("state-machine".into())
        .spawn(move || {
            let r = drive::<S, F>(config, recover, wal, records, events_rx, peer_queues);
            let _ = done_tx.send(r);
        })
        .map_err(|e| RuntimeError::Thread(e.to_string()))?;

    let accept_events = events_tx.clone();
    let members: Arc<BTreeSet<NodeId>> = Arc::new(opts.config.peers.iter().cloned().collect());
    let accept = async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection::<S::Msg>(
                        stream,
                        accept_events.clone(),
                        members.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    tokio::select! {
        r = done_rx.recv() => r.unwrap_or_else(|| Err(RuntimeError::Thread("exited".into()))),
        () = accept => Ok(()),
    }
}

fn now(start: Instant) -> Now {
    Now {
        mono_ms: start.elapsed().as_millis() as u64,
        // Through the system clock on purpose: libfaketime shifts this, and only this.
        wall_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    }
}

enum WalOp<R> {
    Append(Vec<R>),
    Compact(Vec<R>),
}

/// The state-machine thread: owns the machine and the log.
fn drive<S: StateMachine, F: FnOnce(Config, Vec<S::Record>, Now) -> S>(
    config: Config,
    recover: F,
    mut wal: Wal<S::Record>,
    records: Vec<S::Record>,
    mut events: mpsc::UnboundedReceiver<Event<S::Msg>>,
    peers: HashMap<NodeId, mpsc::Sender<String>>,
) -> Result<(), RuntimeError> {
    let start = Instant::now();
    let mut sm = recover(config, records, now(start));
    let mut next_token: ClientToken = 1;
    let mut waiting: HashMap<ClientToken, (mpsc::UnboundedSender<Response>, u64)> = HashMap::new();

    while let Some(first) = events.blocking_recv() {
        let t = now(start);
        let mut wal_ops: Vec<WalOp<S::Record>> = Vec::new();
        let mut sends: Vec<(NodeId, S::Msg)> = Vec::new();
        let mut replies: Vec<(ClientToken, Response)> = Vec::new();
        let mut direct: Vec<(mpsc::UnboundedSender<Response>, Response)> = Vec::new();
        let mut ticked = false;
        let mut handled = 0usize;
        let mut ev = Some(first);
        while let Some(e) = ev.take() {
            let mut out = Out::default();
            match e {
                Event::Tick => {
                    // Several queued ticks are one tick: time is read once per batch anyway.
                    if !ticked {
                        ticked = true;
                        sm.on_tick(t, &mut out);
                    }
                }
                Event::Client { conn, id, op } => {
                    if let ClientOp::Status = op {
                        direct.push((conn, Response::status(id, sm.status(t))));
                    } else {
                        let token = next_token;
                        next_token += 1;
                        waiting.insert(token, (conn, id));
                        sm.on_request(t, token, op, &mut out);
                    }
                }
                Event::Peer { from, msg } => sm.on_message(t, from, msg, &mut out),
            }
            if let Some(c) = out.compact {
                wal_ops.push(WalOp::Compact(c));
            }
            if !out.persist.is_empty() {
                wal_ops.push(WalOp::Append(out.persist));
            }
            sends.extend(out.send);
            replies.extend(out.reply);
            handled += 1;
            if handled < MAX_BATCH {
                ev = events.try_recv().ok();
            }
        }

        // Persist (and fsync) before anything that depends on it leaves this node.
        for op in wal_ops {
            match op {
                WalOp::Append(recs) => wal.append(&recs)?,
                WalOp::Compact(recs) => {
                    wal.sync()?;
                    wal.compact(&recs)?
                }
            }
        }
        wal.sync()?;

        for (to, msg) in sends {
            let Some(q) = peers.get(&to) else {
                tracing::warn!(peer = %to, "message to an unknown peer dropped");
                continue;
            };
            match serde_json::to_string(&msg) {
                // A full queue means the peer is slow or down: drop, protocols tolerate loss.
                Ok(line) => {
                    let _ = q.try_send(line);
                }
                Err(e) => tracing::error!(error = %e, "cannot encode a peer message"),
            }
        }
        for (token, mut resp) in replies {
            if let Some((conn, id)) = waiting.remove(&token) {
                resp.id = id;
                let _ = conn.send(resp);
            }
        }
        for (conn, resp) in direct {
            let _ = conn.send(resp);
        }
    }
    Ok(())
}

/// Keeps one outgoing connection to `peer`: connects when there is something to send, reconnects
/// with backoff, and drops what cannot be sent (the protocols tolerate loss).
async fn peer_sender(me: NodeId, peer: NodeId, addr: String, mut rx: mpsc::Receiver<String>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let Some(first) = rx.recv().await else { return };
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr));
        let stream = match connect.await {
            Ok(Ok(s)) => s,
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                // Whatever was queued while the peer was unreachable is stale: drop it.
                while rx.try_recv().is_ok() {}
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(peer = %peer, addr = %addr, "connected to peer");
        backoff = Duration::from_millis(20);
        let mut w = BufWriter::new(stream);
        let hello = serde_json::to_string(&Hello { hello: me.clone() }).expect("hello encodes");
        let mut next = Some(first);
        if write_line(&mut w, &hello).await.is_err() {
            continue;
        }
        'connected: loop {
            let line = match next.take() {
                Some(l) => l,
                None => match rx.recv().await {
                    Some(l) => l,
                    None => return,
                },
            };
            if write_line(&mut w, &line).await.is_err() {
                break;
            }
            // Write whatever else is queued before one flush.
            while let Ok(line) = rx.try_recv() {
                if write_line(&mut w, &line).await.is_err() {
                    break 'connected;
                }
            }
            if w.flush().await.is_err() {
                break;
            }
        }
        tracing::debug!(peer = %peer, "peer connection lost");
    }
}

async fn write_line<W: AsyncWriteExt + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
    w.write_all(line.as_bytes()).await?;
    w.write_all(b"\n").await
}

/// Serves one accepted connection: a peer's if it opens with a hello, a client's otherwise.
async fn serve_connection<M: serde::de::DeserializeOwned + Send + 'static>(
    stream: TcpStream,
    events: mpsc::UnboundedSender<Event<M>>,
    members: Arc<BTreeSet<NodeId>>,
) {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut first = Vec::new();
    let first_len = read_line_capped(&mut reader, &mut first).await;
    if matches!(first_len, Ok(0) | Err(_)) {
        return;
    }
    if let Ok(h) = serde_json::from_slice::<Hello>(first.trim_ascii_end()) {
        if members.contains(&h.hello) {
            serve_peer(h.hello, reader, events).await;
        } else {
            tracing::warn!(peer = %h.hello, "hello from a node that is not a member; closing");
        }
        return;
    }

    let (resp_tx, mut resp_rx) = mpsc::unbounded_channel::<Response>();
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        while let Some(r) = resp_rx.recv().await {
            let line = serde_json::to_string(&r).expect("responses encode");
            if write_line(&mut w, &line).await.is_err() {
                return;
            }
            let mut failed = false;
            while let Ok(r) = resp_rx.try_recv() {
                let line = serde_json::to_string(&r).expect("responses encode");
                if write_line(&mut w, &line).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || w.flush().await.is_err() {
                return;
            }
        }
    });

    let mut line = first;
    let mut status = first_len;
    loop {
        if let Err(e) = &status {
            // Too long: answer once and close, since the rest of the line cannot be resynchronised.
            let _ = resp_tx.send(malformed(0, e.to_string()));
            break;
        }
        // Invalid UTF-8 becomes replacement characters and so a `malformed` reply.
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            match parse_request(trimmed) {
                Ok(req) => {
                    let ev = Event::Client {
                        conn: resp_tx.clone(),
                        id: req.id,
                        op: req.op,
                    };
                    if events.send(ev).is_err() {
                        break;
                    }
                }
                Err(resp) => {
                    let _ = resp_tx.send(*resp);
                }
            }
        }
        line.clear();
        status = read_line_capped(&mut reader, &mut line).await;
        if matches!(status, Ok(0)) {
            break;
        }
        if let Err(e) = &status {
            if e.kind() != std::io::ErrorKind::InvalidData {
                break;
            }
        }
    }
    drop(resp_tx);
    // Let pending replies drain; the writer ends when the last sender (held by queued events) goes.
    let _ = writer.await;
}

async fn serve_peer<M: serde::de::DeserializeOwned>(
    from: NodeId,
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    events: mpsc::UnboundedSender<Event<M>>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match serde_json::from_str::<M>(line.trim_end()) {
            Ok(msg) => {
                if events
                    .send(Event::Peer {
                        from: from.clone(),
                        msg,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => tracing::warn!(peer = %from, error = %e, "unreadable peer message dropped"),
        }
    }
}

/// Longest request line accepted from a client.
const MAX_CLIENT_LINE: u64 = 1 << 20;

/// Reads one line (up to and including `\n`) of at most [`MAX_CLIENT_LINE`] bytes; a longer line is
/// an `InvalidData` error.
async fn read_line_capped<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let n = reader.take(MAX_CLIENT_LINE).read_until(b'\n', buf).await?;
    if n as u64 == MAX_CLIENT_LINE && buf.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("request line longer than {MAX_CLIENT_LINE} bytes"),
        ));
    }
    Ok(n)
}

fn malformed(id: u64, message: String) -> Response {
    Response::error(
        id,
        ErrorReply {
            code: ErrorCode::Malformed,
            definite: true,
            message,
            leader: None,
        },
    )
}

/// Parses a request line, or builds the `malformed` reply (with the request's id if one can be
/// found, 0 otherwise).
pub fn parse_request(line: &str) -> Result<Request, Box<Response>> {
    match serde_json::from_str::<Request>(line) {
        Ok(r) => Ok(r),
        Err(e) => {
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_u64()))
                .unwrap_or(0);
            Err(Box::new(malformed(id, format!("malformed request: {e}"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::NodeStatus;

    /// Persists a record, sends a message and replies for every request.
    struct Echo;

    impl StateMachine for Echo {
        type Msg = String;
        type Record = String;
        fn recover(_: Config, _: Vec<String>, _: Now) -> Self {
            Echo
        }
        fn on_tick(&mut self, _: Now, _: &mut Out<String, String>) {}
        fn on_message(&mut self, _: Now, _: NodeId, _: String, _: &mut Out<String, String>) {}
        fn on_request(
            &mut self,
            _: Now,
            token: ClientToken,
            _: ClientOp,
            out: &mut Out<String, String>,
        ) {
            out.persist.push(format!("rec-{token}"));
            out.send.push(("p".into(), format!("msg-{token}")));
            out.reply.push((token, Response::ok(0)));
        }
        fn status(&self, now: Now) -> NodeStatus {
            NodeStatus {
                node: "n1".into(),
                role: "echo".into(),
                term: 0,
                leader: None,
                time_ms: now.wall_ms,
                commit_index: 0,
                protocol: "echo".into(),
            }
        }
    }

    #[test]
    fn records_are_durable_before_messages_and_replies_leave() {
        let dir = std::env::temp_dir().join(format!("faultline-drive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (wal, records) = Wal::<String>::open(&dir).unwrap();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (peer_tx, mut peer_rx) = mpsc::channel(1024);
        let (conn_tx, mut conn_rx) = mpsc::unbounded_channel();
        for id in 100..150 {
            events_tx
                .send(Event::Client {
                    conn: conn_tx.clone(),
                    id,
                    op: ClientOp::Read { key: 1 },
                })
                .unwrap_or_else(|_| panic!("queue"));
        }
        let config = Config {
            id: "n1".into(),
            peers: vec!["p".into()],
            bugs: Default::default(),
            read_mode: Default::default(),
            seed: 0,
        };
        let peers = HashMap::from([("p".to_string(), peer_tx)]);
        let driver = std::thread::spawn(move || {
            drive(config, Echo::recover, wal, records, events_rx, peers)
        });
        for _ in 0..50 {
            let msg: String = serde_json::from_str(&peer_rx.blocking_recv().unwrap()).unwrap();
            let token = msg.trim_start_matches("msg-");
            let log = std::fs::read_to_string(dir.join("wal.log")).unwrap();
            assert!(
                log.contains(&format!("\"rec-{token}\"")),
                "message {msg} left before its record was written"
            );
        }
        let mut ids: Vec<u64> = (0..50)
            .map(|_| conn_rx.blocking_recv().unwrap().id)
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (100..150).collect::<Vec<_>>(),
            "each reply carries its request id"
        );
        drop(events_tx);
        driver.join().unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_requests_get_the_id_when_one_is_present() {
        let e = parse_request(r#"{"id":9,"op":"frobnicate"}"#).unwrap_err();
        assert_eq!(e.id, 9);
        assert_eq!(e.error.unwrap().code, ErrorCode::Malformed);
        let e = parse_request("not json").unwrap_err();
        assert_eq!(e.id, 0);
        let ok = parse_request(r#"{"id":3,"op":"write","key":1,"value":2}"#).unwrap();
        assert_eq!(ok.id, 3);
    }
}
