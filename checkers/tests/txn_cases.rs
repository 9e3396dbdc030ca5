//! Data-driven tests: every `tests/data/txn/NAME.jsonl` is a small hand-built history and
//! `NAME.expected` says what the transactional checker must find in it:
//!
//! ```text
//! workload: list-append | rw-register
//! model: serializable             (optional; default strict-serializable)
//! linearizable-keys: true         (optional, rw-register)
//! verdict: valid | invalid | unknown
//! anomalies: G1a, dirty-update    (exactly the set of anomaly types found)
//! weakest: read-committed         (optional; the weakest models ruled out)
//! ```
//!
//! The text rendering of each report is snapshot-tested, and a few reports also as JSON.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use checkers::txn::{self, AnomalyType, ConsistencyModel, Options, Verdict, Workload};
use checkers::{History, Op};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/txn")
}

/// Parses a Faultline JSON-lines history, naming the file and line of the first bad line.
fn read_history(path: &Path) -> History {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ops = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Op>(l)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect();
    History::new(ops)
}

struct Expected {
    options: Options,
    verdict: Verdict,
    anomalies: BTreeSet<AnomalyType>,
    weakest: Option<Vec<ConsistencyModel>>,
}

fn read_expected(path: &Path) -> Expected {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let list = |k: &str| -> Vec<&str> {
        fields
            .get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let workload: Workload = fields
        .get("workload")
        .copied()
        .unwrap_or("")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut options = Options {
        workload,
        ..Options::default()
    };
    if let Some(m) = fields.get("model") {
        options.consistency_model = m.parse().unwrap();
    }
    options.linearizable_keys = fields.get("linearizable-keys") == Some(&"true");
    let verdict = match fields.get("verdict").copied() {
        Some("valid") => Verdict::Valid,
        Some("invalid") => Verdict::Invalid,
        Some("unknown") => Verdict::Unknown,
        other => panic!("{}: bad verdict {other:?}", path.display()),
    };
    Expected {
        options,
        verdict,
        anomalies: list("anomalies")
            .iter()
            .map(|a| a.parse().unwrap())
            .collect(),
        weakest: fields
            .contains_key("weakest")
            .then(|| list("weakest").iter().map(|m| m.parse().unwrap()).collect()),
    }
}

fn cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_hand_built_history_gets_its_expected_verdict_and_anomalies() {
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "expected the case directory to be populated"
    );
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let h = read_history(path);
        let exp = read_expected(&path.with_extension("expected"));
        let report = txn::check(&h, &exp.options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let found: BTreeSet<AnomalyType> = report
            .anomaly_counts
            .keys()
            .map(|a| a.parse().unwrap())
            .collect();
        let show = |s: &BTreeSet<AnomalyType>| {
            s.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if found != exp.anomalies {
            failures.push(format!(
                "{name}: anomalies [{}], expected [{}]",
                show(&found),
                show(&exp.anomalies)
            ));
        }
        if report.verdict != exp.verdict {
            failures.push(format!(
                "{name}: verdict {}, expected {}",
                report.verdict, exp.verdict
            ));
        }
        if let Some(w) = &exp.weakest {
            if &report.weakest_ruled_out != w {
                failures.push(format!(
                    "{name}: weakest {:?}, expected {w:?}",
                    report.weakest_ruled_out
                ));
            }
        }
        // Every anomaly carries evidence: transactions by history index, and for cycles one
        // explained step per edge.
        for a in &report.anomalies {
            if a.kind.is_cycle() {
                assert!(a.cycle.len() >= 2, "{name}: {} without steps", a.kind);
                assert_eq!(a.cycle.len(), a.txns.len(), "{name}");
                for s in &a.cycle {
                    assert!(
                        s.explanation
                            .starts_with(&format!("{} < {} because", s.from, s.to)),
                        "{name}: {}",
                        s.explanation
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn explanations_match_snapshots() {
    for (name, path) in cases() {
        let h = read_history(&path);
        let exp = read_expected(&path.with_extension("expected"));
        let report = txn::check(&h, &exp.options).unwrap();
        insta::assert_snapshot!(format!("txn_{name}"), txn::render_text(&report));
    }
}

#[test]
fn reports_serialise_to_json() {
    for name in ["la-g-single", "la-g1a", "rw-lost-update"] {
        let path = data_dir().join(format!("{name}.jsonl"));
        let exp = read_expected(&path.with_extension("expected"));
        let report = txn::check(&read_history(&path), &exp.options).unwrap();
        insta::assert_json_snapshot!(format!("txn_json_{name}"), report);
    }
}

#[test]
fn malformed_micro_ops_are_input_errors_naming_the_op() {
    let line =
        r#"{"index":4,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append",1]]}"#;
    let h = History::new(vec![serde_json::from_str(line).unwrap()]);
    let e = txn::check(&h, &Options::list_append()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"op 4: micro-op ["append",1]: expected [f, key, value]"#
    );
    let line = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["w",1,2]]}"#;
    let h = History::new(vec![serde_json::from_str(line).unwrap()]);
    let e = txn::check(&h, &Options::list_append()).unwrap_err();
    assert!(
        e.to_string().contains("a write in a list-append history"),
        "{e}"
    );
    assert_eq!(Options::rw_register().workload, Workload::RwRegister);
}

#[test]
fn duplicate_writes_are_input_errors() {
    let lines = [
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["w","x",1]]}"#,
        r#"{"index":1,"time":1,"process":0,"type":"ok","f":"txn","value":[["w","x",1]]}"#,
        r#"{"index":2,"time":2,"process":1,"type":"invoke","f":"txn","value":[["w","x",1]]}"#,
    ];
    let h = History::new(
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    let e = txn::check(&h, &Options::rw_register()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"op 2: value 1 is written to key "x" again (first by op 0); the checker needs every write to a key to be unique"#
    );
}

#[test]
fn an_exhausted_cycle_search_is_unknown_not_valid() {
    let path = data_dir().join("la-g-single.jsonl");
    let mut opts = Options::list_append();
    opts.cycle_search_steps = 0;
    let r = txn::check(&read_history(&path), &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(
        r.anomaly_counts.keys().collect::<Vec<_>>(),
        vec!["cycle-search-timeout"]
    );
    assert!(r.ruled_out.is_empty());
}
