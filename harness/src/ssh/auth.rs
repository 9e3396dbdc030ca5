//! Public-key authentication: the node's key file, then the ssh-agent, then default key files.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemesis::RemoteError;
use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{load_secret_key, PrivateKey, PrivateKeyWithHashAlg};

use super::{ClientHandler, ConnectError};
use crate::inventory::Node;

/// Tries, in order: the node's key file; every key the ssh-agent (`SSH_AUTH_SOCK`) holds; when the
/// node names no key file, `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`. The error lists what was tried.
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    node: &Node,
) -> Result<(), ConnectError> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(path) = &node.key {
        if try_key_file(handle, node, path, &mut tried).await? {
            return Ok(());
        }
    }
    if try_agent(handle, node, &mut tried).await? {
        return Ok(());
    }
    if node.key.is_none() {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if path.exists() && try_key_file(handle, node, &path, &mut tried).await? {
                return Ok(());
            }
        }
    }
    if tried.is_empty() {
        tried.push("no key file given and no ssh-agent".into());
    }
    Err(ConnectError::Remote(RemoteError::AuthRefused {
        node: node.name.clone(),
        user: node.user.clone(),
        detail: tried.join("; "),
    }))
}

async fn try_key_file(
    handle: &mut Handle<ClientHandler>,
    node: &Node,
    path: &Path,
    tried: &mut Vec<String>,
) -> Result<bool, ConnectError> {
    let key = match load_secret_key(path, None) {
        Ok(k) => k,
        Err(e) => {
            tried.push(format!("key {}: cannot load ({e})", path.display()));
            return Ok(false);
        }
    };
    let ok = try_private_key(handle, node, key).await?;
    if !ok {
        tried.push(format!("key {} refused", path.display()));
    }
    Ok(ok)
}

async fn try_private_key(
    handle: &mut Handle<ClientHandler>,
    node: &Node,
    key: PrivateKey,
) -> Result<bool, ConnectError> {
    let hash = if matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
        handle.best_supported_rsa_hash().await?.flatten()
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(
            node.user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await?;
    Ok(result.success())
}

async fn try_agent(
    handle: &mut Handle<ClientHandler>,
    node: &Node,
    tried: &mut Vec<String>,
) -> Result<bool, ConnectError> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Ok(false);
    }
    let mut agent = match AgentClient::connect_env().await {
        Ok(a) => a,
        Err(e) => {
            tried.push(format!("ssh-agent: cannot connect ({e})"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            tried.push(format!("ssh-agent: cannot list keys ({e})"));
            return Ok(false);
        }
    };
    let mut offered = 0;
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        offered += 1;
        let hash = if matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
            handle.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        match handle
            .authenticate_publickey_with(node.user.clone(), key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(true),
            Ok(_) => {}
            Err(e) => tried.push(format!("ssh-agent: signing failed ({e})")),
        }
    }
    tried.push(format!("ssh-agent: {offered} key(s) refused"));
    Ok(false)
}
