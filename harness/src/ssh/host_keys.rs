//! Host key checking against a known_hosts file (OpenSSH format, plain or hashed host names).
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nemesis::RemoteError;
use russh::keys::known_hosts::{known_host_keys_path, learn_known_hosts_path};
use russh::keys::{Algorithm, HashAlg, PublicKey};

use crate::inventory::HostKeyChecking;

/// Serialises read-check-append on known_hosts files: `connect_all` connects in parallel, and two
/// `accept-new` connections must not interleave their appends.
static KNOWN_HOSTS_LOCK: Mutex<()> = Mutex::new(());

/// Where and how a node's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPolicy {
    pub known_hosts: PathBuf,
    pub checking: HostKeyChecking,
}

/// `~/.ssh/known_hosts`.
pub fn default_known_hosts() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".ssh")
        .join("known_hosts")
}

fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

/// `[host]:port` as known_hosts writes it (plain `host` for port 22).
fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The 1-based line of `file` that records `key` (for error messages).
fn line_of(file: &Path, key: &PublicKey) -> Option<usize> {
    let encoded = key.to_openssh().ok()?;
    let b64 = encoded.split_whitespace().nth(1)?.to_string();
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .position(|l| l.split_whitespace().any(|f| f == b64))
        .map(|i| i + 1)
}

/// Keys recorded for `host:port`, or an error naming the file.
fn recorded(node: &str, host: &str, port: u16, file: &Path) -> Result<Vec<PublicKey>, RemoteError> {
    known_host_keys_path(host, port, file)
        .map(|v| v.into_iter().map(|(_, k)| k).collect())
        .map_err(|e| RemoteError::Other {
            node: node.to_string(),
            cause: format!("cannot read known_hosts {}: {e}", file.display()),
        })
}

/// Algorithms recorded for the host, so that the client can ask the server for a key it can check
/// (as OpenSSH does): otherwise a server offering ed25519 first fails against an rsa-only entry.
pub fn recorded_algorithms(host: &str, port: u16, file: &Path) -> Vec<Algorithm> {
    known_host_keys_path(host, port, file)
        .map(|v| v.into_iter().map(|(_, k)| k.algorithm()).collect())
        .unwrap_or_default()
}

/// Accepts or rejects the key a server presented.
pub fn verify(
    node: &str,
    host: &str,
    port: u16,
    key: &PublicKey,
    policy: &HostKeyPolicy,
) -> Result<(), RemoteError> {
    if policy.checking == HostKeyChecking::Off {
        tracing::debug!(node, key = %fingerprint(key), "host key checking is off");
        return Ok(());
    }
    let file = &policy.known_hosts;
    let _guard = KNOWN_HOSTS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let known = recorded(node, host, port, file)?;
    if known.iter().any(|k| k.key_data() == key.key_data()) {
        return Ok(());
    }
    let name = host_port(host, port);
    if let Some(same_type) = known.iter().find(|k| k.algorithm() == key.algorithm()) {
        let at = line_of(file, same_type).map_or(String::new(), |l| format!(":{l}"));
        return Err(RemoteError::HostKeyMismatch {
            node: node.to_string(),
            detail: format!(
                "{name} presented {} but {}{at} records {} (the host key CHANGED: a rebuilt machine \
                 or a man-in-the-middle; if expected, remove that line)",
                fingerprint(key),
                file.display(),
                fingerprint(same_type)
            ),
        });
    }
    if !known.is_empty() {
        let types: Vec<String> = known
            .iter()
            .map(|k| k.algorithm().as_str().to_string())
            .collect();
        return Err(RemoteError::HostKeyMismatch {
            node: node.to_string(),
            detail: format!(
                "{name} presented {} but {} records only other key types for it ({})",
                fingerprint(key),
                file.display(),
                types.join(", ")
            ),
        });
    }
    match policy.checking {
        HostKeyChecking::AcceptNew => {
            learn_known_hosts_path(host, port, key, file).map_err(|e| RemoteError::Other {
                node: node.to_string(),
                cause: format!("cannot add the host key to {}: {e}", file.display()),
            })?;
            tracing::info!(node, key = %fingerprint(key), file = %file.display(), "learned new host key");
            Ok(())
        }
        _ => Err(RemoteError::HostKeyMismatch {
            node: node.to_string(),
            detail: format!(
                "{name} presented {}, which is not in {} (host key checking is strict: add it, e.g. \
                 `ssh-keyscan -p {port} {host} >> {}`, or use accept-new)",
                fingerprint(key),
                file.display(),
                file.display()
            ),
        }),
    }
}
