//! Inventories: which nodes a test runs on and how the controller reaches them over SSH.
//!
//! Three sources, one result ([`Inventory`]):
//! - a YAML file (`--inventory FILE`), parsed with `serde_yaml_ng`;
//! - Jepsen-style flags (`--nodes a,b,c` or `--nodes-file FILE`, `--username`,
//!   `--ssh-private-key`, `--ssh-port`), see [`InventoryArgs`];
//! - the output of `vagrant ssh-config` (`--vagrant-ssh-config FILE`), see [`vagrant`].
//!
//! Every error names its place: `file:line` for files, the flag for flags. Nothing here opens a
//! network connection; [`crate::ssh`] does that.
//!
//! ```yaml
//! user: root                 # defaults for every node (all optional)
//! key: ~/.ssh/id_ed25519     # relative paths are relative to this file
//! port: 22
//! known_hosts: ./known_hosts # default: ~/.ssh/known_hosts
//! host_key_checking: strict  # strict | accept-new | off
//! nodes:
//!   - name: n1
//!     host: 10.0.0.1
//!   - name: n2
//!     host: 10.0.0.2
//!     port: 2222
//!     user: admin
//!     sudo_password_env: N2_SUDO_PASSWORD
//! ```
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod args;
pub mod vagrant;

pub use args::InventoryArgs;

/// How a server's host key is checked against the known_hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// An unknown or changed key is an error.
    #[default]
    Strict,
    /// An unknown key is appended to known_hosts; a changed key is an error.
    AcceptNew,
    /// Any key is accepted (only when asked for: throwaway VMs whose keys change on rebuild).
    Off,
}

impl std::fmt::Display for HostKeyChecking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostKeyChecking::Strict => "strict",
            HostKeyChecking::AcceptNew => "accept-new",
            HostKeyChecking::Off => "off",
        })
    }
}

/// One machine under test and how to log in to it. All defaults are already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Name in reports and errors (`n1`); unique within an inventory.
    pub name: String,
    /// Address the controller connects to, and that other nodes reach this node at.
    pub host: String,
    pub port: u16,
    /// Login user (`root` unless told otherwise).
    pub user: String,
    /// Private key file; `None` means: try the ssh-agent, then `~/.ssh/id_ed25519`, `id_rsa`.
    pub key: Option<PathBuf>,
    /// Environment variable holding the sudo password (for `sudo -S`); `None`: `sudo -n`.
    pub sudo_password_env: Option<String>,
    /// known_hosts file to check the host key against; `None`: `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    pub host_key_checking: HostKeyChecking,
}

/// The nodes of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub nodes: Vec<Node>,
}

/// Values applied to every node that does not set its own. Command-line flags fill these in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDefaults {
    pub user: Option<String>,
    pub key: Option<PathBuf>,
    pub port: Option<u16>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_checking: Option<HostKeyChecking>,
}

/// Why an inventory could not be built. The message always names the file and line, or the flag.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{file}: cannot read: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
}

impl Inventory {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Reads a YAML inventory file. `overrides` win over the file's top-level defaults (not over
    /// values a node sets itself).
    pub fn from_yaml_file(path: &Path, overrides: &NodeDefaults) -> Result<Self, InventoryError> {
        let text = read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml_str(&text, &path.display().to_string(), base, overrides)
    }

    /// Parses YAML inventory text; `file` names it in errors and `base` anchors relative paths.
    pub fn from_yaml_str(
        text: &str,
        file: &str,
        base: &Path,
        overrides: &NodeDefaults,
    ) -> Result<Self, InventoryError> {
        let raw: RawInventory = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, &e))?;
        let lines = yaml_node_lines(text);
        let line_of = |i: usize| lines.get(i).copied().unwrap_or(1);
        let defaults = NodeDefaults {
            user: overrides.user.clone().or(raw.user),
            key: overrides
                .key
                .clone()
                .or_else(|| raw.key.map(|k| resolve_path(&k, base))),
            port: overrides.port.or(raw.port),
            known_hosts: overrides
                .known_hosts
                .clone()
                .or_else(|| raw.known_hosts.map(|k| resolve_path(&k, base))),
            host_key_checking: overrides.host_key_checking.or(raw.host_key_checking),
        };
        if defaults.port == Some(0) {
            return Err(invalid(
                file,
                top_key_line(text, "port"),
                "port 0 is not a valid SSH port",
            ));
        }
        if raw.nodes.is_empty() {
            return Err(invalid(
                file,
                top_key_line(text, "nodes"),
                "`nodes` is empty: list at least one node",
            ));
        }
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (i, rn) in raw.nodes.into_iter().enumerate() {
            let line = line_of(i);
            let host = rn.host.trim().to_string();
            if host.is_empty() {
                return Err(invalid(file, line, "node has an empty `host`"));
            }
            if rn.port == Some(0) {
                return Err(invalid(
                    file,
                    line,
                    format!("node {host}: port 0 is not a valid SSH port"),
                ));
            }
            let name = rn
                .name
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|| host.clone());
            if name.is_empty() {
                return Err(invalid(file, line, "node has an empty `name`"));
            }
            nodes.push((
                line,
                Node {
                    name,
                    host,
                    port: rn.port.or(defaults.port).unwrap_or(22),
                    user: rn
                        .user
                        .or_else(|| defaults.user.clone())
                        .unwrap_or_else(|| "root".into()),
                    key: rn
                        .key
                        .map(|k| resolve_path(&k, base))
                        .or_else(|| defaults.key.clone()),
                    sudo_password_env: rn.sudo_password_env,
                    known_hosts: defaults.known_hosts.clone(),
                    host_key_checking: defaults.host_key_checking.unwrap_or_default(),
                },
            ));
        }
        check_unique(file, &nodes)?;
        Ok(Inventory {
            nodes: nodes.into_iter().map(|(_, n)| n).collect(),
        })
    }

    /// Builds an inventory from host entries (`host`, `host:port`, `[v6addr]:port`), as Jepsen's
    /// `--nodes` does: each node is named after its entry. Each entry comes with its 1-based line
    /// in the file `origin`, or with line 0 when `origin` is a flag (`--nodes`).
    pub fn from_hosts(
        entries: &[(usize, String)],
        origin: &str,
        defaults: &NodeDefaults,
    ) -> Result<Self, InventoryError> {
        let err = |line: usize, message: String| match line {
            0 => InventoryError::Flag {
                flag: origin.to_string(),
                message,
            },
            line => invalid(origin, line, message),
        };
        if entries.is_empty() {
            return Err(err(0, "no nodes given".into()));
        }
        let mut nodes = Vec::new();
        for (line, entry) in entries {
            let (host, port) = split_host_port(entry).map_err(|m| err(*line, m))?;
            let port = port.or(defaults.port).unwrap_or(22);
            if port == 0 {
                return Err(err(
                    *line,
                    format!("{entry}: port 0 is not a valid SSH port"),
                ));
            }
            nodes.push((
                *line,
                Node {
                    name: entry.clone(),
                    host,
                    port,
                    user: defaults.user.clone().unwrap_or_else(|| "root".into()),
                    key: defaults.key.clone(),
                    sudo_password_env: None,
                    known_hosts: defaults.known_hosts.clone(),
                    host_key_checking: defaults.host_key_checking.unwrap_or_default(),
                },
            ));
        }
        check_unique(origin, &nodes).map_err(|e| match e {
            InventoryError::Invalid {
                line: 0, message, ..
            } => InventoryError::Flag {
                flag: origin.to_string(),
                message,
            },
            other => other,
        })?;
        Ok(Inventory {
            nodes: nodes.into_iter().map(|(_, n)| n).collect(),
        })
    }
}

/// Reads a Jepsen nodes file: one host per line, `#` starts a comment, blank lines ignored.
/// Returns each entry with its 1-based line number.
pub fn parse_nodes_file(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or("").trim();
            (!l.is_empty()).then(|| (i + 1, l.to_string()))
        })
        .collect()
}

/// `host`, `host:port`, `[v6addr]` or `[v6addr]:port`.
fn split_host_port(entry: &str) -> Result<(String, Option<u16>), String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err("empty host".into());
    }
    if entry.chars().any(char::is_whitespace) {
        return Err(format!("`{entry}`: a host name cannot contain spaces"));
    }
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("`{entry}`: `{p}` is not a port number (1-65535)"))
    };
    if let Some(rest) = entry.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{entry}`: missing `]`"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((addr.to_string(), Some(parse_port(p)?))),
            None if after.is_empty() => Ok((addr.to_string(), None)),
            None => Err(format!("`{entry}`: unexpected text after `]`")),
        };
    }
    match entry.matches(':').count() {
        0 => Ok((entry.to_string(), None)),
        1 => {
            let (h, p) = entry.split_once(':').unwrap_or((entry, ""));
            if h.is_empty() {
                return Err(format!("`{entry}`: empty host"));
            }
            Ok((h.to_string(), Some(parse_port(p)?)))
        }
        // A bare IPv6 address.
        _ => Ok((entry.to_string(), None)),
    }
}

fn check_unique(file: &str, nodes: &[(usize, Node)]) -> Result<(), InventoryError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, n) in nodes {
        if let Some(first) = seen.insert(&n.name, *line) {
            let at = if first == 0 {
                String::new()
            } else {
                format!(" (first at line {first})")
            };
            return Err(invalid(
                file,
                *line,
                format!("duplicate node name `{}`{at}", n.name),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    user: Option<String>,
    key: Option<String>,
    port: Option<u16>,
    known_hosts: Option<String>,
    host_key_checking: Option<HostKeyChecking>,
    #[serde(default)]
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    host: String,
    port: Option<u16>,
    user: Option<String>,
    key: Option<String>,
    sudo_password_env: Option<String>,
}

fn read(path: &Path) -> Result<String, InventoryError> {
    std::fs::read_to_string(path).map_err(|cause| InventoryError::Read {
        file: path.display().to_string(),
        cause,
    })
}

fn invalid(file: &str, line: usize, message: impl Into<String>) -> InventoryError {
    InventoryError::Invalid {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// `file:line: message` from a serde_yaml_ng error (whose own text ends in "at line L column C").
fn yaml_error(file: &str, e: &serde_yaml_ng::Error) -> InventoryError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    match e.location() {
        Some(loc) => InventoryError::Syntax {
            file: file.to_string(),
            line: loc.line(),
            column: loc.column(),
            message,
        },
        None => invalid(file, 1, message),
    }
}

/// Expands a leading `~/` and anchors relative paths at `base` (the inventory's directory).
pub(crate) fn resolve_path(p: &str, base: &Path) -> PathBuf {
    let p = p.trim();
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// The 1-based line of a top-level `key:` (1 when absent).
fn top_key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(1, |i| i + 1)
}

/// The line where each entry of the top-level `nodes:` block sequence starts, in order.
///
/// serde_yaml_ng reports positions only for syntax and type errors, not for values that parse
/// but fail validation (a duplicate name, port 0). This scan finds those lines for block-style
/// sequences (the form everyone writes); for a flow-style list it returns nothing and errors
/// point at the `nodes:` line instead.
fn yaml_node_lines(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let nodes_line = top_key_line(text, "nodes");
    let Some(start) = lines.get(nodes_line - 1) else {
        return Vec::new();
    };
    if !start.trim_start().starts_with("nodes") {
        return Vec::new();
    }
    let after_colon = start.split_once(':').map_or("", |(_, r)| r);
    if !after_colon
        .split('#')
        .next()
        .unwrap_or("")
        .trim()
        .is_empty()
    {
        return vec![nodes_line; lines.len()];
    }
    let mut seq_indent = None;
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(nodes_line) {
        let content = l.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = l.len() - content.len();
        let is_item = content == "-" || content.starts_with("- ");
        match seq_indent {
            None if is_item => seq_indent = Some(indent),
            None => break,
            Some(s) if indent < s || (indent == s && !is_item) => break,
            Some(_) => {}
        }
        if is_item && Some(indent) == seq_indent {
            out.push(i + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("n1").unwrap(), ("n1".into(), None));
        assert_eq!(
            split_host_port("10.0.0.1:2222").unwrap(),
            ("10.0.0.1".into(), Some(2222))
        );
        assert_eq!(
            split_host_port("[::1]:22").unwrap(),
            ("::1".into(), Some(22))
        );
        assert_eq!(
            split_host_port("fe80::1").unwrap(),
            ("fe80::1".into(), None)
        );
        assert!(split_host_port("h:99999")
            .unwrap_err()
            .contains("not a port"));
        assert!(split_host_port(":22").unwrap_err().contains("empty host"));
    }

    #[test]
    fn node_lines_follow_block_sequences() {
        let text = "user: root\nnodes:\n  # first\n  - name: a\n    host: x\n\n  - name: b\n    host: y\nport: 22\n";
        assert_eq!(yaml_node_lines(text), vec![4, 7]);
        let compact = "nodes:\n- host: x\n- host: y\n";
        assert_eq!(yaml_node_lines(compact), vec![2, 3]);
    }
}
