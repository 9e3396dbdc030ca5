//! Random byte mutations of real history lines never make a reader or the checker panic:
//! they either parse or give a `file:line` error.
mod common;

use checkers::linear::{check, Limits, Model};
use checkers::read::{read_history, Format, ReadError};
use common::fixtures;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FORMATS: [Format; 5] = [
    Format::Auto,
    Format::Jsonl,
    Format::Edn,
    Format::PorcupineEtcd,
    Format::PorcupineKv,
];

/// Bytes that matter to the grammars, plus invalid UTF-8.
const INTERESTING: &[u8] = b"[]{}()#_:;\\\"',\t \n-+0123456789.eNM{}nil\xff\xc3";

fn mutate(rng: &mut StdRng, line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..5) {
            0 if at < out.len() => out[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            1 => out.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => {
                let end = rng.random_range(at..=out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutated_lines_never_panic() {
    let dir = fixtures::dir();
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for file in [
        "jepsen/etcd_000.log",
        "jepsen/etcd_100.log",
        "kv/c01-ok.txt",
    ] {
        let text = std::fs::read(dir.join(file)).unwrap();
        samples.extend(text.split(|&b| b == b'\n').take(20).map(<[u8]>::to_vec));
    }
    samples.push(
        br#"{"index":0,"time":5,"process":0,"type":"invoke","f":"cas","key":"k","value":[1,2]}"#
            .to_vec(),
    );
    samples.push(br#"{:type :ok, :f :txn, :value [[:append 5 3] [:r 5 [1 2 3]]], :process 0, :time 123, :index 5}"#.to_vec());
    samples.push(
        br#"{:type :invoke, :f :write, :value [7 "s\u00e9"], :process :nemesis, :error #{:a \b}}"#
            .to_vec(),
    );
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut parsed = 0;
    let mut rejected = 0;
    for round in 0..20_000 {
        let n = rng.random_range(1..4);
        let mut input = Vec::new();
        for _ in 0..n {
            let line = &samples[rng.random_range(0..samples.len())];
            input.extend(mutate(&mut rng, line));
            input.push(b'\n');
        }
        let format = FORMATS[round % FORMATS.len()];
        match read_history(&input[..], "fuzz.txt", format) {
            Ok(h) => {
                parsed += 1;
                for model in Model::ALL {
                    let _ = check(&h, model, &Limits::default());
                }
            }
            Err(e) => {
                rejected += 1;
                let ReadError::Syntax { line, .. } = &e else {
                    panic!("unexpected error kind: {e}");
                };
                let lines = input.iter().filter(|&&b| b == b'\n').count();
                assert!((1..=lines).contains(line), "line {line} of {lines}: {e}");
                assert!(e.to_string().starts_with("fuzz.txt:"), "{e}");
                assert!(!e.to_string().contains('\n'), "one line: {e}");
            }
        }
    }
    assert!(
        parsed > 200 && rejected > 200,
        "parsed {parsed}, rejected {rejected}"
    );
}
