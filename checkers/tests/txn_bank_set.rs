//! Bank and set checkers on small hand-built histories, with their text reports snapshot-tested.
use checkers::txn::Verdict;
use checkers::{bank, set, History, Op, OpType, Process, Value};
use serde_json::json;

/// Builds a history from (process, type, f, value) rows; times are 100 ns apart.
fn history(rows: &[(u64, OpType, &str, Value)]) -> History {
    History::new(
        rows.iter()
            .enumerate()
            .map(|(i, (p, kind, f, value))| Op {
                index: i as u64,
                time: i as i64 * 100,
                process: Process::Client(*p),
                kind: *kind,
                f: (*f).into(),
                key: None,
                value: value.clone(),
                error: None,
            })
            .collect(),
    )
}

use OpType::{Fail, Info, Invoke, Ok as Done};

#[test]
fn bank_report_names_the_first_bad_read() {
    let t = json!({"from": 0, "to": 1, "amount": 3});
    let h = history(&[
        (0, Invoke, "transfer", t.clone()),
        (1, Invoke, "read", Value::Null),
        (0, Done, "transfer", t),
        (1, Done, "read", json!({"0": 10, "1": 13})),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!({"0": 7, "1": 13})),
        (3, Invoke, "read", Value::Null),
        (3, Done, "read", json!({"0": -1, "1": 21})),
    ]);
    let r = bank::check(
        &h,
        &bank::Options {
            total: Some(20),
            negative_balances_allowed: false,
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.first_violation.as_ref().map(|a| a.index), Some(3));
    insta::assert_snapshot!("bank_invalid", bank::render_text(&r));
}

#[test]
fn set_report_lists_every_class_and_the_stable_latency() {
    let h = history(&[
        (0, Invoke, "add", json!(1)),
        (0, Done, "add", json!(1)),
        (1, Invoke, "add", json!(2)),
        (1, Done, "add", json!(2)),
        (2, Invoke, "add", json!(3)),
        (2, Info, "add", json!(3)),
        (3, Invoke, "add", json!(4)),
        (3, Fail, "add", json!(4)),
        (4, Invoke, "read", Value::Null),
        (4, Done, "read", json!([2])),
        (4, Invoke, "read", Value::Null),
        (4, Done, "read", json!([1, 2, 3])),
        (5, Invoke, "add", json!(5)),
        (5, Done, "add", json!(5)),
        (4, Invoke, "read", Value::Null),
        (4, Done, "read", json!([1, 3, 9])),
    ]);
    let r = set::check(&h, &set::Options::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.lost, vec![json!(2), json!(5)]);
    assert_eq!(r.unexpected, vec![json!(9)]);
    assert_eq!(r.recovered, vec![json!(3)]);
    insta::assert_snapshot!("set_invalid", set::render_text(&r));
    insta::assert_json_snapshot!("set_invalid_json", r);
}
