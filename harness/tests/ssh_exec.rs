//! SshRemote against a real sshd on 127.0.0.1: commands, parallel channels, transfers, sudo,
//! timeouts. Needs root (prints SKIPPED otherwise).
mod ssh_support;

use std::sync::Arc;
use std::time::Duration;

use harness::inventory::Inventory;
use harness::ssh::{connect_all, shell, SshOptions, SshRemote};
use nemesis::{Command, Remote, RemoteError};
use rand::RngCore;
use ssh_support::{root_or_skip, TestSshd};

/// Live processes (zombies awaiting their reaper do not count) whose command line is `cmdline`.
fn running(cmdline: &str) -> usize {
    let wanted: Vec<u8> = cmdline
        .split(' ')
        .flat_map(|w| w.bytes().chain([0]))
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted))
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z')) | None)
        })
        .count()
}

async fn remote(sshd: &TestSshd) -> SshRemote {
    SshRemote::connect(sshd.node("n1"), &SshOptions::default())
        .await
        .expect("connect")
}

#[tokio::test]
async fn exec_passes_stdin_and_returns_stdout_stderr_and_status() {
    if !root_or_skip("exec_passes_stdin_and_returns_stdout_stderr_and_status") {
        return;
    }
    let sshd = TestSshd::start();
    let r = remote(&sshd).await;

    let out = r
        .exec(Command::new("tr a-z A-Z; echo oops >&2; exit 3").stdin("hello\n"))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"HELLO\n");
    assert_eq!(out.stderr, b"oops\n");
    assert_eq!(out.status, Some(3));

    // Without stdin the command sees end-of-file at once instead of hanging.
    let out = r.exec(Command::new("cat; echo done")).await.unwrap();
    assert_eq!(out.stdout_str(), "done\n");
    assert!(out.success());

    // `run` turns a non-zero exit into an error naming node and command.
    let err = r
        .run(Command::new("echo nope >&2; false"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            RemoteError::Failed {
                status: Some(1),
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("n1") && msg.contains("false") && msg.contains("nope"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_commands_run_in_parallel_over_one_connection() {
    if !root_or_skip("twenty_commands_run_in_parallel_over_one_connection") {
        return;
    }
    let sshd = TestSshd::start();
    let r = Arc::new(remote(&sshd).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                // sshd runs every channel's shell from the one process serving the connection:
                // one connection means one parent for all twenty.
                r.run(Command::new(format!("echo {i} $PPID")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut parents = std::collections::BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let line = t.await.unwrap();
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some(i.to_string().as_str()));
        parents.insert(words.next().unwrap().to_string());
    }
    assert_eq!(
        parents.len(),
        1,
        "commands were served by several connections: {parents:?}"
    );
}

#[tokio::test]
async fn upload_then_download_returns_identical_bytes() {
    if !root_or_skip("upload_then_download_returns_identical_bytes") {
        return;
    }
    let sshd = TestSshd::start();
    let r = remote(&sshd).await;
    let mut bytes = vec![0u8; 1 << 20];
    rand::rng().fill_bytes(&mut bytes);
    let path = format!("{}/deep/er/blob.bin", sshd.dir.display());
    r.upload(&bytes, &path, 0o640).await.unwrap();
    let back = r.download(&path).await.unwrap();
    assert!(
        back == bytes,
        "downloaded {} bytes differ from the uploaded {}",
        back.len(),
        bytes.len()
    );
    let mode = r
        .run(Command::new(format!("stat -c %a {path}")))
        .await
        .unwrap();
    assert_eq!(mode.trim(), "640");
    // No temporary file is left next to the target.
    let listing = r
        .run(Command::new(format!("ls {}/deep/er", sshd.dir.display())))
        .await
        .unwrap();
    assert_eq!(listing.trim(), "blob.bin");

    let err = r
        .download("/nonexistent/file")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("n1") && err.contains("/nonexistent/file") && err.contains("No such file"),
        "{err}"
    );
}

#[tokio::test]
async fn sudo_runs_as_another_user() {
    if !root_or_skip("sudo_runs_as_another_user") {
        return;
    }
    let sshd = TestSshd::start();
    let r = remote(&sshd).await;
    // Root asking for root runs the command directly (no sudo needed on the node).
    let me = r.run(Command::new("id -un").sudo("root")).await.unwrap();
    assert_eq!(me.trim(), "root");
    // The wrapper for another user, as sent to the node.
    let wrapped = shell::wrap_sudo("id -un", "root", Some("nobody"), None);
    assert_eq!(wrapped.script, "sudo -n -u nobody -- sh -c 'id -un'");
    let has_sudo = r
        .exec(Command::new("command -v sudo"))
        .await
        .unwrap()
        .success();
    if !has_sudo {
        eprintln!("SKIPPED (live part): `sudo` is not installed here; only the command construction was checked");
        return;
    }
    let other = r.run(Command::new("id -un").sudo("nobody")).await.unwrap();
    assert_eq!(other.trim(), "nobody");
}

#[tokio::test]
async fn a_command_that_outlives_its_timeout_reports_timeout_and_frees_the_channel() {
    if !root_or_skip("a_command_that_outlives_its_timeout_reports_timeout_and_frees_the_channel") {
        return;
    }
    let sshd = TestSshd::start();
    let opts = SshOptions {
        max_channels: 1,
        ..SshOptions::default()
    };
    let r = SshRemote::connect(sshd.node("n1"), &opts).await.unwrap();
    // A unique argument, to find the process afterwards.
    let sleep = format!("sleep 600.{}", std::process::id());
    let err = r
        .exec(Command::new(&sleep).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert_eq!(msg, format!("n1: `{sleep}` timed out after 300ms"));
    // The command was killed, not left running (the server is this machine: look in /proc).
    // SIGKILL takes effect when the process is next scheduled: wait for that, but far less
    // than the 600 s the sleep would take by itself.
    let mut waited = 0;
    while running(&sleep) > 0 && waited < 600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(running(&sleep), 0, "`{sleep}` still runs after its timeout");
    // With a single channel slot, this only runs if the timed-out channel was released.
    assert_eq!(r.run(Command::new("echo after")).await.unwrap(), "after\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_all_reaches_every_node_of_an_inventory() {
    if !root_or_skip("connect_all_reaches_every_node_of_an_inventory") {
        return;
    }
    let servers: Vec<TestSshd> = (0..3).map(|_| TestSshd::start()).collect();
    let inventory = Inventory {
        nodes: servers
            .iter()
            .enumerate()
            .map(|(i, s)| s.node(&format!("n{}", i + 1)))
            .collect(),
    };
    let remotes = connect_all(&inventory, &SshOptions::default())
        .await
        .unwrap();
    let names: Vec<&str> = remotes.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    for (r, s) in remotes.iter().zip(&servers) {
        // Each remote talks to its own server: the server's port shows up in SSH_CONNECTION.
        let conn = r.run(Command::new("echo $SSH_CONNECTION")).await.unwrap();
        assert_eq!(
            conn.split_whitespace().nth(3),
            Some(s.port.to_string().as_str())
        );
    }
}

#[tokio::test]
async fn jepsen_flags_and_yaml_inventories_reach_a_live_node() {
    if !root_or_skip("jepsen_flags_and_yaml_inventories_reach_a_live_node") {
        return;
    }
    let sshd = TestSshd::start();
    let from_flags = harness::inventory::InventoryArgs {
        nodes: vec![format!("127.0.0.1:{}", sshd.port)],
        ssh_private_key: Some(sshd.client_key.clone()),
        known_hosts: Some(sshd.known_hosts.clone()),
        ..Default::default()
    }
    .to_inventory()
    .unwrap();
    let yaml = sshd.dir.join("inventory.yaml");
    std::fs::write(
        &yaml,
        format!(
            "key: id_ed25519\nknown_hosts: known_hosts\nnodes:\n  - name: n1\n    host: 127.0.0.1\n    port: {}\n",
            sshd.port
        ),
    )
    .unwrap();
    let from_yaml =
        Inventory::from_yaml_file(&yaml, &harness::inventory::NodeDefaults::default()).unwrap();
    for inventory in [from_flags, from_yaml] {
        let remotes = connect_all(&inventory, &SshOptions::default())
            .await
            .unwrap();
        assert_eq!(
            remotes[0].run(Command::new("echo up")).await.unwrap(),
            "up\n"
        );
    }
}

#[tokio::test]
async fn dropping_a_remote_closes_its_connection() {
    if !root_or_skip("dropping_a_remote_closes_its_connection") {
        return;
    }
    let sshd = TestSshd::start();
    let r = remote(&sshd).await;
    // The sshd process that serves this connection (the parent of every command's shell).
    let pid = r
        .run(Command::new("echo $PPID"))
        .await
        .unwrap()
        .trim()
        .to_string();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    drop(r);
    // sshd exits once it sees the connection close; wait for that (bounded).
    let mut waited = 0;
    while proc_dir.exists() && waited < 600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        !proc_dir.exists(),
        "sshd process {pid} still serves a dropped remote"
    );
}
