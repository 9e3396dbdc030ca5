//! The Porcupine fixtures in `shared/fixtures/porcupine`, next to the repository.
#![allow(dead_code)]
use std::path::PathBuf;

use checkers::linear::Model;
use checkers::read::Format;

pub struct Fixture {
    pub file: String,
    pub path: PathBuf,
    pub format: Format,
    pub model: Model,
    /// From porcupine_test.go; the empty etcd_095 (no test there) is linearizable.
    pub linearizable: bool,
    pub porcupine_seconds: f64,
}

/// `../shared/fixtures/porcupine` from the workspace root; `FAULTLINE_SHARED_DIR` overrides
/// the location of `shared/` (for worktrees that do not sit next to it).
pub fn dir() -> PathBuf {
    let shared = std::env::var_os("FAULTLINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("fixtures/porcupine");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "Porcupine fixtures missing: expected {} (the repository must sit next to a copy of shared/)",
        dir.display()
    );
    dir
}

pub fn all() -> Vec<Fixture> {
    let dir = dir();
    let tsv = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("read EXPECTED.tsv");
    let mut out = Vec::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "EXPECTED.tsv row: {line}");
        let (format, model) = match cols[1] {
            "jepsen-etcd-log" => (Format::PorcupineEtcd, Model::CasRegister),
            "jepsen-kv-edn" => (Format::PorcupineKv, Model::Kv),
            other => panic!("unknown fixture format {other}"),
        };
        let linearizable = match cols[3] {
            "linearizable" | "unknown" => true,
            "not-linearizable" => false,
            other => panic!("unknown expectation {other}"),
        };
        out.push(Fixture {
            file: cols[0].to_string(),
            path: dir.join(cols[0]),
            format,
            model,
            linearizable,
            porcupine_seconds: cols[4].parse().expect("seconds"),
        });
    }
    assert_eq!(out.len(), 109, "EXPECTED.tsv should list 109 fixtures");
    out
}
