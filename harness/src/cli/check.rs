//! `faultline check`: reads a history file and runs a checker on it.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use checkers::linear::{self, Limits, Model};
use checkers::read::{self, Format};
use checkers::verdict::Verdict;

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

/// The checkers `--model` can select. Linearizability models map to [`Model`]; other
/// checkers add their own variants and a match arm in [`run`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    Register,
    CasRegister,
    Kv,
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

fn default_model(format: Format, history: &checkers::History) -> ModelArg {
    let model = match format {
        Format::PorcupineEtcd => Model::CasRegister,
        Format::PorcupineKv => Model::Kv,
        _ => Model::infer(history),
    };
    match model {
        Model::Register => ModelArg::Register,
        Model::CasRegister => ModelArg::CasRegister,
        Model::Kv => ModelArg::Kv,
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let name = args.file.display().to_string();
    let file = std::fs::File::open(&args.file)
        .map_err(|e| BadInput(format!("{name}: cannot open: {e}")))?;
    let (history, format) = read::read_history_detect(file, &name, args.format.into())
        .map_err(|e| BadInput(e.to_string()))?;
    let model = args
        .model
        .unwrap_or_else(|| default_model(format, &history));
    let limits = Limits {
        time: args.time_limit,
        ..Limits::default()
    };
    let verdict = match model {
        ModelArg::Register => check_linear(&name, &history, Model::Register, &limits, args.json)?,
        ModelArg::CasRegister => {
            check_linear(&name, &history, Model::CasRegister, &limits, args.json)?
        }
        ModelArg::Kv => check_linear(&name, &history, Model::Kv, &limits, args.json)?,
    };
    Ok(match verdict {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    })
}

fn check_linear(
    name: &str,
    history: &checkers::History,
    model: Model,
    limits: &Limits,
    json: bool,
) -> anyhow::Result<Verdict> {
    let result =
        linear::check(history, model, limits).map_err(|e| BadInput(format!("{name}: {e}")))?;
    if json {
        let text = serde_json::to_string_pretty(&result).context("serialising the result")?;
        println!("{text}");
    } else {
        println!("{name}: {result}");
    }
    Ok(result.verdict)
}
