//! Import of `vagrant ssh-config` output (OpenSSH client config syntax) into an [`Inventory`].
//!
//! Understood keywords: `Host` (starts a node; its first pattern is the node's name), `HostName`,
//! `User`, `Port`, `IdentityFile` (the first one), `StrictHostKeyChecking`, `UserKnownHostsFile`
//! (the first file). Other keywords Vagrant prints (`IdentitiesOnly`, `LogLevel`,
//! `PasswordAuthentication`, ...) are ignored. Values from the file win over the login flags
//! (`--username`, ...), which only fill gaps; `--host-key-checking` and `--known-hosts`, being policy,
//! override the file. Vagrant prints `StrictHostKeyChecking no` with `UserKnownHostsFile /dev/null`
//! (its VMs get new host keys on every rebuild): that imports as host key checking `off`, as asked.
use std::path::Path;

use super::{resolve_path, HostKeyChecking, Inventory, InventoryError, Node, NodeDefaults};

/// Reads a saved `vagrant ssh-config` output.
pub fn from_file(path: &Path, flags: &NodeDefaults) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|cause| InventoryError::Read {
        file: path.display().to_string(),
        cause,
    })?;
    parse(&text, &path.display().to_string(), flags)
}

struct Block {
    line: usize,
    name: String,
    host: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    key: Option<String>,
    checking: Option<HostKeyChecking>,
    known_hosts: Option<String>,
}

/// Parses `vagrant ssh-config` output; `file` names it in errors.
pub fn parse(text: &str, file: &str, flags: &NodeDefaults) -> Result<Inventory, InventoryError> {
    let err = |line: usize, message: String| InventoryError::Invalid {
        file: file.to_string(),
        line,
        message,
    };
    let mut blocks: Vec<Block> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (keyword, value) = split_keyword(l);
        let value = unquote(value);
        if value.is_empty() {
            return Err(err(line, format!("`{keyword}` has no value")));
        }
        let kw = keyword.to_ascii_lowercase();
        if kw == "host" {
            let name = value.split_whitespace().next().unwrap_or("");
            if name.contains(['*', '?', '!']) {
                return Err(err(
                    line,
                    format!("`Host {value}`: patterns are not supported, name each VM"),
                ));
            }
            blocks.push(Block {
                line,
                name: name.to_string(),
                host: None,
                user: None,
                port: None,
                key: None,
                checking: None,
                known_hosts: None,
            });
            continue;
        }
        if kw == "match" {
            return Err(err(line, "`Match` blocks are not supported".into()));
        }
        let Some(b) = blocks.last_mut() else {
            return Err(err(
                line,
                format!("`{keyword}` before the first `Host` line"),
            ));
        };
        match kw.as_str() {
            "hostname" => b.host = Some(value.to_string()),
            "user" => b.user = Some(value.to_string()),
            "port" => {
                let port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        err(line, format!("`Port {value}`: not a port number (1-65535)"))
                    })?;
                b.port = Some(port);
            }
            "identityfile" => {
                b.key.get_or_insert_with(|| value.to_string());
            }
            "stricthostkeychecking" => {
                let mode = match value.to_ascii_lowercase().as_str() {
                    "yes" | "ask" => HostKeyChecking::Strict,
                    "accept-new" => HostKeyChecking::AcceptNew,
                    "no" | "off" => HostKeyChecking::Off,
                    other => {
                        return Err(err(
                            line,
                            format!("`StrictHostKeyChecking {other}`: expected yes, no, ask, accept-new or off"),
                        ))
                    }
                };
                b.checking = Some(mode);
            }
            "userknownhostsfile" => {
                let first = value.split_whitespace().next().unwrap_or(value);
                b.known_hosts = Some(first.to_string());
            }
            _ => {}
        }
    }
    if blocks.is_empty() {
        return Err(err(
            1,
            "no `Host` entries: is this the output of `vagrant ssh-config`?".into(),
        ));
    }
    let base = Path::new(".");
    let entries: Vec<(usize, Node)> = blocks
        .into_iter()
        .map(|b| {
            let node = Node {
                host: b.host.unwrap_or_else(|| b.name.clone()),
                name: b.name,
                port: b.port.or(flags.port).unwrap_or(22),
                user: b
                    .user
                    .or_else(|| flags.user.clone())
                    .unwrap_or_else(|| "root".into()),
                key: b
                    .key
                    .map(|k| resolve_path(&k, base))
                    .or_else(|| flags.key.clone()),
                sudo_password_env: None,
                known_hosts: flags
                    .known_hosts
                    .clone()
                    .or_else(|| b.known_hosts.map(|k| resolve_path(&k, base))),
                host_key_checking: flags.host_key_checking.or(b.checking).unwrap_or_default(),
            };
            (b.line, node)
        })
        .collect();
    super::check_unique(file, &entries)?;
    Ok(Inventory {
        nodes: entries.into_iter().map(|(_, n)| n).collect(),
    })
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_keyword(l: &str) -> (&str, &str) {
    let end = l
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(l.len());
    let (kw, rest) = l.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (kw, rest)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_forms() {
        assert_eq!(split_keyword("Port 22"), ("Port", "22"));
        assert_eq!(split_keyword("Port=22"), ("Port", "22"));
        assert_eq!(split_keyword("Port = 22"), ("Port", "22"));
        assert_eq!(unquote("\"/a b/key\""), "/a b/key");
    }
}
