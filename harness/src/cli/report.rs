//! `faultline report`: writes the HTML report of a stored run, or of any history file after
//! checking it.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use checkers::linear::{self, Limits, Model};
use checkers::read::{self, Format};
use checkers::verdict::Verdict;
use checkers::{bank, set, txn, History};
use results::store::{self, RunDir};
use results::{Analysis, CheckerOutput, CheckerRun, ReportInput};

use super::check::FormatArg;
use super::{BadInput, Exit};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run directory (`store/<test>/<timestamp>`), or a history file to check.
    pub path: PathBuf,
    /// What to check the history against. Required for a history file unless it can be guessed
    /// (register/cas-register/kv from the operations); for a run directory, checks again
    /// instead of using its results.json.
    #[arg(long, value_enum)]
    pub model: Option<ReportModel>,
    /// The history format (history files only).
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Where to write the report. Default: RUN_DIR/report.html, or the history file's name
    /// with the extension `.html`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Give up checking after this many seconds (verdict unknown, exit 2).
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
}

/// Every checker a report can run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportModel {
    Register,
    CasRegister,
    Kv,
    ListAppend,
    RwRegister,
    Bank,
    Set,
}

pub fn run(args: ReportArgs) -> anyhow::Result<Exit> {
    let limit = match args.time_limit {
        Some(s) => Some(Duration::try_from_secs_f64(s).map_err(|_| {
            BadInput(format!(
                "--time-limit: expected a non-negative number of seconds, found {s}"
            ))
        })?),
        None => None,
    };
    let (input_title, started, params, history, analysis, node_logs, files, out) = if args
        .path
        .is_dir()
    {
        let run = RunDir::open(&args.path).map_err(|e| BadInput(e.to_string()))?;
        let history = run.read_history().map_err(|e| BadInput(e.to_string()))?;
        let stored = run.read_results().map_err(|e| BadInput(e.to_string()))?;
        let analysis = match (args.model, stored) {
            (Some(m), _) => analyse(&history, m, limit, &run.history_path())?,
            (None, Some(a)) => a,
            (None, None) => {
                let guess = guess_model(Format::Jsonl, &history);
                analyse(&history, guess, limit, &run.history_path())?
            }
        };
        let (test, stamp, params, node_logs, files) = run_report_parts(&run)?;
        let out = args.out.clone().unwrap_or_else(|| run.report_path());
        (
            test, stamp, params, history, analysis, node_logs, files, out,
        )
    } else {
        let name = args.path.display().to_string();
        let file = std::fs::File::open(&args.path)
            .map_err(|e| BadInput(format!("{name}: cannot open: {e}")))?;
        let (history, format) = read::read_history_detect(file, &name, args.format.into())
            .map_err(|e| BadInput(e.to_string()))?;
        let model = args.model.unwrap_or_else(|| guess_model(format, &history));
        let analysis = analyse(&history, model, limit, &args.path)?;
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| args.path.with_extension("html"));
        let title = args
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(name);
        let files = relative_link(&out, &args.path).into_iter().collect();
        let params = serde_json::json!({ "history": args.path.display().to_string(), "model": format!("{model:?}") });
        (
            title,
            None,
            params,
            history,
            analysis,
            Vec::new(),
            files,
            out,
        )
    };
    let html = results::render(&ReportInput {
        title: input_title,
        started,
        params,
        history: &history,
        analysis: &analysis,
        node_logs,
        files,
    });
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    println!("{}: {} report written", out.display(), analysis.verdict);
    Ok(match analysis.verdict {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    })
}

/// What a run directory's report shows besides the history and the analysis: the test name,
/// the timestamp, `test.yaml`, the node logs and the run's other files.
#[allow(clippy::type_complexity)]
fn run_report_parts(
    run: &RunDir,
) -> anyhow::Result<(
    String,
    Option<String>,
    serde_json::Value,
    Vec<results::NodeLog>,
    Vec<String>,
)> {
    let params = run.read_test().map_err(|e| BadInput(e.to_string()))?;
    let node_logs = run.node_logs().map_err(|e| BadInput(e.to_string()))?;
    let files = [
        store::HISTORY_FILE,
        store::TEST_FILE,
        store::RESULTS_FILE,
        store::LOG_FILE,
    ]
    .iter()
    .filter(|f| run.path.join(f).is_file())
    .map(|f| f.to_string())
    .collect();
    let abs = std::fs::canonicalize(&run.path).unwrap_or(run.path.clone());
    let stamp = abs.file_name().map(|s| s.to_string_lossy().into_owned());
    let test = abs
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    Ok((test, stamp, params, node_logs, files))
}

/// Writes `results.json` and `report.html` of a run directory (used by `run` and `analyze`).
pub(crate) fn write_run_results(
    run: &RunDir,
    history: &History,
    analysis: &Analysis,
) -> anyhow::Result<PathBuf> {
    run.write_results(analysis)?;
    let (title, started, params, node_logs, files) = run_report_parts(run)?;
    let html = results::render(&ReportInput {
        title,
        started,
        params,
        history,
        analysis,
        node_logs,
        files,
    });
    let out = run.report_path();
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The history file as seen from the report's directory, when it sits in the same directory.
fn relative_link(report: &Path, history: &Path) -> Option<String> {
    let dir = |p: &Path| {
        std::fs::canonicalize(
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .ok()
    };
    (dir(report)? == dir(history)?)
        .then(|| {
            history
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .flatten()
}

fn guess_model(format: Format, history: &History) -> ReportModel {
    match format {
        Format::PorcupineEtcd => ReportModel::CasRegister,
        Format::PorcupineKv => ReportModel::Kv,
        _ => match Model::infer(history) {
            Model::Register => ReportModel::Register,
            Model::CasRegister => ReportModel::CasRegister,
            Model::Kv => ReportModel::Kv,
        },
    }
}

/// Runs one checker, timed: the one place that maps a model name to a checker (`report`,
/// `run` and `analyze` all use it).
pub(crate) fn analyse(
    history: &History,
    model: ReportModel,
    limit: Option<Duration>,
    file: &Path,
) -> anyhow::Result<Analysis> {
    let name = file.display();
    let started = Instant::now();
    let linear = |m: Model| -> anyhow::Result<CheckerOutput> {
        let limits = Limits {
            time: limit,
            ..Limits::default()
        };
        let r = linear::check(history, m, &limits).map_err(|e| BadInput(format!("{name}: {e}")))?;
        Ok(CheckerOutput::Linear(r))
    };
    let transactional = |opts: txn::Options| -> anyhow::Result<CheckerOutput> {
        let r = txn::check(history, &opts).map_err(|e| BadInput(format!("{name}: {e}")))?;
        Ok(CheckerOutput::Txn(r))
    };
    let (checker, output) = match model {
        ReportModel::Register => ("linearizable", linear(Model::Register)?),
        ReportModel::CasRegister => ("linearizable", linear(Model::CasRegister)?),
        ReportModel::Kv => ("linearizable", linear(Model::Kv)?),
        ReportModel::ListAppend => ("list-append", transactional(txn::Options::list_append())?),
        ReportModel::RwRegister => ("rw-register", transactional(txn::Options::rw_register())?),
        ReportModel::Bank => {
            let r = bank::check(history, &bank::Options::default())
                .map_err(|e| BadInput(format!("{name}: {e}")))?;
            ("bank", CheckerOutput::Bank(r))
        }
        ReportModel::Set => {
            let r = set::check(history, &set::Options::default())
                .map_err(|e| BadInput(format!("{name}: {e}")))?;
            ("set", CheckerOutput::Set(r))
        }
    };
    let run = CheckerRun::new(checker, output, started.elapsed());
    Ok(Analysis::new(vec![run], started.elapsed()))
}
