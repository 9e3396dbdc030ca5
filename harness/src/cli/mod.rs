//! Subcommands of the `faultline` binary and the one place where outcomes become exit codes.
use clap::{Parser, Subcommand};

pub mod analyze;
pub mod campaign;
pub mod check;
pub mod cluster;
pub mod demo;
pub mod doctor;
pub mod report;
pub mod run;
pub mod serve;

/// Documented exit codes (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The history is valid (linearizable, no anomaly), or the command succeeded.
    Valid = 0,
    /// The history is invalid.
    Invalid = 1,
    /// The checker could not decide (time limit).
    Unknown = 2,
    /// Interrupted by SIGINT/SIGTERM (`faultline campaign`).
    Interrupted = 130,
    /// Bad arguments, bad configuration or unreadable input.
    BadInput = 254,
    /// A harness or internal failure.
    Internal = 255,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// An error caused by the user's input (arguments, config, history file): exit 254.
/// Its message is one line that names the place (file:line, flag, node).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[derive(Parser, Debug)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style cluster testing: run, fault, record, check"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a test: bring up the cluster, start the target, run clients and faults, check.
    Run(Box<run::RunArgs>),
    /// Run a campaign file: many tests one after another, each outcome against its expectation.
    Campaign(Box<campaign::CampaignArgs>),
    /// A ~30 s Raft register test with partitions, kills and clock skew on 5 local nodes.
    Demo(demo::DemoArgs),
    /// Check a stored run again (also one whose controller died) and rewrite its report.
    Analyze(analyze::AnalyzeArgs),
    /// Check a history file for linearizability or transactional anomalies.
    Check(check::CheckArgs),
    /// Bring up, inspect or tear down a local cluster of namespace nodes.
    Cluster(cluster::ClusterArgs),
    /// Check what works on each node and what will be skipped; find leftovers of earlier runs.
    Doctor(doctor::DoctorArgs),
    /// Write the HTML report of a stored run (RUN_DIR/report.html) or of a history file.
    Report(report::ReportArgs),
    /// Serve a browsable index of the runs in a store (loopback only unless --bind says otherwise).
    Serve(serve::ServeArgs),
}

/// Runs a parsed command line and maps its outcome to an exit code, printing errors as one line.
pub fn run(cli: Cli) -> std::process::ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Campaign(args) => campaign::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Check(args) => check::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            let code = if err.downcast_ref::<BadInput>().is_some() {
                Exit::BadInput
            } else {
                Exit::Internal
            };
            eprintln!("faultline: error: {err:#}");
            code.into()
        }
    }
}
