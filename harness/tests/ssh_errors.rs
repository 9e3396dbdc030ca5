//! SshRemote failure modes against a real sshd on 127.0.0.1: each error names the node and the
//! cause. Needs root (prints SKIPPED otherwise).
mod ssh_support;

use std::time::Duration;

use harness::inventory::HostKeyChecking;
use harness::ssh::{SshOptions, SshRemote};
use nemesis::{Command, Remote, RemoteError};
use ssh_support::{keygen, public_key, root_or_skip, temp_dir, TestSshd};

/// Options that do not wait long for things that are known to fail.
fn quick() -> SshOptions {
    SshOptions {
        backoff: Duration::from_millis(10),
        ..SshOptions::default()
    }
}

async fn connect_err(node: harness::inventory::Node) -> RemoteError {
    SshRemote::connect(node, &quick())
        .await
        .expect_err("connect must fail")
}

/// A known_hosts file that records another ed25519 key for the server's address.
fn impostor_known_hosts(sshd: &TestSshd) -> std::path::PathBuf {
    let other = sshd.dir.join("impostor");
    keygen(&other);
    let file = sshd.dir.join("known_hosts_changed");
    std::fs::write(
        &file,
        format!(
            "# recorded earlier\n[127.0.0.1]:{} {}\n",
            sshd.port,
            public_key(&other)
        ),
    )
    .unwrap();
    file
}

#[tokio::test]
async fn a_key_the_server_does_not_accept_is_refused_by_name() {
    if !root_or_skip("a_key_the_server_does_not_accept_is_refused_by_name") {
        return;
    }
    let sshd = TestSshd::start();
    let wrong = sshd.dir.join("wrong_key");
    keygen(&wrong);
    let mut node = sshd.node("n1");
    node.key = Some(wrong.clone());
    let err = connect_err(node).await;
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RemoteError::AuthRefused { .. }), "{msg}");
    assert!(
        msg.starts_with("n1: authentication refused for user root"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("key {} refused", wrong.display())),
        "{msg}"
    );

    let mut node = sshd.node("n1");
    node.key = Some(sshd.dir.join("missing_key"));
    let msg = connect_err(node).await.to_string();
    eprintln!("error as shown: {msg}");
    assert!(msg.contains("missing_key: cannot load"), "{msg}");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_in_strict_and_accept_new_modes() {
    if !root_or_skip("a_changed_host_key_is_refused_in_strict_and_accept_new_modes") {
        return;
    }
    let sshd = TestSshd::start();
    let changed = impostor_known_hosts(&sshd);
    for mode in [HostKeyChecking::Strict, HostKeyChecking::AcceptNew] {
        let mut node = sshd.node("n1");
        node.known_hosts = Some(changed.clone());
        node.host_key_checking = mode;
        let err = connect_err(node).await;
        let msg = err.to_string();
        eprintln!("error as shown: {msg}");
        assert!(
            matches!(err, RemoteError::HostKeyMismatch { .. }),
            "{mode}: {msg}"
        );
        assert!(msg.starts_with("n1: host key mismatch"), "{msg}");
        assert!(msg.contains("CHANGED"), "{msg}");
        // The recorded key is on line 2 (after the comment).
        assert!(msg.contains(&format!("{}:2", changed.display())), "{msg}");
    }
    // accept-new must not have added the new key next to the old one.
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap().lines().count(),
        2
    );

    // `off` connects anyway (only when asked for).
    let mut node = sshd.node("n1");
    node.known_hosts = Some(changed);
    node.host_key_checking = HostKeyChecking::Off;
    let r = SshRemote::connect(node, &quick()).await.unwrap();
    assert_eq!(r.run(Command::new("echo ok")).await.unwrap(), "ok\n");
}

#[tokio::test]
async fn an_unknown_host_key_fails_strict_and_is_learned_by_accept_new() {
    if !root_or_skip("an_unknown_host_key_fails_strict_and_is_learned_by_accept_new") {
        return;
    }
    let sshd = TestSshd::start();
    let fresh = sshd.dir.join("sub/known_hosts_new");
    let mut node = sshd.node("n1");
    node.known_hosts = Some(fresh.clone());

    let msg = connect_err(node.clone()).await.to_string();
    eprintln!("error as shown: {msg}");
    assert!(msg.contains("is not in") && msg.contains("strict"), "{msg}");

    node.host_key_checking = HostKeyChecking::AcceptNew;
    SshRemote::connect(node.clone(), &quick()).await.unwrap();
    let learned = std::fs::read_to_string(&fresh).unwrap();
    assert_eq!(
        learned.trim(),
        format!(
            "[127.0.0.1]:{} {}",
            sshd.port,
            public_key(&sshd.dir.join("host_ed25519"))
        )
    );
    // Now known: strict checking accepts it.
    node.host_key_checking = HostKeyChecking::Strict;
    SshRemote::connect(node, &quick()).await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_unreachable_after_retries() {
    if !root_or_skip("a_closed_port_is_unreachable_after_retries") {
        return;
    }
    let sshd = TestSshd::start();
    let mut node = sshd.node("n9");
    // A port nobody listens on: bind one, note it, release it.
    node.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = connect_err(node.clone()).await;
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RemoteError::Unreachable { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("n9: unreachable at 127.0.0.1:{}", node.port)),
        "{msg}"
    );
    assert!(
        msg.contains("refused") && msg.contains("after 4 attempts"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_reestablished_but_a_sent_command_is_not_rerun() {
    if !root_or_skip("a_dropped_connection_is_reestablished_but_a_sent_command_is_not_rerun") {
        return;
    }
    let sshd = TestSshd::start();
    let r = SshRemote::connect(sshd.node("n1"), &quick()).await.unwrap();
    let marker = temp_dir("marker").join("ran");
    // Kills the sshd process that serves this connection, from inside the command: the command
    // was sent, so exec must not run it again.
    let script = format!("echo x >> {}; kill -9 $PPID; sleep 5", marker.display());
    let err = r.exec(Command::new(script)).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RemoteError::Channel { .. }), "{msg}");
    assert!(msg.contains("not re-run"), "{msg}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");

    // The next command finds the connection dead before sending anything: reconnect and run.
    assert_eq!(r.run(Command::new("echo back")).await.unwrap(), "back\n");

    // An idempotent command is re-run once after the connection drops under it.
    let flag = marker.with_file_name("killed-once");
    let script = format!(
        "if [ ! -e {f} ]; then touch {f}; kill -9 $PPID; sleep 5; fi; echo second run",
        f = flag.display()
    );
    let out = r.exec_idempotent(Command::new(script)).await.unwrap();
    assert_eq!(out.stdout_str(), "second run\n");
    let _ = std::fs::remove_dir_all(marker.parent().unwrap());
}

#[tokio::test]
async fn a_missing_sudo_password_variable_is_named() {
    if !root_or_skip("a_missing_sudo_password_variable_is_named") {
        return;
    }
    let sshd = TestSshd::start();
    let mut node = sshd.node("n1");
    node.sudo_password_env = Some("FAULTLINE_TEST_UNSET_SUDO_PW".into());
    let msg = connect_err(node).await.to_string();
    eprintln!("error as shown: {msg}");
    assert_eq!(
        msg,
        "n1: sudo_password_env names $FAULTLINE_TEST_UNSET_SUDO_PW, which is not set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_all_lists_every_node_it_could_not_reach() {
    if !root_or_skip("connect_all_lists_every_node_it_could_not_reach") {
        return;
    }
    let up = TestSshd::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut n2 = up.node("n2");
    n2.port = closed;
    let mut n3 = up.node("n3");
    n3.key = Some(up.dir.join("no_such_key"));
    let inventory = harness::inventory::Inventory {
        nodes: vec![up.node("n1"), n2, n3],
    };
    let err = harness::ssh::connect_all(&inventory, &quick())
        .await
        .unwrap_err();
    let names: Vec<&str> = err.errors.iter().map(|e| e.node()).collect();
    assert_eq!(names, ["n2", "n3"]);
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(
        msg.starts_with("cannot connect to 2 of 3 nodes: n2: unreachable at 127.0.0.1:"),
        "{msg}"
    );
    assert!(
        msg.contains("; n3: authentication refused for user root"),
        "{msg}"
    );
}

#[tokio::test]
async fn hashed_known_hosts_entries_still_pin_the_key() {
    if !root_or_skip("hashed_known_hosts_entries_still_pin_the_key") {
        return;
    }
    let sshd = TestSshd::start();
    // `ssh-keygen -H` replaces host names by salted hashes (HashKnownHosts yes).
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&sshd.known_hosts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashed = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    SshRemote::connect(sshd.node("n1"), &quick()).await.unwrap();

    let changed = impostor_known_hosts(&sshd);
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&changed)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut node = sshd.node("n1");
    node.known_hosts = Some(changed);
    let err = connect_err(node).await;
    assert!(matches!(err, RemoteError::HostKeyMismatch { .. }), "{err}");
}

#[tokio::test]
async fn keepalives_detect_a_connection_whose_server_stopped_answering() {
    if !root_or_skip("keepalives_detect_a_connection_whose_server_stopped_answering") {
        return;
    }
    let sshd = TestSshd::start();
    let opts = SshOptions {
        keepalive_interval: Duration::from_millis(200),
        keepalive_max: 2,
        ..quick()
    };
    let r = SshRemote::connect(sshd.node("n1"), &opts).await.unwrap();
    let pid_file = sshd.dir.join("frozen.pid");
    // Freeze the sshd process serving this connection (as a paused or partitioned node would
    // look): nothing answers, nothing closes. The command's own limit is far away.
    let script = format!("echo $PPID > {}; kill -STOP $PPID", pid_file.display());
    let err = r
        .exec(Command::new(script).timeout(Duration::from_secs(120)))
        .await
        .unwrap_err();
    let frozen = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    // Clean up the frozen process by its pid.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &frozen])
        .status();
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RemoteError::Channel { .. }), "{msg}");
    assert!(msg.contains("connection lost"), "{msg}");
    // The next command gets a fresh connection.
    assert_eq!(r.run(Command::new("echo fresh")).await.unwrap(), "fresh\n");
}
