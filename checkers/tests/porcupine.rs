//! Every Porcupine fixture gets the verdict Porcupine's own test suite expects.
mod common;

use checkers::linear::{check, Limits};
use checkers::read::{read_history, Format};
use checkers::verdict::Verdict;
use common::fixtures;

#[test]
fn all_porcupine_fixtures_match_expected_verdicts() {
    let mut wrong = Vec::new();
    for fx in fixtures::all() {
        let file = std::fs::File::open(&fx.path).expect("open fixture");
        let h = read_history(file, &fx.file, fx.format).expect("fixture parses");
        let want = if fx.linearizable {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        // Exact memo (the default for keys this small) and fingerprint memo.
        for exact_memo_max_ops in [usize::MAX, 0] {
            let limits = Limits {
                exact_memo_max_ops,
                ..Limits::default()
            };
            let r = check(&h, fx.model, &limits).expect("fixture checks");
            if r.verdict != want {
                wrong.push(format!(
                    "{} (exact_memo_max_ops {exact_memo_max_ops}): expected {want}, got {r}",
                    fx.file
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn auto_detection_reads_both_porcupine_formats() {
    let dir = fixtures::dir();
    for (file, want) in [
        ("jepsen/etcd_100.log", Format::PorcupineEtcd),
        ("jepsen/etcd_000.log", Format::PorcupineEtcd),
        ("kv/c10-ok.txt", Format::Edn),
    ] {
        let text = std::fs::read(dir.join(file)).unwrap();
        let (h, got) = checkers::read::read_history_detect(&text[..], file, Format::Auto).unwrap();
        assert_eq!(got, want, "{file}");
        assert!(!h.is_empty());
    }
}
