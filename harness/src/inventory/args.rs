//! Command-line flags that say where the nodes are (Jepsen-compatible names).
use std::path::PathBuf;

use super::{parse_nodes_file, HostKeyChecking, Inventory, InventoryError, NodeDefaults};

/// Where the nodes are. Exactly one source: `--inventory`, `--vagrant-ssh-config`, `--nodes`
/// (and/or repeated `--node`) or `--nodes-file`. The login flags apply to every node that does not set its own value.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InventoryArgs {
    /// YAML inventory file (see `harness::inventory`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nodes", "node", "nodes_file", "vagrant_ssh_config"])]
    pub inventory: Option<PathBuf>,
    /// Output of `vagrant ssh-config`, saved to a file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nodes", "node", "nodes_file"])]
    pub vagrant_ssh_config: Option<PathBuf>,
    /// Comma-separated hosts (`n1,n2,n3` or `10.0.0.1:2222,...`); each node is named after its entry.
    #[arg(
        long,
        value_name = "HOSTS",
        value_delimiter = ',',
        conflicts_with = "nodes_file"
    )]
    pub nodes: Vec<String>,
    /// One host; repeat for more (Jepsen's `--node`). Adds to `--nodes`.
    #[arg(long = "node", value_name = "HOST", conflicts_with = "nodes_file")]
    pub node: Vec<String>,
    /// File with one host per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// Login user (default root).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Private key file (default: ssh-agent, then ~/.ssh/id_ed25519, ~/.ssh/id_rsa).
    #[arg(long, value_name = "FILE")]
    pub ssh_private_key: Option<PathBuf>,
    /// SSH port (default 22).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ssh_port: Option<u16>,
    /// known_hosts file (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Host key checking: strict (default), accept-new, or off.
    #[arg(long, value_name = "MODE")]
    pub host_key_checking: Option<HostKeyChecking>,
}

impl InventoryArgs {
    /// The login flags as defaults for every node.
    pub fn defaults(&self) -> NodeDefaults {
        NodeDefaults {
            user: self.username.clone(),
            key: self.ssh_private_key.clone(),
            port: self.ssh_port,
            known_hosts: self.known_hosts.clone(),
            host_key_checking: self.host_key_checking,
        }
    }

    /// Builds the inventory the flags describe.
    pub fn to_inventory(&self) -> Result<Inventory, InventoryError> {
        let defaults = self.defaults();
        if let Some(file) = &self.inventory {
            return Inventory::from_yaml_file(file, &defaults);
        }
        if let Some(file) = &self.vagrant_ssh_config {
            return super::vagrant::from_file(file, &defaults);
        }
        if let Some(file) = &self.nodes_file {
            let text = std::fs::read_to_string(file).map_err(|cause| InventoryError::Read {
                file: file.display().to_string(),
                cause,
            })?;
            let entries = parse_nodes_file(&text);
            if entries.is_empty() {
                return Err(InventoryError::Flag {
                    flag: format!("--nodes-file {}", file.display()),
                    message: "the file lists no hosts".into(),
                });
            }
            return Inventory::from_hosts(&entries, &file.display().to_string(), &defaults);
        }
        if !self.nodes.is_empty() || !self.node.is_empty() {
            let entries: Vec<(usize, String)> = self
                .nodes
                .iter()
                .chain(&self.node)
                .map(|n| (0, n.trim().to_string()))
                .collect();
            return Inventory::from_hosts(&entries, "--nodes", &defaults);
        }
        Err(InventoryError::Flag {
            flag: "--nodes".into(),
            message:
                "no nodes given: use --nodes, --nodes-file, --inventory or --vagrant-ssh-config"
                    .into(),
        })
    }
}
