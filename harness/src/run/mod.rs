//! The test runner: one run of one workload against one target under a seeded nemesis.
//!
//! [`execute`] brings the cluster up (or reaches the inventory's nodes), installs and starts the
//! servers, runs the clients and the fault schedule together for the time limit, heals, runs the
//! workload's final reads, stops the servers and collects their logs. Every op reaches
//! `history.jsonl` through the [`recorder`] as it happens. Checking and the report are the
//! caller's (`faultline run` in `cli::run`), so a stored run is checked the same way by
//! `faultline analyze`.
//!
//! Faults are healed on every way out of the main phase: the time limit, SIGINT/SIGTERM and a
//! harness failure (an `indeterminate` fault action, lost SSH). A harness failure is reported
//! in [`RunRecord::harness_failure`], after healing; the history recorded so far is kept.
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::history::OpType;
use checkers::History;
use nemesis::heal::{heal_all, HealOptions};
use nemesis::{
    schedule, Access, FaultKind, FaultRecord, Nemesis, NemesisConfig, OffsetFiles, Outcome, Remote,
    ScheduleConfig, ScheduleMode,
};
use results::store::{RunDir, Store};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use workloads::bundled::{spread_accounts, BundledClient};
use workloads::etcd::{EtcdClient, ReadMode};
use workloads::gen::{generator, Generator, Invocation, WorkloadKind, WorkloadOptions};
use workloads::Completion;

use crate::cluster::{self, ClusterConfig};
use crate::db::{
    self, BinarySource, Database, Etcd, EtcdBinary, EtcdConfig, FaultlineServer, Protocol,
    ServerConfig,
};
use crate::inventory::Inventory;
use crate::ssh::{connect_all, SshOptions};

pub mod control;
pub mod recorder;

pub use control::{EtcdControl, ServerControl};
use recorder::{Counts, Recorder};

/// Where the nodes come from.
#[derive(Debug, Clone)]
pub enum Nodes {
    /// Bring up (or reuse) a local cluster of namespace nodes.
    Local(ClusterConfig),
    /// Nodes reached over SSH as the inventory says.
    Inventory {
        inventory: Inventory,
        source: String,
    },
}

/// How many client processes run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Concurrency {
    Fixed(usize),
    /// This many per node (`3n`).
    PerNode(usize),
}

impl Concurrency {
    pub fn resolve(self, nodes: usize) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::PerNode(k) => k * nodes,
        }
    }
}

impl std::str::FromStr for Concurrency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not a positive number of clients or a multiple of the node count such as 2n")
        };
        let (digits, per_node) = match s.strip_suffix('n') {
            Some(d) => (d, true),
            None => (s, false),
        };
        let n: usize = digits.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(if per_node {
            Concurrency::PerNode(n)
        } else {
            Concurrency::Fixed(n)
        })
    }
}

/// The system under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// The bundled `faultline-server` speaking this protocol (installed from `server_bin`).
    Server(Protocol),
    /// etcd, one member per node, from this binary.
    Etcd(EtcdBinary),
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Server(p) => p.as_str(),
            Target::Etcd(_) => "etcd",
        }
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub target: Target,
    pub workload: WorkloadKind,
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval: Duration,
    /// How the nemesis lays out its faults in time.
    pub nemesis_schedule: ScheduleMode,
    /// Share of faults aimed at the leader; `None` for the target's default ([`leader_share`]).
    pub leader_share: Option<f64>,
    pub time_limit: Duration,
    pub concurrency: Concurrency,
    /// Invocations per second over all clients; `None` for as fast as they can.
    pub rate: Option<f64>,
    pub seed: u64,
    pub bugs: Vec<String>,
    /// `quorum|lease` for the bundled servers, `linearizable|serializable` for etcd.
    pub read_mode: Option<String>,
    /// Flags appended as they are to every server's command line (`--server-arg`).
    pub server_args: Vec<String>,
    pub nodes: Nodes,
    pub store: PathBuf,
    /// The `faultline-server` binary (unused for etcd, whose binary is in [`Target::Etcd`]).
    pub server_bin: PathBuf,
    pub leave_db_running: bool,
    /// A client request without a reply after this long is recorded as `info`.
    pub op_timeout: Duration,
    /// How long to wait for the servers to serve, at the start and after healing.
    pub ready_timeout: Duration,
    /// Print a progress line (on a terminal) or periodic log lines.
    pub progress: bool,
}

impl RunConfig {
    /// The store's test name: `<target>-<workload>`.
    pub fn test_name(&self) -> String {
        format!("{}-{}", self.target.name(), self.workload.name())
    }
}

/// What a run left behind, for checking.
#[derive(Debug)]
pub struct RunRecord {
    pub run: RunDir,
    pub history: History,
    pub test_name: String,
    /// Why the run stopped early because of the harness (after healing), if it did.
    pub harness_failure: Option<String>,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<&'static str>,
    /// From the start of [`execute`] to the first client invocation.
    pub to_first_op: Option<Duration>,
    /// Length of the main phase (clients and nemesis).
    pub main_phase: Duration,
    pub concurrency: usize,
}

/// Why a run could not happen at all (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot work (bad schedule, unknown bug, ...): exit 254.
    #[error("{0}")]
    Config(String),
    /// The harness failed before the test began: exit 255.
    #[error("{0}")]
    Setup(String),
}

/// The parameters stored as `test.yaml`.
#[derive(Serialize)]
struct TestParams<'a> {
    test: String,
    target: &'a str,
    workload: &'a str,
    nemesis: Vec<&'static str>,
    nemesis_interval_s: f64,
    nemesis_schedule: &'static str,
    leader_share: f64,
    time_limit_s: f64,
    concurrency: usize,
    rate: Option<f64>,
    seed: u64,
    bugs: &'a [String],
    read_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    server_args: &'a [String],
    nodes: Vec<String>,
    cluster: String,
    server_bin: String,
    op_timeout_s: f64,
    /// The bank workload's accounts and the total the checker expects (bank runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    bank: Option<BankParams>,
    /// As JSON data: YAML tags for enums would not read back as plain data.
    schedule: serde_json::Value,
}

/// The bank workload as recorded in `test.yaml`; `cli::run` hands `total` and
/// `negative_balances_allowed` to the bank checker.
#[derive(Serialize)]
struct BankParams {
    accounts: Vec<u64>,
    initial_balance: i64,
    max_transfer: i64,
    total: i64,
    negative_balances_allowed: bool,
}

/// A log line to `faultline.log` and, unless the progress line owns the terminal, stderr.
#[derive(Clone)]
struct Log {
    file: Arc<Mutex<std::fs::File>>,
    started: std::time::Instant,
    tty: bool,
}

impl Log {
    fn line(&self, msg: impl AsRef<str>) {
        let t = self.started.elapsed().as_secs_f64();
        let line = format!("[{t:8.3}s] {}", msg.as_ref());
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
        if self.tty {
            eprint!("\r\x1b[K{line}\n");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Whether a fault record starts or ends a fault of its kind, for the progress line.
fn track_active(active: &Mutex<BTreeSet<&'static str>>, rec: &FaultRecord) {
    if rec.outcome != Outcome::Installed {
        return;
    }
    let (kind, on) = match rec.f.as_str() {
        "start-partition" => ("partition", true),
        "stop-partition" => ("partition", false),
        "bump-clock" | "strobe-clock" => ("clock", true),
        "reset-clock" => ("clock", false),
        "kill" => ("kill", true),
        "start" => ("kill", false),
        "pause" => ("pause", true),
        "resume" => ("pause", false),
        "start-packet" => ("packet", true),
        "stop-packet" => ("packet", false),
        "heal" => {
            if let Ok(mut a) = active.lock() {
                a.clear();
            }
            return;
        }
        _ => return,
    };
    if let Ok(mut a) = active.lock() {
        if on {
            a.insert(kind);
        } else {
            a.remove(kind);
        }
    }
}

/// Hands out invocation times so that all clients together invoke at `rate` per second.
struct Pacer {
    period: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn slot(&self) -> Option<Instant> {
        let period = self.period?;
        let mut next = self.next.lock().ok()?;
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + period;
        Some(at)
    }
}

/// Which client speaks to the target.
#[derive(Debug, Clone, Copy)]
enum ClientKind {
    Bundled,
    Etcd(ReadMode),
}

impl ClientKind {
    fn connect(self, node: &str, addr: String, timeout: Duration) -> Client {
        match self {
            ClientKind::Bundled => Client::Bundled(BundledClient::new(node, addr, timeout)),
            ClientKind::Etcd(mode) => Client::Etcd(EtcdClient::new(node, addr, timeout, mode)),
        }
    }
}

/// One logical client's connection to one node, whatever the target.
enum Client {
    Bundled(BundledClient),
    Etcd(EtcdClient),
}

impl Client {
    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        match self {
            Client::Bundled(c) => c.invoke(inv).await,
            Client::Etcd(c) => c.invoke(inv).await,
        }
    }
}

/// The target's database and its control, as the runner drives them.
enum SystemUnderTest {
    Server {
        db: Arc<FaultlineServer>,
        control: Arc<ServerControl>,
        need_leader: bool,
    },
    Etcd {
        db: Arc<Etcd>,
        control: Arc<EtcdControl>,
    },
}

impl SystemUnderTest {
    fn db(&self) -> &dyn Database {
        match self {
            SystemUnderTest::Server { db, .. } => db.as_ref(),
            SystemUnderTest::Etcd { db, .. } => db.as_ref(),
        }
    }

    fn control(&self) -> Arc<dyn nemesis::TargetControl> {
        match self {
            SystemUnderTest::Server { control, .. } => control.clone(),
            SystemUnderTest::Etcd { control, .. } => control.clone(),
        }
    }

    /// Waits until the target serves on every node.
    async fn await_ready(&self, timeout: Duration) -> Result<(), String> {
        match self {
            SystemUnderTest::Server {
                control,
                need_leader,
                ..
            } => control.await_ready(timeout, *need_leader).await,
            SystemUnderTest::Etcd { control, .. } => control.await_ready(timeout).await,
        }
    }
}

struct Shared {
    gen: Mutex<Box<dyn Generator>>,
    client: ClientKind,
    pacer: Pacer,
    recorder: Recorder,
    first_op: Mutex<Option<Instant>>,
    max_process: AtomicU64,
    op_timeout: Duration,
}

/// One logical client slot: invokes until told to stop, taking a fresh process id after `info`.
async fn client_worker(
    worker: usize,
    concurrency: usize,
    node: String,
    addr: String,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut process = worker as u64;
    let mut client = shared
        .client
        .connect(&node, addr.clone(), shared.op_timeout);
    shared.max_process.fetch_max(process, Ordering::Relaxed);
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(at) = shared.pacer.slot() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.changed() => return,
            }
        }
        let inv = match shared.gen.lock() {
            Ok(mut g) => g.next_op(),
            Err(_) => return,
        };
        if let Ok(mut first) = shared.first_op.lock() {
            first.get_or_insert_with(Instant::now);
        }
        let (done, unavailable) = perform(&mut client, &shared.recorder, process, &inv).await;
        if unavailable {
            // Nobody can serve right now (election, partitioned node, server down): a client
            // that retried at once would only fill the history with identical failures.
            tokio::select! {
                _ = tokio::time::sleep(UNAVAILABLE_BACKOFF) => {}
                _ = stop.changed() => {}
            }
        }
        if done == OpType::Info {
            // The outcome is unknown: this process may still have an op in flight, forever.
            process += concurrency as u64;
            shared.max_process.fetch_max(process, Ordering::Relaxed);
            client = shared
                .client
                .connect(&node, addr.clone(), shared.op_timeout);
        }
    }
}

/// How long a client waits after the target said it cannot serve at all.
const UNAVAILABLE_BACKOFF: Duration = Duration::from_millis(50);

/// Error codes (the prefix of a completion's `error`) that mean "nobody can serve right now",
/// as opposed to an answer about the operation itself (`cas-mismatch`, `aborted`).
const UNAVAILABLE: [&str; 4] = ["no-leader", "not-leader", "unavailable", "connect-failed"];

/// Invokes, records both ends; returns the completion's type and whether the target was
/// unavailable.
async fn perform(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    inv: &Invocation,
) -> (OpType, bool) {
    recorder.invoke(process, &inv.f, inv.key.clone(), inv.value.clone());
    let done = client.invoke(inv).await;
    let kind = done.kind;
    let unavailable = done
        .error
        .as_deref()
        .is_some_and(|e| UNAVAILABLE.iter().any(|c| e.starts_with(c)));
    recorder.complete(process, &inv.f, inv.key.clone(), done);
    (kind, unavailable)
}

async fn signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

/// Runs the test described by `cfg`; see the module documentation.
pub async fn execute(cfg: RunConfig) -> Result<RunRecord, RunError> {
    let t_start = Instant::now();
    let tty = std::io::stderr().is_terminal();

    // Check what can be checked before touching any node.
    let planned: Vec<String> = match &cfg.nodes {
        Nodes::Local(cc) => (1..=cc.nodes).map(|i| format!("n{i}")).collect(),
        Nodes::Inventory { inventory, .. } => {
            inventory.nodes.iter().map(|n| n.name.clone()).collect()
        }
    };
    let concurrency = cfg.concurrency.resolve(planned.len());
    if concurrency == 0 {
        return Err(RunError::Config("--concurrency: no clients".into()));
    }
    let plan = schedule(&ScheduleConfig {
        interval: cfg.nemesis_interval,
        mode: cfg.nemesis_schedule,
        duration: cfg.time_limit,
        leader_share: cfg
            .leader_share
            .unwrap_or_else(|| leader_share(&cfg.target)),
        ..ScheduleConfig::new(cfg.seed, planned, cfg.nemesis.clone())
    })
    .map_err(|e| RunError::Config(format!("--nemesis: {e}")))?;

    // Nodes. A local cluster is this run's alone until it ends (see `cluster::Claim`).
    let _claim = match &cfg.nodes {
        Nodes::Local(cc) if cluster::is_root() => Some(
            cluster::claim(&cc.dir).map_err(|e| RunError::Setup(format!("local cluster: {e}")))?,
        ),
        _ => None,
    };
    let (inventory, cluster_desc, controller_hint) = match &cfg.nodes {
        Nodes::Local(cc) => {
            let cc = cc.clone();
            let c = tokio::task::spawn_blocking(move || cluster::up(&cc))
                .await
                .map_err(|e| RunError::Setup(format!("cluster up: {e}")))?
                .map_err(|e| match e {
                    cluster::ClusterError::BadConfig(_) | cluster::ClusterError::State { .. } => {
                        RunError::Config(e.to_string())
                    }
                    other => RunError::Setup(format!("local cluster: {other}")),
                })?;
            let inv = Inventory::from_yaml_file(&c.inventory_path(), &Default::default())
                .map_err(|e| RunError::Setup(e.to_string()))?;
            let desc = format!("local {} nodes ({})", c.nodes().len(), c.dir().display());
            (inv, desc, Some(c.controller_addr().to_string()))
        }
        Nodes::Inventory { inventory, source } => (inventory.clone(), source.clone(), None),
    };
    let names: Vec<String> = inventory.nodes.iter().map(|n| n.name.clone()).collect();
    if let Nodes::Local(cc) = &cfg.nodes {
        if names.len() != cc.nodes {
            return Err(RunError::Setup(format!(
                "the local cluster has {} nodes, {} were asked for",
                names.len(),
                cc.nodes
            )));
        }
    }
    let wl = workload_options(&cfg, &names)?;
    // The run directory and its log.
    let store = Store::new(&cfg.store);
    let run = store
        .create_run(&cfg.test_name(), chrono::Utc::now())
        .map_err(|e| RunError::Config(format!("--store: {e}")))?;
    let log_file = std::fs::File::create(run.log_path())
        .map_err(|e| RunError::Setup(format!("{}: {e}", run.log_path().display())))?;
    let log = Log {
        file: Arc::new(Mutex::new(log_file)),
        started: std::time::Instant::now(),
        tty: tty && cfg.progress,
    };
    let params = TestParams {
        test: cfg.test_name(),
        target: cfg.target.name(),
        workload: cfg.workload.name(),
        nemesis: cfg.nemesis.iter().map(|k| k.as_str()).collect(),
        nemesis_interval_s: cfg.nemesis_interval.as_secs_f64(),
        nemesis_schedule: cfg.nemesis_schedule.as_str(),
        leader_share: cfg
            .leader_share
            .unwrap_or_else(|| leader_share(&cfg.target)),
        time_limit_s: cfg.time_limit.as_secs_f64(),
        concurrency,
        rate: cfg.rate,
        seed: cfg.seed,
        bugs: &cfg.bugs,
        read_mode: cfg.read_mode.as_deref(),
        server_args: &cfg.server_args,
        nodes: names.clone(),
        cluster: cluster_desc.clone(),
        server_bin: match &cfg.target {
            Target::Server(_) => cfg.server_bin.display().to_string(),
            Target::Etcd(EtcdBinary::Apt) => "etcd from apt (/usr/bin/etcd)".to_string(),
            Target::Etcd(EtcdBinary::Local(p)) => p.display().to_string(),
        },
        op_timeout_s: cfg.op_timeout.as_secs_f64(),
        bank: (cfg.workload == WorkloadKind::Bank).then(|| BankParams {
            accounts: wl.bank.accounts.clone(),
            initial_balance: wl.bank.initial_balance,
            max_transfer: wl.bank.max_transfer,
            total: wl.bank.total(),
            negative_balances_allowed: false,
        }),
        schedule: serde_json::to_value(&plan).unwrap_or_default(),
    };
    run.write_test(&params)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    log.line(format!(
        "{}: {} on {cluster_desc}; {} clients, nemesis [{}] every {:?} ({}), {:?}, seed {}",
        cfg.test_name(),
        run.path.display(),
        concurrency,
        params.nemesis.join(","),
        cfg.nemesis_interval,
        cfg.nemesis_schedule,
        cfg.time_limit,
        cfg.seed
    ));

    // Connect and start the servers.
    let remotes = connect_all(&inventory, &SshOptions::default())
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let nodes: Vec<Arc<dyn Remote>> = remotes.into_iter().map(|r| r as Arc<dyn Remote>).collect();
    let clock_faults = cfg.nemesis.contains(&FaultKind::Clock);
    let sut = target_for(&cfg, &nodes)?;
    let db = sut.db();
    let access = Access {
        sudo: inventory.nodes.iter().any(|n| n.user != "root"),
        offset_files: OffsetFiles::Fixed(
            db.faketime_file()
                .unwrap_or_else(|| db::FAKETIME_FILE.to_string()),
        ),
        ..Access::default()
    };
    let control = sut.control();
    // Leftovers of an earlier run (a killed controller) must not leak into this one.
    let leftovers = heal_all(&nodes, None, &heal_options(&access, vec![])).await;
    if leftovers.outcome.is_indeterminate() {
        return Err(RunError::Setup(format!(
            "clearing earlier faults: {}",
            leftovers.value()
        )));
    }
    let fresh = async {
        db::on_all(&nodes, |n| db.stop(n)).await?;
        db::on_all(&nodes, |n| db.wipe(n)).await?;
        db::setup(db, &nodes).await
    };
    if let Err(e) = fresh.await {
        return Err(RunError::Setup(format!("starting {}: {e}", db.name())));
    }
    if let Err(why) = sut.await_ready(cfg.ready_timeout).await {
        let _ = db::teardown(db, &nodes, Some(&run.path)).await;
        return Err(RunError::Setup(format!(
            "{} not ready after {:?}: {why}",
            db.name(),
            cfg.ready_timeout
        )));
    }
    // Clock faults the target cannot feel are recorded as skipped, never silently dropped.
    let clock_unsupported = db.clock_fault_unsupported().filter(|_| clock_faults);
    if let Some(why) = &clock_unsupported {
        log.line(format!("clock faults will be skipped: {why}"));
    }
    log.line(format!(
        "{} serving on {} nodes after {:.2} s",
        db.name(),
        nodes.len(),
        t_start.elapsed().as_secs_f64()
    ));

    // The workload's setup (the bank's initial balances), before any client or fault, unrecorded.
    let gen = generator(cfg.workload, &wl);
    let setup = gen.setup_ops();
    if !setup.is_empty() {
        match run_setup(&cfg, db, &names, &setup).await {
            Ok(attempts) => log.line(format!(
                "workload setup: {} op(s) ok after {attempts} attempt(s)",
                setup.len()
            )),
            Err(why) => {
                let _ = db::teardown(db, &nodes, Some(&run.path)).await;
                return Err(RunError::Setup(format!("workload setup: {why}")));
            }
        }
    }

    let controller_addrs = match controller_hint {
        Some(a) => vec![a],
        None => controller_addresses(&nodes).await,
    };
    let nem = Arc::new(Nemesis::new(
        nodes.clone(),
        control.clone(),
        NemesisConfig {
            access: access.clone(),
            controller_addrs,
            seed: cfg.seed,
            ..NemesisConfig::default()
        },
    ));

    // The main phase.
    let started = Instant::now();
    let (recorder, recorder_task) = Recorder::start(&run.history_path(), started)
        .map_err(|e| RunError::Setup(format!("{}: {e}", run.history_path().display())))?;
    let counts = recorder.counts();
    let active = Arc::new(Mutex::new(BTreeSet::new()));
    let final_ops = gen.final_ops();
    let shared = Arc::new(Shared {
        gen: Mutex::new(gen),
        client: client_kind(&cfg),
        pacer: Pacer {
            period: cfg
                .rate
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(started),
        },
        recorder: recorder.clone(),
        first_op: Mutex::new(None),
        max_process: AtomicU64::new(0),
        op_timeout: cfg.op_timeout,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let node = names[w % names.len()].clone();
        let addr = db
            .client_addr(&node)
            .expect("every member has a client address");
        workers.push(tokio::spawn(client_worker(
            w,
            concurrency,
            node,
            addr,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    let mut nem_task = {
        let nem = nem.clone();
        let rec = recorder.clone();
        let active = active.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            for step in &plan {
                tokio::time::sleep_until(started + step.at).await;
                let r = match (&step.op, &clock_unsupported) {
                    (nemesis::FaultOp::Clock { change }, Some(why)) => {
                        FaultRecord::new(step.op.f(), Outcome::Skipped(why.clone()))
                            .with("change", change)
                    }
                    (op, _) => nem.apply(op).await,
                };
                rec.nemesis(&r);
                track_active(&active, &r);
                if r.outcome.is_indeterminate() {
                    return Err(r);
                }
            }
            Ok(())
        })
    };
    let progress = cfg.progress.then(|| {
        tokio::spawn(progress_loop(
            counts.clone(),
            active.clone(),
            started,
            cfg.time_limit,
            log.clone(),
            tty,
        ))
    });

    let deadline = tokio::time::sleep(cfg.time_limit);
    tokio::pin!(deadline);
    let mut nem_done = false;
    let mut harness_failure: Option<String> = None;
    let mut interrupted: Option<&'static str> = None;
    let sig = signal();
    tokio::pin!(sig);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            s = &mut sig => {
                interrupted = Some(s);
                break;
            }
            r = &mut nem_task, if !nem_done => {
                nem_done = true;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(rec)) => {
                        harness_failure = Some(format!(
                            "nemesis {} indeterminate: {}",
                            rec.f,
                            rec.outcome.reason().unwrap_or("")
                        ));
                        break;
                    }
                    Err(e) => {
                        harness_failure = Some(format!("nemesis task failed: {e}"));
                        break;
                    }
                }
            }
        }
    }
    let main_phase = started.elapsed();
    if let Some(s) = interrupted {
        log.line(format!(
            "{s}: stopping new operations, healing, then checking what was recorded"
        ));
    }
    if let Some(why) = &harness_failure {
        log.line(format!(
            "harness failure: {why}; stopping new operations and healing"
        ));
    }

    // Stop: no new ops; in-flight ones complete or time out (info).
    let _ = stop_tx.send(true);
    if !nem_done {
        nem_task.abort();
        let _ = nem_task.await;
    }
    let grace = cfg.op_timeout + Duration::from_secs(2);
    for w in workers {
        let abort = w.abort_handle();
        if tokio::time::timeout(grace, w).await.is_err() {
            abort.abort();
        }
    }

    // Heal, always.
    let heal = heal_all(
        &nodes,
        Some(control.as_ref()),
        &heal_options(&access, names.clone()),
    )
    .await;
    recorder.nemesis(&heal);
    track_active(&active, &heal);
    if let Outcome::Indeterminate(why) = &heal.outcome {
        harness_failure.get_or_insert_with(|| format!("heal indeterminate: {why}"));
    }
    log.line(format!("healed: {}", heal.value()));

    // Final phase: after recovery, the workload's final reads.
    if interrupted.is_none() && harness_failure.is_none() && !final_ops.is_empty() {
        if let Err(why) = sut.await_ready(cfg.ready_timeout).await {
            log.line(format!("not fully recovered after healing: {why}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut process = shared.max_process.load(Ordering::Relaxed) + 1;
        for (i, inv) in final_ops.iter().enumerate() {
            for attempt in 0..10 {
                let node = &names[(i + attempt) % names.len()];
                let addr = db.client_addr(node).expect("member address");
                let mut client = client_kind(&cfg).connect(node, addr, cfg.op_timeout);
                let (kind, _) = perform(&mut client, &recorder, process, inv).await;
                process += 1;
                if kind == OpType::Ok {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let to_first_op = shared
        .first_op
        .lock()
        .ok()
        .and_then(|f| *f)
        .map(|t| t.duration_since(t_start));
    drop(shared);
    drop(recorder);
    let ops = match recorder_task.finish().await {
        Ok(ops) => ops,
        Err(e) => {
            harness_failure.get_or_insert_with(|| format!("writing the history: {e}"));
            run.read_history().map(|h| h.ops).unwrap_or_default()
        }
    };
    if tty && cfg.progress {
        eprint!("\r\x1b[K");
    }
    let completed = counts.ok.load(Ordering::Relaxed)
        + counts.fail.load(Ordering::Relaxed)
        + counts.info.load(Ordering::Relaxed);
    log.line(format!(
        "{} ops recorded ({} invoked, {} ok, {} fail, {} info); first client op {} after start; \
         main phase {:.1} s, {:.0} completions/s",
        ops.len(),
        counts.invoked.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed),
        counts.fail.load(Ordering::Relaxed),
        counts.info.load(Ordering::Relaxed),
        to_first_op.map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
        main_phase.as_secs_f64(),
        completed as f64 / main_phase.as_secs_f64().max(1e-9)
    ));

    // Stop the servers (unless asked not to) and collect their logs.
    let stop_result = if cfg.leave_db_running {
        db::on_all(&nodes, |n| db.collect_logs(n, &run.path))
            .await
            .map(|_| ())
    } else {
        db::teardown(db, &nodes, Some(&run.path)).await
    };
    if let Err(e) = stop_result {
        log.line(format!("collecting logs / stopping {}: {e}", db.name()));
    }
    Ok(RunRecord {
        run,
        history: History { ops },
        test_name: cfg.test_name(),
        harness_failure,
        interrupted,
        to_first_op,
        main_phase,
        concurrency,
    })
}

/// The generator's options: the seed, and for the bank the accounts (spread over the 2PC shards
/// of these node names for the bundled servers).
fn workload_options(cfg: &RunConfig, names: &[String]) -> Result<WorkloadOptions, RunError> {
    let mut wl = WorkloadOptions {
        seed: cfg.seed,
        ..WorkloadOptions::default()
    };
    if cfg.workload == WorkloadKind::Bank {
        if let Target::Server(_) = cfg.target {
            wl.bank.accounts = spread_accounts(wl.bank.accounts.len(), names);
        }
        wl.bank.validate().map_err(RunError::Config)?;
    }
    Ok(wl)
}

/// How long the workload's setup may take before the run fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Performs each setup invocation until it is `ok`, on node after node, without recording it.
/// Retrying after `fail` or `info` is sound because setup ops are idempotent and nothing else
/// writes yet. Returns the number of attempts, or why the deadline passed.
async fn run_setup(
    cfg: &RunConfig,
    db: &dyn Database,
    names: &[String],
    setup: &[Invocation],
) -> Result<usize, String> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut attempts = 0;
    for inv in setup {
        loop {
            let node = &names[attempts % names.len()];
            attempts += 1;
            let addr = db
                .client_addr(node)
                .ok_or_else(|| format!("no client address for {node}"))?;
            let mut client = client_kind(cfg).connect(node, addr, cfg.op_timeout);
            let done = client.invoke(inv).await;
            if done.kind == OpType::Ok {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} {} not ok after {attempts} attempts in {SETUP_TIMEOUT:?}; last on {node}: {}",
                    inv.f,
                    inv.value,
                    done.error.unwrap_or_else(|| format!("{:?}", done.kind))
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(attempts)
}

/// The database and control for `cfg.target` on `nodes`.
fn target_for(cfg: &RunConfig, nodes: &[Arc<dyn Remote>]) -> Result<SystemUnderTest, RunError> {
    let classify = |e: db::DbError| match e {
        db::DbError::Config(_) => RunError::Config(e.to_string()),
        other => RunError::Setup(other.to_string()),
    };
    match &cfg.target {
        Target::Server(protocol) => {
            let server_cfg = ServerConfig {
                bugs: cfg.bugs.clone(),
                read_mode: cfg.read_mode.clone(),
                seed: Some(cfg.seed),
                extra_args: cfg.server_args.clone(),
                faketime: cfg.nemesis.contains(&FaultKind::Clock),
                ..ServerConfig::new(
                    *protocol,
                    BinarySource::Local(cfg.server_bin.clone()),
                    db::members_of(nodes),
                )
            };
            let db = Arc::new(FaultlineServer::new(server_cfg).map_err(classify)?);
            Ok(SystemUnderTest::Server {
                control: Arc::new(ServerControl::new(db.clone(), nodes.to_vec())),
                db,
                need_leader: *protocol == Protocol::Raft,
            })
        }
        Target::Etcd(binary) => {
            if !cfg.bugs.is_empty() {
                return Err(RunError::Config(
                    "--bug: etcd has no switchable bugs (they belong to the bundled servers)"
                        .into(),
                ));
            }
            if let Some(mode) = &cfg.read_mode {
                mode.parse::<ReadMode>()
                    .map_err(|e| RunError::Config(format!("--read-mode: {e}")))?;
            }
            let etcd_cfg = EtcdConfig {
                binary: binary.clone(),
                extra_args: cfg.server_args.clone(),
                ..EtcdConfig::new(db::members_of(nodes))
            };
            let db = Arc::new(Etcd::new(etcd_cfg).map_err(classify)?);
            Ok(SystemUnderTest::Etcd {
                control: Arc::new(EtcdControl::new(db.clone(), nodes.to_vec())),
                db,
            })
        }
    }
}

/// How often a partition, kill or pause is aimed at the current leader
/// ([`ScheduleConfig::leader_share`]). Leader-based targets fail where the leader is cut off or
/// crashes (stale reads from a deposed leader, lost entries after a leader crash), which random
/// shapes hit only now and then; 2PC has no leader, so leader faults would only be skipped.
/// Measured in BENCHMARKS.md, "Bug catch rates".
fn leader_share(target: &Target) -> f64 {
    match target {
        Target::Server(Protocol::TwoPc) => 0.0,
        Target::Server(Protocol::Raft | Protocol::Paxos) | Target::Etcd(_) => 0.5,
    }
}

/// The client for `cfg.target` (an etcd read mode [`target_for`] refused never gets here).
fn client_kind(cfg: &RunConfig) -> ClientKind {
    match cfg.target {
        Target::Server(_) => ClientKind::Bundled,
        Target::Etcd(_) => ClientKind::Etcd(
            cfg.read_mode
                .as_deref()
                .and_then(|m| m.parse().ok())
                .unwrap_or_default(),
        ),
    }
}

fn heal_options(access: &Access, restart: Vec<String>) -> HealOptions {
    HealOptions {
        access: access.clone(),
        restart,
        reset_real_clock: false,
        continue_stopped: true,
    }
}

/// The controller's address as each node sees it (the first field of `$SSH_CONNECTION`), so
/// that no partition cuts the controller off.
async fn controller_addresses(nodes: &[Arc<dyn Remote>]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for n in nodes {
        if let Ok(text) = n
            .run(nemesis::Command::new("echo \"${SSH_CONNECTION%% *}\""))
            .await
        {
            let a = text.trim();
            if !a.is_empty() {
                out.insert(a.to_string());
            }
        }
    }
    out.into_iter().collect()
}

async fn progress_loop(
    counts: Arc<Counts>,
    active: Arc<Mutex<BTreeSet<&'static str>>>,
    started: Instant,
    limit: Duration,
    log: Log,
    tty: bool,
) {
    let every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(10)
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = (started, 0u64);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let done = counts.ok.load(Ordering::Relaxed)
            + counts.fail.load(Ordering::Relaxed)
            + counts.info.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, done);
        let faults: Vec<&str> = active
            .lock()
            .map(|a| a.iter().copied().collect())
            .unwrap_or_default();
        let line = format!(
            "{:>5.1}/{:.0} s  {:>6.0} ops/s  ok {} fail {} info {}  faults: {}",
            started.elapsed().as_secs_f64(),
            limit.as_secs_f64(),
            rate,
            counts.ok.load(Ordering::Relaxed),
            counts.fail.load(Ordering::Relaxed),
            counts.info.load(Ordering::Relaxed),
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(",")
            }
        );
        if tty {
            eprint!("\r\x1b[K{line}");
        } else {
            log.line(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_is_a_number_or_a_multiple_of_the_nodes() {
        assert_eq!("7".parse::<Concurrency>().unwrap().resolve(5), 7);
        assert_eq!("2n".parse::<Concurrency>().unwrap().resolve(5), 10);
        for bad in ["0", "0n", "n", "-1", "2x", ""] {
            let err = bad.parse::<Concurrency>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn the_progress_line_tracks_installed_faults_only() {
        let active = Mutex::new(BTreeSet::new());
        track_active(
            &active,
            &FaultRecord::new("start-partition", Outcome::Installed),
        );
        track_active(&active, &FaultRecord::new("kill", Outcome::Installed));
        track_active(
            &active,
            &FaultRecord::new("start-packet", Outcome::Skipped("no netem".into())),
        );
        assert_eq!(
            active.lock().unwrap().iter().copied().collect::<Vec<_>>(),
            vec!["kill", "partition"]
        );
        track_active(&active, &FaultRecord::new("start", Outcome::Installed));
        assert_eq!(active.lock().unwrap().len(), 1);
        track_active(&active, &FaultRecord::new("heal", Outcome::Installed));
        assert!(active.lock().unwrap().is_empty());
    }
}
