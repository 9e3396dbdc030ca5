//! Transactional checkers in the style of Elle: infer dependencies between transactions from a
//! list-append or rw-register history, search the dependency graph for cycles, and say which
//! consistency models the anomalies found rule out.
//!
//! ```
//! use checkers::txn::{self, Options, Verdict};
//! let h: checkers::History = Default::default();
//! let report = txn::check(&h, &Options::default()).unwrap();
//! assert_eq!(report.verdict, Verdict::Valid);
//! ```
mod anomaly;
mod graph;
pub(crate) mod intern;
mod list_append;
mod model;
mod parse;
mod rw_register;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use anomaly::{Anomaly, AnomalyKind, AnomalyType, CycleStep, TxnRef, UnknownAnomaly};
pub use graph::{EdgeKind, Variant};
pub use model::{ConsistencyModel, UnknownModel};
pub use parse::InputError;

use crate::history::{History, OpType, Value};
use anomaly::show;
use graph::{Budget, DepGraph, EdgeList};
use parse::{Shape, Status, Txns};

pub use crate::verdict::Verdict;

/// Which transactional workload produced the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Micro-ops `["append", k, v]` and `["r", k, [v ...]]`.
    ListAppend,
    /// Micro-ops `["w", k, v]` and `["r", k, v]`, every write of a key unique.
    RwRegister,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }
}

/// A workload name other than `list-append` or `rw-register`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transactional workload {0:?} (known: list-append, rw-register)")]
pub struct UnknownWorkload(pub String);

impl std::str::FromStr for Workload {
    type Err = UnknownWorkload;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "list-append" => Ok(Workload::ListAppend),
            "rw-register" => Ok(Workload::RwRegister),
            other => Err(UnknownWorkload(other.to_string())),
        }
    }
}

/// How to check a transactional history.
#[derive(Debug, Clone)]
pub struct Options {
    pub workload: Workload,
    /// The model the verdict is about. All models ruled out are reported regardless.
    pub consistency_model: ConsistencyModel,
    /// rw-register: a transaction that read version `a` of a key and then wrote `b` orders
    /// `a` before `b` (write follows read).
    pub wfr_keys: bool,
    /// rw-register: keys are linearizable on their own, so realtime order between transactions
    /// touching a key orders its versions.
    pub linearizable_keys: bool,
    /// Upper bound on edge visits in the cycle search; past it the verdict may be `unknown`.
    pub cycle_search_steps: u64,
    /// Start edges tried per cycle shape and component.
    pub cycle_search_seeds: usize,
    /// At most this many anomalies of one type are kept with evidence (all are counted).
    pub max_anomalies_per_type: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workload: Workload::ListAppend,
            consistency_model: ConsistencyModel::StrictSerializable,
            wfr_keys: true,
            linearizable_keys: false,
            cycle_search_steps: 50_000_000,
            cycle_search_seeds: 256,
            max_anomalies_per_type: 16,
        }
    }
}

impl Options {
    pub fn list_append() -> Self {
        Options::default()
    }
    pub fn rw_register() -> Self {
        Options {
            workload: Workload::RwRegister,
            ..Options::default()
        }
    }
}

/// Sizes, for reports and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub txns: usize,
    pub edges: usize,
    /// Strongly connected components with more than one transaction.
    pub cyclic_components: usize,
}

/// The result of a transactional check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub workload: Workload,
    /// The model the verdict is about.
    pub consistency_model: ConsistencyModel,
    /// Every anomaly type found, with how many were found.
    pub anomaly_counts: BTreeMap<String, usize>,
    /// Every model these anomalies rule out.
    pub ruled_out: Vec<ConsistencyModel>,
    /// The weakest models ruled out: no weaker model is also ruled out.
    pub weakest_ruled_out: Vec<ConsistencyModel>,
    /// Anomalies with evidence (at most `max_anomalies_per_type` of each type).
    pub anomalies: Vec<Anomaly>,
    pub stats: Stats,
}

/// An anomaly found by inference, before it is dressed with transaction details. In `text`,
/// `T1`, `T2`, ... name `txns[0]`, `txns[1]`, ...
pub(crate) struct Finding {
    pub kind: AnomalyType,
    pub key: Option<u32>,
    pub txns: Vec<u32>,
    pub text: String,
}

/// Explains a data-dependency edge: the key, the value, and a sentence naming both ends.
pub(crate) trait Explain {
    fn why(
        &self,
        a: u32,
        b: u32,
        kind: EdgeKind,
        na: &str,
        nb: &str,
    ) -> Option<(Value, Value, String)>;
}

/// Checks a transactional history.
pub fn check(h: &History, opts: &Options) -> Result<Report, InputError> {
    let shape = match opts.workload {
        Workload::ListAppend => Shape::ListAppend,
        Workload::RwRegister => Shape::RwRegister,
    };
    let txns = parse::parse(h, shape)?;
    // Roughly: realtime and process edges plus ww, wr and rw per micro-op.
    let mut edges = EdgeList {
        edges: Vec::with_capacity(txns.txns.len() * 4 + txns.mops.len() * 2),
    };
    let mut found = Vec::new();
    graph::add_order_edges(h, &txns, &mut edges, true, true);
    let la;
    let rw;
    let explain: &dyn Explain = match opts.workload {
        Workload::ListAppend => {
            la = list_append::infer(&txns, &mut edges, &mut found)?;
            &la
        }
        Workload::RwRegister => {
            rw = rw_register::infer(&txns, opts, &mut edges, &mut found)?;
            &rw
        }
    };
    let graph = DepGraph::new(txns.txns.len(), edges);
    let components = graph.cyclic_components();
    let mut budget = Budget {
        steps_left: opts.cycle_search_steps,
        seeds_per_search: opts.cycle_search_seeds.max(1),
        exhausted: false,
    };
    let mut cycles = Vec::new();
    for c in &components {
        cycles.extend(graph::find_cycles(&graph, c, &mut budget));
        if budget.exhausted {
            break;
        }
    }

    let mut anomalies: Vec<Anomaly> = Vec::new();
    let mut counts: BTreeMap<AnomalyType, usize> = BTreeMap::new();
    let mut keep = |a: Anomaly, anomalies: &mut Vec<Anomaly>| {
        let n = counts.entry(a.kind).or_default();
        *n += 1;
        if *n <= opts.max_anomalies_per_type {
            anomalies.push(a);
        }
    };
    for f in found {
        let refs = f
            .txns
            .iter()
            .enumerate()
            .map(|(i, &t)| txn_ref(h, &txns, t, i))
            .collect();
        keep(
            Anomaly {
                kind: f.kind,
                key: f.key.map(|k| txns.keys.value(k).clone()),
                txns: refs,
                cycle: Vec::new(),
                explanation: f.text,
            },
            &mut anomalies,
        );
    }
    for c in cycles {
        keep(explain_cycle(h, &txns, explain, &c), &mut anomalies);
    }
    if budget.exhausted {
        keep(
            Anomaly {
                kind: AnomalyType::plain(AnomalyKind::CycleSearchTimeout),
                key: None,
                txns: Vec::new(),
                cycle: Vec::new(),
                explanation: format!(
                    "the cycle search gave up after {} steps; components left unsearched may hide more anomalies",
                    opts.cycle_search_steps
                ),
            },
            &mut anomalies,
        );
    }
    anomalies.sort_by_key(|a| a.kind);

    let types: Vec<AnomalyType> = counts.keys().copied().collect();
    let (ruled_out, weakest_ruled_out) = ConsistencyModel::ruled_out(&types);
    let verdict = if ruled_out.contains(&opts.consistency_model) {
        Verdict::Invalid
    } else if budget.exhausted {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    Ok(Report {
        verdict,
        workload: opts.workload,
        consistency_model: opts.consistency_model,
        anomaly_counts: counts
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ruled_out,
        weakest_ruled_out,
        anomalies,
        stats: Stats {
            txns: txns.txns.len(),
            edges: graph.edge_count(),
            cyclic_components: components.len(),
        },
    })
}

fn txn_ref(h: &History, txns: &Txns, t: u32, i: usize) -> TxnRef {
    let txn = &txns.txns[t as usize];
    let inv = &h.ops[txn.invoke as usize];
    let comp = txn.complete.map(|c| &h.ops[c as usize]);
    let outcome = comp.map_or(OpType::Info, |c| c.kind);
    let value = match (txn.status, comp) {
        (Status::Ok, Some(c)) => c.value.clone(),
        _ => inv.value.clone(),
    };
    TxnRef {
        name: format!("T{}", i + 1),
        process: inv.process,
        invoke_index: inv.index,
        complete_index: comp.map(|c| c.index),
        outcome,
        value,
    }
}

fn explain_cycle(h: &History, txns: &Txns, explain: &dyn Explain, c: &graph::Cycle) -> Anomaly {
    let nodes: Vec<u32> = c.steps.iter().map(|s| s.0).collect();
    let name = |t: u32| format!("T{}", nodes.iter().position(|&n| n == t).unwrap_or(0) + 1);
    let mut steps = Vec::with_capacity(c.steps.len());
    for &(a, b, kind) in &c.steps {
        let (na, nb) = (name(a), name(b));
        let (ta, tb) = (&txns.txns[a as usize], &txns.txns[b as usize]);
        let (key, value, explanation) = match kind {
            EdgeKind::Process => (
                None,
                None,
                format!(
                    "{na} < {nb} because process {} ran {na} before {nb}",
                    h.ops[ta.invoke as usize].process
                ),
            ),
            EdgeKind::Realtime => (
                None,
                None,
                format!(
                    "{na} < {nb} because {na} completed (op {}) before {nb} was invoked (op {})",
                    txns.index_of(h, a),
                    h.ops[tb.invoke as usize].index
                ),
            ),
            _ => match explain.why(a, b, kind, &na, &nb) {
                Some((k, v, s)) => (Some(k), Some(v), s),
                None => (None, None, format!("{na} < {nb} by a {kind:?} dependency")),
            },
        };
        steps.push(CycleStep {
            from: na,
            to: nb,
            kind,
            key,
            value,
            explanation,
        });
    }
    let mut text = String::new();
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            text.push_str(if i + 1 == steps.len() { "; but " } else { "; " });
        }
        text.push_str(&s.explanation);
    }
    text.push_str(": a cycle");
    Anomaly {
        kind: AnomalyType::of_cycle(c.shape, c.variant),
        key: None,
        txns: nodes
            .iter()
            .enumerate()
            .map(|(i, &t)| txn_ref(h, txns, t, i))
            .collect(),
        cycle: steps,
        explanation: text,
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Renders a report for people: verdict, models ruled out, then each anomaly with its evidence.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let workload = r.workload.name();
    let _ = writeln!(
        s,
        "{workload} check under {}: {}",
        r.consistency_model, r.verdict
    );
    let _ = writeln!(
        s,
        "{}, {}, {}",
        plural(r.stats.txns, "transaction"),
        plural(r.stats.edges, "dependency edge"),
        plural(r.stats.cyclic_components, "cyclic component")
    );
    if r.anomaly_counts.is_empty() {
        let _ = writeln!(s, "no anomalies found");
        return s;
    }
    let counts: Vec<String> = r
        .anomaly_counts
        .iter()
        .map(|(k, v)| format!("{k} ({v})"))
        .collect();
    let _ = writeln!(s, "anomalies: {}", counts.join(", "));
    if !r.ruled_out.is_empty() {
        let all: Vec<&str> = r.ruled_out.iter().map(|m| m.name()).collect();
        let weakest: Vec<&str> = r.weakest_ruled_out.iter().map(|m| m.name()).collect();
        let _ = writeln!(s, "ruled out: {}", all.join(", "));
        let _ = writeln!(s, "weakest model ruled out: {}", weakest.join(", "));
    }
    for a in &r.anomalies {
        let _ = write!(s, "\n{}", a.kind);
        if let Some(k) = &a.key {
            let _ = write!(s, " on key {}", show(k));
        }
        let _ = writeln!(s, ":");
        for t in &a.txns {
            let ops = match t.complete_index {
                Some(c) => format!("ops {}-{c}", t.invoke_index),
                None => format!("op {} (never completed)", t.invoke_index),
            };
            let _ = writeln!(
                s,
                "  {} = {ops} (process {}, {}): {}",
                t.name,
                t.process,
                t.outcome.as_str(),
                t.value
            );
        }
        if a.cycle.is_empty() {
            let _ = writeln!(s, "  {}", a.explanation);
        } else {
            for (i, step) in a.cycle.iter().enumerate() {
                let end = if i + 1 == a.cycle.len() {
                    ": a cycle."
                } else {
                    ";"
                };
                let _ = writeln!(s, "  {}{end}", step.explanation);
            }
        }
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::history::{History, Op, OpType, Process, Value};

    /// A sequential history: each (process, invoke value, ok value) runs alone, in order.
    pub(crate) fn history(txns: &[(u64, &str, &str)]) -> History {
        let mut ops = Vec::new();
        for &(p, inv, ok) in txns {
            for (kind, v) in [(OpType::Invoke, inv), (OpType::Ok, ok)] {
                ops.push(Op {
                    index: ops.len() as u64,
                    time: ops.len() as i64,
                    process: Process::Client(p),
                    kind,
                    f: "txn".into(),
                    key: None,
                    value: serde_json::from_str::<Value>(v).unwrap(),
                    error: None,
                });
            }
        }
        History::new(ops)
    }
}
