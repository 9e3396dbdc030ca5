//! Small histories with their expected verdicts, one case each (EDN, one op per line).
use super::*;
use crate::read::{read_history, Format};

fn history(edn: &str) -> History {
    read_history(edn.as_bytes(), "case", Format::Edn).expect("case parses")
}

/// (name, model, history, expected verdict)
const CASES: &[(&str, Model, &str, Verdict)] = &[
    ("empty history", Model::Register, "", Verdict::Valid),
    (
        "read of the initial value",
        Model::Register,
        "{:process 0 :type :invoke :f :read :value nil}
         {:process 0 :type :ok :f :read :value nil}",
        Verdict::Valid,
    ),
    (
        "stale read after a completed write",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :ok :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value nil}",
        Verdict::Invalid,
    ),
    (
        "concurrent read may see either value",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value 1}
         {:process 0 :type :ok :f :write :value 1}
         {:process 2 :type :invoke :f :read :value nil}
         {:process 2 :type :ok :f :read :value 1}",
        Verdict::Valid,
    ),
    (
        "a failed write never takes effect",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :fail :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value 1}",
        Verdict::Invalid,
    ),
    (
        "an info write may take effect much later",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :info :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value nil}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value 1}",
        Verdict::Valid,
    ),
    (
        "an info write takes effect at most once",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :info :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value 1}
         {:process 1 :type :invoke :f :write :value 2}
         {:process 1 :type :ok :f :write :value 2}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value 1}",
        Verdict::Invalid,
    ),
    (
        "a never-completed write may never happen",
        Model::Register,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 1 :type :ok :f :read :value nil}",
        Verdict::Valid,
    ),
    (
        "cas succeeds only from the expected value",
        Model::CasRegister,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :ok :f :write :value 1}
         {:process 0 :type :invoke :f :cas :value [2 3]}
         {:process 0 :type :ok :f :cas :value [2 3]}",
        Verdict::Invalid,
    ),
    (
        "cas chain",
        Model::CasRegister,
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :ok :f :write :value 1}
         {:process 0 :type :invoke :f :cas :value [1 3]}
         {:process 1 :type :invoke :f :read :value nil}
         {:process 0 :type :ok :f :cas :value [1 3]}
         {:process 1 :type :ok :f :read :value 3}",
        Verdict::Valid,
    ),
    (
        "keys are independent",
        Model::CasRegister,
        "{:process 0 :type :invoke :f :write :value [:a 1]}
         {:process 0 :type :ok :f :write :value [:a 1]}
         {:process 1 :type :invoke :f :read :value [:b nil]}
         {:process 1 :type :ok :f :read :value [:b nil]}",
        Verdict::Valid,
    ),
    (
        "one bad key makes the history invalid",
        Model::CasRegister,
        "{:process 0 :type :invoke :f :write :value [:a 1]}
         {:process 0 :type :ok :f :write :value [:a 1]}
         {:process 1 :type :invoke :f :read :value [:b nil]}
         {:process 1 :type :ok :f :read :value [:b 1]}",
        Verdict::Invalid,
    ),
    (
        "kv append concatenates",
        Model::Kv,
        "{:process 0 :type :invoke :f :append :key \"k\" :value \"x\"}
         {:process 0 :type :ok :f :append :key \"k\" :value \"x\"}
         {:process 1 :type :invoke :f :append :key \"k\" :value \"y\"}
         {:process 1 :type :ok :f :append :key \"k\" :value \"y\"}
         {:process 0 :type :invoke :f :get :key \"k\" :value nil}
         {:process 0 :type :ok :f :get :key \"k\" :value \"xy\"}",
        Verdict::Valid,
    ),
    (
        "kv lost append",
        Model::Kv,
        "{:process 0 :type :invoke :f :append :key \"k\" :value \"x\"}
         {:process 0 :type :ok :f :append :key \"k\" :value \"x\"}
         {:process 1 :type :invoke :f :put :key \"k\" :value \"z\"}
         {:process 1 :type :ok :f :put :key \"k\" :value \"z\"}
         {:process 0 :type :invoke :f :get :key \"k\" :value nil}
         {:process 0 :type :ok :f :get :key \"k\" :value \"x\"}",
        Verdict::Invalid,
    ),
];

#[test]
fn small_histories_have_the_expected_verdicts() {
    for (name, model, text, want) in CASES {
        let got = check(&history(text), *model, &Limits::default()).unwrap();
        assert_eq!(got.verdict, *want, "{name}: {got}");
        assert_eq!(
            got.counterexample.is_some(),
            *want == Verdict::Invalid,
            "{name}"
        );
    }
}

#[test]
fn counterexample_names_the_stuck_op_prefix_and_states() {
    let h = history(
        "{:process 0 :type :invoke :f :write :value 1}
         {:process 0 :type :ok :f :write :value 1}
         {:process 1 :type :invoke :f :write :value 2}
         {:process 2 :type :invoke :f :read :value nil}
         {:process 2 :type :ok :f :read :value 3}
         {:process 1 :type :ok :f :write :value 2}",
    );
    let r = check(&h, Model::Register, &Limits::default()).unwrap();
    let ce = r.counterexample.clone().expect("invalid");
    assert_eq!(ce.op.index, 3);
    assert_eq!(ce.op.result, Some(serde_json::json!(3)));
    assert_eq!(
        ce.prefix.len(),
        2,
        "write 1 then the concurrent write 2: {r}"
    );
    assert_eq!(ce.prefix[0].index, 0);
    assert_eq!(ce.states, vec![serde_json::json!(1), serde_json::json!(2)]);
    let text = r.to_string();
    assert!(
        text.contains("Cannot linearize: process 2: read -> 3  [ops 3..4]"),
        "{text}"
    );
    assert!(
        text.contains("Model states reachable at that point: 1, 2"),
        "{text}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["verdict"], "invalid");
    assert_eq!(json["counterexample"]["op"]["index"], 3);
}

#[test]
fn rejects_ops_the_model_does_not_know() {
    let h = history(
        "{:process 0 :type :invoke :f :enqueue :value 1}
         {:process 0 :type :ok :f :enqueue :value 1}",
    );
    let e = check(&h, Model::Register, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "op 0: model register has no function \"enqueue\" (expected one of: read, write)"
    );
    let h = history(
        "{:process 0 :type :invoke :f :cas :value 1}
         {:process 0 :type :ok :f :cas :value 1}",
    );
    let e = check(&h, Model::CasRegister, &Limits::default()).unwrap_err();
    assert_eq!(e.to_string(), "op 0: cas expects a [from to] pair, found 1");
}

#[test]
fn memory_guard_and_time_limit_give_unknown() {
    // Many concurrent writes that are never read: lots of configurations to explore.
    let mut text = String::new();
    for p in 0..40 {
        text += &format!("{{:process {p} :type :invoke :f :write :value {p}}}\n");
    }
    text += "{:process 99 :type :invoke :f :read :value nil}\n{:process 99 :type :ok :f :read :value -1}\n";
    for p in 0..40 {
        text += &format!("{{:process {p} :type :ok :f :write :value {p}}}\n");
    }
    let h = history(&text);
    let tiny = Limits {
        max_cache_bytes: 64 << 10,
        ..Limits::default()
    };
    let r = check(&h, Model::Register, &tiny).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown, "{r}");
    assert!(r.unknown_reason.unwrap().contains("memory guard"));
    let instant = Limits {
        time: Some(Duration::ZERO),
        max_cache_bytes: usize::MAX,
        ..Limits::default()
    };
    let r = check(&h, Model::Register, &instant).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown, "{r}");
    assert!(r.unknown_reason.unwrap().contains("time limit"));
}
