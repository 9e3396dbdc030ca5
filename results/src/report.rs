//! The HTML report: one self-contained page (inline CSS, SVG and a few lines of JS; no network
//! access) that reads without JavaScript.
//!
//! Every string that came from the system under test reaches the page through a minijinja
//! template whose `.html` name turns auto-escaping on; only SVG that plotters drew from numbers
//! and our own labels is inserted as safe markup.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use checkers::history::{History, OpType, Process, Value};
use checkers::linear::{Counterexample, OpSummary};
use checkers::verdict::Verdict;
use checkers::{bank, set, txn};
use minijinja::{context, Environment};
use serde::Serialize;

use crate::analysis::{Analysis, CheckerOutput};
use crate::faults::{self, Band};
use crate::plot;

/// Beyond this many client operations the timeline and the scatter plot aggregate.
pub const DETAIL_LIMIT: usize = 10_000;
/// Time buckets of the aggregated timeline and of the quantile and throughput lines.
const BUCKETS: usize = 300;
/// Rows of the aggregated timeline at most (processes are grouped beyond it).
const MAX_ROWS: usize = 120;
/// Operations drawn in a linearizability diagram at most (the end of the prefix).
const LIN_DIAGRAM_OPS: usize = 40;

/// A node's log file, by a path relative to the report's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLog {
    pub node: String,
    pub path: String,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The test's name (the page title).
    pub title: String,
    /// When the run started, as text (e.g. the run directory's timestamp).
    pub started: Option<String>,
    /// Every option the test ran with (`test.yaml`), or `Null`.
    pub params: Value,
    pub history: &'a History,
    pub analysis: &'a Analysis,
    pub node_logs: Vec<NodeLog>,
    /// Other files of the run to link to (relative paths), e.g. `history.jsonl`.
    pub files: Vec<String>,
}

/// Renders the report page.
pub fn render(input: &ReportInput) -> String {
    let page = Page::build(input);
    let mut env = Environment::new();
    env.add_template("report.html", include_str!("templates/report.html"))
        .expect("the report template parses");
    env.get_template("report.html")
        .and_then(|t| t.render(context! { page => page }))
        .expect("the report template renders")
}

/// Time scale shared by every chart: nanoseconds -> x pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub t0: i64,
    pub t1: i64,
    pub left: f64,
    pub width: f64,
}

impl Scale {
    /// Pixels, rounded to a tenth so the page stays small.
    pub fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        px(self.left + (t - self.t0) as f64 / span * self.width)
    }
    pub fn secs(&self, t: i64) -> f64 {
        (t - self.t0) as f64 / 1e9
    }
    pub fn span_secs(&self) -> f64 {
        ((self.t1 - self.t0).max(1)) as f64 / 1e9
    }
}

/// A client operation: invocation and completion paired.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub invoke: usize,
    pub complete: Option<usize>,
    pub outcome: OpType,
    pub start: i64,
    /// Completion time; the end of the history for ops that never completed.
    pub end: i64,
}

pub(crate) fn calls(h: &History) -> Vec<Call> {
    let end = h.ops.iter().map(|o| o.time).max().unwrap_or(0);
    // Histories that break pairing rules still get a report; their ops pair as far as possible.
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, op) in h.ops.iter().enumerate() {
        let Process::Client(p) = op.process else {
            continue;
        };
        if op.kind == OpType::Invoke {
            open.insert(p, out.len());
            out.push(Call {
                invoke: i,
                complete: None,
                outcome: OpType::Info,
                start: op.time,
                end,
            });
        } else if let Some(slot) = open.remove(&p) {
            let c = &mut out[slot];
            c.complete = Some(i);
            c.outcome = op.kind;
            c.end = op.time;
        }
    }
    out
}

#[derive(Serialize)]
struct Param {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Page {
    title: String,
    started: Option<String>,
    verdict: &'static str,
    summary: String,
    params: Vec<Param>,
    stats: Vec<Param>,
    checkers: Vec<CheckerView>,
    notes: Vec<String>,
    timeline: Timeline,
    legend: Vec<LegendItem>,
    latency_svg: minijinja::Value,
    throughput_svg: minijinja::Value,
    clock_svg: Option<minijinja::Value>,
    bands: Vec<BandView>,
    node_logs: Vec<NodeLog>,
    files: Vec<String>,
}

#[derive(Serialize)]
struct LegendItem {
    kind: String,
    class: String,
    count: usize,
}

#[derive(Serialize)]
struct BandView {
    kind: String,
    class: String,
    start_s: String,
    end_s: String,
    stopped: bool,
    detail: String,
    index: u64,
}

#[derive(Serialize)]
struct CheckerView {
    name: String,
    verdict: &'static str,
    elapsed: String,
    summary: String,
    lin: Option<LinView>,
    txn: Vec<TxnAnomalyView>,
    bank: Vec<BankView>,
    set: Option<SetView>,
    facts: Vec<Param>,
}

#[derive(Serialize)]
struct OpRef {
    index: u64,
    /// Anchor in the timeline (the invocation's index).
    anchor: String,
    text: String,
}

#[derive(Serialize)]
struct LinView {
    key: Option<String>,
    op: OpRef,
    prefix: Vec<OpRef>,
    prefix_total: usize,
    prefix_shown_from: usize,
    states: Vec<String>,
    more_states: bool,
    diagram: LinDiagram,
    ops: String,
}

#[derive(Serialize)]
struct LinDiagram {
    width: f64,
    height: f64,
    rows: Vec<RowLabel>,
    bars: Vec<LinBar>,
    ticks: Vec<Tick>,
    note: Option<String>,
}

#[derive(Serialize)]
struct LinBar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    class: &'static str,
    anchor: String,
    label: String,
    order: String,
    title: String,
}

#[derive(Serialize)]
struct TxnAnomalyView {
    id: String,
    kind: String,
    key: Option<String>,
    explanation: String,
    txns: Vec<TxnView>,
    steps: Vec<StepView>,
    ops: String,
    cycle: Option<CycleDiagram>,
}

#[derive(Serialize)]
struct TxnView {
    name: String,
    process: String,
    anchor: String,
    index: u64,
    outcome: &'static str,
    value: String,
}

#[derive(Serialize)]
struct StepView {
    from: String,
    to: String,
    kind: String,
    explanation: String,
}

#[derive(Serialize)]
struct CycleDiagram {
    size: f64,
    nodes: Vec<CycleNode>,
    edges: Vec<CycleEdge>,
}

#[derive(Serialize)]
struct CycleNode {
    x: f64,
    y: f64,
    name: String,
}

#[derive(Serialize)]
struct CycleEdge {
    /// SVG path: a quadratic curve from one transaction to the next.
    d: String,
    lx: f64,
    ly: f64,
    kind: String,
}

#[derive(Serialize)]
struct BankView {
    kind: String,
    anchor: String,
    explanation: String,
}

#[derive(Serialize)]
struct SetView {
    lost: String,
    unexpected: String,
    failed_present: String,
    recovered: String,
    stale: String,
    final_read: Option<String>,
}

#[derive(Serialize)]
struct RowLabel {
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Tick {
    x: f64,
    label: String,
}

#[derive(Serialize)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    class: String,
    id: Option<String>,
    title: String,
    opacity: Option<f64>,
}

#[derive(Serialize)]
struct Timeline {
    width: f64,
    height: f64,
    plot_top: f64,
    plot_bottom: f64,
    rows: Vec<RowLabel>,
    bands: Vec<Rect>,
    ops: Vec<Rect>,
    ticks: Vec<Tick>,
    aggregated: bool,
}

/// Rounds a pixel coordinate to a tenth.
pub(crate) fn px(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn verdict_str(v: Verdict) -> &'static str {
    v.as_str()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

pub(crate) fn band_class(kind: &str) -> String {
    if faults::KINDS.contains(&kind) {
        format!("f-{kind}")
    } else {
        "f-other".to_string()
    }
}

/// Flattens the test options into `a.b.c = value` lines.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<Param>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        Value::Null if prefix.is_empty() => {}
        other => out.push(Param {
            name: prefix.to_string(),
            value: clip(show(other), 400),
        }),
    }
}

fn fmt_secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// "nice" tick positions over [0, span] seconds.
fn ticks(scale: &Scale, n: usize) -> Vec<Tick> {
    let span = scale.span_secs();
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    let mut out = Vec::new();
    let mut s = 0.0;
    while s <= span * 1.0001 {
        let t = scale.t0 + (s * 1e9) as i64;
        let label = if step >= 1.0 {
            format!("{s:.0}s")
        } else if step >= 0.01 {
            format!("{s:.2}s")
        } else {
            format!("{:.1}ms", s * 1e3)
        };
        out.push(Tick {
            x: scale.x(t),
            label,
        });
        s += step;
    }
    out
}

fn op_text(h: &History, c: &Call) -> String {
    let inv = &h.ops[c.invoke];
    let mut s = format!("process {}: {}", inv.process, inv.f);
    if let Some(k) = &inv.key {
        let _ = write!(s, " key {}", show(k));
    }
    if !inv.value.is_null() {
        let _ = write!(s, " {}", clip(show(&inv.value), 200));
    }
    match c.complete.map(|i| &h.ops[i]) {
        Some(done) => {
            let _ = write!(s, " → {}", done.kind.as_str());
            if done.kind == OpType::Ok && done.value != inv.value && !done.value.is_null() {
                let _ = write!(s, " {}", clip(show(&done.value), 200));
            }
            if let Some(e) = &done.error {
                let _ = write!(s, " ({})", clip(e.clone(), 200));
            }
            let _ = write!(
                s,
                " [ops {}..{}, {:.3} ms]",
                inv.index,
                done.index,
                (c.end - c.start) as f64 / 1e6
            );
        }
        None => {
            let _ = write!(s, " → never completed [op {}]", inv.index);
        }
    }
    s
}

fn summary_text(op: &OpSummary) -> String {
    clip(op.to_string(), 400)
}

impl Page {
    fn build(input: &ReportInput) -> Page {
        let h = input.history;
        let a = input.analysis;
        let calls = calls(h);
        let t0 = h.ops.iter().map(|o| o.time).min().unwrap_or(0);
        let t1 = h.ops.iter().map(|o| o.time).max().unwrap_or(0).max(t0 + 1);
        let scale = Scale {
            t0,
            t1,
            left: 80.0,
            width: 1000.0,
        };
        let by_index: HashMap<u64, usize> =
            h.ops.iter().enumerate().map(|(i, o)| (o.index, i)).collect();
        // The invocation index of the call each history index belongs to.
        let mut call_of: HashMap<u64, usize> = HashMap::with_capacity(calls.len() * 2);
        for (ci, c) in calls.iter().enumerate() {
            call_of.insert(h.ops[c.invoke].index, ci);
            if let Some(d) = c.complete {
                call_of.insert(h.ops[d].index, ci);
            }
        }
        let anchor = |index: u64| -> String {
            match call_of.get(&index) {
                Some(&ci) => format!("op-{}", h.ops[calls[ci].invoke].index),
                None => format!("op-{index}"),
            }
        };

        let mut highlighted: BTreeSet<u64> = BTreeSet::new();
        let mut checkers = Vec::new();
        for run in &a.checkers {
            let mut view = CheckerView {
                name: run.name.clone(),
                verdict: verdict_str(run.verdict),
                elapsed: format!("{:.1} ms", run.elapsed_us as f64 / 1e3),
                summary: String::new(),
                lin: None,
                txn: Vec::new(),
                bank: Vec::new(),
                set: None,
                facts: Vec::new(),
            };
            match &run.output {
                CheckerOutput::Linear(r) => {
                    view.summary = match r.verdict {
                        Verdict::Valid => "Linearizable.".into(),
                        Verdict::Invalid => "Not linearizable.".into(),
                        Verdict::Unknown => format!(
                            "Could not decide: {}",
                            r.unknown_reason.as_deref().unwrap_or("no reason given")
                        ),
                    };
                    view.facts = vec![
                        Param {
                            name: "model".into(),
                            value: r.model.to_string(),
                        },
                        Param {
                            name: "keys".into(),
                            value: r.keys.to_string(),
                        },
                        Param {
                            name: "operations".into(),
                            value: r.operations.to_string(),
                        },
                    ];
                    if let Some(ce) = &r.counterexample {
                        let lin = lin_view(h, ce, &by_index, &anchor);
                        for op in ce.prefix.iter().chain([&ce.op]) {
                            highlighted.insert(op.index);
                        }
                        view.lin = Some(lin);
                    }
                }
                CheckerOutput::Txn(r) => {
                    view.summary = txn_summary(r);
                    view.facts = vec![
                        Param {
                            name: "workload".into(),
                            value: r.workload.name().into(),
                        },
                        Param {
                            name: "consistency model".into(),
                            value: r.consistency_model.name().into(),
                        },
                        Param {
                            name: "transactions".into(),
                            value: r.stats.txns.to_string(),
                        },
                        Param {
                            name: "dependency edges".into(),
                            value: r.stats.edges.to_string(),
                        },
                    ];
                    for (i, an) in r.anomalies.iter().enumerate() {
                        for t in &an.txns {
                            highlighted.insert(t.invoke_index);
                        }
                        view.txn.push(txn_view(&run.name, i, an, &anchor));
                    }
                }
                CheckerOutput::Bank(r) => {
                    view.summary = bank_summary(r);
                    for an in &r.anomalies {
                        highlighted.insert(an.index);
                        view.bank.push(BankView {
                            kind: format!("{:?}", an.kind),
                            anchor: anchor(an.index),
                            explanation: an.explanation.clone(),
                        });
                    }
                }
                CheckerOutput::Set(r) => {
                    view.summary = set_summary(r);
                    let list = |v: &[Value]| -> String {
                        let shown: Vec<String> = v.iter().take(100).map(show).collect();
                        let more = if v.len() > 100 {
                            format!(" … ({} in all)", v.len())
                        } else {
                            String::new()
                        };
                        format!("{}{more}", shown.join(", "))
                    };
                    if let Some(f) = r.final_read {
                        highlighted.insert(f);
                    }
                    view.set = Some(SetView {
                        lost: list(&r.lost),
                        unexpected: list(&r.unexpected),
                        failed_present: list(&r.failed_present),
                        recovered: list(&r.recovered),
                        stale: list(&r.stale),
                        final_read: r.final_read.map(&anchor),
                    });
                }
            }
            checkers.push(view);
        }
        // Highlight by call, whatever index (invoke or completion) the checker named.
        let highlighted_calls: BTreeSet<usize> = highlighted
            .iter()
            .filter_map(|i| call_of.get(i).copied())
            .collect();

        let bands = faults::bands(h);
        let mut notes = Vec::new();
        let timeline = timeline(h, &calls, &scale, &bands, &highlighted_calls, &mut notes);
        let mut legend: Vec<LegendItem> = Vec::new();
        for b in &bands {
            match legend.iter_mut().find(|l| l.kind == b.kind) {
                Some(l) => l.count += 1,
                None => legend.push(LegendItem {
                    kind: b.kind.clone(),
                    class: band_class(&b.kind),
                    count: 1,
                }),
            }
        }
        let latency_svg = plot::latency(h, &calls, &scale, &bands, &mut notes);
        let throughput_svg = plot::throughput(&calls, &scale, &bands);
        let offsets = faults::clock_offsets(h);
        let clock_svg = (!offsets.is_empty()).then(|| {
            minijinja::Value::from_safe_string(plot::clock(&offsets, &scale, &bands))
        });

        let mut params = Vec::new();
        flatten("", &input.params, &mut params);
        let processes: BTreeSet<Process> = h
            .ops
            .iter()
            .filter(|o| o.is_client())
            .map(|o| o.process)
            .collect();
        let outcome_count = |k: OpType| calls.iter().filter(|c| c.outcome == k).count();
        let stats = vec![
            Param {
                name: "history entries".into(),
                value: h.ops.len().to_string(),
            },
            Param {
                name: "client operations".into(),
                value: format!(
                    "{} ({} ok, {} fail, {} info/unknown)",
                    calls.len(),
                    outcome_count(OpType::Ok),
                    outcome_count(OpType::Fail),
                    outcome_count(OpType::Info)
                ),
            },
            Param {
                name: "client processes".into(),
                value: processes.len().to_string(),
            },
            Param {
                name: "duration".into(),
                value: fmt_secs(scale.span_secs()),
            },
            Param {
                name: "faults".into(),
                value: bands.len().to_string(),
            },
            Param {
                name: "analysis time".into(),
                value: format!("{:.1} ms", a.elapsed_us as f64 / 1e3),
            },
        ];
        let anomalies = a.anomaly_count();
        let summary = match a.verdict {
            Verdict::Valid => format!(
                "Valid: {} checker{} found no anomaly in {} client operations.",
                a.checkers.len(),
                if a.checkers.len() == 1 { "" } else { "s" },
                calls.len()
            ),
            Verdict::Invalid => format!(
                "Invalid: {anomalies} anomal{} found in {} client operations.",
                if anomalies == 1 { "y" } else { "ies" },
                calls.len()
            ),
            Verdict::Unknown => "Unknown: a checker could not decide; see below.".to_string(),
        };
        Page {
            title: input.title.clone(),
            started: input.started.clone(),
            verdict: verdict_str(a.verdict),
            summary,
            params,
            stats,
            checkers,
            notes,
            timeline,
            legend,
            latency_svg: minijinja::Value::from_safe_string(latency_svg),
            throughput_svg: minijinja::Value::from_safe_string(throughput_svg),
            clock_svg,
            bands: bands
                .iter()
                .map(|b| BandView {
                    kind: b.kind.clone(),
                    class: band_class(&b.kind),
                    start_s: format!("{:.3}", scale.secs(b.start)),
                    end_s: format!("{:.3}", scale.secs(b.end)),
                    stopped: b.stopped,
                    detail: b.detail.clone(),
                    index: b.start_index,
                })
                .collect(),
            node_logs: input.node_logs.clone(),
            files: input.files.clone(),
        }
    }
}

fn txn_summary(r: &txn::Report) -> String {
    match r.verdict {
        txn::Verdict::Valid => format!(
            "No anomaly: consistent with {}.",
            r.consistency_model.name()
        ),
        _ if r.anomaly_counts.is_empty() => "Could not decide.".into(),
        _ => {
            let counts: Vec<String> = r
                .anomaly_counts
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            let weakest: Vec<&str> = r.weakest_ruled_out.iter().map(|m| m.name()).collect();
            format!(
                "Found {}. Rules out {} and every stronger model.",
                counts.join(", "),
                if weakest.is_empty() {
                    "nothing".to_string()
                } else {
                    weakest.join(", ")
                }
            )
        }
    }
}

fn bank_summary(r: &bank::Report) -> String {
    format!(
        "{} reads, {} bad{}.",
        r.reads,
        r.bad_reads,
        r.expected_total
            .map(|t| format!("; expected total {t}"))
            .unwrap_or_default()
    )
}

fn set_summary(r: &set::Report) -> String {
    format!(
        "{} adds attempted, {} acknowledged, {} present in the final read; {} lost, {} unexpected.",
        r.attempted,
        r.acknowledged,
        r.ok,
        r.lost.len(),
        r.unexpected.len()
    )
}

fn txn_view(
    checker: &str,
    i: usize,
    an: &txn::Anomaly,
    anchor: &dyn Fn(u64) -> String,
) -> TxnAnomalyView {
    let txns: Vec<TxnView> = an
        .txns
        .iter()
        .map(|t| TxnView {
            name: t.name.clone(),
            process: t.process.to_string(),
            anchor: anchor(t.invoke_index),
            index: t.invoke_index,
            outcome: t.outcome.as_str(),
            value: clip(show(&t.value), 600),
        })
        .collect();
    let steps: Vec<StepView> = an
        .cycle
        .iter()
        .map(|s| StepView {
            from: s.from.clone(),
            to: s.to.clone(),
            kind: serde_json::to_value(s.kind)
                .ok()
                .as_ref()
                .map(show)
                .unwrap_or_default(),
            explanation: s.explanation.clone(),
        })
        .collect();
    let cycle = (!steps.is_empty()).then(|| cycle_diagram(&steps));
    TxnAnomalyView {
        id: format!(
            "{}-{}-{i}",
            checker
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>(),
            an.kind
        ),
        kind: an.kind.to_string(),
        key: an.key.as_ref().map(show),
        explanation: an.explanation.clone(),
        ops: txns
            .iter()
            .map(|t| t.anchor.clone())
            .collect::<Vec<_>>()
            .join(" "),
        txns,
        steps,
        cycle,
    }
}

/// Transactions on a circle, each cycle edge an arrow labelled with its kind.
fn cycle_diagram(steps: &[StepView]) -> CycleDiagram {
    let mut names: Vec<String> = Vec::new();
    for s in steps {
        for n in [&s.from, &s.to] {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let size = 260.0;
    let (c, r) = (size / 2.0, size / 2.0 - 40.0);
    let pos = |i: usize| {
        let a = -std::f64::consts::FRAC_PI_2
            + i as f64 * std::f64::consts::TAU / names.len().max(1) as f64;
        (c + r * a.cos(), c + r * a.sin())
    };
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (x, y) = pos(i);
            CycleNode {
                x: px(x),
                y: px(y),
                name: n.clone(),
            }
        })
        .collect();
    let at = |n: &str| names.iter().position(|m| m == n).unwrap_or(0);
    // Edges bend to their left, so the two edges of a two-transaction cycle do not overlap.
    let bend = if names.len() == 2 { 45.0 } else { 18.0 };
    let edges = steps
        .iter()
        .map(|s| {
            let (x1, y1) = pos(at(&s.from));
            let (x2, y2) = pos(at(&s.to));
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (nx, ny) = (dy / len, -dx / len);
            let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
            let (cx, cy) = (mx + nx * bend, my + ny * bend);
            // Start and end outside the node circles (radius 16) so the arrowhead shows.
            let toward = |(ax, ay): (f64, f64), gap: f64| {
                let (vx, vy) = (cx - ax, cy - ay);
                let l = (vx * vx + vy * vy).sqrt().max(1.0);
                (ax + vx / l * gap, ay + vy / l * gap)
            };
            let (sx, sy) = toward((x1, y1), 18.0);
            let (ex, ey) = toward((x2, y2), 20.0);
            CycleEdge {
                d: format!(
                    "M{} {} Q{} {} {} {}",
                    px(sx),
                    px(sy),
                    px(cx),
                    px(cy),
                    px(ex),
                    px(ey)
                ),
                lx: px(mx + nx * (bend / 2.0 + 12.0)),
                ly: px(my + ny * (bend / 2.0 + 12.0) + 4.0),
                kind: s.kind.clone(),
            }
        })
        .collect();
    CycleDiagram { size, nodes, edges }
}

fn lin_view(
    h: &History,
    ce: &Counterexample,
    by_index: &HashMap<u64, usize>,
    anchor: &dyn Fn(u64) -> String,
) -> LinView {
    let op_ref = |o: &OpSummary| OpRef {
        index: o.index,
        anchor: anchor(o.index),
        text: summary_text(o),
    };
    let total = ce.prefix.len();
    let from = total.saturating_sub(200);
    let prefix = ce.prefix[from..].iter().map(op_ref).collect();
    let states = ce.states.iter().map(|s| clip(show(s), 200)).collect();
    let ops = ce
        .prefix
        .iter()
        .chain([&ce.op])
        .map(|o| anchor(o.index))
        .collect::<Vec<_>>()
        .join(" ");
    LinView {
        key: ce.key.as_ref().map(show),
        op: op_ref(&ce.op),
        prefix,
        prefix_total: total,
        prefix_shown_from: from + 1,
        states,
        more_states: ce.more_states,
        diagram: lin_diagram(h, ce, by_index, anchor),
        ops,
    }
}

/// Porcupine-style: the end of the linearizable prefix and the op that could not be
/// linearized, as bars per process on a time axis, numbered in linearization order.
fn lin_diagram(
    h: &History,
    ce: &Counterexample,
    by_index: &HashMap<u64, usize>,
    anchor: &dyn Fn(u64) -> String,
) -> LinDiagram {
    let total = ce.prefix.len();
    let from = total.saturating_sub(LIN_DIAGRAM_OPS);
    let mut shown: Vec<(Option<usize>, &OpSummary)> = ce.prefix[from..]
        .iter()
        .enumerate()
        .map(|(i, o)| (Some(from + i + 1), o))
        .collect();
    shown.push((None, &ce.op));
    let time_of = |i: u64| by_index.get(&i).map(|&p| h.ops[p].time);
    let spans: Vec<(i64, Option<i64>)> = shown
        .iter()
        .map(|(_, o)| {
            (
                time_of(o.index).unwrap_or(0),
                o.completed_index.and_then(time_of),
            )
        })
        .collect();
    let t0 = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let t_end = spans
        .iter()
        .map(|s| s.1.unwrap_or(s.0))
        .max()
        .unwrap_or(0);
    // Ops that never complete run a little past the last completion.
    let t1 = (t_end + (t_end - t0) / 10).max(t0 + 1);
    let scale = Scale {
        t0,
        t1,
        left: 80.0,
        width: 900.0,
    };
    let procs: BTreeSet<Process> = shown.iter().map(|(_, o)| o.process).collect();
    let row_of: HashMap<Process, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let rh = 26.0;
    let top = 10.0;
    let rows = procs
        .iter()
        .enumerate()
        .map(|(i, p)| RowLabel {
            y: px(top + i as f64 * rh + rh * 0.65),
            label: format!("process {p}"),
        })
        .collect();
    let bars = shown
        .iter()
        .zip(&spans)
        .map(|((order, o), (s, e))| {
            let x = scale.x(*s);
            let w = px((scale.x(e.unwrap_or(t1)) - x).max(3.0));
            let mut label = o.f.clone();
            if !o.value.is_null() {
                label.push(' ');
                label.push_str(&show(&o.value));
            }
            if let Some(r) = &o.result {
                if r != &o.value {
                    label.push_str(" → ");
                    label.push_str(&show(r));
                }
            }
            LinBar {
                x,
                y: top + row_of[&o.process] as f64 * rh + 3.0,
                w,
                h: rh - 6.0,
                class: match (order, o.outcome) {
                    (None, _) => "blocked",
                    (_, OpType::Ok) => "ok",
                    _ => "info",
                },
                anchor: anchor(o.index),
                label: clip(label, 40),
                order: order.map_or("✗".to_string(), |n| n.to_string()),
                title: summary_text(o),
            }
        })
        .collect();
    let height = top + procs.len() as f64 * rh + 30.0;
    LinDiagram {
        width: 1000.0,
        height,
        rows,
        bars,
        ticks: ticks(&scale, 8),
        note: (from > 0).then(|| {
            format!("Showing the last {LIN_DIAGRAM_OPS} of {total} operations of the prefix.")
        }),
    }
}

/// Operations per process over time, with fault bands behind them.
fn timeline(
    h: &History,
    calls: &[Call],
    scale: &Scale,
    bands: &[Band],
    highlighted: &BTreeSet<usize>,
    notes: &mut Vec<String>,
) -> Timeline {
    let procs: BTreeSet<u64> = calls
        .iter()
        .filter_map(|c| match h.ops[c.invoke].process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        })
        .collect();
    let aggregated = calls.len() > DETAIL_LIMIT;
    let rank: HashMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let grouped = aggregated && procs.len() > MAX_ROWS;
    let nrows = if grouped { MAX_ROWS } else { procs.len() };
    let row_of = |c: &Call| -> usize {
        let Process::Client(p) = h.ops[c.invoke].process else {
            return 0;
        };
        let r = rank[&p];
        if grouped {
            r * MAX_ROWS / procs.len()
        } else {
            r
        }
    };
    let rh = (720.0 / nrows.max(1) as f64).clamp(4.0, 18.0);
    let top = 6.0;
    let plot_bottom = px(top + nrows as f64 * rh);
    let label_every = ((11.0 / rh).ceil() as usize).max(1);
    let procs_v: Vec<u64> = procs.iter().copied().collect();
    let rows = (0..nrows)
        .filter(|r| r % label_every == 0)
        .map(|r| RowLabel {
            y: px(top + r as f64 * rh + rh * 0.75),
            label: if grouped {
                let lo = procs_v[r * procs.len() / MAX_ROWS];
                format!("p{lo}…")
            } else {
                format!("p{}", procs_v[r])
            },
        })
        .collect();
    let band_rects = bands
        .iter()
        .map(|b| {
            let x = scale.x(b.start);
            Rect {
                x,
                y: top,
                w: px((scale.x(b.end) - x).max(2.0)),
                h: px(plot_bottom - top),
                class: band_class(&b.kind),
                id: None,
                title: format!(
                    "{} {:.3}s–{:.3}s{}: {}",
                    b.kind,
                    scale.secs(b.start),
                    scale.secs(b.end),
                    if b.stopped { "" } else { " (still active)" },
                    b.detail
                ),
                opacity: None,
            }
        })
        .collect();
    let mut ops = Vec::new();
    let bar = |ci: usize, c: &Call, hl: bool| -> Rect {
        let x = scale.x(c.start);
        let r = row_of(c);
        Rect {
            x,
            y: px(top + r as f64 * rh + 1.0),
            w: px((scale.x(c.end) - x).max(1.5)),
            h: px((rh - 2.0).max(2.0)),
            class: format!("op {}{}", c.outcome.as_str(), if hl { " hl" } else { "" }),
            id: Some(format!("op-{}", h.ops[calls[ci].invoke].index)),
            title: op_text(h, c),
            opacity: None,
        }
    };
    if !aggregated {
        for (ci, c) in calls.iter().enumerate() {
            ops.push(bar(ci, c, highlighted.contains(&ci)));
        }
    } else {
        // Per row and time bucket: how many ops, and the worst outcome among them.
        let mut cells: BTreeMap<(usize, usize), [usize; 3]> = BTreeMap::new();
        let span = (scale.t1 - scale.t0).max(1) as f64;
        for c in calls {
            let b = (((c.start - scale.t0) as f64 / span) * BUCKETS as f64) as usize;
            let slot = match c.outcome {
                OpType::Ok => 0,
                OpType::Fail => 1,
                _ => 2,
            };
            cells.entry((row_of(c), b.min(BUCKETS - 1))).or_default()[slot] += 1;
        }
        let max = cells
            .values()
            .map(|c| c.iter().sum::<usize>())
            .max()
            .unwrap_or(1);
        let bw = scale.width / BUCKETS as f64;
        for ((r, b), n) in &cells {
            let count: usize = n.iter().sum();
            let class = if n[2] > 0 {
                "info"
            } else if n[1] > 0 {
                "fail"
            } else {
                "ok"
            };
            ops.push(Rect {
                x: px(scale.left + *b as f64 * bw),
                y: px(top + *r as f64 * rh + 1.0),
                w: px(bw),
                h: px((rh - 2.0).max(2.0)),
                class: format!("cell {class}"),
                id: None,
                title: format!("{} ok, {} fail, {} info", n[0], n[1], n[2]),
                opacity: Some((25.0 + 75.0 * count as f64 / max as f64).round() / 100.0),
            });
        }
        for &ci in highlighted {
            ops.push(bar(ci, &calls[ci], true));
        }
        notes.push(format!(
            "The history has {} client operations, more than {DETAIL_LIMIT}: the timeline shows \
             {BUCKETS} time buckets per row (colour: worst outcome in the bucket, darker: more \
             operations){}; operations named by an anomaly are drawn one by one.",
            calls.len(),
            if grouped {
                format!(", with {} processes grouped into {MAX_ROWS} rows", procs.len())
            } else {
                String::new()
            }
        ));
    }
    Timeline {
        width: scale.left + scale.width + 20.0,
        height: plot_bottom + 24.0,
        plot_top: top,
        plot_bottom,
        rows,
        bands: band_rects,
        ops,
        ticks: ticks(scale, 10),
        aggregated,
    }
}
