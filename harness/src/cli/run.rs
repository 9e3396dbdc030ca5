//! `faultline run`: one test against a target on a local cluster or an inventory's nodes, then
//! its check and report. Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 a
//! harness failure (reported after healing and checking what was recorded).
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use checkers::verdict::Verdict;
use checkers::History;
use nemesis::{FaultKind, ScheduleMode};
use results::store::RunDir;
use workloads::gen::WorkloadKind;

use super::report::write_run_results;
use super::{BadInput, Exit};
use crate::cluster::ClusterConfig;
use crate::db::EtcdBinary;
use crate::inventory::InventoryArgs;
use crate::run::{self, Concurrency, Nodes, RunConfig, RunError, RunRecord};
use crate::spec::{Placement, RunOptions, RunSpec, TargetName};
use results::CheckModel;

/// Environment variable naming the `faultline-server` binary to install on the nodes.
pub const SERVER_BIN_ENV: &str = "FAULTLINE_SERVER_BIN";

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A YAML file of run options (keys as the flags below with `_` for `-`, e.g. `time_limit: 30`,
    /// `nemesis: partition,kill`, `bug: [a, b]`; `nodes: N` means `--local N` unless nodes are
    /// given). A stored run's `test.yaml` works too, to run it again. Flags override the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The system under test (required unless --config gives it).
    #[arg(long, value_enum)]
    pub target: Option<TargetName>,
    /// The workload (it implies the checker) [default: register].
    #[arg(long, value_parser = parse_workload)]
    pub workload: Option<WorkloadKind>,
    /// Fault kinds to mix: partition, clock, kill, pause, packet, all or none [default: partition,kill].
    #[arg(long, value_parser = parse_nemesis)]
    pub nemesis: Option<FaultList>,
    /// Length of each quiet and each faulty period of the schedule, in seconds; with
    /// `--nemesis-schedule overlap` the mean length of each kind's periods [default: 10].
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,
    /// How faults are laid out in time: `alternate` runs one fault at a time (quiet and faulty
    /// periods of --nemesis-interval); `overlap` gives every kind in --nemesis its own seeded
    /// start/stop timeline (periods of 0.5 to 1.5 intervals), so faults of different kinds
    /// overlap, and also aims clock faults at the current leader, setting its clock back
    /// [default: alternate].
    #[arg(long, value_name = "alternate|overlap", value_parser = parse_schedule)]
    pub nemesis_schedule: Option<ScheduleMode>,
    /// Share (0 to 1) of partitions, kills and pauses aimed at the current leader (with
    /// `--nemesis-schedule overlap` also of clock faults) [default: 0.5, 0 for 2pc].
    #[arg(long, value_name = "SHARE")]
    pub leader_share: Option<f64>,
    /// Length of the main phase, in seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Client processes: a number, or a multiple of the node count (`2n`) [default: 1n].
    #[arg(long, value_name = "N|Kn")]
    pub concurrency: Option<Concurrency>,
    /// Invocations per second over all clients (0: as fast as they can) [default: 100].
    #[arg(long, value_name = "HZ")]
    pub rate: Option<f64>,
    /// Seeds the generator, the fault schedule and the servers' own randomness [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// A known server bug to switch on (targets/BUGS.md); repeat for more.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// How reads are served: quorum or lease (bundled servers), linearizable or serializable
    /// (etcd).
    #[arg(long, value_name = "MODE")]
    pub read_mode: Option<String>,
    /// A flag passed as it is to every server's command line, e.g.
    /// `--server-arg=--max-append-entries=1` (a tuning knob of targets/PROTOCOL.md); repeat for
    /// more.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Bring up (or reuse) a local cluster of N namespace nodes instead of an inventory.
    #[arg(long, value_name = "N", conflicts_with_all = ["inventory", "nodes", "node", "nodes_file", "vagrant_ssh_config"])]
    pub local: Option<usize>,
    #[command(flatten)]
    pub cluster: LocalClusterArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Where runs are stored.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// The faultline-server binary to install [default: $FAULTLINE_SERVER_BIN, else the one next
    /// to this program]; with `--target etcd`, an etcd binary to upload [default: Debian's
    /// /usr/bin/etcd, installed with apt-get when missing].
    #[arg(long, value_name = "FILE")]
    pub server_bin: Option<PathBuf>,
    /// Leave the servers running after the test (logs are still collected).
    #[arg(long)]
    pub leave_db_running: bool,
    /// A request without a reply after this many seconds is recorded as `info` [default: 5].
    #[arg(long, value_name = "SECS")]
    pub op_timeout: Option<f64>,
    /// Give up checking after this many seconds (verdict unknown).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub check_time_limit: f64,
    /// No progress line or periodic progress log.
    #[arg(long)]
    pub quiet: bool,
    /// Run the test this many times, run i with seed `--seed + i`; stops at the first harness
    /// failure. The exit code is the worst verdict (invalid over unknown over valid).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_count: u32,
}

/// The local cluster's names, for `--local` (defaults: those of `faultline cluster up`).
#[derive(clap::Args, Debug, Clone)]
pub struct LocalClusterArgs {
    /// State directory of the local cluster [default: $FAULTLINE_CLUSTER_DIR or
    /// /var/lib/faultline/cluster].
    #[arg(long, value_name = "DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// Prefix of the local cluster's namespaces.
    #[arg(long, default_value = "fl")]
    pub cluster_tag: String,
    /// The local cluster's bridge.
    #[arg(long, default_value = "flbr0")]
    pub cluster_bridge: String,
    /// First three octets of the local cluster's /24.
    #[arg(long, default_value = "10.77.0")]
    pub cluster_subnet: String,
}

impl LocalClusterArgs {
    pub fn config(&self, nodes: usize) -> ClusterConfig {
        ClusterConfig {
            tag: self.cluster_tag.clone(),
            bridge: self.cluster_bridge.clone(),
            subnet: self.cluster_subnet.clone(),
            ..ClusterConfig::new(
                self.cluster_dir
                    .clone()
                    .unwrap_or_else(ClusterConfig::default_dir),
                nodes,
            )
        }
    }
}

#[derive(Debug, Clone)]
pub struct FaultList(pub Vec<FaultKind>);

fn parse_nemesis(s: &str) -> Result<FaultList, String> {
    FaultKind::parse_list(s)
        .map(FaultList)
        .map_err(|e| e.to_string())
}

fn parse_schedule(s: &str) -> Result<ScheduleMode, String> {
    s.parse()
}

fn parse_workload(s: &str) -> Result<WorkloadKind, String> {
    s.parse()
}

fn seconds(flag: &str, s: f64) -> Result<Duration, BadInput> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            BadInput(format!(
                "{flag}: expected a positive number of seconds, found {s}"
            ))
        })
}

/// The server binary: the flag, the environment, else `faultline-server` next to this program.
pub fn server_bin(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match flag.or_else(|| std::env::var_os(SERVER_BIN_ENV).map(PathBuf::from)) {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating this program")?
            .with_file_name("faultline-server"),
    };
    if !path.is_file() {
        return Err(BadInput(format!(
            "--server-bin: {} does not exist (build it with `cargo build -p targets`, or pass --server-bin / set {SERVER_BIN_ENV})",
            path.display()
        ))
        .into());
    }
    Ok(path)
}

impl RunArgs {
    /// The run options the flags give (`None` where a flag is absent).
    pub fn flags(&self) -> RunSpec {
        RunSpec {
            target: self.target,
            workload: self.workload,
            nemesis: self.nemesis.as_ref().map(|l| l.0.clone()),
            nemesis_interval: self.nemesis_interval,
            nemesis_schedule: self.nemesis_schedule,
            leader_share: self.leader_share,
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            rate: self.rate,
            seed: self.seed,
            bugs: (!self.bugs.is_empty()).then(|| self.bugs.clone()),
            read_mode: self.read_mode.clone(),
            server_args: (!self.server_args.is_empty()).then(|| self.server_args.clone()),
            op_timeout: self.op_timeout,
            nodes: self.local,
            ..RunSpec::default()
        }
    }

    /// The options of this run: the flags over `--config`'s file over the defaults, and the
    /// local cluster size (`--local`, else the file's `nodes:` unless other nodes are given).
    pub fn options(&self) -> anyhow::Result<(RunOptions, Option<usize>)> {
        let file = match &self.config {
            Some(f) => RunSpec::from_file(f).map_err(|e| BadInput(format!("--config: {e}")))?,
            None => RunSpec::default(),
        };
        let spec = self.flags().or(&file);
        let opts = spec.resolve().map_err(|e| {
            let flag = e.as_flag();
            match &self.config {
                Some(f) => BadInput(format!("{flag} (with --config {})", f.display())),
                None => BadInput(flag),
            }
        })?;
        let local = self
            .local
            .or(file.nodes.filter(|_| !nodes_given(&self.inventory)));
        Ok((opts, local))
    }
}

/// Whether the flags name nodes (an inventory, hosts, a vagrant ssh-config).
pub(crate) fn nodes_given(a: &InventoryArgs) -> bool {
    a.inventory.is_some()
        || a.vagrant_ssh_config.is_some()
        || a.nodes_file.is_some()
        || !a.nodes.is_empty()
        || !a.node.is_empty()
}

/// Builds the run configuration from the flags (and `--config`).
pub fn config(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let (opts, local) = args.options()?;
    let nodes = match local {
        Some(n) => Nodes::Local(args.cluster.config(n)),
        None => {
            let inventory = args
                .inventory
                .to_inventory()
                .map_err(|e| BadInput(format!("{e} (or use --local N for a local cluster)")))?;
            let source = match &args.inventory.inventory {
                Some(f) => f.display().to_string(),
                None => "--nodes".to_string(),
            };
            Nodes::Inventory { inventory, source }
        }
    };
    let etcd = match &args.server_bin {
        Some(p) if opts.target == TargetName::Etcd && !p.is_file() => {
            return Err(BadInput(format!("--server-bin: {} does not exist", p.display())).into())
        }
        Some(p) => EtcdBinary::Local(p.clone()),
        None => EtcdBinary::Apt,
    };
    let server_bin = match opts.target {
        TargetName::Etcd => None,
        _ => Some(server_bin(args.server_bin.clone())?),
    };
    let place = Placement {
        nodes,
        store: args.store.clone(),
        server_bin,
        etcd,
        leave_db_running: args.leave_db_running,
        progress: !args.quiet,
    };
    opts.run_config(&place)
        .map_err(|e| BadInput(e.as_flag()).into())
}

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let cfg = config(&args)?;
    let limit = seconds("--check-time-limit", args.check_time_limit)?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut worst = Exit::Valid;
    for i in 0..args.test_count {
        let cfg = RunConfig {
            seed: cfg.seed.wrapping_add(u64::from(i)),
            ..cfg.clone()
        };
        let record = rt.block_on(run::execute(cfg.clone())).map_err(classify)?;
        let exit = finish(&record, cfg.workload, limit)?;
        if exit == Exit::Internal || record.interrupted.is_some() {
            return Ok(exit);
        }
        worst = worse(worst, exit);
    }
    Ok(worst)
}

/// The more alarming of two verdict exit codes: invalid, then unknown, then valid.
fn worse(a: Exit, b: Exit) -> Exit {
    let rank = |e: Exit| match e {
        Exit::Invalid => 3,
        Exit::Unknown => 2,
        _ => 1,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

pub(crate) fn classify(e: RunError) -> anyhow::Error {
    match e {
        RunError::Config(m) => BadInput(m).into(),
        RunError::Setup(m) => anyhow::anyhow!(m),
    }
}

/// The checker a workload implies.
pub(crate) fn model_of(workload: WorkloadKind) -> CheckModel {
    match workload {
        WorkloadKind::Register => CheckModel::CasRegister,
        WorkloadKind::ListAppend => CheckModel::ListAppend,
        WorkloadKind::RwRegister => CheckModel::RwRegister,
        WorkloadKind::Set => CheckModel::Set,
        WorkloadKind::Bank => CheckModel::Bank,
    }
}

/// What the run's `test.yaml` says the checker must know: the bank's total and whether negative
/// balances are allowed (recorded by the runner). A run without them (an older run, another
/// workload) gets the defaults: the first `ok` read sets the total.
pub(crate) fn check_options(run: &RunDir) -> results::CheckOptions {
    let params = run.read_test().unwrap_or_default();
    let bank = &params["bank"];
    results::CheckOptions {
        bank: checkers::bank::Options {
            total: bank["total"].as_i64(),
            negative_balances_allowed: bank["negative_balances_allowed"].as_bool().unwrap_or(false),
        },
    }
}

/// Checks a finished run, writes results.json and report.html, prints the verdict line and
/// returns the exit code (255 after a harness failure, whatever the verdict).
pub fn finish(record: &RunRecord, workload: WorkloadKind, limit: Duration) -> anyhow::Result<Exit> {
    let exit = check_and_report(
        &record.run,
        &record.history,
        workload,
        limit,
        &record.test_name,
    )?;
    if let Some(s) = record.interrupted {
        eprintln!(
            "faultline: the run was interrupted by {s}; the verdict covers what was recorded"
        );
    }
    if let Some(why) = &record.harness_failure {
        eprintln!("faultline: harness failure (new operations stopped, healing attempted — see faultline.log —, history checked): {why}");
        return Ok(Exit::Internal);
    }
    Ok(exit)
}

/// Checks `history` as `workload` prescribes and stores the results and the report; returns the
/// analysis and the report's path.
pub(crate) fn check_run(
    run: &RunDir,
    history: &History,
    workload: WorkloadKind,
    limit: Duration,
) -> anyhow::Result<(results::Analysis, PathBuf)> {
    let analysis = results::analyse_with(
        history,
        model_of(workload),
        Some(limit),
        &check_options(run),
    )
    .map_err(|e| BadInput(format!("{}: {e}", run.history_path().display())))?;
    let report = write_run_results(run, history, &analysis)?;
    Ok((analysis, report))
}

/// Checks `history` as `workload` prescribes, stores the results and the report, prints one line.
pub(crate) fn check_and_report(
    run: &RunDir,
    history: &History,
    workload: WorkloadKind,
    limit: Duration,
    test: &str,
) -> anyhow::Result<Exit> {
    let (analysis, report) = check_run(run, history, workload, limit)?;
    let client_ops = history
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind != checkers::history::OpType::Invoke)
        .count();
    println!(
        "{test}: {} ({client_ops} client ops, {} anomalies; checked in {:.3} s) -> {}",
        analysis.verdict,
        analysis.anomaly_count(),
        analysis.elapsed_us as f64 / 1e6,
        report.display()
    );
    Ok(match analysis.verdict {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    })
}
