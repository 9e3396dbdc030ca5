//! Property tests for the linearizability checker.
//!
//! 1. Histories built from a sequential execution with random overlapping intervals, `info`
//!    and `fail` ops always check linearizable.
//! 2. A brute-force reference (every order of the ops that respects real time, with `info` ops
//!    included or not) agrees with the checker on small random histories, valid and invalid.
use std::collections::BTreeMap;

use checkers::linear::{check, Limits, Model};
use checkers::verdict::Verdict;
use checkers::{History, Op, OpType, Process, Value};
use proptest::prelude::*;
use serde_json::json;

/// One generated operation: what it does and when.
#[derive(Debug, Clone)]
struct Spec {
    f: u8,
    a: u8,
    b: u8,
    key: u8,
    start: u16,
    len: u16,
    /// 0..=6 ok, 7 fail, 8 info, 9 never completes.
    outcome: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..3, 0u8..3, 0u8..3, 0u8..2, 0u16..24, 1u16..12, 0u8..10).prop_map(
        |(f, a, b, key, start, len, outcome)| Spec {
            f,
            a,
            b,
            key,
            start,
            len,
            outcome,
        },
    )
}

fn reg_value(x: u8) -> Value {
    if x == 0 {
        Value::Null
    } else {
        json!(x)
    }
}

fn kv_value(x: u8) -> Value {
    json!(["", "x", "yz"][x as usize % 3])
}

/// The function name and invocation value of a spec under a model.
fn call(model: Model, s: &Spec) -> (&'static str, Value) {
    match (model, s.f) {
        (Model::Kv, 0) => ("get", Value::Null),
        (Model::Kv, 1) => ("put", kv_value(s.a)),
        (Model::Kv, _) => ("append", kv_value(s.a)),
        (_, 0) => ("read", Value::Null),
        (Model::Register, _) | (_, 1) => ("write", reg_value(s.a)),
        _ => ("cas", json!([reg_value(s.a), reg_value(s.b)])),
    }
}

fn initial(model: Model) -> Value {
    if model == Model::Kv {
        json!("")
    } else {
        Value::Null
    }
}

/// The sequential specification, written independently of the checker: the new state and the
/// value a completion reports, or `None` when the op cannot happen in `state`.
fn apply(model: Model, f: &str, arg: &Value, state: &Value) -> Option<(Value, Value)> {
    match f {
        "read" | "get" => Some((state.clone(), state.clone())),
        "write" | "put" => Some((arg.clone(), arg.clone())),
        "append" => {
            let s = format!("{}{}", state.as_str()?, arg.as_str()?);
            Some((json!(s), arg.clone()))
        }
        "cas" if model == Model::CasRegister => {
            (arg[0] == *state).then(|| (arg[1].clone(), arg.clone()))
        }
        _ => None,
    }
}

/// A timed event; the history orders events by time, then by this tiebreak.
struct Event {
    time: u32,
    tiebreak: u32,
    op: Op,
}

/// Turns timed invocations/completions into a history, giving each op a process that is idle
/// over its interval and has never seen `info`.
fn assemble(mut intervals: Vec<(u32, Option<u32>, Op, Op)>) -> History {
    intervals.sort_by_key(|iv| iv.0);
    let mut busy_until: Vec<Option<u32>> = Vec::new(); // None: crashed
    let mut events = Vec::new();
    for (i, (inv_t, done_t, mut inv, mut done)) in intervals.into_iter().enumerate() {
        let p = busy_until
            .iter()
            .position(|b| b.is_some_and(|t| t < inv_t))
            .unwrap_or_else(|| {
                busy_until.push(None);
                busy_until.len() - 1
            });
        let crashed = done.kind == OpType::Info;
        busy_until[p] = if crashed { None } else { done_t };
        inv.process = Process::Client(p as u64);
        done.process = inv.process;
        events.push(Event {
            time: inv_t,
            tiebreak: 2 * i as u32,
            op: inv,
        });
        if let Some(t) = done_t {
            events.push(Event {
                time: t,
                tiebreak: 2 * i as u32 + 1,
                op: done,
            });
        }
    }
    events.sort_by_key(|e| (e.time, e.tiebreak));
    let mut h = History::new(events.into_iter().map(|e| e.op).collect());
    h.reindex();
    h
}

fn op(kind: OpType, f: &str, key: u8, value: Value) -> Op {
    Op {
        index: 0,
        time: 0,
        process: Process::Client(0),
        kind,
        f: f.to_string(),
        key: Some(json!(key)),
        value,
        error: None,
    }
}

/// A history from a sequential execution: op i takes effect at time 4i+2, inside its interval.
/// Fail ops and never-effective info ops do not take effect.
fn sequential_history(model: Model, specs: &[Spec]) -> History {
    let mut state: BTreeMap<u8, Value> = BTreeMap::new();
    let mut intervals = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let lin = 4 * i as u32 + 2;
        let inv_t = lin.saturating_sub(1 + 4 * u32::from(s.start % 6));
        let done_t = lin + 1 + 4 * u32::from(s.len % 6);
        let (f, arg) = call(model, s);
        let cur = state.entry(s.key).or_insert_with(|| initial(model)).clone();
        let takes_effect = s.outcome <= 6 || (s.outcome >= 8 && s.a % 2 == 0);
        let effect = apply(model, f, &arg, &cur);
        let (kind, done_t, result) = match (takes_effect, effect) {
            (true, Some((next, result))) => {
                state.insert(s.key, next);
                match s.outcome {
                    0..=6 => (OpType::Ok, Some(done_t), result),
                    8 => (OpType::Info, Some(done_t), arg.clone()),
                    _ => (OpType::Info, None, arg.clone()),
                }
            }
            // A cas whose compare fails, or an op chosen not to take effect.
            _ => match s.outcome {
                8 | 9 => (
                    OpType::Info,
                    (s.outcome == 8).then_some(done_t),
                    arg.clone(),
                ),
                _ => (OpType::Fail, Some(done_t), arg.clone()),
            },
        };
        intervals.push((
            inv_t,
            done_t,
            op(OpType::Invoke, f, s.key, arg),
            op(kind, f, s.key, result),
        ));
    }
    assemble(intervals)
}

/// A history with random results: usually not linearizable once it has a few reads.
fn random_history(model: Model, specs: &[Spec]) -> History {
    let intervals = specs
        .iter()
        .map(|s| {
            let (f, arg) = call(model, s);
            let inv_t = u32::from(s.start) * 2;
            let done_t = inv_t + u32::from(s.len) * 2 + 1;
            let result = if matches!(f, "read" | "get") {
                if model == Model::Kv {
                    kv_value(s.b)
                } else {
                    reg_value(s.b)
                }
            } else {
                arg.clone()
            };
            let (kind, done_t) = match s.outcome {
                0..=6 => (OpType::Ok, Some(done_t)),
                7 => (OpType::Fail, Some(done_t)),
                8 => (OpType::Info, Some(done_t)),
                _ => (OpType::Info, None),
            };
            (
                inv_t,
                done_t,
                op(OpType::Invoke, f, s.key, arg),
                op(kind, f, s.key, result),
            )
        })
        .collect();
    assemble(intervals)
}

/// The reference: tries every order of the ops that respects real time. `ok` ops must all be
/// placed; `info` and never-completed ops may be placed or left out; `fail` ops are left out.
fn brute_force(model: Model, h: &History) -> bool {
    struct Item {
        key: Value,
        f: String,
        arg: Value,
        result: Option<Value>,
        inv: usize,
        done: Option<usize>,
    }
    let mut items = Vec::new();
    for pair in h.pairs(false).unwrap() {
        let outcome = pair.outcome(h);
        if outcome == OpType::Fail {
            continue;
        }
        let inv = &h.ops[pair.invoke];
        let ok = outcome == OpType::Ok;
        items.push(Item {
            key: inv.key.clone().unwrap_or(Value::Null),
            f: inv.f.clone(),
            arg: inv.value.clone(),
            result: ok.then(|| h.ops[pair.complete.unwrap()].value.clone()),
            inv: pair.invoke,
            done: if ok { pair.complete } else { None },
        });
    }
    fn go(
        model: Model,
        items: &[Item],
        placed: &mut Vec<bool>,
        state: &mut BTreeMap<String, Value>,
    ) -> bool {
        let all_ok_placed = items
            .iter()
            .zip(placed.iter())
            .all(|(it, &p)| p || it.done.is_none());
        if all_ok_placed {
            return true;
        }
        for i in 0..items.len() {
            if placed[i] {
                continue;
            }
            // Every unplaced ok op that returned before this invocation must come first.
            let blocked = items
                .iter()
                .zip(placed.iter())
                .any(|(o, &p)| !p && o.done.is_some_and(|d| d < items[i].inv));
            if blocked {
                continue;
            }
            let key = items[i].key.to_string();
            let cur = state.get(&key).cloned().unwrap_or_else(|| initial(model));
            let Some((next, result)) = apply(model, &items[i].f, &items[i].arg, &cur) else {
                continue;
            };
            if items[i].result.as_ref().is_some_and(|r| *r != result) {
                continue;
            }
            placed[i] = true;
            state.insert(key.clone(), next);
            let found = go(model, items, placed, state);
            placed[i] = false;
            state.insert(key, cur);
            if found {
                return true;
            }
        }
        false
    }
    let mut placed = vec![false; items.len()];
    go(model, &items, &mut placed, &mut BTreeMap::new())
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        Just(Model::Register),
        Just(Model::CasRegister),
        Just(Model::Kv)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn sequential_executions_are_linearizable(model in model(), specs in prop::collection::vec(spec(), 0..40)) {
        let h = sequential_history(model, &specs);
        let r = check(&h, model, &Limits::default()).unwrap();
        prop_assert_eq!(r.verdict, Verdict::Valid, "{}\n{:#?}", r, h.ops);
        let fingerprints = Limits { exact_memo_max_ops: 0, ..Limits::default() };
        let r = check(&h, model, &fingerprints).unwrap();
        prop_assert_eq!(r.verdict, Verdict::Valid, "fingerprint memo: {}\n{:#?}", r, h.ops);
    }

    #[test]
    fn checker_agrees_with_brute_force(model in model(), specs in prop::collection::vec(spec(), 0..7)) {
        let h = random_history(model, &specs);
        let want = if brute_force(model, &h) { Verdict::Valid } else { Verdict::Invalid };
        let r = check(&h, model, &Limits::default()).unwrap();
        prop_assert_eq!(r.verdict, want, "{}\n{:#?}", r, h.ops);
        if let Some(ce) = &r.counterexample {
            // The reported prefix is itself a legal sequential run of the key's object.
            let mut state = initial(model);
            for op in &ce.prefix {
                let stepped = apply(model, &op.f, &op.value, &state);
                prop_assert!(stepped.is_some(), "prefix op cannot run: {}\n{}", op, r);
                let (next, result) = stepped.unwrap();
                if let Some(seen) = &op.result {
                    prop_assert_eq!(seen, &result, "prefix op result differs: {}\n{}", op, r);
                }
                state = next;
            }
            prop_assert!(ce.states.contains(&state) || ce.more_states, "{}", r);
        }
        // The fingerprint memo (used for keys with over 1,024 ops) must agree too.
        let fingerprints = Limits { exact_memo_max_ops: 0, ..Limits::default() };
        let r = check(&h, model, &fingerprints).unwrap();
        prop_assert_eq!(r.verdict, want, "fingerprint memo: {}\n{:#?}", r, h.ops);
    }
}

/// The agreement test above must see both answers often, or it proves little.
#[test]
fn random_histories_are_a_mix_of_valid_and_invalid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..1000 {
        let m = model().new_tree(&mut runner).unwrap().current();
        let specs = prop::collection::vec(spec(), 0..7)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        if brute_force(m, &random_history(m, &specs)) {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid > 200 && invalid > 200,
        "valid {valid}, invalid {invalid}"
    );
}
