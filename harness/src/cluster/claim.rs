//! One process at a time per local cluster.
//!
//! Two harness processes on one cluster share its servers: each one's setup stops and wipes the
//! other's, and both sets of clients write the same keys, so each history holds values its own
//! clients never wrote and a correct server is judged nonlinearizable. A [`Claim`] is an exclusive
//! `flock` on a file beside the state directory (`/var/lib/faultline/.cluster.lock` for
//! `/var/lib/faultline/cluster`), so it outlives [`super::down`] removing the directory and dies
//! with its process. Claims are re-entrant within a process: a campaign holds one for its whole
//! length, and the `up`, `down` and runs it performs inside take it again.
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::ClusterError;

/// Held while this process uses the cluster; the lock goes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Claim {
    _file: Arc<File>,
}

/// The claims this process holds, by lock file.
static HELD: Mutex<BTreeMap<PathBuf, Weak<File>>> = Mutex::new(BTreeMap::new());

fn held() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, Weak<File>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lock file of the cluster whose state directory is `dir`.
pub fn lock_path(dir: &Path) -> Result<PathBuf, ClusterError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ClusterError::BadConfig(format!("--dir {}: not a directory name", dir.display()))
        })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(super::io_err(&parent))?;
    let parent = fs::canonicalize(&parent).map_err(super::io_err(&parent))?;
    Ok(parent.join(format!(".{name}.lock")))
}

/// Claims the cluster in `dir` for this process, or fails at once with [`ClusterError::InUse`]
/// naming the process that holds it.
pub fn claim(dir: &Path) -> Result<Claim, ClusterError> {
    take(dir, false)
}

/// Like [`claim`], but waits for another process's claim to go.
pub fn claim_waiting(dir: &Path) -> Result<Claim, ClusterError> {
    take(dir, true)
}

fn take(dir: &Path, wait: bool) -> Result<Claim, ClusterError> {
    let path = lock_path(dir)?;
    let mut held = held();
    if let Some(file) = held.get(&path).and_then(Weak::upgrade) {
        return Ok(Claim { _file: file });
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(super::io_err(&path))?;
    if wait {
        // Not holding the registry meanwhile: other claims of this process go on.
        drop(held);
        file.lock().map_err(super::io_err(&path))?;
        held = self::held();
        if let Some(file) = held.get(&path).and_then(Weak::upgrade) {
            // Another thread of this process got there first; ours goes with `file`.
            return Ok(Claim { _file: file });
        }
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(ClusterError::InUse {
                    dir: dir.display().to_string(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(super::io_err(&path)(e)),
        }
    }
    // Who holds it, for the error another process gets.
    let me = format!(
        "pid {} ({})",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(me.as_bytes());
    let file = Arc::new(file);
    held.insert(path, Arc::downgrade(&file));
    Ok(Claim { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("faultline-claim-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// Another process holding the lock file (`flock(1)` takes the same `flock(2)` lock). The
    /// caller kills it and waits for it.
    #[allow(clippy::zombie_processes)]
    fn hold_elsewhere(lock: &Path) -> Child {
        // `-o`: `sleep` does not inherit the lock, so killing `flock` releases it.
        let mut child = Command::new("flock")
            .arg("-o")
            .arg(lock)
            .args(["sleep", "30"])
            .stdout(Stdio::null())
            .spawn()
            .expect("flock(1) from util-linux");
        let t0 = Instant::now();
        loop {
            let free = Command::new("flock")
                .args(["-n"])
                .arg(lock)
                .arg("true")
                .status()
                .unwrap()
                .success();
            if !free {
                return child;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("flock never took {lock:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_cluster_claimed_by_another_process_is_refused_with_its_holder() {
        let base = scratch("other");
        let dir = base.join("cluster");
        let lock = lock_path(&dir).unwrap();
        assert_eq!(lock, fs::canonicalize(&base).unwrap().join(".cluster.lock"));
        fs::write(&lock, "pid 4242 (faultline campaign x.yaml)").unwrap();
        let mut other = hold_elsewhere(&lock);
        let err = claim(&dir).unwrap_err();
        assert!(matches!(err, ClusterError::InUse { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("pid 4242 (faultline campaign x.yaml)"),
            "{text}"
        );
        assert!(text.contains(&dir.display().to_string()), "{text}");
        if super::super::is_root() {
            // Up and down refuse too, before touching anything.
            fs::create_dir_all(&dir).unwrap();
            let state =
                r#"{"tag":"flx","bridge":"flxbr","subnet":"10.77.250","ssh_port":22,"nodes":[]}"#;
            fs::write(dir.join(super::super::STATE_FILE), state).unwrap();
            let down = super::super::down(&dir).unwrap_err();
            assert!(matches!(down, ClusterError::InUse { .. }), "{down}");
            assert!(
                dir.join(super::super::STATE_FILE).exists(),
                "down touched nothing"
            );
            let cfg = super::super::ClusterConfig {
                tag: "flx".into(),
                bridge: "flxbr".into(),
                subnet: "10.77.250".into(),
                ..super::super::ClusterConfig::new(&dir, 1)
            };
            let up = super::super::up(&cfg).unwrap_err();
            assert!(matches!(up, ClusterError::InUse { .. }), "{up}");
        } else {
            eprintln!("SKIPPED (not root): up and down refusing a claimed cluster");
        }
        other.kill().unwrap();
        other.wait().unwrap();
        // The holder gone, the claim is ours and names us.
        let c = claim(&dir).unwrap();
        let who = fs::read_to_string(&lock).unwrap();
        assert!(
            who.starts_with(&format!("pid {} ", std::process::id())),
            "{who}"
        );
        drop(c);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn claims_are_reentrant_in_one_process_and_released_with_the_last() {
        let base = scratch("reentrant");
        let dir = base.join("c");
        let lock = lock_path(&dir).unwrap();
        let outer = claim(&dir).unwrap();
        let inner = claim(&dir).unwrap();
        let free = || {
            Command::new("flock")
                .arg("-n")
                .arg(&lock)
                .arg("true")
                .status()
                .unwrap()
                .success()
        };
        assert!(!free(), "held while claimed");
        drop(inner);
        assert!(!free(), "still held by the outer claim");
        drop(outer);
        assert!(free(), "released with the last claim");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_waiting_claim_gets_the_cluster_when_the_holder_ends() {
        let base = scratch("wait");
        let dir = base.join("c");
        let lock = lock_path(&dir).unwrap();
        let mut other = hold_elsewhere(&lock);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.kill().unwrap();
            other.wait().unwrap();
        });
        let t0 = Instant::now();
        let c = claim_waiting(&dir).unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t0.elapsed()
        );
        killer.join().unwrap();
        drop(c);
        fs::remove_dir_all(&base).unwrap();
    }
}
