//! The host side of the local cluster: packages, bridge, keys, node processes and links.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    io_err, node_dir, run, shell_quote, sshd_config_path, write_file, ClusterError, NodeState,
    NODE_OPT_DIR,
};

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The programs a local cluster needs, the Debian package providing each, and where to look.
const NEEDED: &[(&str, &str)] = &[
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/sbin/tc", "iproute2"),
    ("/usr/sbin/iptables", "iptables"),
    ("/usr/bin/tini", "tini"),
    ("/usr/bin/unshare", "util-linux"),
    (
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "libfaketime",
    ),
];

fn present(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    // Other layouts (e.g. /bin vs /usr/bin, another multiarch triplet): accept the program by name
    // anywhere on PATH, the library under any /usr/lib/<triplet>/faketime.
    let file = Path::new(path).file_name().unwrap_or_default();
    if path.ends_with(".so.1") {
        return fs::read_dir("/usr/lib")
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("faketime").join(file).exists())
            })
            .unwrap_or(false);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(file).exists()))
        .unwrap_or(false)
}

/// Debian packages whose programs are missing on this host (deduplicated, in a stable order).
pub fn missing_packages() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (path, pkg) in NEEDED {
        if !present(path) && !out.contains(pkg) {
            out.push(pkg);
        }
    }
    out
}

pub(super) fn ensure_packages(install: bool) -> Result<(), ClusterError> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    if !install {
        return Err(ClusterError::MissingPackages(missing.join(" ")));
    }
    let args = missing.join(" ");
    eprintln!(
        "faultline: installing missing packages: apt-get install -y --no-install-recommends {args}"
    );
    if let Err(e) = run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    {
        // A fresh machine may have no package lists yet.
        eprintln!("faultline: apt-get install failed ({e}); running apt-get update first");
        run(Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let still = missing_packages();
    if still.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::MissingPackages(still.join(" ")))
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The host interface other than `bridge` that already has an address in `subnet`.0/24 (another
/// local cluster, or anything else), which would steal the cluster's routes.
pub(super) fn subnet_taken_by(bridge: &str, subnet: &str) -> Result<Option<String>, ClusterError> {
    let addrs = run(Command::new("ip").args(["-4", "-o", "addr", "show"]))?;
    Ok(interface_in_subnet(&addrs, bridge, subnet))
}

/// Parses `ip -4 -o addr show`: `2: eth0    inet 10.0.0.5/24 brd ... scope global eth0`.
fn interface_in_subnet(addrs: &str, bridge: &str, subnet: &str) -> Option<String> {
    let prefix = format!("{subnet}.");
    addrs.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let dev = words.nth(1)?.trim_end_matches(':');
        let addr = words.skip_while(|w| *w != "inet").nth(1)?;
        (dev != bridge && addr.starts_with(&prefix)).then(|| dev.to_string())
    })
}

pub(super) fn ensure_bridge(bridge: &str, controller: &str) -> Result<(), ClusterError> {
    if !link_exists(bridge) {
        run(Command::new("ip").args(["link", "add", bridge, "type", "bridge"]))?;
    }
    let addrs = run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", bridge]))?;
    if !addrs.contains(&format!("inet {controller}/24")) {
        run(Command::new("ip").args(["addr", "add", &format!("{controller}/24"), "dev", bridge]))?;
    }
    run(Command::new("ip").args(["link", "set", bridge, "up"]))?;
    Ok(())
}

pub(super) fn delete_link(name: &str) -> Result<(), ClusterError> {
    if link_exists(name) {
        // Deleting a namespace removes its veth pair asynchronously: losing that race is fine.
        if let Err(e) = run(Command::new("ip").args(["link", "del", name])) {
            if link_exists(name) {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn keygen(path: &Path, comment: &str) -> Result<(), ClusterError> {
    if path.exists() && path.with_extension("pub").exists() {
        return Ok(());
    }
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))?;
    Ok(())
}

pub(super) fn ensure_controller_key(path: &Path) -> Result<(), ClusterError> {
    keygen(path, "faultline-controller")
}

fn mkdir(path: &Path, mode: u32) -> Result<(), ClusterError> {
    fs::create_dir_all(path).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Writes the node's files: root home with the controller key authorised, hosts, hostname, sshd
/// configuration and host key. Rewriting them for a running node is safe (same inodes).
pub(super) fn prepare_node_files(
    dir: &Path,
    node: &NodeState,
    port: u16,
    hosts: &str,
) -> Result<(), ClusterError> {
    let nd = node_dir(dir, &node.name);
    // sshd's StrictModes wants the home and .ssh owned by root and not group/world writable.
    mkdir(&nd, 0o755)?;
    mkdir(&nd.join("root"), 0o700)?;
    mkdir(&nd.join("root").join(".ssh"), 0o700)?;
    mkdir(&nd.join("etc"), 0o755)?;
    mkdir(&nd.join("ssh"), 0o700)?;
    mkdir(&nd.join("opt"), 0o755)?;
    mkdir(&nd.join("tmp"), 0o1777)?;
    let controller_pub = dir.join(super::KEY_FILE).with_extension("pub");
    let key = fs::read(&controller_pub).map_err(io_err(&controller_pub))?;
    write_file(
        &nd.join("root").join(".ssh").join("authorized_keys"),
        &key,
        0o600,
    )?;
    write_file(&nd.join("etc").join("hosts"), hosts.as_bytes(), 0o644)?;
    write_file(
        &nd.join("etc").join("hostname"),
        format!("{}\n", node.name).as_bytes(),
        0o644,
    )?;
    write_file(
        &nd.join("root").join(".profile"),
        b"# faultline local-cluster node: deliberately empty\n",
        0o644,
    )?;
    let host_key = nd.join("ssh").join("ssh_host_ed25519_key");
    keygen(&host_key, &format!("faultline-{}", node.name))?;
    let config = format!(
        "# faultline local-cluster node {name}\n\
         Port {port}\n\
         ListenAddress {addr}\n\
         HostKey {key}\n\
         PidFile none\n\
         UsePAM no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxSessions 128\n\
         MaxStartups 128:30:256\n\
         Subsystem sftp internal-sftp\n",
        name = node.name,
        addr = node.addr,
        key = host_key.display(),
    );
    write_file(&sshd_config_path(dir, &node.name), config.as_bytes(), 0o600)
}

/// Starts the node: namespace, veth on the bridge, address, then sshd in its own UTS, mount and
/// PID namespaces under tini. Returns the host pid of `unshare`.
pub(super) fn start_node(dir: &Path, node: &NodeState, bridge: &str) -> Result<u32, ClusterError> {
    // Leftovers of a node killed earlier (a veth kept alive by sockets, a stale namespace).
    delete_link(&node.veth)?;
    if netns_exists(&node.netns) {
        run(Command::new("ip").args(["netns", "del", &node.netns]))?;
    }
    let ns = node.netns.as_str();
    run(Command::new("ip").args(["netns", "add", ns]))?;
    run(Command::new("ip").args([
        "link", "add", &node.veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ]))?;
    run(Command::new("ip").args(["link", "set", &node.veth, "master", bridge, "up"]))?;
    run(Command::new("ip").args([
        "-n",
        ns,
        "addr",
        "add",
        &format!("{}/24", node.addr),
        "dev",
        "eth0",
    ]))?;
    run(Command::new("ip").args(["-n", ns, "link", "set", "eth0", "up"]))?;
    run(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]))?;
    fs::create_dir_all("/run/sshd").map_err(io_err(Path::new("/run/sshd")))?;

    let nd = node_dir(dir, &node.name);
    let q = |p: PathBuf| shell_quote(&p.display().to_string());
    // A state dir below /tmp would disappear behind the node's own /tmp.
    let private_tmp = if dir.starts_with("/tmp") {
        String::new()
    } else {
        format!("mount --bind {} /tmp\n", q(nd.join("tmp")))
    };
    let script = format!(
        "set -e\n\
         mount --bind {root} /root\n\
         mount --bind {hosts} /etc/hosts\n\
         mount --bind {hostname} /etc/hostname\n\
         mount --bind {opt} {opt_target}\n\
         {private_tmp}\
         hostname {name}\n\
         exec /usr/sbin/sshd -D -e -f {config}\n",
        root = q(nd.join("root")),
        hosts = q(nd.join("etc").join("hosts")),
        hostname = q(nd.join("etc").join("hostname")),
        opt = q(nd.join("opt")),
        opt_target = NODE_OPT_DIR,
        name = node.name,
        config = q(sshd_config_path(dir, &node.name)),
    );
    let log = nd.join("node.log");
    // `setsid ... &` in a shell that exits at once: the node is re-parented to init (no zombie in our
    // process when it is killed) and outlives `faultline cluster up`.
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(
            "setsid ip netns exec \"$1\" unshare --uts --mount --pid --fork --kill-child --mount-proc \
             tini -- sh -c \"$2\" >\"$3\" 2>&1 </dev/null & echo $!",
        )
        .args(["sh", ns, &script])
        .arg(&log))?;
    let pid: u32 = out.trim().parse().map_err(|_| ClusterError::Command {
        command: format!("start node {}", node.name),
        stderr: format!("no pid in {out:?}"),
    })?;
    Ok(pid)
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// The node's `unshare` process is alive (not a zombie) and the namespace exists.
pub(super) fn node_alive(dir: &Path, node: &NodeState) -> bool {
    node.pid != 0
        && proc_state(node.pid).is_some_and(|s| s != 'Z' && s != 'X')
        && is_node_process(dir, node)
        && netns_exists(&node.netns)
}

/// The recorded pid still runs this node's `unshare` (pids get reused). `ip netns exec` execs into
/// unshare, so the command line names the node's sshd config, not its namespace.
fn is_node_process(dir: &Path, node: &NodeState) -> bool {
    let config = sshd_config_path(dir, &node.name).display().to_string();
    node.pid != 0
        && cmdline(node.pid).is_some_and(|c| c.starts_with("unshare ") && c.contains(&config))
}

/// Host pids of processes whose command line names the node's sshd config (its sshd and the
/// per-connection children).
fn sshd_pids(dir: &Path, node: &NodeState) -> Vec<u32> {
    let needle = sshd_config_path(dir, &node.name).display().to_string();
    let mut pids = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(c) = cmdline(pid) {
                if (c.starts_with("/usr/sbin/sshd") || c.starts_with("sshd:"))
                    && c.contains(&needle)
                {
                    pids.push(pid);
                }
            }
        }
    }
    pids.sort_unstable();
    pids
}

/// The listening sshd: the lowest pid running the node's config (children are forked later).
pub(super) fn sshd_pid(dir: &Path, node: &NodeState) -> Option<u32> {
    if !node_alive(dir, node) {
        return None;
    }
    sshd_pids(dir, node).into_iter().next()
}

fn kill9(pid: u32) {
    // SAFETY-free: the `kill` program, so no libc dependency; errors (already gone) are fine.
    let _ = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Kills the node's PID namespace (SIGKILL to unshare; `--kill-child` takes tini and with it every
/// process on the node), then deletes its namespace and host-side veth.
pub(super) fn stop_node(dir: &Path, node: &NodeState) -> Result<(), ClusterError> {
    if is_node_process(dir, node) {
        kill9(node.pid);
    }
    // Anything that escaped (should not happen: they live in the node's PID namespace).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = sshd_pids(dir, node);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Command {
                command: format!("stop node {}", node.name),
                stderr: format!("processes {left:?} survived SIGKILL"),
            });
        }
        for pid in left {
            kill9(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if netns_exists(&node.netns) {
        run(Command::new("ip").args(["netns", "del", &node.netns]))?;
    }
    // Sockets of killed processes can keep the veth alive after the namespace is gone.
    delete_link(&node.veth)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::interface_in_subnet;

    #[test]
    fn another_interface_in_the_subnet_is_found() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                     7: flbugbr    inet 10.77.45.1/24 scope global flbugbr\n\
                     9: fltermbr    inet 10.77.45.1/24 scope global fltermbr\n";
        assert_eq!(
            interface_in_subnet(addrs, "fltermbr", "10.77.45").as_deref(),
            Some("flbugbr")
        );
        assert_eq!(interface_in_subnet(addrs, "flbugbr", "10.77.4"), None);
        assert_eq!(interface_in_subnet(addrs, "x", "10.77.46"), None);
    }
}
