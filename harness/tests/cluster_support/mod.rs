//! Shared by the local-cluster and database tests: a cluster guard that always tears down, SSH
//! connections from the cluster's own inventory, and the residue assertions.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use harness::cluster::{self, ClusterConfig, LocalCluster};
use harness::inventory::{Inventory, NodeDefaults};
use harness::ssh::{connect_all, SshOptions};
use nemesis::Remote;

/// True when running as root; otherwise prints the loud SKIPPED line.
pub fn root_or_skip(test: &str) -> bool {
    if cluster::is_root() {
        true
    } else {
        eprintln!("SKIPPED: needs root (network namespaces, bridge, sshd): {test}");
        false
    }
}

/// A cluster config private to one test binary: its own tag, bridge, subnet and state dir, so test
/// binaries running at the same time cannot collide. (The same test run twice at once, from two
/// checkouts, would share it: [`Guard::up`] makes the second wait.)
pub fn config(tag: &str, subnet_octet: u8, nodes: usize) -> ClusterConfig {
    let dir = PathBuf::from(format!("/var/lib/faultline/test-{tag}"));
    ClusterConfig {
        tag: tag.to_string(),
        bridge: format!("{tag}br"),
        subnet: format!("10.77.{subnet_octet}"),
        ..ClusterConfig::new(dir, nodes)
    }
}

/// Takes the cluster down when dropped (also when the test panics).
pub struct Guard {
    pub cfg: ClusterConfig,
    /// Held from before `up` until after `down`: the same test started again meanwhile (another
    /// checkout, another `cargo test`) waits for it instead of sharing, and tearing down, this
    /// cluster. Not the cluster's own claim, which the `faultline` processes a test starts take.
    _turn: cluster::Claim,
}

impl Guard {
    /// Waits until no other process runs a test on this cluster, removes what a crashed earlier run
    /// left, then brings the cluster up.
    pub fn up(cfg: ClusterConfig) -> (Guard, LocalCluster) {
        let guard = Guard::adopt(cfg);
        let c = cluster::up(&guard.cfg).unwrap_or_else(|e| panic!("cluster up: {e}"));
        (guard, c)
    }

    /// Like [`Guard::up`] without bringing the cluster up (the test does, e.g. from the command line).
    pub fn adopt(cfg: ClusterConfig) -> Guard {
        let name = cfg
            .dir
            .file_name()
            .expect("a named state dir")
            .to_string_lossy();
        let turn = cfg.dir.with_file_name(format!("{name}.test"));
        let turn = cluster::claim_waiting(&turn).unwrap_or_else(|e| panic!("test turn: {e}"));
        cluster::down(&cfg.dir).expect("clean up an earlier run");
        Guard { cfg, _turn: turn }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = cluster::down(&self.cfg.dir) {
            eprintln!("cluster down in guard: {e}");
        }
    }
}

/// Connects to every node through the inventory `up` wrote (pinned host keys, controller key).
pub async fn connect(c: &LocalCluster) -> Vec<Arc<dyn Remote>> {
    let inv = Inventory::from_yaml_file(&c.inventory_path(), &NodeDefaults::default())
        .unwrap_or_else(|e| panic!("inventory: {e}"));
    connect_all(&inv, &SshOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
        .into_iter()
        .map(|r| r as Arc<dyn Remote>)
        .collect()
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that nothing of the cluster described by `cfg` is left on the host.
pub fn assert_no_residue(cfg: &ClusterConfig, state_dir: &Path) {
    let prefix = format!("{}-", cfg.tag);
    let netns = stdout(Command::new("ip").args(["netns", "list"]));
    let left: Vec<&str> = netns.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");

    let links = stdout(Command::new("ip").args(["-o", "link", "show"]));
    let left: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|name| name.starts_with(&cfg.tag) || *name == cfg.bridge)
        .collect();
    assert!(left.is_empty(), "links left: {left:?}");

    let dir = state_dir.display().to_string();
    let pgrep = Command::new("pgrep")
        .args(["-f", &format!("{dir}/nodes/")])
        .output()
        .expect("pgrep");
    assert!(
        pgrep.stdout.is_empty(),
        "node processes left: {}",
        String::from_utf8_lossy(&pgrep.stdout)
    );

    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&dir) || l.contains(&format!("/run/netns/{prefix}")))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    assert!(
        !state_dir.join("nodes").exists(),
        "node directories left in {dir}"
    );
}

/// `faultline run --target TARGET --workload WORKLOAD --quiet` on the test's local cluster (its
/// size, state dir, tag, bridge and subnet), storing into `store`; callers add the rest.
pub fn faultline_run_on(
    cfg: &ClusterConfig,
    store: &Path,
    target: &str,
    workload: &str,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args(["run", "--target", target, "--workload", workload, "--quiet"])
        .arg("--local")
        .arg(cfg.nodes.to_string())
        .arg("--cluster-dir")
        .arg(&cfg.dir)
        .args(["--cluster-tag", &cfg.tag])
        .args(["--cluster-bridge", &cfg.bridge])
        .args(["--cluster-subnet", &cfg.subnet])
        .arg("--store")
        .arg(store);
    cmd
}

/// An empty scratch store under the temp dir, private to this test process.
pub fn fresh_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `faultline-server` binary: `$FAULTLINE_SERVER_BIN`, else the one `cargo test --workspace`
/// built next to this test, else built now into a target dir of its own (the test's own target
/// dir is locked by the running `cargo test`).
pub fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/debug");
    let beside = profile_dir.join("faultline-server");
    if beside.exists() {
        return beside;
    }
    let own = profile_dir.join("faultline-server-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "targets",
            "--bin",
            "faultline-server",
            "--target-dir",
        ])
        .arg(&own)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building faultline-server failed");
    own.join("debug").join("faultline-server")
}
