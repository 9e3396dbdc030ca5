//! Shared by the report tests: the faultline binary, temp dirs and headless Chromium.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_history(path: &Path, h: &checkers::History) {
    let mut text = String::new();
    for op in &h.ops {
        text.push_str(&serde_json::to_string(op).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The Chromium binary, or `None` after printing a loud SKIPPED (only allowed when not root;
/// CI runs as root and installs chromium, so there a missing browser fails the test).
pub fn chromium(test: &str) -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(!root, "{test}: chromium is not installed (apt-get install -y chromium)");
    eprintln!("\n*** SKIPPED: {test}: chromium not installed and not root (apt-get install -y chromium) ***\n");
    None
}

/// What headless Chromium made of a page.
pub struct Browsed {
    /// The DOM after load, serialised.
    pub dom: String,
    /// Console messages and JavaScript errors Chromium logged.
    pub console: Vec<String>,
}

fn run_chromium(chromium: &Path, args: &[String]) -> Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = tempdir(&format!("chromium-profile-{n}"));
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    // Files, not pipes: a full pipe would stall Chromium while we wait for it to exit.
    .stdout(Stdio::from(std::fs::File::create(profile.join("stdout")).unwrap()))
    .stderr(Stdio::from(std::fs::File::create(profile.join("stderr")).unwrap()));
    let mut child = cmd.spawn().expect("start chromium");
    // A hang guard, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait for chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().expect("chromium status");
    let out = Output {
        status,
        stdout: std::fs::read(profile.join("stdout")).unwrap_or_default(),
        stderr: std::fs::read(profile.join("stderr")).unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(profile);
    out
}

/// Loads `page` in headless Chromium: dumps the DOM, takes a full screenshot into `screenshot`.
pub fn browse(chromium: &Path, page: &Path, screenshot: &Path) -> Browsed {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let dom = run_chromium(chromium, &["--dump-dom".into(), url.clone()]);
    assert!(dom.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = run_chromium(
        chromium,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2200".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    );
    assert!(screenshot.is_file(), "no screenshot written: {}", String::from_utf8_lossy(&shot.stderr));
    let mut console = Vec::new();
    for out in [&dom, &shot] {
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if line.contains(":CONSOLE") || line.contains("Uncaught") {
                console.push(line.to_string());
            }
        }
    }
    Browsed {
        dom: String::from_utf8_lossy(&dom.stdout).into_owned(),
        console,
    }
}
