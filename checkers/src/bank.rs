//! The bank checker: transfers move money between accounts, so every read of all balances must
//! show the same total, and (unless allowed) no balance may be negative.
//!
//! Operations: `f: "transfer"` with value `{"from": 1, "to": 2, "amount": 5}`; `f: "read"` whose
//! `ok` completion holds an object mapping account (a string) to balance.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::history::{History, OpType, PairingError, Process, Value};
use crate::txn::Verdict;

/// How to check a bank history.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The total every read must show. Without it, the first `ok` read sets the total.
    pub total: Option<i64>,
    /// Whether balances may go below zero.
    pub negative_balances_allowed: bool,
}

/// A bank history that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("op {index}: {reason}")]
    Malformed { index: u64, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BankAnomalyKind {
    /// The balances of a read do not add up to the total.
    WrongTotal,
    /// A read shows an account below zero.
    NegativeBalance,
}

/// One bad read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAnomaly {
    pub kind: BankAnomalyKind,
    /// History index of the read's completion.
    pub index: u64,
    pub process: Process,
    pub time: i64,
    /// The read's balances.
    pub balances: Value,
    pub total: i64,
    pub expected_total: i64,
    /// For a negative balance: which account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub reads: usize,
    pub bad_reads: usize,
    pub expected_total: Option<i64>,
    /// The first bad read, by invocation order, if any.
    pub first_violation: Option<BankAnomaly>,
    /// Bad reads, at most 32 (all are counted in `bad_reads`).
    pub anomalies: Vec<BankAnomaly>,
}

const KEPT: usize = 32;

/// Checks a bank history.
pub fn check(h: &History, opts: &Options) -> Result<Report, InputError> {
    let mut expected = opts.total;
    let mut reads = 0;
    let mut bad_reads = 0;
    let mut anomalies = Vec::new();
    for p in h.pairs(false)? {
        let inv = &h.ops[p.invoke];
        let Some(c) = p.complete.map(|c| &h.ops[c]) else {
            continue;
        };
        if inv.f != "read" || c.kind != OpType::Ok {
            continue;
        }
        let Some(accounts) = c.value.as_object() else {
            return Err(InputError::Malformed {
                index: c.index,
                reason: "a bank read must return an object of account -> balance".into(),
            });
        };
        let mut total: i64 = 0;
        let mut negative: Option<(&String, i64)> = None;
        for (account, balance) in accounts {
            let Some(b) = balance.as_i64() else {
                return Err(InputError::Malformed {
                    index: c.index,
                    reason: format!("balance of account {account} is {balance}, not an integer"),
                });
            };
            total = total.saturating_add(b);
            if b < 0 && negative.is_none() {
                negative = Some((account, b));
            }
        }
        reads += 1;
        let want = *expected.get_or_insert(total);
        let mut bad = false;
        let mut record = |kind, account: Option<String>, explanation: String| {
            bad = true;
            if anomalies.len() < KEPT {
                anomalies.push(BankAnomaly {
                    kind,
                    index: c.index,
                    process: c.process,
                    time: c.time,
                    balances: c.value.clone(),
                    total,
                    expected_total: want,
                    account,
                    explanation,
                });
            }
        };
        if total != want {
            record(
                BankAnomalyKind::WrongTotal,
                None,
                format!(
                    "the read completed at op {} shows a total of {total}, but transfers conserve the total of {want}",
                    c.index
                ),
            );
        }
        if let (Some((account, b)), false) = (negative, opts.negative_balances_allowed) {
            record(
                BankAnomalyKind::NegativeBalance,
                Some(account.clone()),
                format!(
                    "the read completed at op {} shows account {account} at {b}, below zero",
                    c.index
                ),
            );
        }
        if bad {
            bad_reads += 1;
        }
    }
    let verdict = if bad_reads > 0 {
        Verdict::Invalid
    } else if reads == 0 {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    Ok(Report {
        verdict,
        reads,
        bad_reads,
        expected_total: expected,
        first_violation: anomalies.first().cloned(),
        anomalies,
    })
}

/// Renders a bank report for people.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let total = r.expected_total.map_or("unknown".into(), |t| t.to_string());
    let _ = writeln!(
        s,
        "bank check: {} ({} reads, {} bad, expected total {total})",
        r.verdict, r.reads, r.bad_reads
    );
    if r.reads == 0 {
        let _ = writeln!(s, "no successful reads: nothing to check");
    }
    for a in &r.anomalies {
        let _ = writeln!(s, "  {}", a.explanation);
    }
    if r.bad_reads > r.anomalies.len() {
        let _ = writeln!(
            s,
            "  ... and {} more bad reads",
            r.bad_reads - r.anomalies.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use serde_json::json;

    fn op(i: u64, p: u64, kind: OpType, f: &str, value: Value) -> Op {
        Op {
            index: i,
            time: i as i64 * 10,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value,
            error: None,
        }
    }

    fn read(i: u64, balances: Value) -> [Op; 2] {
        [
            op(i, 0, OpType::Invoke, "read", Value::Null),
            op(i + 1, 0, OpType::Ok, "read", balances),
        ]
    }

    #[test]
    fn conserved_totals_are_valid() {
        let t = json!({"from": 0, "to": 1, "amount": 5});
        let mut ops = vec![
            op(0, 1, OpType::Invoke, "transfer", t.clone()),
            op(1, 1, OpType::Ok, "transfer", t),
        ];
        ops.extend(read(2, json!({"0": 5, "1": 15})));
        ops.extend(read(4, json!({"0": 10, "1": 10})));
        let r = check(
            &History::new(ops),
            &Options {
                total: Some(20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.reads, 2);
    }

    #[test]
    fn first_wrong_total_and_negative_balance_are_reported() {
        let mut ops = Vec::new();
        ops.extend(read(0, json!({"0": 10, "1": 10})));
        ops.extend(read(2, json!({"0": 25, "1": -5})));
        ops.extend(read(4, json!({"0": 4, "1": 10})));
        let r = check(&History::new(ops), &Options::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.bad_reads, 2);
        let first = r.first_violation.unwrap();
        assert_eq!(
            (first.kind, first.index),
            (BankAnomalyKind::NegativeBalance, 3)
        );
        assert_eq!(first.account.as_deref(), Some("1"));
        assert_eq!(r.anomalies[1].kind, BankAnomalyKind::WrongTotal);
        assert_eq!(r.anomalies[1].total, 14);
    }

    #[test]
    fn non_numeric_balance_is_an_input_error() {
        let h = History::new(read(0, json!({"0": "ten"})).to_vec());
        let e = check(&h, &Options::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "op 1: balance of account 0 is \"ten\", not an integer"
        );
    }
}
