//! A throwaway OpenSSH server on 127.0.0.1 for tests and benchmarks (needs root).
//!
//! Each server gets its own directory with an ed25519 host key, a client key authorised for
//! root, a known_hosts file that records the host key, and a config; it is killed and its
//! directory removed when the guard drops. When `unshare` works, sshd runs in a private mount
//! namespace with an empty directory bound over `/root`, so that root's shell start-up files on
//! the host (pyenv in `.bashrc`: ~130 ms per command) do not slow every command down.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::inventory::{HostKeyChecking, Node};

pub struct TestSshd {
    pub dir: PathBuf,
    pub port: u16,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    child: Child,
}

/// True when running as root; otherwise prints the loud SKIPPED line the rules ask for.
pub fn root_or_skip(test: &str) -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let sshd = Path::new("/usr/sbin/sshd").exists();
    if !root {
        eprintln!("SKIPPED: needs root (starts its own sshd): {test}");
    } else if !sshd {
        eprintln!("SKIPPED: needs /usr/sbin/sshd (apt-get install openssh-server): {test}");
    }
    root && sshd
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "faultline-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Generates an ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "faultline-test",
            "-f",
        ])
        .arg(path));
}

/// `type base64` of a public key file.
pub fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl TestSshd {
    /// Starts a server; waits until it accepts TCP connections.
    pub fn start() -> TestSshd {
        let dir = temp_dir("sshd");
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("id_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.join("authorized_keys"),
        )
        .expect("write authorized_keys");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("create home");
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nUseDNS no\nMaxSessions 16\nMaxStartups 64\nLogLevel ERROR\n",
                hk = host_key.display(),
                dir = dir.display()
            ),
        )
        .expect("write sshd_config");
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", public_key(&host_key)),
        )
        .expect("write known_hosts");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("create sshd log");
        let mut cmd = if unshare_works() {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!(
                    "mount --bind {} /root && exec /usr/sbin/sshd -D -e -f {}",
                    home.display(),
                    config.display()
                ));
            c
        } else {
            let mut c = Command::new("/usr/sbin/sshd");
            c.arg("-D").arg("-e").arg("-f").arg(&config);
            c
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let mut sshd = TestSshd {
            dir,
            port,
            client_key,
            known_hosts,
            child,
        };
        sshd.wait_ready();
        sshd
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
                panic!("sshd exited with {status} before listening: {log}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sshd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// An inventory node that logs in as root with the authorised key, strict host key checking.
    pub fn node(&self, name: &str) -> Node {
        Node {
            name: name.to_string(),
            host: "127.0.0.1".into(),
            port: self.port,
            user: "root".into(),
            key: Some(self.client_key.clone()),
            sudo_password_env: None,
            known_hosts: Some(self.known_hosts.clone()),
            host_key_checking: HostKeyChecking::Strict,
        }
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
