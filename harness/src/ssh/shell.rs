//! The shell text sent to nodes: quoting, sudo wrapping, file transfer commands. Pure functions.

/// Quotes `s` as one POSIX shell word.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// How a command reaches `sudo_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// Text for the exec request.
    pub script: String,
    /// Bytes to send before the command's own stdin (the sudo password line), if any.
    pub stdin_prefix: Option<Vec<u8>>,
}

/// Wraps `script` so that it runs as `sudo_user`.
///
/// No wrapping when there is no sudo user or it is the login user (root logging in as root).
/// Otherwise `sudo -n -u USER -- sh -c 'SCRIPT'` (`-n`: fail at once instead of prompting), or,
/// with a password, `sudo -k -S -p '' ...` and the password as the first stdin line: `-k` makes sudo
/// ask (and so consume that line) even when it has cached credentials, so the line never reaches
/// the command.
pub fn wrap_sudo(
    script: &str,
    login_user: &str,
    sudo_user: Option<&str>,
    password: Option<&str>,
) -> Wrapped {
    let Some(user) = sudo_user.filter(|u| *u != login_user) else {
        return Wrapped {
            script: script.to_string(),
            stdin_prefix: None,
        };
    };
    let inner = format!("-u {} -- sh -c {}", quote(user), quote(script));
    match password {
        None => Wrapped {
            script: format!("sudo -n {inner}"),
            stdin_prefix: None,
        },
        Some(pw) => Wrapped {
            script: format!("sudo -k -S -p '' {inner}"),
            stdin_prefix: Some(format!("{pw}\n").into_bytes()),
        },
    }
}

/// Writes stdin to `path` atomically: into a temporary file next to it (parents created), then
/// chmod and rename. A reader never sees a half-written file, and replacing a running binary
/// works (no "Text file busy").
pub fn upload_script(path: &str, mode: u32) -> String {
    let dir = match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    };
    let p = quote(path);
    let tmp = format!("{p}.faultline-upload.$$");
    format!(
        "mkdir -p {dir} && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {p} || {{ rc=$?; rm -f {tmp}; exit $rc; }}",
        dir = quote(dir)
    )
}

/// Prints the file at `path`.
pub fn download_script(path: &str) -> String {
    format!("cat -- {}", quote(path))
}

const GROUP_MARKER: &[u8] = b"faultline-pgid ";

/// Makes the command report its process group first, on stderr, so that it can be killed if it
/// outlives its time limit. sshd starts each command in a new session, so the login shell's
/// pid (`$$`) is the group of everything the command starts.
pub fn report_process_group(script: &str) -> String {
    format!("echo faultline-pgid $$ >&2\n{script}")
}

/// Splits the group report off the start of stderr. `None`: the first line is not complete yet.
/// `Some((group, rest))`: the group (if the line was the report) and the stderr bytes to keep.
pub fn split_group_line(head: &[u8]) -> Option<(Option<u32>, &[u8])> {
    let n = head.len().min(GROUP_MARKER.len());
    if head[..n] != GROUP_MARKER[..n] {
        return Some((None, head));
    }
    let end = head.iter().position(|b| *b == b'\n')?;
    let group = std::str::from_utf8(&head[GROUP_MARKER.len().min(end)..end])
        .ok()
        .and_then(|t| t.trim().parse().ok());
    match group {
        Some(g) => Some((Some(g), &head[end + 1..])),
        None => Some((None, head)),
    }
}

/// Kills process group `group` (as the login user, or through sudo if that is not allowed).
pub fn kill_group_script(group: u32) -> String {
    format!(
        "kill -KILL -- -{group} 2>/dev/null || sudo -n kill -KILL -- -{group} 2>/dev/null; true"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc/def-1.txt"), "abc/def-1.txt");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn sudo_wrapping() {
        let plain = wrap_sudo("id -un", "root", Some("root"), None);
        assert_eq!(plain.script, "id -un");
        let none = wrap_sudo("id -un", "admin", None, None);
        assert_eq!(none.script, "id -un");
        let w = wrap_sudo("echo 'hi' && id -un", "admin", Some("root"), None);
        assert_eq!(
            w.script,
            r"sudo -n -u root -- sh -c 'echo '\''hi'\'' && id -un'"
        );
        assert_eq!(w.stdin_prefix, None);
        let p = wrap_sudo("id -un", "admin", Some("postgres"), Some("s3cret"));
        assert_eq!(p.script, "sudo -k -S -p '' -u postgres -- sh -c 'id -un'");
        assert_eq!(p.stdin_prefix.as_deref(), Some(&b"s3cret\n"[..]));
    }

    #[test]
    fn process_group_report() {
        assert_eq!(report_process_group("id"), "echo faultline-pgid $$ >&2\nid");
        assert_eq!(
            split_group_line(b"faultline-pgid 42\nwarn\n"),
            Some((Some(42), &b"warn\n"[..]))
        );
        assert_eq!(split_group_line(b"faultline-pg"), None);
        assert_eq!(split_group_line(b"faultline-pgid 4"), None);
        assert_eq!(split_group_line(b"other\n"), Some((None, &b"other\n"[..])));
        assert_eq!(
            split_group_line(b"faultline-pgid x\n"),
            Some((None, &b"faultline-pgid x\n"[..]))
        );
        assert_eq!(split_group_line(b""), None);
    }

    #[test]
    fn transfer_scripts() {
        assert_eq!(
            upload_script("/opt/db/bin/server", 0o755),
            "mkdir -p /opt/db/bin && cat > /opt/db/bin/server.faultline-upload.$$ && chmod 755 \
             /opt/db/bin/server.faultline-upload.$$ && mv -f /opt/db/bin/server.faultline-upload.$$ \
             /opt/db/bin/server || { rc=$?; rm -f /opt/db/bin/server.faultline-upload.$$; exit $rc; }"
        );
        assert!(upload_script("/x", 0o644).starts_with("mkdir -p / &&"));
        assert!(upload_script("rel", 0o644).starts_with("mkdir -p . &&"));
        assert_eq!(download_script("/tmp/a b"), "cat -- '/tmp/a b'");
    }
}
