//! End to end: `faultline report` writes pages that headless Chromium opens without a single
//! console message or JavaScript error, and a script in a history value stays text.
#[path = "../../results/tests/common/mod.rs"]
mod histories;
mod report_common;

use histories::*;
use report_common::*;
use serde_json::json;

fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `h` as a history file, runs `faultline report` on it and opens the page.
fn report_and_browse(chromium: &std::path::Path, name: &str, h: &checkers::History, model: &str, expect_exit: i32) -> Browsed {
    let dir = tempdir(&format!("browser-{name}"));
    let history = dir.join(format!("{name}.jsonl"));
    write_history(&history, h);
    let page = dir.join(format!("{name}.html"));
    let out = faultline()
        .arg("report")
        .arg(&history)
        .args(["--model", model, "--out"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(expect_exit), "faultline report: {}", String::from_utf8_lossy(&out.stderr));
    let shot = screenshot_dir().join(format!("{name}.png"));
    let browsed = browse(chromium, &page, &shot);
    eprintln!("screenshot: {}", shot.display());
    assert!(browsed.console.is_empty(), "console messages on {name}: {:#?}", browsed.console);
    browsed
}

#[test]
fn reports_open_without_console_errors() {
    let Some(chromium) = chromium("reports_open_without_console_errors") else {
        return;
    };
    let valid = report_and_browse(&chromium, "valid", &register_history(400, 5, 2, 3, true), "register", 0);
    assert!(valid.dom.contains("class=\"verdict valid\""));
    let stale = report_and_browse(&chromium, "stale-read", &stale_read_history(), "register", 1);
    assert!(stale.dom.contains("Not linearizable"));
    let cycles = report_and_browse(&chromium, "cycles", &cycles_history(), "list-append", 1);
    assert!(cycles.dom.contains("G1c") && cycles.dom.contains("G2-item"));
}

#[test]
fn a_script_in_a_history_value_is_shown_as_text() {
    let Some(chromium) = chromium("a_script_in_a_history_value_is_shown_as_text") else {
        return;
    };
    let mut h = stale_read_history();
    let evil = "<script>alert(1)</script><script>document.title='pwned'</script>";
    h.ops[0].value = json!(evil);
    h.ops[1].value = json!(evil);
    h.ops[1].error = Some("<img src=x onerror=\"document.title='pwned'\">".into());
    let b = report_and_browse(&chromium, "xss", &h, "register", 1);
    // In the DOM the value is a text node (serialised with &lt;), never an element.
    assert!(b.dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the value is shown as text");
    assert!(!b.dom.contains("<script>alert(1)"), "no script element from the history");
    assert!(!b.dom.contains("<img src=\"x\""), "no image element from the history");
    assert!(!b.dom.contains("<title>pwned"), "no injected script ran");
}
