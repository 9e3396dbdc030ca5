//! YAML inventories and Jepsen-style node flags: what they produce, and the file:line of each
//! mistake.
use std::path::{Path, PathBuf};

use clap::Parser;
use harness::inventory::{HostKeyChecking, Inventory, InventoryArgs, Node, NodeDefaults};

/// The flags as the `faultline` binary embeds them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    inventory: InventoryArgs,
}

fn try_args(argv: &[&str]) -> Result<InventoryArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("faultline").chain(argv.iter().copied()))
        .map(|c| c.inventory)
}

fn args(argv: &[&str]) -> InventoryArgs {
    try_args(argv).expect("valid flags")
}

fn parse(text: &str) -> Result<Inventory, String> {
    Inventory::from_yaml_str(
        text,
        "inv.yaml",
        Path::new("/etc/faultline"),
        &NodeDefaults::default(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_full_inventory_applies_defaults_and_per_node_values() {
    let inv = parse(
        "user: admin\nkey: keys/id_ed25519\nport: 2200\nknown_hosts: /var/lib/faultline/known_hosts\n\
         host_key_checking: accept-new\nnodes:\n  - name: n1\n    host: 10.0.0.1\n  - name: n2\n    \
         host: 10.0.0.2\n    port: 22\n    user: root\n    key: /root/.ssh/other\n    \
         sudo_password_env: N2_PW\n  - host: 10.0.0.3\n",
    )
    .unwrap();
    let kh = Some(PathBuf::from("/var/lib/faultline/known_hosts"));
    assert_eq!(
        inv.nodes,
        vec![
            Node {
                name: "n1".into(),
                host: "10.0.0.1".into(),
                port: 2200,
                user: "admin".into(),
                key: Some("/etc/faultline/keys/id_ed25519".into()),
                sudo_password_env: None,
                known_hosts: kh.clone(),
                host_key_checking: HostKeyChecking::AcceptNew,
            },
            Node {
                name: "n2".into(),
                host: "10.0.0.2".into(),
                port: 22,
                user: "root".into(),
                key: Some("/root/.ssh/other".into()),
                sudo_password_env: Some("N2_PW".into()),
                known_hosts: kh.clone(),
                host_key_checking: HostKeyChecking::AcceptNew,
            },
            Node {
                name: "10.0.0.3".into(),
                host: "10.0.0.3".into(),
                port: 2200,
                user: "admin".into(),
                key: Some("/etc/faultline/keys/id_ed25519".into()),
                sudo_password_env: None,
                known_hosts: kh,
                host_key_checking: HostKeyChecking::AcceptNew,
            },
        ]
    );
}

#[test]
fn a_minimal_inventory_logs_in_as_root_on_port_22_with_strict_checking() {
    let inv = parse("nodes:\n- {name: a, host: a.example}\n").unwrap();
    let n = &inv.nodes[0];
    assert_eq!(
        (n.user.as_str(), n.port, n.key.as_ref()),
        ("root", 22, None)
    );
    assert_eq!(n.host_key_checking, HostKeyChecking::Strict);
    assert_eq!(n.known_hosts, None);
}

/// Each mistake and the one-line error it must produce.
#[test]
fn mistakes_are_reported_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        // Syntax: a second colon in a plain value.
        ("nodes:\n  - name: n1\n    host: a: b\n", "inv.yaml:3:12: mapping values are not allowed in this context"),
        // A key indented less than its siblings ends the node's mapping: the node has no host.
        ("nodes:\n  - name: n1\n   host: a\n", "inv.yaml:2:5: nodes[0]: missing field `host`"),
        // A list where a string belongs.
        ("nodes:\n  - name: n1\n    host: [a, b]\n", "inv.yaml:3:11: nodes[0].host: invalid type: sequence, expected a string"),
        // A misspelt field.
        (
            "nodes:\n  - name: n1\n    hots: 10.0.0.1\n",
            "inv.yaml:3:5: nodes[0]: unknown field `hots`, expected one of `name`, `host`, `port`, `user`, `key`, `sudo_password_env`",
        ),
        // A missing host.
        ("nodes:\n  - name: n1\n    port: 22\n", "inv.yaml:2:5: nodes[0]: missing field `host`"),
        // A port out of range.
        (
            "nodes:\n  - name: n1\n    host: a\n  - name: n2\n    host: b\n    port: 70000\n",
            "inv.yaml:6:11: nodes[1].port: invalid value: integer `70000`, expected u16",
        ),
        // A bad checking mode.
        (
            "host_key_checking: maybe\nnodes:\n  - host: a\n",
            "inv.yaml:1:20: host_key_checking: unknown variant `maybe`, expected one of `strict`, `accept-new`, `off`",
        ),
        // Validation errors point at the node's line.
        (
            "# cluster\nnodes:\n  - name: n1\n    host: 10.0.0.1\n  - name: n1\n    host: 10.0.0.2\n",
            "inv.yaml:5: duplicate node name `n1` (first at line 3)",
        ),
        ("nodes:\n  - name: n1\n    host: a\n  - name: n2\n    host: \"\"\n", "inv.yaml:4: node has an empty `host`"),
        (
            "nodes:\n  - name: n1\n    host: a\n\n  - name: n2\n    host: b\n    port: 0\n",
            "inv.yaml:5: node b: port 0 is not a valid SSH port",
        ),
        ("user: root\nport: 0\nnodes:\n  - host: a\n", "inv.yaml:2: port 0 is not a valid SSH port"),
        ("user: root\nnodes: []\n", "inv.yaml:2: `nodes` is empty: list at least one node"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = parse(text).expect_err(text);
            (got != *expected)
                .then(|| format!("input:\n{text}expected: {expected}\n     got: {got}\n"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_inventory_file_is_read_and_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("faultline-inv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, "key: id_test\nnodes:\n  - name: n1\n    host: h1\n").unwrap();
    let flags = args(&["--inventory", file.to_str().unwrap(), "--username", "ops"]);
    let inv = flags.to_inventory().unwrap();
    assert_eq!(inv.nodes[0].key, Some(dir.join("id_test")));
    assert_eq!(inv.nodes[0].user, "ops");

    std::fs::write(&file, "nodes:\n  - name: n1\n    host: h1\n    sudo: yes\n").unwrap();
    let err = flags.to_inventory().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:4:5: ", file.display())),
        "{err}"
    );

    let missing = args(&["--inventory", "/nonexistent/inv.yaml"]);
    let err = missing.to_inventory().unwrap_err().to_string();
    assert!(
        err.starts_with("/nonexistent/inv.yaml: cannot read: No such file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jepsen_node_flags_build_an_inventory() {
    let flags = args(&[
        "--nodes",
        "n1,n2,10.0.0.3:2222",
        "--username",
        "admin",
        "--ssh-private-key",
        "/keys/id_rsa",
        "--ssh-port",
        "2200",
    ]);
    let inv = flags.to_inventory().unwrap();
    let summary: Vec<(String, String, u16, String)> = inv
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.host.clone(), n.port, n.user.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("n1".into(), "n1".into(), 2200, "admin".into()),
            ("n2".into(), "n2".into(), 2200, "admin".into()),
            (
                "10.0.0.3:2222".into(),
                "10.0.0.3".into(),
                2222,
                "admin".into()
            ),
        ]
    );
    assert!(inv
        .nodes
        .iter()
        .all(|n| n.key == Some("/keys/id_rsa".into())));

    let dup = args(&["--nodes", "n1,n2,n1"]);
    assert_eq!(
        dup.to_inventory().unwrap_err().to_string(),
        "--nodes: duplicate node name `n1`"
    );
    let bad = args(&["--nodes", "n1,n2:ssh"]);
    assert_eq!(
        bad.to_inventory().unwrap_err().to_string(),
        "--nodes: `n2:ssh`: `ssh` is not a port number (1-65535)"
    );
    let repeated = args(&["--node", "a", "--node", "b", "--nodes", "c"]);
    let names: Vec<String> = repeated
        .to_inventory()
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["c", "a", "b"]);
    let none = args(&[]);
    assert!(none
        .to_inventory()
        .unwrap_err()
        .to_string()
        .starts_with("--nodes: no nodes given"));
    // clap rejects conflicting sources and port 0 before we see them.
    assert!(try_args(&["--nodes", "a", "--nodes-file", "f"]).is_err());
    assert!(try_args(&["--nodes", "a", "--ssh-port", "0"]).is_err());
}

#[test]
fn a_nodes_file_has_one_host_per_line_and_comments() {
    let dir = std::env::temp_dir().join(format!("faultline-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes");
    std::fs::write(&file, "# lab\nn1\n\n  n2   # rack 2\nn3:2222\n").unwrap();
    let flags = args(&["--nodes-file", file.to_str().unwrap()]);
    let inv = flags.to_inventory().unwrap();
    let names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3:2222"]);

    std::fs::write(&file, "n1\nn2\nn1\n").unwrap();
    let err = flags.to_inventory().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:3: duplicate node name `n1` (first at line 1)",
            file.display()
        )
    );
    std::fs::write(&file, "n1\nbad host\n").unwrap();
    let err = flags.to_inventory().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:2: `bad host`: a host name cannot contain spaces",
            file.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
