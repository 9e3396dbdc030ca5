//! `faultline report` and `faultline serve` from the outside: exit codes, error lines, the
//! run-directory mode, and a server that stays inside its store.
#[path = "../../results/tests/common/mod.rs"]
mod histories;
mod report_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use histories::*;
use report_common::*;

#[test]
fn exit_codes_follow_the_verdict() {
    let dir = tempdir("report-cli-exit");
    let valid = dir.join("valid.jsonl");
    write_history(&valid, &register_history(80, 3, 1, 5, true));
    let out = faultline()
        .arg("report")
        .arg(&valid)
        .args(["--model", "register"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("valid.html").is_file(),
        "default output beside the history"
    );

    let stale = dir.join("stale.jsonl");
    write_history(&stale, &stale_read_history());
    let page = dir.join("stale-report.html");
    let out = faultline()
        .arg("report")
        .arg(&stale)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Not linearizable"));
    assert!(
        html.contains("href=\"stale.jsonl\""),
        "links the history beside it"
    );

    let cycles = dir.join("cycles.jsonl");
    write_history(&cycles, &cycles_history());
    let out = faultline()
        .arg("report")
        .arg(&cycles)
        .args(["--model", "list-append"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_input_is_one_line_naming_the_place() {
    let dir = tempdir("report-cli-bad");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{oops\n",
    )
    .unwrap();
    let out = faultline()
        .arg("report")
        .arg(&bad)
        .args(["--model", "register"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad.jsonl:2"), "{err}");

    let out = faultline()
        .arg("report")
        .arg(dir.join("missing.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
}

/// A store with one run, as the runner will leave it.
fn store_with_a_run(name: &str) -> (std::path::PathBuf, results::RunDir) {
    let root = tempdir(name);
    let store = results::Store::new(&root);
    let run = store
        .create_run("register-stale", chrono::Utc::now())
        .unwrap();
    let h = stale_read_history();
    run.write_history(&h).unwrap();
    run.write_results(&analyse_register(&h)).unwrap();
    run.write_test(&serde_json::json!({"nodes": ["n1", "n2"], "workload": "register"}))
        .unwrap();
    std::fs::write(run.log_path(), "run log\n").unwrap();
    std::fs::write(run.node_dir("n1").unwrap().join("server.log"), "node log\n").unwrap();
    (root, run)
}

#[test]
fn a_stored_run_gets_its_report() {
    let (_root, run) = store_with_a_run("report-cli-run");
    let out = faultline().arg("report").arg(&run.path).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(run.report_path()).unwrap();
    // minijinja escapes '/' as `&#x2f;`; the browser reads it back as '/'.
    assert!(
        html.contains("href=\"nodes&#x2f;n1&#x2f;server.log\""),
        "relative link to the node log"
    );
    assert!(html.contains("href=\"faultline.log\""));
    assert!(html.contains("register-stale"));
}

fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn serve_lists_runs_and_stays_inside_the_store() {
    let (root, run) = store_with_a_run("serve");
    faultline().arg("report").arg(&run.path).output().unwrap();
    std::fs::write(
        root.parent().unwrap().join("faultline-serve-secret.txt"),
        "secret",
    )
    .unwrap();
    let child = faultline()
        .arg("serve")
        .arg("--store")
        .arg(&root)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");

    let (status, index) = get(&addr, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        index.contains("register-stale") && index.contains("verdict invalid"),
        "{index}"
    );
    let rel = run
        .path
        .strip_prefix(&root)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let (status, page) = get(&addr, &format!("/{rel}/report.html"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(page.contains("Not linearizable"));
    let (status, _) = get(&addr, &format!("/{rel}"));
    assert_eq!(status, "HTTP/1.1 301 Moved Permanently");
    let (status, listing) = get(&addr, &format!("/{rel}/"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(listing.contains("history.jsonl"));
    for escape in [
        "/../faultline-serve-secret.txt",
        "/%2e%2e/faultline-serve-secret.txt",
        "/register-stale/../../faultline-serve-secret.txt",
        "/..%2ffaultline-serve-secret.txt",
    ] {
        let (status, body) = get(&addr, escape);
        assert_eq!(status, "HTTP/1.1 404 Not Found", "{escape}");
        assert!(!body.contains("secret\n") && body != "secret", "{escape}");
    }
}

/// Stops the server even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
