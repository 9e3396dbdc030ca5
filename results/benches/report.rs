//! Report benchmark: a generated run of 100,000 client operations (register, 10 keys, every
//! fault kind) is checked, rendered to HTML, and opened in headless Chromium. Prints the page
//! size and medians of render time and of Chromium's load-and-dump time (and of Chromium on an
//! empty page, its start-up cost).
//!
//! `cargo bench -p results --bench report` (add `-- OPS` to change the size).
#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use results::{render, ReportInput};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .any(|d| Path::new(d).join(c).is_file())
        })
        .map(str::to_string)
}

/// Wall time of `chromium --headless --dump-dom URL`, from spawn to exit.
fn load(chromium: &str, url: &str, profile: &Path, extra: &[String]) -> (Duration, usize) {
    let _ = std::fs::remove_dir_all(profile);
    let out = profile.with_extension("dom");
    let started = Instant::now();
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::null())
        .status()
        .expect("run chromium");
    let elapsed = started.elapsed();
    assert!(status.success(), "chromium failed on {url}");
    (
        elapsed,
        std::fs::metadata(&out)
            .map(|m| m.len() as usize)
            .unwrap_or(0),
    )
}

fn main() {
    let ops: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    // A history entry per invocation and per completion, plus nemesis entries.
    let h = common::register_history(ops * 2, 10, 10, 42, true);
    let calls = h
        .ops
        .iter()
        .filter(|o| o.is_client() && o.kind == checkers::OpType::Invoke)
        .count();
    let t = Instant::now();
    let analysis = common::analyse_register(&h);
    println!(
        "history: {} entries, {calls} client operations; check {:?} ({})",
        h.ops.len(),
        t.elapsed(),
        analysis.verdict
    );

    let mut renders = Vec::new();
    let mut html = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        html = render(&ReportInput {
            title: "bench-register".into(),
            started: None,
            params: serde_json::json!({"ops": ops, "keys": 10, "processes": 10}),
            history: &h,
            analysis: &analysis,
            node_logs: Vec::new(),
            files: Vec::new(),
        });
        renders.push(t.elapsed());
    }
    let dir = std::env::temp_dir().join(format!("faultline-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, &html).unwrap();
    println!(
        "report: {:.2} MB; render median {:?} (5 runs)",
        html.len() as f64 / 1e6,
        median(renders)
    );

    let Some(chromium) = chromium() else {
        println!("chromium not installed: load time not measured (apt-get install -y chromium)");
        return;
    };
    let url = format!("file://{}", page.display());
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><title>blank</title>").unwrap();
    let blank_url = format!("file://{}", blank.display());
    let mut loads = Vec::new();
    let mut baseline = Vec::new();
    let mut dom = 0;
    for i in 0..5 {
        let (d, n) = load(&chromium, &url, &dir.join(format!("profile-{i}")), &[]);
        loads.push(d);
        dom = n;
        baseline.push(load(&chromium, &blank_url, &dir.join(format!("blank-{i}")), &[]).0);
    }
    let shot = dir.join("report.png");
    let _ = load(
        &chromium,
        &url,
        &dir.join("shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1800".into(),
        ],
    );
    println!(
        "chromium --dump-dom: report median {:?}, empty page median {:?} (5 runs each); DOM {:.2} MB; screenshot {}",
        median(loads),
        median(baseline),
        dom as f64 / 1e6,
        shot.display()
    );
}
