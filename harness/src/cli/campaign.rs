//! `faultline campaign FILE.yaml`: runs a campaign's entries one after another and compares
//! each outcome with its expectation. Exit codes: 0 every entry met its expectation, 1 some did
//! not (a failure or a harness error), 130 interrupted, 254 a bad file or flags, 255 the
//! campaign could not run at all.
use std::path::PathBuf;
use std::time::Duration;

use results::campaign::{EntryResult, Outcome};

use super::run::{check_run, nodes_given, server_bin, LocalClusterArgs};
use super::{BadInput, Exit};
use crate::campaign::{self, expectation_name, outcome_name, Campaign, Setup};
use crate::db::EtcdBinary;
use crate::inventory::{Inventory, InventoryArgs};
use crate::run::Nodes;
use crate::spec::TargetName;

#[derive(clap::Args, Debug)]
pub struct CampaignArgs {
    /// The campaign file (README, "Campaigns").
    pub file: PathBuf,
    /// Where runs and the campaign's outputs (`campaigns/<name>/...`) are stored.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// Run only the entries whose id contains PATTERN, or matches it if it has `*` wildcards;
    /// repeat for more.
    #[arg(long, value_name = "PATTERN")]
    pub only: Vec<String>,
    /// List the entries that would run, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// A local cluster of N nodes, instead of what the file says.
    #[arg(long, value_name = "N", conflicts_with_all = ["inventory", "nodes", "node", "nodes_file", "vagrant_ssh_config"])]
    pub local: Option<usize>,
    #[command(flatten)]
    pub cluster: LocalClusterArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// The faultline-server binary [default: $FAULTLINE_SERVER_BIN, else the one next to this
    /// program].
    #[arg(long, value_name = "FILE")]
    pub server_bin: Option<PathBuf>,
    /// An etcd binary to upload for etcd entries [default: Debian's /usr/bin/etcd].
    #[arg(long, value_name = "FILE")]
    pub etcd_bin: Option<PathBuf>,
    /// Leave the local cluster up afterwards.
    #[arg(long)]
    pub keep_cluster: bool,
    /// Give up checking a run after this many seconds (its verdict is then unknown).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub check_time_limit: f64,
    /// No progress line or periodic progress log during the runs.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: CampaignArgs) -> anyhow::Result<Exit> {
    let campaign = Campaign::load(&args.file).map_err(BadInput)?;
    let entries = campaign.select(&args.only);
    if entries.is_empty() {
        return Err(BadInput(format!(
            "--only: no entry of {} matches {}",
            args.file.display(),
            args.only.join(", ")
        ))
        .into());
    }
    let limit = Duration::try_from_secs_f64(args.check_time_limit)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            BadInput(format!(
                "--check-time-limit: expected a positive number of seconds, found {}",
                args.check_time_limit
            ))
        })?;
    let nodes = nodes_of(&args, &campaign)?;
    let names: Vec<String> = match &nodes {
        Nodes::Local(cc) => (1..=cc.nodes).map(|i| format!("n{i}")).collect(),
        Nodes::Inventory { inventory, .. } => {
            inventory.nodes.iter().map(|n| n.name.clone()).collect()
        }
    };
    campaign::check_schedules(&entries, &names).map_err(BadInput)?;
    if args.dry_run {
        for e in &entries {
            println!("{}  expect {}", e.id, expectation_name(&e.expect));
        }
        let secs: f64 = entries.iter().map(|e| e.options.time_limit).sum();
        println!(
            "{}: {} of {} entries, {:.0} s of test time",
            campaign.name,
            entries.len(),
            campaign.entries.len(),
            secs
        );
        return Ok(Exit::Valid);
    }
    let server_bin = if entries.iter().any(|e| e.options.target != TargetName::Etcd) {
        Some(server_bin(args.server_bin.clone())?)
    } else {
        None
    };
    let etcd = match &args.etcd_bin {
        Some(p) if !p.is_file() => {
            return Err(BadInput(format!("--etcd-bin: {} does not exist", p.display())).into())
        }
        Some(p) => EtcdBinary::Local(p.clone()),
        None => EtcdBinary::Apt,
    };
    let setup = Setup {
        store: args.store.clone(),
        nodes,
        server_bin,
        etcd,
        keep_cluster: args.keep_cluster,
        progress: !args.quiet,
    };
    let check = |record: &crate::run::RunRecord, workload| {
        check_run(&record.run, &record.history, workload, limit).map(|(a, _)| a)
    };
    let finished = campaign::run(&campaign, &entries, &setup, &check, &mut print_entry)?;
    let s = &finished.summary;
    let passed = s.entries.iter().filter(|e| e.passed).count();
    let skipped = s
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Skipped)
        .count();
    println!(
        "{}: {passed} of {} entries met their expectation{}; {}",
        s.name,
        s.entries.len(),
        if skipped > 0 {
            format!(" ({skipped} skipped)")
        } else {
            String::new()
        },
        finished.dir.join("index.html").display()
    );
    Ok(if s.interrupted {
        Exit::Interrupted
    } else if finished.passed() {
        Exit::Valid
    } else {
        Exit::Invalid
    })
}

/// `[i/n] id: outcome (expected X) PASS|FAIL|ERROR in Ns`, and the summary when it did not pass.
fn print_entry(i: usize, n: usize, r: &EntryResult) {
    let verdict = match (r.passed, r.outcome) {
        (true, _) => "PASS",
        (false, Outcome::HarnessError) => "ERROR",
        (false, Outcome::Skipped) => "SKIPPED",
        (false, _) => "FAIL",
    };
    let mut line = format!(
        "[{}/{n}] {}: {} (expected {}) {verdict} in {:.0} s",
        i + 1,
        r.id,
        outcome_name(r.outcome),
        expectation_name(&r.expect),
        r.duration_s
    );
    // A valid outcome's summary only restates the expectation.
    if !r.passed && r.outcome != Outcome::Valid && !r.summary.is_empty() {
        line.push_str(&format!(" — {}", r.summary));
    }
    println!("{line}");
}

/// The flags' nodes, else `--local N`, else the file's inventory, else a local cluster of the
/// file's `nodes` (default 5).
fn nodes_of(args: &CampaignArgs, campaign: &Campaign) -> anyhow::Result<Nodes> {
    let inventory = |flags: &InventoryArgs, source: String| -> anyhow::Result<Nodes> {
        let inventory: Inventory = flags.to_inventory().map_err(|e| BadInput(e.to_string()))?;
        Ok(Nodes::Inventory { inventory, source })
    };
    if nodes_given(&args.inventory) {
        let source = match &args.inventory.inventory {
            Some(f) => f.display().to_string(),
            None => "--nodes".to_string(),
        };
        return inventory(&args.inventory, source);
    }
    if let Some(n) = args.local {
        return Ok(Nodes::Local(args.cluster.config(n)));
    }
    if let Some(file) = &campaign.inventory {
        let flags = InventoryArgs {
            inventory: Some(file.clone()),
            ..args.inventory.clone()
        };
        return inventory(&flags, file.display().to_string());
    }
    Ok(Nodes::Local(args.cluster.config(
        campaign.nodes.unwrap_or(campaign::file::DEFAULT_NODES),
    )))
}
