//! Campaign results: what `faultline campaign` ran, what each entry was expected to do and did,
//! and the files it leaves in the store (`summary.json`, `junit.xml`, `index.html`, and the
//! trends file that accumulates over campaign runs).
//!
//! Layout, under the store root:
//! ```text
//! campaigns/<campaign>/<timestamp>/summary.json
//! campaigns/<campaign>/<timestamp>/junit.xml
//! campaigns/<campaign>/<timestamp>/index.html
//! campaigns/<campaign>/trends.jsonl       one line per entry per campaign run, appended
//! campaigns/<campaign>/latest -> <timestamp>
//! ```
//! The runs themselves are ordinary run directories (`<test>/<timestamp>/`) of the same store.
//!
//! The campaign runner creates a [`CampaignDir`], calls [`CampaignDir::write`] after every entry
//! (so an interrupted campaign still leaves readable files) and [`CampaignDir::finish`] once at
//! the end, which appends the entries to `trends.jsonl` and moves `latest`.
use std::fmt;
use std::fs;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};

use crate::index::percent_encode;
use crate::store::{valid_test_name, StoreError, CAMPAIGNS_DIR, LATEST_LINK, TIMESTAMP_FORMAT};

pub const SUMMARY_FILE: &str = "summary.json";
pub const JUNIT_FILE: &str = "junit.xml";
pub const INDEX_FILE: &str = "index.html";
pub const TRENDS_FILE: &str = "trends.jsonl";
/// How many past outcomes of an entry the index shows.
pub const TREND_WINDOW: usize = 10;

/// What an entry is expected to conclude.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    Valid,
    /// Invalid, with at least one anomaly of each listed type (none listed: any anomaly).
    Invalid {
        anomalies: Vec<String>,
    },
}

/// What an entry concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Valid,
    Invalid,
    Unknown,
    /// The harness failed (setup impossible, SSH lost, a fault that could not be installed):
    /// whatever the verdict of what was recorded, the entry is an error, not a test failure.
    HarnessError,
    /// Not run: the campaign was interrupted before this entry.
    Skipped,
}

/// One entry of a campaign: one run of one configuration with one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryResult {
    /// Stable across campaign runs (trends are keyed by it), e.g.
    /// `raft-register-partition+kill-bug=stale-read-s3`.
    pub id: String,
    pub target: String,
    pub workload: String,
    /// Fault kinds, comma-separated as on the command line (`none` for no faults).
    pub nemesis: String,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub read_mode: Option<String>,
    pub time_limit_s: f64,
    pub expect: Expectation,
    pub outcome: Outcome,
    /// Anomaly types the checkers reported (`Analysis::anomaly_types`).
    pub anomalies: Vec<String>,
    /// One line for a person: the anomaly summary, or the harness error.
    pub summary: String,
    /// `outcome` met `expect`.
    pub passed: bool,
    /// The run directory relative to the store root (`<test>/<timestamp>`), when a run happened.
    pub run: Option<String>,
    /// From the start of the main phase to the first operation an anomaly implicates.
    pub detection_s: Option<f64>,
    /// Wall time of the whole entry (setup, test, check).
    pub duration_s: f64,
    /// Completed client operations.
    pub client_ops: u64,
}

/// One campaign run: `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// The campaign's name (a valid test name: one path component).
    pub name: String,
    /// The campaign file as given on the command line.
    pub file: String,
    /// RFC 3339.
    pub started: String,
    pub finished: String,
    pub entries: Vec<EntryResult>,
    /// The run stopped early (Ctrl-C, SIGTERM): entries not run are `Skipped`.
    pub interrupted: bool,
}

impl fmt::Display for Expectation {
    /// `valid`, `invalid`, or `invalid [G-single, G2-item]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Valid => f.write_str("valid"),
            Expectation::Invalid { anomalies } if anomalies.is_empty() => f.write_str("invalid"),
            Expectation::Invalid { anomalies } => write!(f, "invalid [{}]", anomalies.join(", ")),
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Unknown => "unknown",
            Outcome::HarnessError => "harness-error",
            Outcome::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an entry counts for CI: what JUnit and the index colours say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The outcome met the expectation.
    Pass,
    /// A verdict that did not meet the expectation (a test failure).
    Fail,
    /// The harness failed: neither pass nor fail.
    Error,
    /// Not run.
    Skipped,
}

impl Status {
    pub fn of(outcome: Outcome, passed: bool) -> Status {
        match outcome {
            Outcome::Skipped => Status::Skipped,
            Outcome::HarnessError => Status::Error,
            _ if passed => Status::Pass,
            _ => Status::Fail,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

impl EntryResult {
    pub fn status(&self) -> Status {
        Status::of(self.outcome, self.passed)
    }

    /// What happened, in the terms of the expectation: `invalid [G1c]`, `valid`, ...
    pub fn actual(&self) -> String {
        match self.outcome {
            Outcome::Invalid if !self.anomalies.is_empty() => {
                format!("invalid [{}]", self.anomalies.join(", "))
            }
            other => other.as_str().to_string(),
        }
    }
}

/// Entries per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub entries: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
}

impl CampaignSummary {
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            entries: self.entries.len(),
            ..Totals::default()
        };
        for e in &self.entries {
            match e.status() {
                Status::Pass => t.passed += 1,
                Status::Fail => t.failed += 1,
                Status::Error => t.errors += 1,
                Status::Skipped => t.skipped += 1,
            }
        }
        t
    }

    /// Seconds from `started` to `finished`, when both parse; else the sum of the entries.
    fn elapsed_s(&self) -> f64 {
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok();
        match (parse(&self.started), parse(&self.finished)) {
            (Some(a), Some(b)) if b >= a => (b - a).num_milliseconds() as f64 / 1e3,
            _ => self.entries.iter().map(|e| e.duration_s).sum(),
        }
    }
}

/// One line of `trends.jsonl`: one entry of one campaign run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendRecord {
    /// The campaign run's directory name (same format as run timestamps).
    pub timestamp: String,
    /// The entry id ([`EntryResult::id`]).
    pub id: String,
    pub outcome: Outcome,
    pub passed: bool,
    pub detection_s: Option<f64>,
    /// The run directory relative to the store root.
    pub run: Option<String>,
}

impl TrendRecord {
    fn of(timestamp: &str, e: &EntryResult) -> TrendRecord {
        TrendRecord {
            timestamp: timestamp.to_string(),
            id: e.id.clone(),
            outcome: e.outcome,
            passed: e.passed,
            detection_s: e.detection_s,
            run: e.run.clone(),
        }
    }
}

/// Reads a trends file; a missing file has no records. A last line without its newline is a
/// write cut short (a killed campaign) and is ignored when it does not parse; any other line that
/// does not parse is an error naming the file and line.
pub fn read_trends(path: &Path) -> Result<Vec<TrendRecord>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(_) if torn_tail && i + 1 == lines.len() => {}
            Err(e) => {
                return Err(StoreError::Parse {
                    path: path.to_path_buf(),
                    message: format!("line {}: {e}", i + 1),
                })
            }
        }
    }
    Ok(records)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it over `path`: a reader
/// sees the old file or the new one, never a part.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io(path))
}

/// One campaign run's directory, `<store>/campaigns/<name>/<timestamp>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignDir {
    path: PathBuf,
    /// `<store>/campaigns/<name>/`: trends and `latest`.
    campaign_root: PathBuf,
    /// The directory's name.
    timestamp: String,
}

impl CampaignDir {
    /// Creates `<store_root>/campaigns/<name>/<timestamp>/`. The name must be one harmless path
    /// component (as a test name); an existing directory is never reused.
    pub fn create(
        store_root: &Path,
        name: &str,
        started: DateTime<Utc>,
    ) -> Result<CampaignDir, StoreError> {
        if !valid_test_name(name) {
            return Err(StoreError::BadTestName(name.to_string()));
        }
        let campaign_root = store_root.join(CAMPAIGNS_DIR).join(name);
        fs::create_dir_all(&campaign_root).map_err(io(&campaign_root))?;
        let timestamp = started.format(TIMESTAMP_FORMAT).to_string();
        let path = campaign_root.join(&timestamp);
        fs::create_dir(&path).map_err(io(&path))?;
        Ok(CampaignDir {
            path,
            campaign_root,
            timestamp,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<store>/campaigns/<name>/trends.jsonl`.
    pub fn trends_path(&self) -> PathBuf {
        self.campaign_root.join(TRENDS_FILE)
    }

    /// Rewrites `summary.json`, `junit.xml` and `index.html`, each atomically. The index shows
    /// the trends of earlier campaign runs plus the entries of this one that have run.
    pub fn write(&self, summary: &CampaignSummary) -> Result<(), StoreError> {
        let mut trends = read_trends(&self.trends_path())?;
        trends.extend(
            summary
                .entries
                .iter()
                .filter(|e| e.outcome != Outcome::Skipped)
                .map(|e| TrendRecord::of(&self.timestamp, e)),
        );
        self.write_files(summary, &trends)
    }

    /// Ends the campaign run: appends one line per entry to `trends.jsonl`, writes the final
    /// files and points `<store>/campaigns/<name>/latest` at this directory. Call it once.
    pub fn finish(&self, summary: &CampaignSummary) -> Result<(), StoreError> {
        let mut lines = String::new();
        for e in &summary.entries {
            let record = TrendRecord::of(&self.timestamp, e);
            let line =
                serde_json::to_string(&record).map_err(|e| io(&self.trends_path())(e.into()))?;
            lines.push_str(&line);
            lines.push('\n');
        }
        append_trends(&self.trends_path(), lines.as_bytes())?;
        let trends = read_trends(&self.trends_path())?;
        self.write_files(summary, &trends)?;
        let link = self.campaign_root.join(LATEST_LINK);
        let tmp = self
            .campaign_root
            .join(format!(".{LATEST_LINK}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&self.timestamp, &tmp).map_err(io(&tmp))?;
            fs::rename(&tmp, &link).map_err(io(&link))?;
        }
        Ok(())
    }

    fn write_files(
        &self,
        summary: &CampaignSummary,
        trends: &[TrendRecord],
    ) -> Result<(), StoreError> {
        let path = self.path.join(SUMMARY_FILE);
        let json = serde_json::to_string_pretty(summary).map_err(|e| io(&path)(e.into()))?;
        write_atomically(&path, json.as_bytes())?;
        write_atomically(
            &self.path.join(JUNIT_FILE),
            render_junit(summary).as_bytes(),
        )?;
        write_atomically(
            &self.path.join(INDEX_FILE),
            render_index(summary, trends).as_bytes(),
        )
    }
}

/// Appends whole lines in one write. A previous append cut short (no final newline) is cut off
/// first, so the file stays one record per line.
fn append_trends(path: &Path, lines: &[u8]) -> Result<(), StoreError> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let mut existing = Vec::new();
    f.read_to_end(&mut existing).map_err(io(path))?;
    if existing.last().is_some_and(|&b| b != b'\n') {
        let keep = existing
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        f.set_len(keep as u64).map_err(io(path))?;
        f.seek(std::io::SeekFrom::End(0)).map_err(io(path))?;
    }
    f.write_all(lines).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

// ---------------------------------------------------------------------------------------------
// junit.xml

/// Escapes text content: markup characters as entities, characters XML 1.0 cannot carry at all
/// (most control characters) as U+FFFD.
fn xml_text(s: &str) -> String {
    xml_escape(s, false)
}

/// Escapes an attribute value; also tabs and line breaks, which parsers would otherwise turn
/// into spaces.
fn xml_attr(s: &str) -> String {
    xml_escape(s, true)
}

fn xml_escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `junit.xml`: one `<testsuite>` named after the campaign, one `<testcase>` per entry. An entry
/// whose verdict missed its expectation is a `<failure>`, a harness failure an `<error>`, an
/// entry not run `<skipped>`; the failure's text is the anomaly summary and the run directory.
pub fn render_junit(summary: &CampaignSummary) -> String {
    use std::fmt::Write as _;
    let t = summary.totals();
    let time = summary.elapsed_s();
    // JUnit's schema wants a local date-time without zone; ours are UTC.
    let timestamp = DateTime::parse_from_rfc3339(&summary.started)
        .map(|d| {
            d.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| summary.started.clone());
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\"",
        t.entries, t.failed, t.errors, t.skipped
    );
    let _ = writeln!(
        x,
        "<testsuites name=\"faultline\" {counts}>\n  <testsuite name=\"{}\" {counts} timestamp=\"{}\">",
        xml_attr(&summary.name),
        xml_attr(&timestamp)
    );
    let _ = writeln!(
        x,
        "    <properties>\n      <property name=\"campaign-file\" value=\"{}\"/>\n      <property name=\"interrupted\" value=\"{}\"/>\n    </properties>",
        xml_attr(&summary.file),
        summary.interrupted
    );
    for e in &summary.entries {
        let run = e.run.as_deref().map(|r| format!("run: {r}"));
        let details = [Some(e.summary.clone()).filter(|s| !s.is_empty()), run]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        let mut children: Vec<String> = Vec::new();
        match e.status() {
            Status::Pass => {}
            Status::Fail => {
                let kind = match e.outcome {
                    Outcome::Valid => "anomaly-missed",
                    Outcome::Invalid => "unexpected-anomaly",
                    _ => "verdict-unknown",
                };
                children.push(format!(
                    "<failure message=\"{}\" type=\"{kind}\">{}</failure>",
                    xml_attr(&format!("expected {}, got {}", e.expect, e.actual())),
                    xml_text(&details)
                ));
            }
            Status::Error => {
                let message = match e.summary.as_str() {
                    "" => "harness error".to_string(),
                    s => format!("harness error: {s}"),
                };
                children.push(format!(
                    "<error message=\"{}\" type=\"harness-error\">{}</error>",
                    xml_attr(&message),
                    xml_text(&details)
                ));
            }
            Status::Skipped => {
                let message = match e.summary.as_str() {
                    "" => "not run: the campaign was interrupted",
                    s => s,
                };
                children.push(format!("<skipped message=\"{}\"/>", xml_attr(message)));
            }
        }
        if let Some(r) = &e.run {
            children.push(format!(
                "<system-out>{}</system-out>",
                xml_text(&format!(
                    "report: {r}/{} (relative to the store)",
                    crate::store::REPORT_FILE
                ))
            ));
        }
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            xml_attr(&e.id),
            xml_attr(&format!("faultline.{}.{}", e.target, e.workload)),
            e.duration_s
        );
        if children.is_empty() {
            x.push_str("/>\n");
        } else {
            x.push_str(">\n");
            for c in children {
                let _ = writeln!(x, "      {c}");
            }
            x.push_str("    </testcase>\n");
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

// ---------------------------------------------------------------------------------------------
// index.html

const INDEX: &str = include_str!("templates/campaign.html");

/// An entry as the index shows it.
#[derive(Serialize)]
struct IndexEntry<'a> {
    /// Anchor of its row.
    anchor: String,
    e: &'a EntryResult,
    status: Status,
    expect: String,
    actual: String,
    bugs: String,
    report_href: Option<String>,
    detection: Option<String>,
    trend: Vec<TrendMark>,
    flaky: bool,
    /// Median detection time over the trend window.
    trend_detection: Option<String>,
}

/// One past outcome.
#[derive(Serialize)]
struct TrendMark {
    status: Status,
    title: String,
    href: Option<String>,
}

#[derive(Serialize)]
struct Group<'a> {
    target: &'a str,
    workload: &'a str,
    entries: Vec<IndexEntry<'a>>,
}

/// Overview: rows target/workload, columns nemesis/bugs/read mode, one chip per entry (seed).
#[derive(Serialize)]
struct Matrix {
    columns: Vec<String>,
    rows: Vec<MatrixRow>,
}

#[derive(Serialize)]
struct MatrixRow {
    label: String,
    cells: Vec<Vec<Chip>>,
}

#[derive(Serialize)]
struct Chip {
    status: Status,
    anchor: String,
    title: String,
}

/// A link from the campaign directory (`campaigns/<name>/<timestamp>/`) to a run's report.
fn report_href(run: &str) -> String {
    let parts: Vec<String> = run
        .split('/')
        .filter(|p| !p.is_empty())
        .map(percent_encode)
        .collect();
    format!("../../../{}/{}", parts.join("/"), crate::store::REPORT_FILE)
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn column_label(e: &EntryResult) -> String {
    let mut label = format!("nemesis {}", e.nemesis);
    if !e.bugs.is_empty() {
        label.push_str(&format!(" \u{b7} bug {}", e.bugs.join(",")));
    }
    if let Some(m) = &e.read_mode {
        label.push_str(&format!(" \u{b7} read {m}"));
    }
    label
}

fn trend_of(id: &str, trends: &[TrendRecord]) -> (Vec<TrendMark>, bool, Option<String>) {
    let mut mine: Vec<&TrendRecord> = trends.iter().filter(|r| r.id == id).collect();
    // Stable: records of one campaign run keep their file order.
    mine.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let window = &mine[mine.len().saturating_sub(TREND_WINDOW)..];
    let statuses: Vec<Status> = window
        .iter()
        .map(|r| Status::of(r.outcome, r.passed))
        .collect();
    let flaky = statuses.contains(&Status::Pass) && statuses.contains(&Status::Fail);
    let marks = window
        .iter()
        .zip(&statuses)
        .map(|(r, &status)| {
            let mut title = format!("{}: {} ({})", r.timestamp, status.as_str(), r.outcome);
            if let Some(d) = r.detection_s {
                title.push_str(&format!(", detected after {}", seconds(d)));
            }
            TrendMark {
                status,
                title,
                href: r.run.as_deref().map(report_href),
            }
        })
        .collect();
    let mut detections: Vec<f64> = window.iter().filter_map(|r| r.detection_s).collect();
    detections.sort_by(f64::total_cmp);
    let median = (!detections.is_empty()).then(|| {
        format!(
            "median detection {} over {}",
            seconds(detections[detections.len() / 2]),
            detections.len()
        )
    });
    (marks, flaky, median)
}

/// `index.html`: totals, a matrix overview (rows target/workload, columns nemesis, bugs and read
/// mode) and a table per target/workload with each entry's expectation, outcome, anomalies,
/// detection time, link to its run report and its last [`TREND_WINDOW`] outcomes from `trends`.
pub fn render_index(summary: &CampaignSummary, trends: &[TrendRecord]) -> String {
    let mut groups: Vec<Group> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Vec<Vec<Chip>>)> = Vec::new();
    for (i, e) in summary.entries.iter().enumerate() {
        let anchor = format!("e{i}");
        let (trend, flaky, trend_detection) = trend_of(&e.id, trends);
        let entry = IndexEntry {
            anchor: anchor.clone(),
            e,
            status: e.status(),
            expect: e.expect.to_string(),
            actual: e.actual(),
            bugs: e.bugs.join(", "),
            report_href: e.run.as_deref().map(report_href),
            detection: e.detection_s.map(seconds),
            trend,
            flaky,
            trend_detection,
        };
        match groups
            .iter_mut()
            .find(|g| g.target == e.target && g.workload == e.workload)
        {
            Some(g) => g.entries.push(entry),
            None => groups.push(Group {
                target: &e.target,
                workload: &e.workload,
                entries: vec![entry],
            }),
        }

        let column = column_label(e);
        let c = match columns.iter().position(|l| *l == column) {
            Some(c) => c,
            None => {
                columns.push(column);
                columns.len() - 1
            }
        };
        let row = format!("{} / {}", e.target, e.workload);
        let r = match rows.iter().position(|(l, _)| *l == row) {
            Some(r) => r,
            None => {
                rows.push((row, Vec::new()));
                rows.len() - 1
            }
        };
        let cells = &mut rows[r].1;
        if cells.len() <= c {
            cells.resize_with(c + 1, Vec::new);
        }
        cells[c].push(Chip {
            status: e.status(),
            anchor,
            title: format!("{} (seed {}): {}", e.id, e.seed, e.actual()),
        });
    }
    let matrix = Matrix {
        rows: rows
            .into_iter()
            .map(|(label, mut cells)| {
                cells.resize_with(columns.len(), Vec::new);
                MatrixRow { label, cells }
            })
            .collect(),
        columns,
    };
    let mut env = Environment::new();
    env.add_template("campaign.html", INDEX)
        .expect("the campaign template parses");
    env.get_template("campaign.html")
        .and_then(|t| {
            t.render(context! {
                s => summary,
                totals => summary.totals(),
                matrix => matrix,
                groups => groups,
                window => TREND_WINDOW,
            })
        })
        .expect("the campaign template renders")
}
