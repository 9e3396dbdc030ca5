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
        assert_eq!(w.script, r"sudo -n -u root -- sh -c 'echo '\''hi'\'' && id -un'");
        assert_eq!(w.stdin_prefix, None);
        let p = wrap_sudo("id -un", "admin", Some("postgres"), Some("s3cret"));
        assert_eq!(p.script, "sudo -k -S -p '' -u postgres -- sh -c 'id -un'");
        assert_eq!(p.stdin_prefix.as_deref(), Some(&b"s3cret\n"[..]));
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
