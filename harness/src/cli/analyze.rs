//! `faultline analyze RUN_DIR`: checks a stored run again (also one whose controller died
//! mid-run: a torn last history line is dropped) and rewrites results.json and report.html.
use std::path::PathBuf;
use std::time::Duration;

use checkers::read::{self, Format};
use results::store::RunDir;
use workloads::gen::WorkloadKind;

use super::run::check_and_report;
use super::{BadInput, Exit};
use crate::run::recorder::complete_lines;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A run directory (`store/<test>/<timestamp>`).
    pub run_dir: PathBuf,
    /// The workload to check as [default: from the run's test.yaml].
    #[arg(long, value_parser = |s: &str| s.parse::<WorkloadKind>())]
    pub workload: Option<WorkloadKind>,
    /// Give up checking after this many seconds (verdict unknown, exit 2).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub check_time_limit: f64,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let limit = Duration::try_from_secs_f64(args.check_time_limit).map_err(|_| {
        BadInput(format!(
            "--check-time-limit: expected a non-negative number of seconds, found {}",
            args.check_time_limit
        ))
    })?;
    let run = RunDir::open(&args.run_dir).map_err(|e| BadInput(e.to_string()))?;
    let params = run.read_test().map_err(|e| BadInput(e.to_string()))?;
    let workload = match args.workload {
        Some(w) => w,
        None => params["workload"]
            .as_str()
            .ok_or_else(|| {
                BadInput(format!(
                    "{}: no workload recorded; pass --workload",
                    run.test_path().display()
                ))
            })?
            .parse()
            .map_err(|e| BadInput(format!("{}: workload: {e}", run.test_path().display())))?,
    };
    let path = run.history_path();
    let name = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| BadInput(format!("{name}: {e}")))?;
    let (complete, torn) = complete_lines(&bytes);
    if torn > 0 {
        eprintln!("faultline: {name}: ignoring a torn last line ({torn} bytes; the controller died while writing it)");
    }
    let history =
        read::read_history(complete, &name, Format::Jsonl).map_err(|e| BadInput(e.to_string()))?;
    let test = params["test"].as_str().unwrap_or("run").to_string();
    check_and_report(&run, &history, workload, limit, &test)
}
