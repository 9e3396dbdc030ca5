//! `faultline demo`: a short Raft register test with partitions, kills and clock skew on a
//! local 5-node cluster that it brings up and takes down afterwards.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nemesis::FaultKind;
use workloads::gen::WorkloadKind;

use super::run::{classify, finish, server_bin};
use super::Exit;
use crate::cluster::{self, ClusterConfig};
use crate::db::Protocol;
use crate::run::{self, Concurrency, Nodes, RunConfig, Target};

/// The demo's own cluster, so that it never touches a cluster the user brought up.
const DEMO_DIR: &str = "/var/lib/faultline/demo";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the run is stored.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// Length of the test, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub time_limit: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The faultline-server binary [default: $FAULTLINE_SERVER_BIN, else next to this program].
    #[arg(long, value_name = "FILE")]
    pub server_bin: Option<PathBuf>,
    /// Leave the demo's cluster up afterwards (`faultline cluster down --dir /var/lib/faultline/demo`).
    #[arg(long)]
    pub keep_cluster: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let time_limit = Duration::try_from_secs_f64(args.time_limit)
        .ok()
        .filter(|d| *d >= Duration::from_secs(6))
        .ok_or_else(|| {
            super::BadInput(format!(
                "--time-limit: {} (at least 6 seconds)",
                args.time_limit
            ))
        })?;
    let cluster_cfg = ClusterConfig {
        tag: "fldemo".into(),
        bridge: "fldemobr".into(),
        subnet: "10.77.250".into(),
        ..ClusterConfig::new(DEMO_DIR, 5)
    };
    let cfg = RunConfig {
        target: Target::Server(Protocol::Raft),
        workload: WorkloadKind::Register,
        nemesis: vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Clock],
        nemesis_interval: time_limit / 6,
        nemesis_schedule: nemesis::ScheduleMode::Alternate,
        leader_share: None,
        time_limit,
        concurrency: Concurrency::PerNode(2),
        rate: Some(200.0),
        seed: args.seed,
        bugs: Vec::new(),
        read_mode: None,
        server_args: Vec::new(),
        nodes: Nodes::Local(cluster_cfg.clone()),
        store: args.store.clone(),
        server_bin: server_bin(args.server_bin.clone())?,
        leave_db_running: false,
        op_timeout: Duration::from_secs(2),
        ready_timeout: Duration::from_secs(60),
        progress: true,
    };
    eprintln!(
        "faultline demo: Raft, register workload, partitions + kills + clock skew, 5 local nodes, {:?}",
        time_limit
    );
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(run::execute(cfg.clone()));
    drop(rt);
    if !args.keep_cluster {
        if let Err(e) = cluster::down(&cluster_cfg.dir) {
            eprintln!("faultline demo: taking the cluster down: {e}");
        }
    }
    let record = result.map_err(classify)?;
    let exit = finish(&record, cfg.workload, Duration::from_secs(600))?;
    eprintln!(
        "faultline demo: done in {:.1} s; open {}",
        started.elapsed().as_secs_f64(),
        record.run.report_path().display()
    );
    Ok(exit)
}
