//! The one writer of a run's history: every client invocation, completion and fault record goes
//! through [`Recorder`] to a single task that numbers it, stamps it with the time since the
//! start of the test and appends it to `history.jsonl`.
//!
//! Ops are stamped in the order they arrive, and a client sends its invocation before its
//! request and its completion after the reply, so the file's order is consistent with real
//! time. The file is flushed at least every [`FLUSH_EVERY`], so a controller killed with
//! SIGKILL loses at most the ops of the last moments; `faultline analyze` ignores a torn line.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use checkers::history::{Op, OpType, Process, Value};
use nemesis::FaultRecord;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longest time an op waits in memory before it reaches the file.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

enum Event {
    Client {
        process: u64,
        kind: OpType,
        f: String,
        key: Option<Value>,
        value: Value,
        error: Option<String>,
    },
    Nemesis(FaultRecord),
}

/// Counters for the progress line.
#[derive(Debug, Default)]
pub struct Counts {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

/// A handle that sends ops to the recorder task; cheap to clone, one per client.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
    counts: Arc<Counts>,
}

/// The recorder task; [`RecorderTask::finish`] returns the whole history once every
/// [`Recorder`] is dropped.
pub struct RecorderTask {
    handle: tokio::task::JoinHandle<std::io::Result<Vec<Op>>>,
    path: PathBuf,
}

impl Recorder {
    /// Starts the recorder writing to `path` (created, or truncated); `started` is time zero.
    pub fn start(path: &Path, started: Instant) -> std::io::Result<(Recorder, RecorderTask)> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let handle = tokio::spawn(write_loop(rx, BufWriter::new(file), started));
        Ok((
            Recorder { tx, counts },
            RecorderTask {
                handle,
                path: path.to_path_buf(),
            },
        ))
    }

    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    pub fn invoke(&self, process: u64, f: &str, key: Option<Value>, value: Value) {
        self.counts.invoked.fetch_add(1, Ordering::Relaxed);
        self.send(Event::Client {
            process,
            kind: OpType::Invoke,
            f: f.to_string(),
            key,
            value,
            error: None,
        });
    }

    pub fn complete(&self, process: u64, f: &str, key: Option<Value>, done: workloads::Completion) {
        let counter = match done.kind {
            OpType::Ok => &self.counts.ok,
            OpType::Fail => &self.counts.fail,
            _ => &self.counts.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.send(Event::Client {
            process,
            kind: done.kind,
            f: f.to_string(),
            key,
            value: done.value,
            error: done.error,
        });
    }

    pub fn nemesis(&self, rec: &FaultRecord) {
        self.send(Event::Nemesis(rec.clone()));
    }

    fn send(&self, e: Event) {
        // The task only ends after every sender is gone, so this cannot fail while `self` lives.
        let _ = self.tx.send(e);
    }
}

impl RecorderTask {
    /// Waits for every op to be written and returns them all. Every [`Recorder`] must be
    /// dropped first, or this waits forever.
    pub async fn finish(self) -> std::io::Result<Vec<Op>> {
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(format!(
                "{}: recorder task failed: {e}",
                self.path.display()
            ))),
        }
    }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut out: BufWriter<File>,
    started: Instant,
) -> std::io::Result<Vec<Op>> {
    let mut ops = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = tick.tick() => out.flush()?,
            event = rx.recv() => {
                let Some(event) = event else { break };
                let index = ops.len() as u64;
                let time = started.elapsed().as_nanos() as i64;
                let op = match event {
                    Event::Client { process, kind, f, key, value, error } => Op {
                        index,
                        time,
                        process: Process::Client(process),
                        kind,
                        f,
                        key,
                        value,
                        error,
                    },
                    Event::Nemesis(rec) => rec.to_op(index, time),
                };
                serde_json::to_writer(&mut out, &op).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                ops.push(op);
            }
        }
    }
    out.flush()?;
    out.get_ref().sync_data()?;
    Ok(ops)
}

/// Reads a history file that a killed controller may have left with a torn last line: the bytes
/// after the last newline are dropped. Returns the complete lines and how many bytes were torn.
pub fn complete_lines(bytes: &[u8]) -> (&[u8], usize) {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => (&bytes[..=i], bytes.len() - i - 1),
        None => (&[], bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_dropped_and_complete_lines_are_kept() {
        let cases: [(&str, &str, usize); 4] = [
            ("", "", 0),
            ("{\"a\":1}\n", "{\"a\":1}\n", 0),
            ("{\"a\":1}\n{\"b\":", "{\"a\":1}\n", 5),
            ("{\"b\":", "", 5),
        ];
        for (input, kept, torn) in cases {
            let (got, n) = complete_lines(input.as_bytes());
            assert_eq!(
                (std::str::from_utf8(got).unwrap(), n),
                (kept, torn),
                "{input:?}"
            );
        }
    }

    #[tokio::test]
    async fn ops_are_numbered_in_arrival_order_and_reach_the_file() {
        let dir = std::env::temp_dir().join(format!("fl-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let (rec, task) = Recorder::start(&path, Instant::now()).unwrap();
        rec.invoke(0, "write", Some(Value::from(1)), Value::from(5));
        rec.nemesis(&FaultRecord::new("kill", nemesis::Outcome::Installed));
        rec.complete(
            0,
            "write",
            Some(Value::from(1)),
            workloads::Completion {
                kind: OpType::Ok,
                value: Value::from(5),
                error: None,
            },
        );
        let counts = rec.counts();
        drop(rec);
        let ops = task.finish().await.unwrap();
        assert_eq!(counts.ok.load(Ordering::Relaxed), 1);
        let file = std::fs::read_to_string(&path).unwrap();
        let back = checkers::read::read_history(
            file.as_bytes(),
            "history.jsonl",
            checkers::read::Format::Jsonl,
        )
        .unwrap();
        assert_eq!(back.ops, ops);
        let shape: Vec<(u64, String, &str)> = ops
            .iter()
            .map(|o| (o.index, o.process.to_string(), o.kind.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, "0".into(), "invoke"),
                (1, "nemesis".into(), "info"),
                (2, "0".into(), "ok")
            ]
        );
        assert!(ops.windows(2).all(|w| w[0].time <= w[1].time));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
