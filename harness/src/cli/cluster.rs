//! `faultline cluster up|down|status`: the local namespace cluster.
use std::path::PathBuf;

use super::{BadInput, Exit};
use crate::cluster::{self, ClusterConfig, ClusterError};

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub action: ClusterAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterAction {
    /// Bring up (or resize) a cluster of network-namespace nodes reachable over SSH.
    Up {
        /// Number of nodes (n1..nN).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        #[command(flatten)]
        dir: DirArg,
        /// First three octets of the private /24 (controller .1, node nI at .10+I).
        #[arg(long, default_value = "10.77.0")]
        subnet: String,
        /// Name of the bridge holding the controller's address.
        #[arg(long, default_value = "flbr0")]
        bridge: String,
        /// Prefix of namespace names (`<tag>-n1`) and veths.
        #[arg(long, default_value = "fl")]
        tag: String,
        /// Fail instead of installing missing Debian packages.
        #[arg(long)]
        no_install: bool,
    },
    /// Tear the cluster down: processes, namespaces, links, state files. Safe to repeat.
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Print each node's address, sshd pid and whether it answers.
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
}

#[derive(clap::Args, Debug)]
pub struct DirArg {
    /// State directory [default: $FAULTLINE_CLUSTER_DIR or /var/lib/faultline/cluster].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl DirArg {
    fn path(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(ClusterConfig::default_dir)
    }
}

fn classify(e: ClusterError) -> anyhow::Error {
    match e {
        ClusterError::BadConfig(_) | ClusterError::NotRoot | ClusterError::State { .. } => {
            BadInput(e.to_string()).into()
        }
        other => other.into(),
    }
}

pub fn run(args: ClusterArgs) -> anyhow::Result<Exit> {
    match args.action {
        ClusterAction::Up {
            nodes,
            dir,
            subnet,
            bridge,
            tag,
            no_install,
        } => {
            let cfg = ClusterConfig {
                subnet,
                bridge,
                tag,
                install_packages: !no_install,
                ..ClusterConfig::new(dir.path(), nodes)
            };
            let c = cluster::up(&cfg).map_err(classify)?;
            for n in c.nodes() {
                println!("{}\t{}\tnetns {}", n.name, n.addr, n.netns);
            }
            println!("inventory: {}", c.inventory_path().display());
            Ok(Exit::Valid)
        }
        ClusterAction::Down { dir } => {
            cluster::down(&dir.path()).map_err(classify)?;
            Ok(Exit::Valid)
        }
        ClusterAction::Status { dir } => {
            let rows = cluster::status(&dir.path()).map_err(classify)?;
            println!(
                "{:<6} {:<15} {:>9}  reachable",
                "node", "address", "sshd pid"
            );
            let mut all = true;
            for r in &rows {
                let pid = r.sshd_pid.map_or("-".to_string(), |p| p.to_string());
                println!(
                    "{:<6} {:<15} {:>9}  {}",
                    r.name,
                    r.addr,
                    pid,
                    if r.reachable { "yes" } else { "no" }
                );
                all &= r.reachable;
            }
            Ok(if all { Exit::Valid } else { Exit::Invalid })
        }
    }
}
