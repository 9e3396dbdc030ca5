//! History readers: Faultline's JSON lines, Jepsen EDN and the two Porcupine test formats.
//!
//! Every reader takes a [`std::io::Read`] plus a display name used in errors, and reports
//! malformed input as a [`ReadError`] naming `name:line` and what was expected. Readers never
//! panic on any input. The formats are described in `checkers/FORMAT.md`.
use std::io::{BufRead, BufReader, Read};

use crate::history::{History, Op, OpType, Process, Value};

pub mod edn;

use edn::Edn;

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Detect from the first non-blank line.
    Auto,
    /// Faultline's JSON lines: one serialised [`Op`] per line.
    Jsonl,
    /// Jepsen EDN: one op map per line.
    Edn,
    /// Porcupine's `jepsen-etcd-log`: Jepsen's `jepsen.util` log lines for a CAS register.
    PorcupineEtcd,
    /// Porcupine's `jepsen-kv-edn`: EDN op maps with a `:key`.
    PorcupineKv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

/// Malformed or unreadable history input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A line that does not parse; `line` is 1-based.
    #[error("{name}:{line}: {message}")]
    Syntax {
        name: String,
        line: usize,
        message: String,
    },
    /// The underlying reader failed.
    #[error("{name}: cannot read: {message}")]
    Io { name: String, message: String },
}

/// Reads a whole history. With [`Format::Auto`] the format is detected from the first
/// non-blank line (an empty input is an empty history).
pub fn read_history<R: Read>(reader: R, name: &str, format: Format) -> Result<History, ReadError> {
    read_history_detect(reader, name, format).map(|(h, _)| h)
}

/// Like [`read_history`], also returning the format that was used (the detected one for `Auto`).
pub fn read_history_detect<R: Read>(
    reader: R,
    name: &str,
    format: Format,
) -> Result<(History, Format), ReadError> {
    let mut lines = Lines::new(BufReader::new(reader), name);
    let mut format = format;
    let mut ops = Vec::new();
    let mut explicit_index = false;
    while let Some(line) = lines.next_line()? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if format == Format::Auto {
            format = detect(text).ok_or_else(|| {
                lines.error(
                    "cannot detect the history format (expected a JSON object, an EDN map or a \
                 `INFO jepsen.util - ...` log line); pass --format",
                )
            })?;
        }
        match format {
            Format::Jsonl => {
                let op = parse_jsonl(text).map_err(|m| lines.error(m))?;
                explicit_index = true;
                ops.push(op);
            }
            Format::Edn | Format::PorcupineKv => {
                let (op, had_index) = parse_edn_op(text).map_err(|m| lines.error(m))?;
                explicit_index |= had_index;
                ops.push(op);
            }
            Format::PorcupineEtcd => {
                let op = parse_etcd_line(text, ops.len()).map_err(|m| lines.error(m))?;
                ops.push(op);
            }
            Format::Auto => unreachable!("format detected above"),
        }
    }
    let mut history = History::new(ops);
    if !explicit_index {
        history.reindex();
    }
    if matches!(format, Format::Edn) {
        split_independent_tuples(&mut history);
    }
    if format == Format::Auto {
        format = Format::Jsonl;
    }
    Ok((history, format))
}

/// A streaming reader of Faultline's JSON-lines format: yields one op per non-blank line.
pub struct JsonlOps<R> {
    lines: Lines<R>,
}

impl<R: BufRead> JsonlOps<R> {
    pub fn new(reader: R, name: &str) -> Self {
        JsonlOps {
            lines: Lines::new(reader, name),
        }
    }
}

impl<R: BufRead> Iterator for JsonlOps<R> {
    type Item = Result<Op, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            return Some(parse_jsonl(text).map_err(|m| self.lines.error(m)));
        }
    }
}

/// Writes ops in Faultline's JSON-lines format.
pub fn write_jsonl<W: std::io::Write>(mut w: W, ops: &[Op]) -> std::io::Result<()> {
    for op in ops {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn detect(first_line: &str) -> Option<Format> {
    if first_line.starts_with("INFO") {
        return Some(Format::PorcupineEtcd);
    }
    if first_line.starts_with('#') {
        return Some(Format::Edn);
    }
    let rest = first_line.strip_prefix('{')?.trim_start();
    if rest.starts_with('"') || rest.starts_with('}') {
        Some(Format::Jsonl)
    } else if rest.starts_with(':') {
        Some(Format::Edn)
    } else {
        None
    }
}

/// Line-by-line reading with a 1-based line counter and UTF-8 checking.
struct Lines<R> {
    reader: R,
    name: String,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R, name: &str) -> Self {
        Lines {
            reader,
            name: name.to_string(),
            line: 0,
            buf: Vec::new(),
        }
    }

    fn next_line(&mut self) -> Result<Option<String>, ReadError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| ReadError::Io {
                name: self.name.clone(),
                message: e.to_string(),
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(e) => Err(self.error(format!(
                "not valid UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            ))),
        }
    }

    fn error(&self, message: impl Into<String>) -> ReadError {
        ReadError::Syntax {
            name: self.name.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

fn parse_jsonl(text: &str) -> Result<Op, String> {
    serde_json::from_str::<Op>(text).map_err(|e| {
        let full = e.to_string();
        // serde_json appends " at line 1 column N"; the line is ours, keep the column.
        let message = full
            .rfind(" at line ")
            .map_or(full.as_str(), |i| &full[..i])
            .to_string();
        format!(
            "expected a history op as a JSON object (column {}): {message}",
            e.column()
        )
    })
}

/// Reads one Jepsen op map. Returns the op and whether it carried an explicit `:index`.
fn parse_edn_op(text: &str) -> Result<(Op, bool), String> {
    let form = edn::parse(text).map_err(|e| format!("expected an EDN op map: {e}"))?;
    let Edn::Map(entries) = form else {
        return Err(format!("expected an EDN op map, found {}", form.kind()));
    };
    let mut kind = None;
    let mut process = None;
    let mut f = None;
    let mut value = Value::Null;
    let mut key = None;
    let mut time = None;
    let mut index = None;
    let mut error = None;
    for (k, v) in entries {
        let Edn::Keyword(k) = k else { continue };
        match k.as_str() {
            "type" => kind = Some(op_type(&v)?),
            "process" => process = Some(edn_process(&v)?),
            "f" => {
                f = Some(match v {
                    Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => s,
                    other => return Err(format!(":f must be a keyword, found {}", other.kind())),
                })
            }
            "value" => value = v.to_json(),
            "key" => key = Some(v.to_json()),
            "time" => time = Some(edn_int(&v, ":time")?),
            "index" => index = Some(edn_int(&v, ":index")?),
            "error" => {
                error = Some(match v {
                    Edn::Nil => None,
                    Edn::Str(s) | Edn::Keyword(s) => Some(s),
                    other => Some(other.to_json().to_string()),
                })
            }
            _ => {}
        }
    }
    let kind = kind.ok_or("expected a :type (:invoke, :ok, :fail or :info)")?;
    let process = process.ok_or("expected a :process")?;
    let f = f.ok_or("expected an :f")?;
    let index = match index {
        Some(i) => Some(u64::try_from(i).map_err(|_| ":index must not be negative".to_string())?),
        None => None,
    };
    Ok((
        Op {
            index: index.unwrap_or(0),
            time: time.unwrap_or(0),
            process,
            kind,
            f,
            key,
            value,
            error: error.flatten(),
        },
        index.is_some(),
    ))
}

fn op_type(v: &Edn) -> Result<OpType, String> {
    let name = match v {
        Edn::Keyword(s) | Edn::Str(s) => s.as_str(),
        other => return Err(format!(":type must be a keyword, found {}", other.kind())),
    };
    keyword_op_type(name)
        .ok_or_else(|| format!(":type must be :invoke, :ok, :fail or :info, found :{name}"))
}

fn keyword_op_type(name: &str) -> Option<OpType> {
    Some(match name {
        "invoke" => OpType::Invoke,
        "ok" => OpType::Ok,
        "fail" => OpType::Fail,
        "info" => OpType::Info,
        _ => return None,
    })
}

fn edn_process(v: &Edn) -> Result<Process, String> {
    match v {
        Edn::Int(i) => u64::try_from(*i)
            .map(Process::Client)
            .map_err(|_| format!(":process must not be negative, found {i}")),
        Edn::Keyword(s) if s == "nemesis" => Ok(Process::Nemesis),
        other => Err(format!(
            ":process must be a non-negative integer or :nemesis, found {}",
            other.kind()
        )),
    }
}

fn edn_int(v: &Edn, field: &str) -> Result<i64, String> {
    match v {
        Edn::Int(i) => Ok(*i),
        other => Err(format!(
            "{field} must be an integer, found {}",
            other.kind()
        )),
    }
}

/// Splits `jepsen.independent` tuple values `[key value]` into `Op::key` and `Op::value`.
///
/// A history is taken as independent when it has client ops, none of them already has a key,
/// and every client op's value is a two-element vector whose first element is a scalar. A
/// history made only of `cas` ops is ambiguous (`[from to]`); it is independent only if every
/// second element is itself a vector (`[key [from to]]`).
fn split_independent_tuples(history: &mut History) {
    let is_scalar = |v: &Value| !(v.is_array() || v.is_object());
    let mut any = false;
    let mut all_cas = true;
    let mut seconds_are_vectors = true;
    for op in history.ops.iter().filter(|op| op.is_client()) {
        any = true;
        if op.key.is_some() {
            return;
        }
        match op.value.as_array() {
            Some(t) if t.len() == 2 && is_scalar(&t[0]) => {
                all_cas &= op.f == "cas";
                seconds_are_vectors &= t[1].is_array();
            }
            _ => return,
        }
    }
    if !any || (all_cas && !seconds_are_vectors) {
        return;
    }
    for op in history.ops.iter_mut().filter(|op| op.is_client()) {
        if let Value::Array(mut t) = std::mem::take(&mut op.value) {
            op.value = t.pop().unwrap_or(Value::Null);
            op.key = t.pop();
        }
    }
}

/// Porcupine's `jepsen-etcd-log`: `INFO  jepsen.util - P  :type  :f  value`, fields separated by
/// runs of whitespace. A completion answers the latest open invocation of its process.
fn parse_etcd_line(text: &str, position: usize) -> Result<Op, String> {
    let expected = "expected `INFO jepsen.util - PROCESS :TYPE :F VALUE`";
    let mut fields = text.split_whitespace();
    if fields.next() != Some("INFO")
        || fields.next() != Some("jepsen.util")
        || fields.next() != Some("-")
    {
        return Err(expected.to_string());
    }
    let process = fields
        .next()
        .ok_or_else(|| format!("{expected}: missing the process"))?;
    let process = process.parse::<u64>().map_err(|_| {
        format!("{expected}: the process must be a non-negative integer, found {process:?}")
    })?;
    let kind = fields
        .next()
        .ok_or_else(|| format!("{expected}: missing the type"))?;
    let kind = kind
        .strip_prefix(':')
        .and_then(keyword_op_type)
        .ok_or_else(|| {
            format!("{expected}: the type must be :invoke, :ok, :fail or :info, found {kind:?}")
        })?;
    let f = fields
        .next()
        .ok_or_else(|| format!("{expected}: missing the function"))?;
    let f = f
        .strip_prefix(':')
        .filter(|f| !f.is_empty())
        .ok_or_else(|| format!("{expected}: the function must be a keyword, found {f:?}"))?;
    let rest: Vec<&str> = fields.collect();
    if rest.is_empty() {
        return Err(format!("{expected}: missing the value"));
    }
    let value = edn::parse(&rest.join(" "))
        .map_err(|e| format!("expected an EDN value after :{f}: {e}"))?
        .to_json();
    Ok(Op {
        index: position as u64,
        time: position as i64,
        process: Process::Client(process),
        kind,
        f: f.to_string(),
        key: None,
        value,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str, format: Format) -> Result<(History, Format), ReadError> {
        read_history_detect(text.as_bytes(), "h.txt", format)
    }

    #[test]
    fn detects_each_format() {
        let cases = [
            (
                r#"{"process":0,"type":"invoke","f":"read","value":null}"#,
                Format::Jsonl,
            ),
            (
                "{:process 0, :type :invoke, :f :read, :value nil}",
                Format::Edn,
            ),
            (
                "INFO  jepsen.util - 4\t:invoke\t:read\tnil",
                Format::PorcupineEtcd,
            ),
            ("", Format::Jsonl),
        ];
        for (text, want) in cases {
            assert_eq!(read(text, Format::Auto).unwrap().1, want, "{text}");
        }
        let err = read("\nhello", Format::Auto).unwrap_err().to_string();
        assert!(err.starts_with("h.txt:2: cannot detect"), "{err}");
    }

    #[test]
    fn reads_jepsen_independent_tuples_into_keys() {
        let text = "{:type :invoke, :f :write, :value [7 3], :process 0, :time 10, :index 0}\n\
                    {:type :ok, :f :write, :value [7 3], :process 0, :time 20, :index 1}\n\
                    {:type :invoke, :f :cas, :value [8 [1 2]], :process 1, :time 30, :index 2}\n\
                    {:type :invoke, :f :read, :value [7 nil], :process :nemesis, :index 3}\n";
        let h = read(text, Format::Auto).unwrap().0;
        assert_eq!(h.ops[0].key, Some(json!(7)));
        assert_eq!(h.ops[0].value, json!(3));
        assert_eq!(h.ops[2].key, Some(json!(8)));
        assert_eq!(h.ops[2].value, json!([1, 2]));
        assert_eq!(h.ops[1].time, 20);
        assert_eq!(h.ops[3].process, Process::Nemesis);
        assert_eq!(h.ops[3].key, None, "nemesis ops keep their value");
    }

    #[test]
    fn keeps_plain_register_and_txn_values() {
        let text = "{:type :invoke, :f :cas, :value [1 2], :process 0}\n\
                    {:type :ok, :f :cas, :value [1 2], :process 0}\n\
                    {:type :invoke, :f :txn, :value [[:append 5 3] [:r 5 [1 2 3]]], :process 1}\n";
        let h = read(text, Format::Edn).unwrap().0;
        assert_eq!(h.ops[0].key, None);
        assert_eq!(h.ops[0].value, json!([1, 2]));
        assert_eq!(
            h.ops[2].value,
            json!([["append", 5, 3], ["r", 5, [1, 2, 3]]])
        );
        assert_eq!(
            h.ops[2].index, 2,
            "indices are positions when the file has none"
        );
    }

    #[test]
    fn reads_porcupine_etcd_lines_with_tabs_or_spaces() {
        let text = "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\n\
                    INFO  jepsen.util - 3   :fail   :cas    [1 2]\n\
                    INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n";
        let h = read(text, Format::Auto).unwrap().0;
        assert_eq!(h.ops.len(), 4);
        assert_eq!(h.ops[1].kind, OpType::Fail);
        assert_eq!(h.ops[1].value, json!([1, 2]));
        assert_eq!(h.ops[3].value, json!("timed-out"));
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let cases = [
            (
                "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :bogus, :f :read}",
                Format::Edn,
                "h.txt:2: :type must be",
            ),
            (
                "{:process -1, :type :ok, :f :read}",
                Format::Edn,
                "h.txt:1: :process must not be negative",
            ),
            (
                "{:process 1, :f :read}",
                Format::Edn,
                "h.txt:1: expected a :type",
            ),
            (
                "{:process 1, :type :ok, :f :read",
                Format::Edn,
                "h.txt:1: expected an EDN op map",
            ),
            (
                "[1 2]",
                Format::Edn,
                "h.txt:1: expected an EDN op map, found a vector",
            ),
            (
                "{\"process\":0}",
                Format::Jsonl,
                "h.txt:1: expected a history op",
            ),
            (
                "INFO  jepsen.util - x :invoke :read nil",
                Format::PorcupineEtcd,
                "h.txt:1: expected `INFO",
            ),
            (
                "INFO  jepsen.util - 1 :invoke :read",
                Format::PorcupineEtcd,
                "missing the value",
            ),
            (
                "INFO  jepsen.util - 1 :invoke :cas [1 2",
                Format::PorcupineEtcd,
                "expected an EDN value after :cas",
            ),
        ];
        for (text, format, want) in cases {
            let err = read(text, format).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = read_history(&b"{\"a\":1}\n\xff\xfe\n"[..], "b.jsonl", Format::Auto).unwrap_err();
        assert!(err.to_string().starts_with("b.jsonl:1:"), "{err}");
        let err = read_history(&b"\n\xff\xfe\n"[..], "b.jsonl", Format::Jsonl).unwrap_err();
        assert_eq!(
            err.to_string(),
            "b.jsonl:2: not valid UTF-8 (byte 1 of the line)"
        );
    }

    #[test]
    fn jsonl_round_trips_and_streams() {
        let text = "{:type :invoke, :f :write, :value 3, :process 0, :time 123, :index 0}\n\
                    {:type :info, :f :write, :value 3, :process 0, :time 124, :index 1, :error :timeout}\n";
        let h = read(text, Format::Edn).unwrap().0;
        let mut out = Vec::new();
        write_jsonl(&mut out, &h.ops).unwrap();
        let back: Vec<Op> = JsonlOps::new(&out[..], "x")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, h.ops);
        assert_eq!(back[1].error.as_deref(), Some("timeout"));
    }
}
