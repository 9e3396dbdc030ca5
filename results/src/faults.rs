//! Fault intervals and clock offsets, derived from the nemesis operations of a history.
//!
//! A nemesis op has `process: "nemesis"` and an `f` such as `start-partition` or
//! `stop-partition`. Starts and stops of one kind pair up into a band; a band still open when
//! the history ends runs to its end. A start whose value says `"outcome": "skipped"` installed
//! nothing and opens no band.
use std::collections::BTreeMap;

use checkers::history::{History, OpType, Process, Value};

/// The kinds of fault the report colours, in legend order.
pub const KINDS: [&str; 5] = ["partition", "kill", "pause", "clock", "packet"];

/// A time interval during which a fault was active.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// One of [`KINDS`], or another name for nemesis functions the report does not know.
    pub kind: String,
    /// Nanoseconds since the test started.
    pub start: i64,
    pub end: i64,
    /// History index of the op that started it.
    pub start_index: u64,
    /// False when the history ended with the fault still active.
    pub stopped: bool,
    /// The start op's value, compact JSON (the grudge, the nodes, ...).
    pub detail: String,
}

/// One node's clock offset at a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockPoint {
    pub time: i64,
    pub offset_ms: f64,
}

/// `start-partition` -> (true, "partition"); `bump-clock` -> (true, "clock");
/// `reset-clock` -> (false, "clock").
fn classify(f: &str) -> Option<(bool, &str)> {
    match f {
        "bump-clock" | "strobe-clock" => Some((true, "clock")),
        "reset-clock" => Some((false, "clock")),
        _ => {
            if let Some(kind) = f.strip_prefix("start-") {
                Some((true, kind))
            } else {
                f.strip_prefix("stop-").map(|kind| (false, kind))
            }
        }
    }
}

/// Nemesis ops that say what happened: completions when the nemesis logs invoke/info pairs,
/// otherwise every nemesis op.
fn nemesis_ops(h: &History) -> impl Iterator<Item = &checkers::Op> {
    let has_completions = h
        .ops
        .iter()
        .any(|o| o.process == Process::Nemesis && o.kind != OpType::Invoke);
    h.ops.iter().filter(move |o| {
        o.process == Process::Nemesis && (!has_completions || o.kind != OpType::Invoke)
    })
}

fn compact(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Fault bands, ordered by start time.
pub fn bands(h: &History) -> Vec<Band> {
    let end_time = h.ops.iter().map(|o| o.time).max().unwrap_or(0);
    let mut open: BTreeMap<String, Band> = BTreeMap::new();
    let mut done = Vec::new();
    for op in nemesis_ops(h) {
        let Some((start, kind)) = classify(&op.f) else {
            continue;
        };
        if start {
            let skipped = op.value.get("outcome").and_then(Value::as_str) == Some("skipped");
            if skipped || open.contains_key(kind) {
                continue;
            }
            open.insert(
                kind.to_string(),
                Band {
                    kind: kind.to_string(),
                    start: op.time,
                    end: op.time,
                    start_index: op.index,
                    stopped: false,
                    detail: compact(&op.value),
                },
            );
        } else if let Some(mut band) = open.remove(kind) {
            band.end = op.time;
            band.stopped = true;
            done.push(band);
        }
    }
    for (_, mut band) in open {
        band.end = end_time;
        done.push(band);
    }
    done.sort_by_key(|b| (b.start, b.start_index));
    done
}

/// Per-node clock offsets over time, from `offsets_ms` in nemesis values. A `reset-clock`
/// without offsets sets every known node back to 0.
pub fn clock_offsets(h: &History) -> BTreeMap<String, Vec<ClockPoint>> {
    let mut series: BTreeMap<String, Vec<ClockPoint>> = BTreeMap::new();
    for op in nemesis_ops(h) {
        match op.value.get("offsets_ms").and_then(Value::as_object) {
            Some(offsets) => {
                for (node, off) in offsets {
                    if let Some(off) = off.as_f64() {
                        series.entry(node.clone()).or_default().push(ClockPoint {
                            time: op.time,
                            offset_ms: off,
                        });
                    }
                }
            }
            None if op.f == "reset-clock" => {
                for points in series.values_mut() {
                    points.push(ClockPoint {
                        time: op.time,
                        offset_ms: 0.0,
                    });
                }
            }
            None => {}
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::Op;
    use serde_json::json;

    fn nem(time: i64, f: &str, value: Value) -> Op {
        Op {
            index: 0,
            time,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: f.into(),
            key: None,
            value,
            error: None,
        }
    }

    #[test]
    fn bands_pair_starts_and_stops_by_kind() {
        let h = History::new(vec![
            nem(10, "start-partition", json!({"grudge": {"n1": ["n2"]}})),
            nem(20, "start-kill", json!({"outcome": "installed"})),
            nem(30, "stop-partition", json!(null)),
            nem(40, "start-pause", json!({"outcome": "skipped"})),
            nem(50, "bump-clock", json!({"offsets_ms": {"n1": 120}})),
            nem(60, "reset-clock", json!(null)),
            nem(70, "stop-kill", json!(null)),
            nem(80, "start-packet", json!(null)),
        ]);
        let b: Vec<(String, i64, i64, bool)> = bands(&h)
            .into_iter()
            .map(|b| (b.kind, b.start, b.end, b.stopped))
            .collect();
        assert_eq!(
            b,
            vec![
                ("partition".into(), 10, 30, true),
                ("kill".into(), 20, 70, true),
                ("clock".into(), 50, 60, true),
                ("packet".into(), 80, 80, false),
            ]
        );
        let c = clock_offsets(&h);
        assert_eq!(c["n1"].len(), 2);
        assert_eq!(c["n1"][1].offset_ms, 0.0);
    }
}
