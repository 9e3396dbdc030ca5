//! Campaigns: many runs, one after another, each with an expected outcome, for nightly CI.
//!
//! [`file`] reads and checks a campaign file and expands its matrix into [`Entry`]s. [`run`]
//! runs the entries through [`run::execute`] and the caller's check (the same as
//! `faultline run`'s), compares each outcome with its expectation, and keeps the campaign's
//! outputs (`summary.json`, `junit.xml`, `index.html`, the trends file) up to date after every
//! entry, so a campaign killed mid-way leaves what it found. One entry's failure never stops the
//! rest. On SIGINT/SIGTERM the current run heals and is checked and the remaining entries are
//! skipped.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkers::history::OpType;
use checkers::verdict::Verdict;
use results::campaign::{CampaignSummary, EntryResult, Expectation, Outcome};
use results::Analysis;
use workloads::gen::WorkloadKind;

use crate::cluster;
use crate::db::EtcdBinary;
use crate::run::{self, Nodes, RunRecord};
use crate::spec::Placement;

pub mod file;
use results::analysis::detection_time;
use results::campaign::CampaignDir;

pub use file::{Campaign, Entry};

/// Where and how a campaign's entries run.
#[derive(Debug, Clone)]
pub struct Setup {
    pub store: PathBuf,
    /// A local cluster (brought up once, taken down at the end unless `keep_cluster`) or an
    /// inventory's nodes.
    pub nodes: Nodes,
    /// The `faultline-server` binary (needed when an entry targets a bundled server).
    pub server_bin: Option<PathBuf>,
    pub etcd: EtcdBinary,
    pub keep_cluster: bool,
    /// Progress lines of each run (on a terminal) or periodic log lines.
    pub progress: bool,
}

/// Checks a finished run and stores its results and report (what `faultline run` does).
pub type Check<'a> = &'a dyn Fn(&RunRecord, WorkloadKind) -> anyhow::Result<Analysis>;

/// Why a campaign could not run at all (exit 255).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CampaignError(pub String);

/// What a campaign run did.
#[derive(Debug)]
pub struct Finished {
    pub summary: CampaignSummary,
    /// `<store>/campaigns/<name>/<timestamp>`.
    pub dir: PathBuf,
}

impl Finished {
    /// Every entry met its expectation.
    pub fn passed(&self) -> bool {
        !self.summary.interrupted && self.summary.entries.iter().all(|e| e.passed)
    }
}

/// Whether an outcome meets an expectation: `invalid: [types]` needs each listed type among
/// the anomalies found.
pub fn meets(expect: &Expectation, outcome: Outcome, anomalies: &[String]) -> bool {
    match (expect, outcome) {
        (Expectation::Valid, Outcome::Valid) => true,
        (Expectation::Invalid { anomalies: want }, Outcome::Invalid) => {
            want.iter().all(|w| anomalies.contains(w))
        }
        _ => false,
    }
}

/// `valid`, `invalid`, `harness-error`, ... as in summary.json.
pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Valid => "valid",
        Outcome::Invalid => "invalid",
        Outcome::Unknown => "unknown",
        Outcome::HarnessError => "harness-error",
        Outcome::Skipped => "skipped",
    }
}

/// `valid`, `invalid`, or `invalid [G-single, G2-item]`.
pub fn expectation_name(e: &Expectation) -> String {
    match e {
        Expectation::Valid => "valid".into(),
        Expectation::Invalid { anomalies } if anomalies.is_empty() => "invalid".into(),
        Expectation::Invalid { anomalies } => format!("invalid [{}]", anomalies.join(", ")),
    }
}

/// Checks that every entry's fault schedule can run on `nodes` (e.g. a partition needs two
/// nodes), before anything runs.
pub fn check_schedules(entries: &[&Entry], nodes: &[String]) -> Result<(), String> {
    for e in entries {
        let o = &e.options;
        let cfg = nemesis::ScheduleConfig {
            interval: Duration::from_secs_f64(o.nemesis_interval),
            mode: o.nemesis_schedule,
            duration: Duration::from_secs_f64(o.time_limit),
            ..nemesis::ScheduleConfig::new(o.seed, nodes.to_vec(), o.nemesis.clone())
        };
        nemesis::schedule(&cfg).map_err(|err| {
            format!(
                "entry {}: nemesis {} on {} nodes: {err}",
                e.id,
                o.nemesis_list(),
                nodes.len()
            )
        })?;
    }
    Ok(())
}

/// An entry not run (yet): what summary.json says until it has run.
fn pending(e: &Entry, why: &str) -> EntryResult {
    let o = &e.options;
    EntryResult {
        id: e.id.clone(),
        target: o.target.to_string(),
        workload: o.workload.name().to_string(),
        nemesis: o.nemesis_list(),
        seed: o.seed,
        bugs: o.bugs.clone(),
        read_mode: o.read_mode.clone(),
        time_limit_s: o.time_limit,
        expect: e.expect.clone(),
        outcome: Outcome::Skipped,
        anomalies: Vec::new(),
        summary: why.to_string(),
        passed: false,
        run: None,
        detection_s: None,
        duration_s: 0.0,
        client_ops: 0,
    }
}

/// Listens for SIGINT/SIGTERM for the whole campaign. The runner listens only during a run's
/// main phase, so a signal that arrives while a run is still starting is repeated every second
/// until that run has ended (its own handler then stops it, heals and records the stop).
async fn watch_signals(stop: Arc<AtomicBool>, running: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        if stop.swap(true, Ordering::SeqCst) {
            continue;
        }
        eprintln!(
            "faultline campaign: {name}: the current run stops, heals and is checked; the remaining entries are skipped"
        );
        let running = running.clone();
        tokio::spawn(async move {
            let pid = std::process::id().to_string();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !running.load(Ordering::SeqCst) {
                    return;
                }
                // The `kill` program, as the cluster code does: no libc dependency.
                let _ = tokio::process::Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .await;
            }
        });
    }
}

/// Runs `entries` (of `campaign`) one after another; `on_entry(i, n, result)` is called after
/// each. Errors only when the campaign cannot run at all (store, cluster, runtime).
pub fn run(
    campaign: &Campaign,
    entries: &[&Entry],
    setup: &Setup,
    check: Check,
    on_entry: &mut dyn FnMut(usize, usize, &EntryResult),
) -> Result<Finished, CampaignError> {
    let started = chrono::Utc::now();
    let dir = CampaignDir::create(&setup.store, &campaign.name, started)
        .map_err(|e| CampaignError(format!("--store: {e}")))?;
    let mut summary = CampaignSummary {
        name: campaign.name.clone(),
        file: campaign.file.display().to_string(),
        started: started.to_rfc3339(),
        finished: started.to_rfc3339(),
        entries: entries.iter().map(|e| pending(e, "not run yet")).collect(),
        interrupted: false,
    };
    dir.write(&summary)
        .map_err(|e| CampaignError(format!("writing the campaign's outputs: {e}")))?;
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| CampaignError(format!("starting the runtime: {e}")))?;
    // The local cluster is this campaign's alone, from `up` to `down` (see `cluster::Claim`).
    let mut _claim = None;
    if let Nodes::Local(cc) = &setup.nodes {
        if cluster::is_root() {
            _claim = Some(
                cluster::claim(&cc.dir)
                    .map_err(|e| CampaignError(format!("local cluster: {e}")))?,
            );
        }
        cluster::up(cc).map_err(|e| CampaignError(format!("local cluster: {e}")))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    rt.spawn(watch_signals(stop.clone(), running.clone()));

    let n = entries.len();
    for (i, e) in entries.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            summary.entries[i] = pending(e, "not run: the campaign was interrupted");
            continue;
        }
        running.store(true, Ordering::SeqCst);
        let result = run_entry(&rt, e, setup, check);
        running.store(false, Ordering::SeqCst);
        if result.outcome == Outcome::Skipped {
            // The run itself saw the signal.
            stop.store(true, Ordering::SeqCst);
        }
        summary.entries[i] = result;
        summary.finished = chrono::Utc::now().to_rfc3339();
        on_entry(i, n, &summary.entries[i]);
        if let Err(err) = dir.write(&summary) {
            eprintln!("faultline campaign: writing the campaign's outputs: {err}");
        }
    }
    summary.interrupted = stop.load(Ordering::SeqCst);
    summary.finished = chrono::Utc::now().to_rfc3339();
    let written = dir.finish(&summary);
    drop(rt);
    if let Nodes::Local(cc) = &setup.nodes {
        if !setup.keep_cluster {
            if let Err(err) = cluster::down(&cc.dir) {
                eprintln!("faultline campaign: taking the local cluster down: {err}");
            }
        }
    }
    written.map_err(|e| CampaignError(format!("writing the campaign's outputs: {e}")))?;
    Ok(Finished {
        summary,
        dir: dir.path().to_path_buf(),
    })
}

/// One entry: run, check, compare with the expectation. Never fails: a harness failure is the
/// entry's outcome.
fn run_entry(rt: &tokio::runtime::Runtime, e: &Entry, setup: &Setup, check: Check) -> EntryResult {
    let t0 = Instant::now();
    let mut r = pending(e, "");
    r.outcome = Outcome::HarnessError;
    let place = Placement {
        nodes: setup.nodes.clone(),
        store: setup.store.clone(),
        server_bin: setup.server_bin.clone(),
        etcd: setup.etcd.clone(),
        leave_db_running: false,
        progress: setup.progress,
    };
    match e.options.run_config(&place) {
        Err(invalid) => r.summary = invalid.as_key(),
        Ok(cfg) => match rt.block_on(run::execute(cfg)) {
            Err(err) => r.summary = err.to_string(),
            Ok(record) => record_run(&mut r, &record, e, setup, check),
        },
    }
    r.passed = meets(&r.expect, r.outcome, &r.anomalies);
    if !r.passed
        && matches!(
            r.outcome,
            Outcome::Valid | Outcome::Invalid | Outcome::Unknown
        )
    {
        let what = if r.summary.is_empty() {
            outcome_name(r.outcome).to_string()
        } else {
            r.summary.clone()
        };
        r.summary = format!("{what} (expected {})", expectation_name(&r.expect));
    }
    r.duration_s = t0.elapsed().as_secs_f64();
    r
}

/// Fills in what a run that happened found.
fn record_run(r: &mut EntryResult, record: &RunRecord, e: &Entry, setup: &Setup, check: Check) {
    r.run = Some(
        record
            .run
            .path
            .strip_prefix(&setup.store)
            .unwrap_or(&record.run.path)
            .to_string_lossy()
            .into_owned(),
    );
    r.client_ops = record
        .history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind != OpType::Invoke)
        .count() as u64;
    let analysis = match check(record, e.options.workload) {
        Ok(a) => a,
        Err(err) => {
            r.summary = format!("checking the run: {err:#}");
            return;
        }
    };
    r.anomalies = analysis.anomaly_types();
    r.detection_s = detection_time(&analysis, &record.history).map(|d| d.as_secs_f64());
    r.summary = analysis.summary_line();
    r.outcome = match analysis.verdict {
        Verdict::Valid => Outcome::Valid,
        Verdict::Invalid => Outcome::Invalid,
        Verdict::Unknown => Outcome::Unknown,
    };
    if let Some(why) = &record.harness_failure {
        r.summary = format!(
            "harness failure: {why} (what was recorded is {})",
            analysis.verdict
        );
        r.outcome = Outcome::HarnessError;
    }
    if let Some(sig) = record.interrupted {
        r.summary = format!(
            "interrupted by {sig} after {:.0} s of {:.0} s (what was recorded is {})",
            record.main_phase.as_secs_f64(),
            e.options.time_limit,
            analysis.verdict
        );
        r.outcome = Outcome::Skipped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_meets_its_expectation_only_with_every_listed_anomaly() {
        let invalid = |types: &[&str]| Expectation::Invalid {
            anomalies: types.iter().map(|t| t.to_string()).collect(),
        };
        let found = vec!["G-single".to_string(), "G2-item".to_string()];
        let cases = [
            (Expectation::Valid, Outcome::Valid, true),
            (Expectation::Valid, Outcome::Invalid, false),
            (Expectation::Valid, Outcome::Unknown, false),
            (Expectation::Valid, Outcome::HarnessError, false),
            (Expectation::Valid, Outcome::Skipped, false),
            (invalid(&[]), Outcome::Invalid, true),
            (invalid(&["G-single"]), Outcome::Invalid, true),
            (invalid(&["G-single", "G2-item"]), Outcome::Invalid, true),
            (invalid(&["G-single", "lost"]), Outcome::Invalid, false),
            (invalid(&[]), Outcome::Valid, false),
            (invalid(&[]), Outcome::Unknown, false),
            (invalid(&[]), Outcome::HarnessError, false),
        ];
        for (expect, outcome, want) in cases {
            assert_eq!(
                meets(&expect, outcome, &found),
                want,
                "{expect:?} {outcome:?}"
            );
        }
        assert_eq!(expectation_name(&invalid(&["a", "b"])), "invalid [a, b]");
    }
}
