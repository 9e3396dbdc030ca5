//! `faultline report`: writes the HTML report of a stored run, or of any history file after
//! checking it.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use checkers::read::{self, Format};
use checkers::verdict::Verdict;
use checkers::History;
use results::store::{self, RunDir};
use results::{Analysis, CheckModel, ReportInput};

use super::check::{FormatArg, ModelArg};
use super::{BadInput, Exit};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run directory (`store/<test>/<timestamp>`), or a history file to check.
    pub path: PathBuf,
    /// What to check the history against. Required for a history file unless it can be guessed
    /// (register/cas-register/kv from the operations); for a run directory, checks again
    /// instead of using its results.json.
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
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

/// What a report is made of, before rendering.
struct Loaded {
    title: String,
    started: Option<String>,
    params: serde_json::Value,
    history: History,
    analysis: Analysis,
    node_logs: Vec<results::NodeLog>,
    files: Vec<String>,
    out: PathBuf,
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
    let loaded = if args.path.is_dir() {
        load_run(&args, limit)?
    } else {
        load_history_file(&args, limit)?
    };
    let html = results::render(&ReportInput {
        title: loaded.title,
        started: loaded.started,
        params: loaded.params,
        history: &loaded.history,
        analysis: &loaded.analysis,
        node_logs: loaded.node_logs,
        files: loaded.files,
    });
    let out = loaded.out;
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: {} report written",
        out.display(),
        loaded.analysis.verdict
    );
    Ok(match loaded.analysis.verdict {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    })
}

/// A stored run: its history, its results.json (or a fresh check with `--model`, or when the
/// run has no results yet), its options and its files.
fn load_run(args: &ReportArgs, limit: Option<Duration>) -> anyhow::Result<Loaded> {
    let bad = |e: results::StoreError| BadInput(e.to_string());
    let run = RunDir::open(&args.path).map_err(bad)?;
    let history = run.read_history().map_err(bad)?;
    let stored = run.read_results().map_err(bad)?;
    let analysis = match (args.model, stored) {
        (Some(m), _) => analyse(&history, m.into(), limit, &run.history_path())?,
        (None, Some(a)) => a,
        (None, None) => {
            let guess = CheckModel::guess(Format::Jsonl, &history);
            analyse(&history, guess, limit, &run.history_path())?
        }
    };
    let parts = RunParts::read(&run)?;
    Ok(Loaded {
        title: parts.title,
        started: parts.started,
        params: parts.params,
        history,
        analysis,
        node_logs: parts.node_logs,
        files: parts.files,
        out: args.out.clone().unwrap_or_else(|| run.report_path()),
    })
}

/// What a run directory's report shows besides the history and the analysis.
struct RunParts {
    title: String,
    started: Option<String>,
    params: serde_json::Value,
    node_logs: Vec<results::NodeLog>,
    files: Vec<String>,
}

impl RunParts {
    fn read(run: &RunDir) -> anyhow::Result<RunParts> {
        let bad = |e: results::StoreError| BadInput(e.to_string());
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
        // store/<test>/<timestamp>: the title and start time come from the path.
        let abs = std::fs::canonicalize(&run.path).unwrap_or(run.path.clone());
        let started = abs.file_name().map(|s| s.to_string_lossy().into_owned());
        let title = abs
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        Ok(RunParts {
            title,
            started,
            params: run.read_test().map_err(bad)?,
            node_logs: run.node_logs().map_err(bad)?,
            files,
        })
    }
}

/// Writes a run's `results.json` and `report.html` (used by `faultline run` and `analyze`).
pub(crate) fn write_run_results(
    run: &RunDir,
    history: &History,
    analysis: &Analysis,
) -> anyhow::Result<PathBuf> {
    run.write_results(analysis)?;
    let parts = RunParts::read(run)?;
    let html = results::render(&ReportInput {
        title: parts.title,
        started: parts.started,
        params: parts.params,
        history,
        analysis,
        node_logs: parts.node_logs,
        files: parts.files,
    });
    let out = run.report_path();
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Any history file the checkers read, checked now.
fn load_history_file(args: &ReportArgs, limit: Option<Duration>) -> anyhow::Result<Loaded> {
    let name = args.path.display().to_string();
    let file = std::fs::File::open(&args.path)
        .map_err(|e| BadInput(format!("{name}: cannot open: {e}")))?;
    let (history, format) = read::read_history_detect(file, &name, args.format.into())
        .map_err(|e| BadInput(e.to_string()))?;
    let model = args
        .model
        .map(CheckModel::from)
        .unwrap_or_else(|| CheckModel::guess(format, &history));
    let analysis = analyse(&history, model, limit, &args.path)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.path.with_extension("html"));
    let title = args
        .path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(name.clone());
    Ok(Loaded {
        title,
        started: None,
        params: serde_json::json!({ "history": name, "model": model.name() }),
        history,
        analysis,
        node_logs: Vec::new(),
        files: relative_link(&out, &args.path).into_iter().collect(),
        out,
    })
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

/// Runs the chosen checker; a history it cannot read is bad input naming the file.
pub(crate) fn analyse(
    history: &History,
    model: CheckModel,
    limit: Option<Duration>,
    file: &Path,
) -> anyhow::Result<Analysis> {
    results::analyse(history, model, limit)
        .map_err(|e| BadInput(format!("{}: {e}", file.display())).into())
}
