//! A cluster of "nodes" on this machine that the controller reaches over real SSH, exactly as it
//! reaches VMs.
//!
//! Node `nI` is a network namespace `<tag>-nI` attached by a veth pair to a bridge that holds the
//! controller's address, with its own sshd running inside
//! `unshare --uts --mount --pid --fork --kill-child --mount-proc tini -- ...`: its own hostname, its own
//! `/root`, `/etc/hosts`, `/etc/hostname`, `/opt/faultline` and `/tmp` (bind mounts from the state
//! directory) and its own PID namespace, so everything started on the node dies with it.
//!
//! All state lives in one directory (`cluster.json`, the controller key, `inventory.yaml`,
//! `known_hosts`, one directory per node); [`down`] reads it to remove exactly what [`up`] created.
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod claim;
mod host;

pub use claim::{claim, claim_waiting, lock_path, Claim};
pub use host::{is_root, missing_packages};

/// The default state directory of `faultline cluster`.
pub const DEFAULT_DIR: &str = "/var/lib/faultline/cluster";
/// Environment variable that overrides [`DEFAULT_DIR`].
pub const DIR_ENV: &str = "FAULTLINE_CLUSTER_DIR";
/// Where every node sees its private, persistent directory (bind-mounted from the state dir).
/// The database lifecycle keeps binaries, data, logs and pid files below it.
pub const NODE_OPT_DIR: &str = "/opt/faultline";

const STATE_FILE: &str = "cluster.json";
const INVENTORY_FILE: &str = "inventory.yaml";
const KNOWN_HOSTS_FILE: &str = "known_hosts";
const KEY_FILE: &str = "id_ed25519";
const FIRST_HOST_OCTET: u32 = 10;

/// What to bring up.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// State directory (keys, inventory, per-node files).
    pub dir: PathBuf,
    /// Number of nodes, named `n1..nN`.
    pub nodes: usize,
    /// Short name prefixing namespaces (`<tag>-n1`) and host-side veths (`<tag>v1`).
    pub tag: String,
    /// Bridge holding the controller's address.
    pub bridge: String,
    /// The first three octets of the private /24 (`10.77.0`): controller `.1`, node `nI` at `.(10+I)`.
    pub subnet: String,
    /// Port every node's sshd listens on.
    pub ssh_port: u16,
    /// Install missing Debian packages with apt-get (only when root).
    pub install_packages: bool,
    /// How long to wait for each sshd to accept connections.
    pub ready_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults of `faultline cluster up` with `nodes` nodes in `dir`.
    pub fn new(dir: impl Into<PathBuf>, nodes: usize) -> Self {
        ClusterConfig {
            dir: dir.into(),
            nodes,
            tag: "fl".into(),
            bridge: "flbr0".into(),
            subnet: "10.77.0".into(),
            ssh_port: 22,
            install_packages: true,
            ready_timeout: Duration::from_secs(15),
        }
    }

    /// The directory from `$FAULTLINE_CLUSTER_DIR`, else [`DEFAULT_DIR`].
    pub fn default_dir() -> PathBuf {
        std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    fn validate(&self) -> Result<(), ClusterError> {
        let bad = |what: &str, why: String| Err(ClusterError::BadConfig(format!("{what}: {why}")));
        if self.nodes == 0 || self.nodes > 200 {
            return bad(
                "--nodes",
                format!("{} is not between 1 and 200", self.nodes),
            );
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        if !name_ok(&self.tag) || self.tag.len() > 8 {
            return bad(
                "tag",
                format!("{:?} must be 1-8 lowercase letters or digits", self.tag),
            );
        }
        if self.bridge.is_empty()
            || self.bridge.len() > 15
            || !self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(
                "bridge",
                format!("{:?} is not a valid interface name", self.bridge),
            );
        }
        let octets: Vec<Option<u8>> = self.subnet.split('.').map(|o| o.parse().ok()).collect();
        let ok = octets.len() == 3 && octets.iter().all(Option::is_some);
        let private = ok
            && match (octets[0], octets[1]) {
                (Some(10), _) => true,
                (Some(172), Some(b)) => (16..32).contains(&b),
                (Some(192), Some(168)) => true,
                _ => false,
            };
        if !private {
            return bad(
                "subnet",
                format!(
                    "{:?} is not the first three octets of a private /24 (e.g. 10.77.0)",
                    self.subnet
                ),
            );
        }
        if self.dir.as_os_str().is_empty() {
            return bad("--dir", "empty path".into());
        }
        Ok(())
    }
}

/// Why the local cluster could not be brought up, inspected or taken down.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the local cluster needs root (network namespaces, bridges, sshd): run as root or with sudo")]
    NotRoot,
    #[error("bad cluster configuration: {0}")]
    BadConfig(String),
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{dir}: {detail}")]
    State { dir: String, detail: String },
    #[error("node {node}: sshd at {addr} did not accept connections within {after:?}; its log ({log}) ends with: {tail}")]
    NotReady {
        node: String,
        addr: String,
        after: Duration,
        log: String,
        tail: String,
    },
    #[error("missing packages and not allowed to install them: {0}")]
    MissingPackages(String),
    #[error("{dir}: the local cluster is in use by {holder}; wait for it to finish or use another cluster (`--cluster-dir`, `--cluster-tag`, `--cluster-bridge`, `--cluster-subnet`): two harness processes on one cluster stop each other's servers and see each other's writes")]
    InUse { dir: String, holder: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `cluster.json` records about the cluster, so `down` and `status` need nothing else.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    tag: String,
    bridge: String,
    subnet: String,
    ssh_port: u16,
    nodes: Vec<NodeState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct NodeState {
    name: String,
    addr: String,
    netns: String,
    veth: String,
    /// The host pid of the node's `unshare` process; killing it takes the node's PID namespace down.
    pid: u32,
}

/// A node of a running local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNode {
    /// `n1`.
    pub name: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
    /// Its network namespace (`fl-n1`), usable with `ip netns exec`.
    pub netns: String,
    /// Host-side name of its veth.
    pub veth: String,
    /// Host pid of the `unshare` process holding the node's PID namespace.
    pub pid: u32,
}

/// A running local cluster, as written to its state directory.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    dir: PathBuf,
    bridge: String,
    controller: Ipv4Addr,
    ssh_port: u16,
    nodes: Vec<LocalNode>,
}

impl LocalCluster {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The YAML inventory (`known_hosts`, `host_key_checking: strict`, nodes with host/port/user/key).
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join(INVENTORY_FILE)
    }
    /// Pinned host keys of every node.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join(KNOWN_HOSTS_FILE)
    }
    /// The controller's private key (ed25519), authorised for root on every node.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }
    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }
    pub fn bridge(&self) -> &str {
        &self.bridge
    }
    /// The controller's address on the bridge (never partition it away).
    pub fn controller_addr(&self) -> Ipv4Addr {
        self.controller
    }
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }
}

/// One row of `faultline cluster status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub addr: String,
    /// Host pid of the node's sshd, when it runs.
    pub sshd_pid: Option<u32>,
    /// The sshd answered with an SSH banner.
    pub reachable: bool,
}

fn node_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("nodes").join(name)
}

fn sshd_config_path(dir: &Path, name: &str) -> PathBuf {
    node_dir(dir, name).join("ssh").join("sshd_config")
}

fn read_state(dir: &Path) -> Result<Option<State>, ClusterError> {
    let path = dir.join(STATE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClusterError::State {
                dir: dir.display().to_string(),
                detail: format!("{STATE_FILE} is unreadable ({e}); remove the directory by hand"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), ClusterError> {
    use std::os::unix::fs::PermissionsExt;
    // Rewrites in place (same inode): nodes that bind-mounted the file see the new contents.
    fs::write(path, contents).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

fn write_state(dir: &Path, state: &State) -> Result<(), ClusterError> {
    let text = serde_json::to_string_pretty(state).expect("state serialises");
    write_file(&dir.join(STATE_FILE), text.as_bytes(), 0o644)
}

/// Brings the cluster up (refused while another process holds its [`Claim`]), or reconciles a
/// running one with `cfg`: running nodes are reused, missing
/// or dead ones are (re)started, nodes beyond `cfg.nodes` are removed. Returns once every sshd accepts
/// connections, with `inventory.yaml` and `known_hosts` written.
pub fn up(cfg: &ClusterConfig) -> Result<LocalCluster, ClusterError> {
    cfg.validate()?;
    if !is_root() {
        return Err(ClusterError::NotRoot);
    }
    let _claim = claim(&cfg.dir)?;
    host::ensure_packages(cfg.install_packages)?;
    let dir = &cfg.dir;
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let dir = &fs::canonicalize(dir).map_err(io_err(dir))?;

    let previous = read_state(dir)?;
    if let Some(prev) = &previous {
        if prev.tag != cfg.tag
            || prev.bridge != cfg.bridge
            || prev.subnet != cfg.subnet
            || prev.ssh_port != cfg.ssh_port
        {
            return Err(ClusterError::State {
                dir: dir.display().to_string(),
                detail: format!(
                    "holds a cluster with tag {}, bridge {}, subnet {}.0/24, ssh port {}; run `faultline cluster down` first to change them",
                    prev.tag, prev.bridge, prev.subnet, prev.ssh_port
                ),
            });
        }
    }
    let mut state = previous.unwrap_or_else(|| State {
        tag: cfg.tag.clone(),
        bridge: cfg.bridge.clone(),
        subnet: cfg.subnet.clone(),
        ssh_port: cfg.ssh_port,
        nodes: Vec::new(),
    });

    // Shrinking: remove the nodes beyond N first.
    let (keep, remove): (Vec<NodeState>, Vec<NodeState>) = state
        .nodes
        .drain(..)
        .partition(|n| node_index(&n.name).is_some_and(|i| i <= cfg.nodes));
    for node in &remove {
        host::stop_node(dir, node)?;
        let nd = node_dir(dir, &node.name);
        if nd.exists() {
            fs::remove_dir_all(&nd).map_err(io_err(&nd))?;
        }
    }
    state.nodes = keep;
    write_state(dir, &state)?;

    if let Some(other) = host::subnet_taken_by(&cfg.bridge, &cfg.subnet)? {
        return Err(ClusterError::BadConfig(format!(
            "subnet {}.0/24 is already used by interface {other} (another local cluster?): take that down or choose another subnet (`--subnet` of `faultline cluster up`, `--cluster-subnet` of run and campaign)",
            cfg.subnet
        )));
    }
    host::ensure_bridge(&cfg.bridge, &controller_addr(&cfg.subnet))?;
    host::ensure_controller_key(&dir.join(KEY_FILE))?;
    fs::create_dir_all(NODE_OPT_DIR).map_err(io_err(Path::new(NODE_OPT_DIR)))?;

    let names: Vec<String> = (1..=cfg.nodes).map(|i| format!("n{i}")).collect();
    let hosts = hosts_file(cfg, &names);
    let mut started = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let index = i + 1;
        let spec = NodeState {
            name: name.clone(),
            addr: node_addr(&cfg.subnet, index),
            netns: format!("{}-{name}", cfg.tag),
            veth: format!("{}v{index}", cfg.tag),
            pid: 0,
        };
        host::prepare_node_files(dir, &spec, cfg.ssh_port, &hosts)?;
        let existing = state.nodes.iter().position(|n| n.name == *name);
        if let Some(pos) = existing {
            if host::node_alive(dir, &state.nodes[pos]) {
                continue;
            }
            let dead = state.nodes.remove(pos);
            host::stop_node(dir, &dead)?;
        }
        let pid = host::start_node(dir, &spec, &cfg.bridge)?;
        state.nodes.push(NodeState { pid, ..spec });
        // Recorded before waiting so that `down` can clean up after a failed `up`.
        state.nodes.sort_by_key(|n| node_index(&n.name));
        write_state(dir, &state)?;
        started.push(name.clone());
    }
    for node in &state.nodes {
        wait_ready(dir, node, cfg.ssh_port, cfg.ready_timeout)?;
    }
    write_known_hosts(dir, &state)?;
    write_inventory(dir, &state)?;
    tracing::info!(started = ?started, total = state.nodes.len(), "local cluster up");
    Ok(to_cluster(dir, &state))
}

/// Opens the running cluster recorded in `dir` (without checking that its nodes are alive).
pub fn open(dir: &Path) -> Result<LocalCluster, ClusterError> {
    match read_state(dir)? {
        Some(state) => Ok(to_cluster(dir, &state)),
        None => Err(ClusterError::State {
            dir: dir.display().to_string(),
            detail: "no local cluster here (run `faultline cluster up`)".into(),
        }),
    }
}

/// Takes down the cluster recorded in `dir` (refused while another process holds its [`Claim`]): kills every node's PID namespace, deletes namespaces,
/// veths and the bridge, and removes the state directory's contents. Doing it twice is harmless.
pub fn down(dir: &Path) -> Result<(), ClusterError> {
    let Some(state) = read_state(dir)? else {
        return Ok(());
    };
    if !is_root() {
        return Err(ClusterError::NotRoot);
    }
    let _claim = claim(dir)?;
    for node in &state.nodes {
        host::stop_node(dir, node)?;
    }
    host::delete_link(&state.bridge)?;
    for entry in [
        STATE_FILE,
        INVENTORY_FILE,
        KNOWN_HOSTS_FILE,
        KEY_FILE,
        "id_ed25519.pub",
    ] {
        let p = dir.join(entry);
        if p.exists() {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    let nodes = dir.join("nodes");
    if nodes.exists() {
        fs::remove_dir_all(&nodes).map_err(io_err(&nodes))?;
    }
    // The directory itself goes only when nothing else was put in it.
    let _ = fs::remove_dir(dir);
    Ok(())
}

/// The state of every node recorded in `dir`.
pub fn status(dir: &Path) -> Result<Vec<NodeStatus>, ClusterError> {
    let Some(state) = read_state(dir)? else {
        return Err(ClusterError::State {
            dir: dir.display().to_string(),
            detail: "no local cluster here (run `faultline cluster up`)".into(),
        });
    };
    Ok(state
        .nodes
        .iter()
        .map(|n| NodeStatus {
            name: n.name.clone(),
            addr: n.addr.clone(),
            sshd_pid: host::sshd_pid(dir, n),
            reachable: ssh_banner(&n.addr, state.ssh_port, Duration::from_millis(500)).is_ok(),
        })
        .collect())
}

fn to_cluster(dir: &Path, state: &State) -> LocalCluster {
    LocalCluster {
        dir: dir.to_path_buf(),
        bridge: state.bridge.clone(),
        controller: controller_addr(&state.subnet).parse().expect("validated"),
        ssh_port: state.ssh_port,
        nodes: state
            .nodes
            .iter()
            .map(|n| LocalNode {
                name: n.name.clone(),
                addr: n.addr.parse().expect("written by up"),
                netns: n.netns.clone(),
                veth: n.veth.clone(),
                pid: n.pid,
            })
            .collect(),
    }
}

fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix('n')?.parse().ok()
}

fn controller_addr(subnet: &str) -> String {
    format!("{subnet}.1")
}

fn node_addr(subnet: &str, index: usize) -> String {
    format!("{subnet}.{}", FIRST_HOST_OCTET as usize + index)
}

fn hosts_file(cfg: &ClusterConfig, names: &[String]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    s.push_str(&format!("{}\tcontroller\n", controller_addr(&cfg.subnet)));
    for (i, name) in names.iter().enumerate() {
        s.push_str(&format!("{}\t{name}\n", node_addr(&cfg.subnet, i + 1)));
    }
    s
}

/// Connects and reads the SSH identification line: proof that sshd accepts connections.
fn ssh_banner(addr: &str, port: u16, timeout: Duration) -> std::io::Result<String> {
    let sa = SocketAddr::new(
        addr.parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        port,
    );
    let mut stream = TcpStream::connect_timeout(&sa, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    let banner = String::from_utf8_lossy(&buf[..n]).into_owned();
    let _ = stream.write_all(b"");
    if banner.starts_with("SSH-") {
        Ok(banner)
    } else {
        Err(std::io::Error::other(format!(
            "unexpected greeting {banner:?}"
        )))
    }
}

fn wait_ready(
    dir: &Path,
    node: &NodeState,
    port: u16,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        if ssh_banner(&node.addr, port, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        let dead = !host::node_alive(dir, node);
        if dead || start.elapsed() > timeout {
            let log = node_dir(dir, &node.name).join("node.log");
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
            return Err(ClusterError::NotReady {
                node: node.name.clone(),
                addr: format!("{}:{port}", node.addr),
                after: start.elapsed(),
                log: log.display().to_string(),
                tail: if dead {
                    format!("(node process exited) {tail}")
                } else {
                    tail
                },
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

fn write_known_hosts(dir: &Path, state: &State) -> Result<(), ClusterError> {
    let mut out = String::new();
    for node in &state.nodes {
        let pubkey_path = node_dir(dir, &node.name)
            .join("ssh")
            .join("ssh_host_ed25519_key.pub");
        let pubkey = fs::read_to_string(&pubkey_path).map_err(io_err(&pubkey_path))?;
        // "type base64 [comment]": drop the comment.
        let key: Vec<&str> = pubkey.split_whitespace().take(2).collect();
        let host = if state.ssh_port == 22 {
            node.addr.clone()
        } else {
            format!("[{}]:{}", node.addr, state.ssh_port)
        };
        out.push_str(&format!("{host} {}\n", key.join(" ")));
    }
    write_file(&dir.join(KNOWN_HOSTS_FILE), out.as_bytes(), 0o644)
}

#[derive(Serialize)]
struct InventoryFile<'a> {
    known_hosts: String,
    host_key_checking: &'a str,
    nodes: Vec<InventoryNode<'a>>,
}

#[derive(Serialize)]
struct InventoryNode<'a> {
    name: &'a str,
    host: &'a str,
    port: u16,
    user: &'a str,
    key: String,
}

fn write_inventory(dir: &Path, state: &State) -> Result<(), ClusterError> {
    let inv = InventoryFile {
        known_hosts: dir.join(KNOWN_HOSTS_FILE).display().to_string(),
        host_key_checking: "strict",
        nodes: state
            .nodes
            .iter()
            .map(|n| InventoryNode {
                name: &n.name,
                host: &n.addr,
                port: state.ssh_port,
                user: "root",
                key: dir.join(KEY_FILE).display().to_string(),
            })
            .collect(),
    };
    let mut text = String::from(
        "# Written by `faultline cluster up`: the local namespace cluster in this directory.\n",
    );
    text.push_str(&serde_yaml_ng::to_string(&inv).expect("inventory serialises"));
    write_file(&dir.join(INVENTORY_FILE), text.as_bytes(), 0o644)
}

/// Runs a host command, failing with its stderr.
fn run(cmd: &mut Command) -> Result<String, ClusterError> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::Command {
            command: shown.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            command: shown,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Quotes `s` for a POSIX shell.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,@+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_bad_field() {
        let ok = ClusterConfig::new("/var/lib/x", 3);
        assert!(ok.validate().is_ok());
        let cases: Vec<(ClusterConfig, &str)> = vec![
            (ClusterConfig::new("/x", 0), "--nodes"),
            (ClusterConfig::new("/x", 201), "--nodes"),
            (
                ClusterConfig {
                    subnet: "8.8.8".into(),
                    ..ok.clone()
                },
                "subnet",
            ),
            (
                ClusterConfig {
                    subnet: "10.77".into(),
                    ..ok.clone()
                },
                "subnet",
            ),
            (
                ClusterConfig {
                    subnet: "172.32.0".into(),
                    ..ok.clone()
                },
                "subnet",
            ),
            (
                ClusterConfig {
                    tag: "Bad-Tag".into(),
                    ..ok.clone()
                },
                "tag",
            ),
            (
                ClusterConfig {
                    bridge: "a-bridge-name-too-long".into(),
                    ..ok.clone()
                },
                "bridge",
            ),
        ];
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn addresses_and_hosts_file() {
        let cfg = ClusterConfig::new("/x", 2);
        assert_eq!(node_addr("10.77.0", 1), "10.77.0.11");
        assert_eq!(controller_addr("10.77.0"), "10.77.0.1");
        let hosts = hosts_file(&cfg, &["n1".into(), "n2".into()]);
        assert!(hosts.contains("10.77.0.11\tn1\n"));
        assert!(hosts.contains("10.77.0.12\tn2\n"));
        assert!(hosts.contains("10.77.0.1\tcontroller\n"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/var/lib/x"), "/var/lib/x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
