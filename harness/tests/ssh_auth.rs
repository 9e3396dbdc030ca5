//! Authentication paths against a real sshd: RSA key files and the ssh-agent. Needs root.
//!
//! One test in this file on purpose: it sets `SSH_AUTH_SOCK`, which is process-wide, so it must
//! not share a process with other tests.
mod ssh_support;

use std::process::Command as Process;

use harness::ssh::{SshOptions, SshRemote};
use nemesis::{Command, Remote};
use ssh_support::{keygen, root_or_skip, TestSshd};

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn rsa_key_files_and_agent_keys_authenticate() {
    if !root_or_skip("rsa_key_files_and_agent_keys_authenticate") {
        return;
    }
    let sshd = TestSshd::start();
    let opts = SshOptions::default();

    // An RSA key (signed with rsa-sha2-*, which OpenSSH 9 requires).
    let rsa = sshd.dir.join("id_rsa");
    let out = Process::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut authorized = std::fs::read_to_string(sshd.dir.join("authorized_keys")).unwrap();
    authorized.push_str(&std::fs::read_to_string(rsa.with_extension("pub")).unwrap());
    std::fs::write(sshd.dir.join("authorized_keys"), authorized).unwrap();
    let mut node = sshd.node("n1");
    node.key = Some(rsa);
    let r = SshRemote::connect(node, &opts).await.unwrap();
    assert_eq!(r.run(Command::new("echo rsa")).await.unwrap(), "rsa\n");

    // An ssh-agent holding the authorised ed25519 key; the node's own key file is wrong, so only
    // the agent can log in ("the agent when no key file works").
    let Ok(child) = Process::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(sshd.dir.join("agent.sock"))
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("SKIPPED (agent part): ssh-agent is not installed");
        return;
    };
    let _agent = Agent(child);
    let sock = sshd.dir.join("agent.sock");
    for _ in 0..500 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let added = Process::new("ssh-add")
        .arg(&sshd.client_key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // Process-wide, hence one test in this file (see the file docs).
    std::env::set_var("SSH_AUTH_SOCK", &sock);
    let wrong = sshd.dir.join("wrong_key");
    keygen(&wrong);
    let mut node = sshd.node("n1");
    node.key = Some(wrong);
    let r = SshRemote::connect(node, &opts).await.unwrap();
    assert_eq!(r.run(Command::new("echo agent")).await.unwrap(), "agent\n");

    // With no usable key anywhere, the error lists what was tried, agent included.
    let empty = Process::new("ssh-add")
        .arg("-D")
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(empty.status.success());
    let mut node = sshd.node("n1");
    node.key = Some(sshd.dir.join("wrong_key"));
    let msg = SshRemote::connect(node, &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("wrong_key refused") && msg.contains("ssh-agent: 0 key(s) refused"),
        "{msg}"
    );
}
