//! Import of `vagrant ssh-config` output (a recorded 5-VM vagrant-libvirt cluster).
use std::path::{Path, PathBuf};

use harness::inventory::{vagrant, HostKeyChecking, Node, NodeDefaults};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vagrant-ssh-config.txt")
}

#[test]
fn five_libvirt_vms_import_as_five_nodes() {
    let inv = vagrant::from_file(&fixture(), &NodeDefaults::default()).unwrap();
    let hosts = [
        "192.168.121.23",
        "192.168.121.171",
        "192.168.121.58",
        "192.168.121.212",
        "192.168.121.96",
    ];
    let expected: Vec<Node> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| Node {
            name: format!("n{}", i + 1),
            host: host.to_string(),
            port: 22,
            user: "vagrant".into(),
            key: Some(
                format!(
                    "/home/alice/src/faultline-lab/.vagrant/machines/n{}/libvirt/private_key",
                    i + 1
                )
                .into(),
            ),
            sudo_password_env: None,
            known_hosts: Some("/dev/null".into()),
            // Vagrant asks for no checking (`StrictHostKeyChecking no`): imported as asked.
            host_key_checking: HostKeyChecking::Off,
        })
        .collect();
    assert_eq!(inv.nodes, expected);
}

#[test]
fn policy_flags_override_the_file_and_login_flags_only_fill_gaps() {
    let flags = NodeDefaults {
        user: Some("root".into()),
        host_key_checking: Some(HostKeyChecking::AcceptNew),
        known_hosts: Some("/var/lib/faultline/known_hosts".into()),
        ..NodeDefaults::default()
    };
    let inv = vagrant::from_file(&fixture(), &flags).unwrap();
    let n = &inv.nodes[0];
    assert_eq!(n.user, "vagrant");
    assert_eq!(n.host_key_checking, HostKeyChecking::AcceptNew);
    assert_eq!(n.known_hosts, Some("/var/lib/faultline/known_hosts".into()));
}

#[test]
fn other_ssh_config_forms_are_understood() {
    let text = "# saved by hand\nHost db1 db1.lab\n  HostName=10.1.0.5\n  Port = 2222\n  IdentityFile \"/keys/my key\"\n  IdentityFile /keys/second\n  StrictHostKeyChecking accept-new\n\nHost db2\n  User admin\n";
    let inv = vagrant::parse(text, "cfg", &NodeDefaults::default()).unwrap();
    let n = &inv.nodes[0];
    assert_eq!(
        (n.name.as_str(), n.host.as_str(), n.port),
        ("db1", "10.1.0.5", 2222)
    );
    assert_eq!(n.key, Some("/keys/my key".into()));
    assert_eq!(n.host_key_checking, HostKeyChecking::AcceptNew);
    // Without HostName, ssh connects to the alias itself.
    let n2 = &inv.nodes[1];
    assert_eq!(
        (n2.host.as_str(), n2.user.as_str(), n2.port),
        ("db2", "admin", 22)
    );
    assert_eq!(n2.host_key_checking, HostKeyChecking::Strict);
}

#[test]
fn mistakes_are_reported_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "  HostName 10.0.0.1\nHost n1\n",
            "cfg:1: `HostName` before the first `Host` line",
        ),
        (
            "Host n1\n  HostName 10.0.0.1\n  Port twenty-two\n",
            "cfg:3: `Port twenty-two`: not a port number (1-65535)",
        ),
        (
            "Host n1\n  Port 0\n",
            "cfg:2: `Port 0`: not a port number (1-65535)",
        ),
        ("Host n1\n  User\n", "cfg:2: `User` has no value"),
        (
            "Host n1\n  StrictHostKeyChecking maybe\n",
            "cfg:2: `StrictHostKeyChecking maybe`: expected yes, no, ask, accept-new or off",
        ),
        (
            "Host *\n  User vagrant\n",
            "cfg:1: `Host *`: patterns are not supported, name each VM",
        ),
        (
            "Host n1\nMatch host n2\n",
            "cfg:2: `Match` blocks are not supported",
        ),
        (
            "Host n1\n  HostName a\n\nHost n1\n  HostName b\n",
            "cfg:4: duplicate node name `n1` (first at line 1)",
        ),
        (
            "# nothing here\n\n",
            "cfg:1: no `Host` entries: is this the output of `vagrant ssh-config`?",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = vagrant::parse(text, "cfg", &NodeDefaults::default())
                .unwrap_err()
                .to_string();
            (got != *expected)
                .then(|| format!("input:\n{text}expected: {expected}\n     got: {got}\n"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
