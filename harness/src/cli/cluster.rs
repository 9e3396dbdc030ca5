//! `faultline cluster up|down|status`: the local namespace cluster; `faultline cluster heal`: remove
//! every fault from the nodes of any inventory.
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
    /// Remove every fault a run may have left on the nodes (partition and loss rules, qdiscs,
    /// clock offsets, stopped processes), using only what is on the nodes, then check that nothing
    /// is left. Works after the controller died. Exit 0: clean; 1: residue remains; 255: a node
    /// could not be reached.
    Heal {
        /// Where the nodes are [default: the local cluster's inventory.yaml].
        #[command(flatten)]
        nodes: crate::inventory::InventoryArgs,
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
        ClusterAction::Heal { nodes } => heal(nodes),
    }
}

/// `cluster heal`: `nemesis::heal_all` on every reachable node, then `nemesis::residue_with`.
fn heal(nodes: crate::inventory::InventoryArgs) -> anyhow::Result<Exit> {
    use crate::ssh::{SshOptions, SshRemote};
    use nemesis::{heal_all, residue_with, Access, HealOptions, OffsetFiles, Remote};
    use std::sync::Arc;

    let inventory = super::doctor::inventory_or_local(nodes)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let opts = SshOptions {
            connect_attempts: 2,
            ..SshOptions::default()
        };
        let connected = futures::future::join_all(
            inventory
                .nodes
                .iter()
                .cloned()
                .map(|n| SshRemote::connect(n, &opts)),
        )
        .await;
        let mut remotes: Vec<Arc<dyn Remote>> = Vec::new();
        let mut unreachable = false;
        for result in connected {
            match result {
                Ok(r) => remotes.push(Arc::new(r)),
                Err(e) => {
                    eprintln!("faultline: cannot heal {e}");
                    unreachable = true;
                }
            }
        }
        // The offset file is the one the database lifecycle starts servers with; nodes have their
        // own PID namespaces or machines, so every stopped process on them is ours to resume.
        let access = Access {
            sudo: true,
            offset_files: OffsetFiles::Fixed(crate::db::FAKETIME_FILE.to_string()),
            ..Access::default()
        };
        let heal_opts = HealOptions {
            access: access.clone(),
            continue_stopped: true,
            ..HealOptions::default()
        };
        let record = heal_all(&remotes, None, &heal_opts).await;
        println!("heal: {}", record.value());
        let left = residue_with(&remotes, &access).await;
        for r in &left {
            println!("residue: {}: {:?}", r.node, r.what);
        }
        if left.is_empty() {
            println!("no fault left on {} node(s)", remotes.len());
        }
        Ok(if unreachable {
            Exit::Internal
        } else if left.is_empty() {
            Exit::Valid
        } else {
            Exit::Invalid
        })
    })
}
