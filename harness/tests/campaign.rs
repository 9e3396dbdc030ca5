//! `faultline campaign` and `faultline run --config`: campaign files are checked before anything
//! runs (errors name FILE:LINE:COLUMN, exit 254), matrices expand into stable ids, the shipped
//! campaigns parse and cover every known bug, and a tiny campaign on a local 3-node cluster
//! (root only) reports an unmet expectation with exit 1, in summary.json and junit.xml, and
//! stops cleanly on SIGINT (exit 130, the rest skipped).
mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::campaign::file::matches;
use harness::campaign::Campaign;
use harness::spec::{RunSpec, TargetName};
use nemesis::ScheduleMode;
use results::campaign::{CampaignSummary, Expectation, Outcome};

const ME: &str = env!("CARGO_BIN_EXE_faultline");

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("faultline-campaign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parse(text: &str) -> Result<Campaign, String> {
    Campaign::parse(text, Path::new("/c/t.yaml"))
}

fn ids(c: &Campaign) -> Vec<&str> {
    c.entries.iter().map(|e| e.id.as_str()).collect()
}

#[test]
fn lists_multiply_into_entries_with_stable_ids() {
    let c = parse(
        "defaults: { time_limit: 20, concurrency: 2n }\n\
         entries:\n\
         - target: [raft, paxos]\n  workload: [register, list-append]\n  \
           nemesis: [\"partition,kill\", none]\n  seeds: [1, 2]\n  expect: valid\n\
         - target: raft\n  bug: stale-read\n  workload: register\n  nemesis: partition\n  \
           seed: 3\n  expect: {invalid: [nonlinearizable]}\n\
         - target: etcd\n  read_mode: serializable\n  nemesis: [[partition, kill]]\n  \
           expect: invalid\n",
    )
    .unwrap();
    assert_eq!(c.name, "t");
    assert_eq!(c.entries.len(), 2 * 2 * 2 * 2 + 1 + 1);
    let ids = ids(&c);
    assert_eq!(
        &ids[..4],
        [
            "raft-register-partition+kill-s1",
            "raft-register-partition+kill-s2",
            "raft-register-none-s1",
            "raft-register-none-s2",
        ]
    );
    assert_eq!(ids[8], "paxos-register-partition+kill-s1");
    assert_eq!(ids[16], "raft-register-partition-bug=stale-read-s3");
    // Nothing given for workload or seed: the defaults of `faultline run`.
    assert_eq!(ids[17], "etcd-register-partition+kill-read=serializable-s0");
    let bug = &c.entries[16];
    assert_eq!(bug.options.bugs, ["stale-read"]);
    assert_eq!(bug.options.time_limit, 20.0, "defaults apply");
    assert_eq!(
        bug.expect,
        Expectation::Invalid {
            anomalies: vec!["nonlinearizable".into()]
        }
    );
    assert_eq!(
        c.entries[17].expect,
        Expectation::Invalid { anomalies: vec![] }
    );
    assert!(c.entries[..16]
        .iter()
        .all(|e| e.expect == Expectation::Valid));
}

#[test]
fn run_options_that_vary_within_an_entry_show_in_its_ids() {
    let c = parse(
        "entries:\n- target: raft\n  time_limit: [10, 60]\n  rate: 50\n  seeds: 1\n  expect: valid\n",
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        [
            "raft-register-partition+kill-t=10-s1",
            "raft-register-partition+kill-t=60-s1"
        ]
    );
    assert!(c.entries.iter().all(|e| e.options.rate == 50.0));
}

#[test]
fn an_entry_or_the_defaults_choose_the_nemesis_schedule_and_overlap_shows_in_the_id() {
    let c = parse(
        "entries:\n\
         - target: raft\n  read_mode: lease\n  nemesis: partition,clock\n  \
           nemesis_schedule: [alternate, overlap]\n  seeds: 1\n  expect: valid\n\
         - target: paxos\n  nemesis: partition,kill\n  seeds: 1\n  expect: valid\n",
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        [
            // The default mode adds nothing: ids from before the mode existed stay the same.
            "raft-register-partition+clock-read=lease-s1",
            "raft-register-partition+clock-read=lease-overlap-s1",
            "paxos-register-partition+kill-s1",
        ]
    );
    let modes: Vec<ScheduleMode> = c
        .entries
        .iter()
        .map(|e| e.options.nemesis_schedule)
        .collect();
    assert_eq!(
        modes,
        [
            ScheduleMode::Alternate,
            ScheduleMode::Overlap,
            ScheduleMode::Alternate
        ]
    );
    let c = parse(
        "defaults: {nemesis_schedule: overlap}\n\
         entries: [{target: paxos, bug: forget-promise, seeds: [1, 2], expect: invalid}]\n",
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        [
            "paxos-register-partition+kill-bug=forget-promise-overlap-s1",
            "paxos-register-partition+kill-bug=forget-promise-overlap-s2",
        ]
    );
    let c = parse(
        "entries: [{target: raft, nemesis_schedule: overlap, leader_share: [0.5, 0.8], seed: 1, expect: valid}]",
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        [
            "raft-register-partition+kill-overlap-ls=0.5-s1",
            "raft-register-partition+kill-overlap-ls=0.8-s1"
        ]
    );
    assert_eq!(c.entries[1].options.leader_share, Some(0.8));
    let e = parse("entries: [{target: raft, nemesis_schedule: [], expect: valid}]").unwrap_err();
    assert!(
        e.contains("nemesis_schedule: an empty list gives no runs"),
        "{e}"
    );
    let e =
        parse("entries:\n- {target: raft, nemesis_schedule: jepsen, expect: valid}\n").unwrap_err();
    assert!(e.starts_with("/c/t.yaml:2:"), "{e}");
    assert!(e.contains("jepsen"), "{e}");
}

#[test]
fn server_args_reach_the_options_and_the_ids() {
    let c = parse(
        "entries:\n- target: raft\n  bug: commit-old-term\n  nemesis: kill\n  \
         server_args: ['', --max-append-entries=1 --tick-ms=5]\n  seeds: 1\n  expect: invalid\n",
    );
    assert!(
        c.unwrap_err().contains("server_arg"),
        "an empty flag list is refused"
    );
    let c = parse(
        "entries:\n- target: raft\n  bug: commit-old-term\n  nemesis: kill\n  \
         server_args: --max-append-entries=1\n  seeds: 1\n  expect: invalid\n",
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        ["raft-register-kill-bug=commit-old-term-args=--max-append-entries=1-s1"]
    );
    assert_eq!(c.entries[0].options.server_args, ["--max-append-entries=1"]);
}

#[test]
fn only_selects_by_substring_or_glob() {
    let c = parse(
        "entries:\n- target: [raft, paxos, 2pc]\n  workload: [register, set]\n  seeds: [1, 2]\n  expect: valid\n",
    )
    .unwrap();
    let sel = |p: &[&str]| -> Vec<String> {
        let pats: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        c.select(&pats).iter().map(|e| e.id.clone()).collect()
    };
    assert_eq!(sel(&[]).len(), 12);
    assert_eq!(sel(&["paxos-"]).len(), 4);
    assert_eq!(
        sel(&["raft-*-s2"]),
        [
            "raft-register-partition+kill-s2",
            "raft-set-partition+kill-s2"
        ]
    );
    assert_eq!(sel(&["*set*s1", "2pc-register-partition+kill-s2"]).len(), 4);
    assert!(sel(&["etcd"]).is_empty());
    assert!(matches("a*c", "abc") && matches("*", "x") && !matches("a*c", "abd"));
    assert!(!matches("ab*ba", "aba"), "the two ends must not overlap");
}

#[test]
fn a_campaign_names_its_nodes_or_an_inventory_relative_to_itself() {
    let c = parse("name: night-1\nnodes: 3\nentries: [{target: raft, expect: valid}]").unwrap();
    assert_eq!((c.name.as_str(), c.nodes), ("night-1", Some(3)));
    let c = parse("inventory: vms.yaml\nentries: [{target: raft, expect: valid}]").unwrap();
    assert_eq!(c.inventory, Some(PathBuf::from("/c/vms.yaml")));
}

/// Each case: the campaign text, and what the one-line error must start with (after the path).
const BAD: &[(&str, &str)] = &[
    (
        "entries:\n- target: raft\n  expect: valid\n  workloud: set\n",
        "t.yaml:4:3: entries[0]: unknown field `workloud`",
    ),
    (
        "entries:\n- target: raft\n  expect: valid\n- target: [paxos, rafft]\n  expect: valid\n",
        "t.yaml:4:19: entries[1].target[1]: unknown variant `rafft`",
    ),
    (
        "entries:\n- target: raft\n  expect: valid\n- target: raft\n  bug: stale-reed\n  expect: invalid\n",
        "t.yaml:4:3: entries[1]: bug: \"stale-reed\" is not a known bug of raft",
    ),
    (
        "entries:\n- target: raft\n  bug: early-unlock\n  expect: invalid\n",
        "t.yaml:2:3: entries[0]: bug: \"early-unlock\" is not a known bug of raft",
    ),
    (
        "entries:\n- target: etcd\n  bug: stale-read\n  expect: invalid\n",
        "t.yaml:2:3: entries[0]: bug: etcd has no switchable bugs",
    ),
    (
        "entries:\n- target: [raft, etcd]\n  read_mode: lease\n  expect: valid\n",
        "t.yaml:2:3: entries[0]: read_mode: \"lease\" (expected linearizable or serializable for target etcd)",
    ),
    (
        "entries:\n- target: raft\n  expect: maybe\n",
        "t.yaml:3:11: entries[0].expect: expect: \"maybe\"",
    ),
    (
        "entries:\n- target: raft\n  expect: {valid: [x]}\n",
        "t.yaml:3:11: entries[0].expect: expect: \"valid\"",
    ),
    (
        "entries:\n- target: raft\n",
        "t.yaml:2:3: entries[0]: missing field `expect`",
    ),
    (
        "entries:\n- target: raft\n  seeds: [1, 2]\n  expect: valid\n- target: raft\n  seeds: 2\n  expect: valid\n",
        "t.yaml:5:3: entries[1]: entry id raft-register-partition+kill-s2 is produced also by entries[0]",
    ),
    (
        "entries:\n- target: raft\n  nemesis: \"partition,flood\"\n  expect: valid\n",
        "t.yaml:3:12: entries[0].nemesis: unknown fault kind \"flood\"",
    ),
    (
        "entries:\n- target: raft\n  seeds: []\n  expect: valid\n",
        "t.yaml:2:3: entries[0]: seeds: an empty list gives no runs",
    ),
    (
        "defaults: {time_limit: 0}\nentries:\n- target: raft\n  expect: valid\n",
        "t.yaml:3:3: entries[0]: time_limit: expected a positive number of seconds",
    ),
    (
        "name: smoke\nnodez: 3\nentries: []\n",
        "t.yaml:2:1: unknown field `nodez`",
    ),
    ("name: a/b\nentries: []\n", "t.yaml:1:7: name: \"a/b\" is not a valid name"),
    ("nodes: 0\nentries: []\n", "t.yaml:1:8: nodes: 0 nodes"),
    ("entries: []\n", "t.yaml: `entries` is empty"),
    ("entries: [\n", "t.yaml:2:1: "),
];

#[test]
fn bad_campaign_files_are_rejected_naming_file_line_and_column() {
    for (text, want) in BAD {
        let err = parse(text).unwrap_err();
        assert!(
            err.starts_with(&format!("/c/{want}")),
            "{text:?}:\n  got  {err}\n  want /c/{want}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn the_binary_exits_254_on_a_bad_campaign_before_anything_runs() {
    let dir = scratch("bad");
    let store = dir.join("store");
    for (i, (text, want)) in BAD.iter().enumerate() {
        let file = dir.join("t.yaml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(ME)
            .arg("campaign")
            .arg(&file)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "case {i}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "case {i}: {stderr}");
        let place = format!("{}/{want}", dir.display());
        assert!(stderr.contains(&place), "case {i}: {stderr}\nwant {place}");
        assert!(!store.exists(), "case {i}: something ran");
    }
    // Flags are checked before anything runs too.
    let file = dir.join("ok.yaml");
    std::fs::write(
        &file,
        "nodes: 1\nentries: [{target: raft, nemesis: partition, expect: valid}]\n",
    )
    .unwrap();
    for (args, needle) in [
        (&["--only", "paxos"][..], "--only: no entry"),
        (&[][..], "nemesis partition on 1 nodes"),
        (&["--check-time-limit", "0"][..], "--check-time-limit"),
    ] {
        let out = Command::new(ME)
            .arg("campaign")
            .arg(&file)
            .args(args)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!store.exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dry_run_lists_the_selected_entries() {
    let out = Command::new(ME)
        .args([
            "campaign",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../campaigns/smoke.yaml"),
        ])
        .args(["--dry-run", "--only", "raft"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "raft-register-partition+kill-s1  expect valid\nsmoke: 1 of 4 entries, 15 s of test time\n"
    );
}

fn shipped(name: &str) -> Campaign {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../campaigns")
        .join(format!("{name}.yaml"));
    Campaign::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_shipped_campaigns_parse_and_the_bug_zoo_covers_every_known_bug() {
    let smoke = shipped("smoke");
    let total: f64 = smoke.entries.iter().map(|e| e.options.time_limit).sum();
    assert!(
        total <= 120.0,
        "smoke must stay a few minutes: {total} s of tests"
    );
    assert!(smoke.entries.iter().all(|e| e.expect == Expectation::Valid));
    for t in TargetName::ALL {
        assert!(
            smoke.entries.iter().any(|e| e.options.target == t),
            "smoke lacks {t}"
        );
    }

    let nightly = shipped("nightly");
    assert!(nightly
        .entries
        .iter()
        .any(|e| e.options.target == TargetName::Etcd
            && e.options.read_mode.as_deref() == Some("serializable")
            && e.expect != Expectation::Valid));

    let zoo = shipped("bugzoo");
    for t in TargetName::ALL {
        for bug in t.bugs() {
            let runs: Vec<_> = zoo
                .entries
                .iter()
                .filter(|e| e.options.target == t && e.options.bugs == [*bug])
                .collect();
            assert!(runs.len() >= 3, "bugzoo: {t} {bug} has {} runs", runs.len());
            assert!(
                runs.iter().all(|e| e.expect != Expectation::Valid),
                "{t} {bug}"
            );
        }
        assert!(
            zoo.entries.iter().any(|e| e.options.target == t
                && e.options.bugs.is_empty()
                && e.expect == Expectation::Valid),
            "bugzoo: no false-alarm entries for correct {t}"
        );
    }
    assert!(zoo.entries.iter().all(|e| e.options.time_limit == 60.0));
}

#[test]
fn run_config_files_are_checked_and_flags_override_them() {
    let dir = scratch("config");
    let file = dir.join("test.yaml");
    let run = |text: &str, extra: &[&str]| {
        std::fs::write(&file, text).unwrap();
        let out = Command::new(ME)
            .arg("run")
            .arg("--config")
            .arg(&file)
            .args([
                "--local",
                "3",
                "--cluster-dir",
                "/nonexistent/flcfg",
                "--server-bin",
                "/nonexistent/server",
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    let (code, err) = run("target: raft\ntime_limit: 10\nnemesis_intervall: 2\n", &[]);
    assert_eq!(code, Some(254), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:3:1: unknown field `nemesis_intervall`",
            file.display()
        )),
        "{err}"
    );

    // The file's bad read mode is what fails...
    let (code, err) = run("target: raft\nread_mode: fast\n", &[]);
    assert_eq!(code, Some(254));
    assert!(
        err.contains("--read-mode") && err.contains("--config"),
        "{err}"
    );
    // ...unless the command line overrides it; then the next problem is the server binary.
    let (code, err) = run(
        "target: raft\nread_mode: fast\n",
        &["--read-mode", "quorum"],
    );
    assert_eq!(code, Some(254));
    assert!(
        err.contains("--server-bin") && !err.contains("--read-mode"),
        "{err}"
    );
    // No target in the file or on the command line.
    let (code, err) = run("workload: set\n", &[]);
    assert_eq!(code, Some(254));
    assert!(err.contains("--target"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn read_summary(store: &Path, name: &str) -> (PathBuf, CampaignSummary) {
    let dir = std::fs::canonicalize(store.join("campaigns").join(name).join("latest"))
        .expect("campaigns/<name>/latest");
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

#[test]
fn a_tiny_campaign_on_a_local_cluster_reports_unmet_expectations_and_stops_on_sigint() {
    if !cluster_support::root_or_skip(
        "a_tiny_campaign_on_a_local_cluster_reports_unmet_expectations_and_stops_on_sigint",
    ) {
        return;
    }
    let cfg = cluster_support::config("flcamp", 47, 3);
    let (_guard, _c) = cluster_support::Guard::up(cfg.clone());
    let dir = scratch("tiny");
    let store = dir.join("store");
    let file = dir.join("tiny.yaml");
    std::fs::write(
        &file,
        "nodes: 3\n\
         defaults: {time_limit: 5, nemesis_interval: 1, op_timeout: 2}\n\
         entries:\n\
         - {target: raft, workload: register, nemesis: \"partition,kill\", seeds: 1, expect: valid}\n\
         # A correct server: this expectation cannot be met.\n\
         - {target: raft, workload: register, nemesis: partition, seeds: 2, expect: invalid}\n",
    )
    .unwrap();
    let campaign = |extra: &[&str]| {
        let mut cmd = Command::new(ME);
        cmd.arg("campaign")
            .arg(&file)
            .arg("--store")
            .arg(&store)
            .arg("--cluster-dir")
            .arg(&cfg.dir)
            .args(["--cluster-tag", &cfg.tag, "--cluster-bridge", &cfg.bridge])
            .args(["--cluster-subnet", &cfg.subnet, "--quiet"])
            .arg("--server-bin")
            .arg(cluster_support::server_binary())
            .args(extra);
        cmd
    };
    let out = campaign(&["--keep-cluster"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0]
            .starts_with("[1/2] raft-register-partition+kill-s1: valid (expected valid) PASS in "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("[2/2] raft-register-partition-s2: valid (expected invalid) FAIL in "),
        "{stdout}"
    );

    let (cdir, summary) = read_summary(&store, "tiny");
    assert!(!summary.interrupted);
    let passed: Vec<bool> = summary.entries.iter().map(|e| e.passed).collect();
    assert_eq!(passed, [true, false]);
    for e in &summary.entries {
        assert_eq!(e.outcome, Outcome::Valid);
        assert!(e.client_ops > 0, "{e:?}");
        let run = store.join(e.run.as_ref().expect("a run directory"));
        assert!(run.join("results.json").is_file(), "{}", run.display());
        // The stored test.yaml reads back as the same options (`faultline run --config`).
        let spec = RunSpec::from_file(&run.join("test.yaml")).unwrap();
        let entry = Campaign::load(&file)
            .unwrap()
            .entries
            .into_iter()
            .find(|x| x.id == e.id)
            .unwrap();
        let again = spec.resolve().unwrap();
        assert_eq!(
            (
                again.target,
                again.workload,
                &again.nemesis,
                again.seed,
                again.time_limit,
                again.nemesis_interval,
                again.op_timeout,
                again.rate
            ),
            (
                entry.options.target,
                entry.options.workload,
                &entry.options.nemesis,
                entry.options.seed,
                entry.options.time_limit,
                entry.options.nemesis_interval,
                entry.options.op_timeout,
                entry.options.rate
            )
        );
    }
    let junit = std::fs::read_to_string(cdir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");
    assert!(
        junit.contains("<testsuite ") && junit.contains("failures=\"1\""),
        "{junit}"
    );
    assert!(cdir.join("index.html").is_file());
    let trends = std::fs::read_to_string(store.join("campaigns/tiny/trends.jsonl")).unwrap();
    assert_eq!(trends.lines().count(), 2, "{trends}");

    // SIGINT two seconds in: the first run stops and heals, the second is skipped, exit 130;
    // and the local cluster is taken down.
    let mut child = campaign(&[]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let (_, summary) = read_summary(&store, "tiny");
    assert!(summary.interrupted);
    let outcomes: Vec<Outcome> = summary.entries.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::Skipped, Outcome::Skipped]);
    assert!(
        summary.entries[0].run.is_some(),
        "the interrupted run is kept"
    );
    assert!(
        summary.entries[0].summary.contains("interrupted"),
        "{:?}",
        summary.entries[0]
    );
    cluster_support::assert_no_residue(&cfg, &cfg.dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
