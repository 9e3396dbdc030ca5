//! `faultline doctor`: per-node capability table and, with `--residue`, leftovers of earlier runs.
use std::sync::Arc;

use super::{BadInput, Exit};
use crate::cluster::ClusterConfig;
use crate::doctor::{self, DoctorConfig};
use crate::inventory::{Inventory, InventoryArgs};
use crate::ssh::{SshOptions, SshRemote};
use nemesis::Remote;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Where the nodes are [default: the local cluster's inventory.yaml].
    #[command(flatten)]
    pub nodes: InventoryArgs,
    /// Also look for what faults may have left behind (rules, qdiscs, clock offsets, stopped
    /// processes); exit 1 when anything is found.
    #[arg(long)]
    pub residue: bool,
}

/// The inventory the flags name, or the local cluster's when they name none.
pub(crate) fn inventory_or_local(mut nodes: InventoryArgs) -> anyhow::Result<Inventory> {
    let no_source = nodes.inventory.is_none()
        && nodes.vagrant_ssh_config.is_none()
        && nodes.nodes.is_empty()
        && nodes.nodes_file.is_none();
    if no_source {
        let local = ClusterConfig::default_dir().join("inventory.yaml");
        if !local.exists() {
            anyhow::bail!(BadInput(format!(
                "--inventory: no inventory given and no local cluster at {} (run `faultline cluster up` or pass --inventory FILE)",
                local.display()
            )));
        }
        nodes.inventory = Some(local);
    }
    Ok(nodes.to_inventory().map_err(|e| BadInput(e.to_string()))?)
}

pub fn run(args: DoctorArgs) -> anyhow::Result<Exit> {
    let inventory = inventory_or_local(args.nodes)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let opts = SshOptions {
            connect_attempts: 1,
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
        let cfg = DoctorConfig::default();
        let mut reports = Vec::new();
        let mut remotes: Vec<Arc<dyn Remote>> = Vec::new();
        let mut unreachable = Vec::new();
        for (node, result) in inventory.nodes.iter().zip(connected) {
            match result {
                Ok(r) => remotes.push(Arc::new(r)),
                Err(e) => unreachable.push(doctor::unreachable(&node.name, &e)),
            }
        }
        reports.extend(doctor::check_all(&remotes, &cfg).await);
        reports.extend(unreachable);
        // Inventory order, whatever answered first.
        reports.sort_by_key(|r| inventory.nodes.iter().position(|n| n.name == r.node));
        print!("{}", doctor::render(&reports));
        let mut problems = reports.iter().any(|r| r.failed());

        if args.residue {
            let found = futures::future::join_all(
                remotes.iter().map(|n| doctor::residue(n.as_ref(), &cfg)),
            )
            .await;
            let mut any = false;
            for (node, result) in remotes.iter().zip(found) {
                match result {
                    Ok(items) => {
                        for item in items {
                            println!("{item}");
                            any = true;
                        }
                    }
                    Err(e) => {
                        println!("residue check failed: {}: {e}", node.name());
                        any = true;
                    }
                }
            }
            if !any {
                println!("no residue found on {} node(s)", remotes.len());
            }
            problems |= any;
        }
        Ok(if problems { Exit::Invalid } else { Exit::Valid })
    })
}
