//! `faultline check`: reads a history file and runs a checker on it.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use checkers::read::{self, Format};
use checkers::verdict::Verdict;
use results::CheckModel;

use super::{BadInput, Exit};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The history file to check.
    pub file: PathBuf,
    /// What the history is checked against. Default: cas-register for porcupine-etcd, kv for
    /// porcupine-kv, otherwise guessed from the operations (get/put/append: kv, else cas-register).
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// The history format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Give up after this many seconds with verdict unknown (exit 2).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub time_limit: Option<Duration>,
    /// Print the result as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The checkers `--model` can select: linearizability (`register`, `cas-register`, `kv`),
/// transactional (`list-append`, `rw-register`) and invariants (`bank`, `set`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    Register,
    CasRegister,
    Kv,
    ListAppend,
    RwRegister,
    Bank,
    Set,
}

impl From<ModelArg> for CheckModel {
    fn from(m: ModelArg) -> CheckModel {
        match m {
            ModelArg::Register => CheckModel::Register,
            ModelArg::CasRegister => CheckModel::CasRegister,
            ModelArg::Kv => CheckModel::Kv,
            ModelArg::ListAppend => CheckModel::ListAppend,
            ModelArg::RwRegister => CheckModel::RwRegister,
            ModelArg::Bank => CheckModel::Bank,
            ModelArg::Set => CheckModel::Set,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Auto,
    Jsonl,
    Edn,
    PorcupineEtcd,
    PorcupineKv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Edn => Format::Edn,
            FormatArg::PorcupineEtcd => Format::PorcupineEtcd,
            FormatArg::PorcupineKv => Format::PorcupineKv,
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("expected a non-negative number of seconds, found {s:?}"))
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let name = args.file.display().to_string();
    let file = std::fs::File::open(&args.file)
        .map_err(|e| BadInput(format!("{name}: cannot open: {e}")))?;
    let (history, format) = read::read_history_detect(file, &name, args.format.into())
        .map_err(|e| BadInput(e.to_string()))?;
    let model = args
        .model
        .map(CheckModel::from)
        .unwrap_or_else(|| CheckModel::guess(format, &history));
    let analysis = results::analyse(&history, model, args.time_limit)
        .map_err(|e| BadInput(format!("{name}: {e}")))?;
    if args.json {
        let value = match analysis.checkers.as_slice() {
            // One checker: its own result, as the checkers define it.
            [one] => serde_json::to_value(&one.output).context("serialising the result")?["result"]
                .take(),
            _ => serde_json::to_value(&analysis).context("serialising the result")?,
        };
        let text = serde_json::to_string_pretty(&value).context("serialising the result")?;
        println!("{text}");
    } else {
        for run in &analysis.checkers {
            println!("{name}: {}", run.output);
        }
    }
    Ok(exit_for(analysis.verdict))
}

/// The exit code for a verdict (README "Exit codes").
pub fn exit_for(verdict: Verdict) -> Exit {
    match verdict {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    }
}
