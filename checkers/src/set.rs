//! The set checker: clients add unique elements and read the whole set. Judged by the final read
//! (Jepsen's set checker), plus how long each acknowledged add took to become stable.
//!
//! Operations: `f: "add"` with the element as value; `f: "read"` whose `ok` completion holds an
//! array of elements.
//! - lost: the add was acknowledged (`ok`) but the final read lacks the element;
//! - unexpected: a read returned an element nobody tried to add;
//! - failed-present: an add that failed shows up in a read (a failed operation must not happen);
//! - recovered: an add with unknown outcome shows up in the final read (fine, but worth knowing);
//! - stable latency: from an add's `ok` completion until the invocation of the first read from
//!   which on every read contains the element.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::history::{History, OpType, PairingError, Value};
use crate::txn::intern::Atoms;
use crate::txn::Verdict;

/// A set history that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("op {index}: {reason}")]
    Malformed { index: u64, reason: String },
}

/// How to check a set history.
#[derive(Debug, Clone, Default)]
pub struct Options {}

/// Stable latency over acknowledged adds that became stable, in the history's time unit
/// (nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub median: i64,
    pub p95: i64,
    pub max: i64,
    /// The element with the largest latency.
    pub slowest: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub attempted: usize,
    pub acknowledged: usize,
    /// Acknowledged and present in the final read.
    pub ok: usize,
    pub lost: Vec<Value>,
    pub unexpected: Vec<Value>,
    pub failed_present: Vec<Value>,
    pub recovered: Vec<Value>,
    /// Acknowledged elements missing from some read invoked after the acknowledgement, though a
    /// later read had them again (stale reads; allowed by the final-read criterion).
    pub stale: Vec<Value>,
    /// History index of the final read's completion.
    pub final_read: Option<u64>,
    pub stable_latency: Option<Latency>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fail,
    Unknown,
}

struct Add {
    outcome: Outcome,
    /// Completion time of an acknowledged add.
    acked_at: i64,
}

struct Read {
    invoked_at: i64,
    complete_index: u64,
    /// Sorted element ids.
    elems: Vec<u32>,
}

/// Checks a set history.
pub fn check(h: &History, _opts: &Options) -> Result<Report, InputError> {
    let mut atoms = Atoms::default();
    let mut adds: Vec<Option<Add>> = Vec::new();
    let mut reads: Vec<Read> = Vec::new();
    for p in h.pairs(false)? {
        let inv = &h.ops[p.invoke];
        let comp = p.complete.map(|c| &h.ops[c]);
        match inv.f.as_str() {
            "add" => {
                let e = atoms.intern(&inv.value) as usize;
                if adds.len() <= e {
                    adds.resize_with(e + 1, || None);
                }
                let outcome = match p.outcome(h) {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Unknown,
                };
                let prev = adds[e].as_ref().map(|a| a.outcome);
                // An element added twice counts as acknowledged if any attempt was.
                if prev.is_none() || prev == Some(Outcome::Fail) || outcome == Outcome::Ok {
                    adds[e] = Some(Add {
                        outcome,
                        acked_at: comp.map_or(i64::MAX, |c| c.time),
                    });
                }
            }
            "read" => {
                let Some(c) = comp.filter(|c| c.kind == OpType::Ok) else {
                    continue;
                };
                let Some(items) = c.value.as_array() else {
                    return Err(InputError::Malformed {
                        index: c.index,
                        reason: "a set read must return an array of elements".into(),
                    });
                };
                let mut elems: Vec<u32> = items.iter().map(|v| atoms.intern(v)).collect();
                elems.sort_unstable();
                elems.dedup();
                reads.push(Read {
                    invoked_at: inv.time,
                    complete_index: c.index,
                    elems,
                });
            }
            _ => {}
        }
    }
    adds.resize_with(atoms.len(), || None);
    reads.sort_by_key(|r| r.invoked_at);

    let attempted = adds.iter().filter(|a| a.is_some()).count();
    let acknowledged = adds
        .iter()
        .flatten()
        .filter(|a| a.outcome == Outcome::Ok)
        .count();
    let mut report = Report {
        verdict: Verdict::Unknown,
        attempted,
        acknowledged,
        ok: 0,
        lost: Vec::new(),
        unexpected: Vec::new(),
        failed_present: Vec::new(),
        recovered: Vec::new(),
        stale: Vec::new(),
        final_read: None,
        stable_latency: None,
    };
    let mut seen = vec![false; atoms.len()];
    for r in &reads {
        for &e in &r.elems {
            seen[e as usize] = true;
        }
    }
    for (e, add) in adds.iter().enumerate() {
        let v = || atoms.value(e as u32).clone();
        match add {
            None if seen[e] => report.unexpected.push(v()),
            Some(a) if a.outcome == Outcome::Fail && seen[e] => report.failed_present.push(v()),
            _ => {}
        }
    }
    // The final read is the one completed last.
    let Some(last) = reads.iter().max_by_key(|r| r.complete_index) else {
        report.verdict = if report.unexpected.is_empty() && report.failed_present.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Invalid
        };
        return Ok(report);
    };
    report.final_read = Some(last.complete_index);
    let mut latencies: Vec<(i64, u32)> = Vec::new();
    for (e, add) in adds.iter().enumerate() {
        let Some(add) = add else { continue };
        let e = e as u32;
        let present = last.elems.binary_search(&e).is_ok();
        match (add.outcome, present) {
            (Outcome::Ok, true) => report.ok += 1,
            (Outcome::Ok, false) => report.lost.push(atoms.value(e).clone()),
            (Outcome::Unknown, true) => report.recovered.push(atoms.value(e).clone()),
            _ => {}
        }
        if add.outcome != Outcome::Ok || !present {
            continue;
        }
        // Reads invoked after the acknowledgement; the element is stable from the first read
        // after the last one that missed it.
        let from = reads.partition_point(|r| r.invoked_at < add.acked_at);
        let later = &reads[from..];
        let last_miss = later
            .iter()
            .rposition(|r| r.elems.binary_search(&e).is_err());
        if last_miss.is_some() {
            report.stale.push(atoms.value(e).clone());
        }
        let stable_read = last_miss.map_or(0, |i| i + 1);
        if let Some(r) = later.get(stable_read) {
            latencies.push(((r.invoked_at - add.acked_at).max(0), e));
        }
    }
    if !latencies.is_empty() {
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].0;
        let &(max, slowest) = latencies.last().expect("non-empty");
        report.stable_latency = Some(Latency {
            count: latencies.len(),
            median: at(0.5),
            p95: at(0.95),
            max,
            slowest: atoms.value(slowest).clone(),
        });
    }
    report.verdict = if report.lost.is_empty()
        && report.unexpected.is_empty()
        && report.failed_present.is_empty()
    {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    Ok(report)
}

fn list(vs: &[Value]) -> String {
    const SHOWN: usize = 20;
    let mut items: Vec<String> = vs.iter().take(SHOWN).map(Value::to_string).collect();
    if vs.len() > SHOWN {
        items.push(format!("... ({} more)", vs.len() - SHOWN));
    }
    items.join(", ")
}

/// Renders a set report for people.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "set check: {} ({} attempted, {} acknowledged, {} acknowledged and present)",
        r.verdict, r.attempted, r.acknowledged, r.ok
    );
    match r.final_read {
        Some(i) => {
            let _ = writeln!(s, "final read: op {i}");
        }
        None => {
            let _ = writeln!(s, "no successful read: lost elements cannot be judged");
        }
    }
    for (name, what, vs) in [
        ("lost", "acknowledged, missing from the final read", &r.lost),
        ("unexpected", "never added", &r.unexpected),
        (
            "failed-present",
            "the add failed, yet a read returned it",
            &r.failed_present,
        ),
        (
            "recovered",
            "unknown outcome, present in the final read",
            &r.recovered,
        ),
        (
            "stale",
            "missing from a read invoked after the acknowledgement",
            &r.stale,
        ),
    ] {
        if !vs.is_empty() {
            let _ = writeln!(s, "{name} ({}; {what}): {}", vs.len(), list(vs));
        }
    }
    if let Some(l) = &r.stable_latency {
        let _ = writeln!(
            s,
            "stable latency over {} element{}: median {} ns, p95 {} ns, max {} ns (element {})",
            l.count,
            if l.count == 1 { "" } else { "s" },
            l.median,
            l.p95,
            l.max,
            l.slowest
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Process};
    use serde_json::json;

    struct B(Vec<Op>);
    impl B {
        fn op(&mut self, p: u64, kind: OpType, f: &str, value: Value) -> &mut Self {
            let i = self.0.len() as u64;
            self.0.push(Op {
                index: i,
                time: i as i64 * 100,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: None,
                value,
                error: None,
            });
            self
        }
        fn add(&mut self, p: u64, e: i64, outcome: OpType) -> &mut Self {
            self.op(p, OpType::Invoke, "add", json!(e))
                .op(p, outcome, "add", json!(e))
        }
        fn read(&mut self, p: u64, elems: Value) -> &mut Self {
            self.op(p, OpType::Invoke, "read", Value::Null)
                .op(p, OpType::Ok, "read", elems)
        }
    }

    #[test]
    fn classifies_lost_unexpected_recovered_and_failed() {
        let mut b = B(Vec::new());
        b.add(0, 1, OpType::Ok)
            .add(0, 2, OpType::Ok)
            .add(1, 3, OpType::Info)
            .add(2, 4, OpType::Fail)
            .read(3, json!([1, 3, 4, 9]));
        let r = check(&History::new(b.0), &Options::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.ok, 1);
        assert_eq!(r.lost, vec![json!(2)]);
        assert_eq!(r.recovered, vec![json!(3)]);
        assert_eq!(r.failed_present, vec![json!(4)]);
        assert_eq!(r.unexpected, vec![json!(9)]);
    }

    #[test]
    fn stable_latency_counts_from_ack_to_first_read_of_the_stable_run() {
        // add 1 acked at t=100; read at t=200 misses it (stale); read at t=400 and later see it.
        let mut b = B(Vec::new());
        b.add(0, 1, OpType::Ok)
            .read(1, json!([]))
            .read(1, json!([1]))
            .read(1, json!([1]));
        let r = check(&History::new(b.0), &Options::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.stale, vec![json!(1)]);
        let l = r.stable_latency.unwrap();
        assert_eq!((l.count, l.max), (1, 300));
    }

    #[test]
    fn no_read_is_unknown() {
        let mut b = B(Vec::new());
        b.add(0, 1, OpType::Ok);
        let r = check(&History::new(b.0), &Options::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
    }
}
