//! The store of test runs on disk.
//!
//! ```text
//! store/
//!   latest -> <test-name>/<timestamp>          symlink to the newest run
//!   campaigns/<campaign>/...                    campaign results (`crate::campaign`), not a test
//!   <test-name>/<timestamp>/                    one run; timestamp like 20261127T205527.123Z (UTC)
//!     history.jsonl                             one checkers::history::Op as JSON per line
//!     test.yaml                                 every option the test ran with
//!     results.json                              the Analysis (verdict, per-checker results, timings)
//!     faultline.log                             the harness's own log
//!     nodes/<node>/<log files>                  logs collected from each node
//!     report.html                               the self-contained report
//! ```
//! The runner writes a run with [`Store::create_run`] and the `write_*` methods of [`RunDir`];
//! `faultline report` and `faultline serve` read it back.
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use checkers::read::{self, Format};
use checkers::History;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::report::NodeLog;

pub const HISTORY_FILE: &str = "history.jsonl";
pub const TEST_FILE: &str = "test.yaml";
pub const RESULTS_FILE: &str = "results.json";
pub const LOG_FILE: &str = "faultline.log";
pub const NODES_DIR: &str = "nodes";
pub const REPORT_FILE: &str = "report.html";
pub const LATEST_LINK: &str = "latest";
/// The store's directory of campaign results: reserved, never a test name.
pub const CAMPAIGNS_DIR: &str = "campaigns";
/// `strftime` format of a run directory's name.
pub const TIMESTAMP_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid test name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.'"
    )]
    BadTestName(String),
    #[error("test name {0:?} is reserved: the store uses it for its own files")]
    ReservedTestName(String),
    #[error("{0}")]
    History(String),
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A directory holding runs.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

/// One run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub path: PathBuf,
}

/// What the run index shows about one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub test: String,
    pub timestamp: String,
    /// The run directory relative to the store root, with `/` separators.
    pub rel_path: String,
    /// `None` when the run has no readable `results.json` (still running, or crashed).
    pub verdict: Option<checkers::verdict::Verdict>,
    pub anomalies: usize,
    /// From the first to the last operation's time, in seconds.
    pub duration_s: Option<f64>,
    pub has_report: bool,
}

/// Test names become directory names, so they must be one harmless path component.
/// ([`Store::create_run`] also refuses the store's own names, `latest` and `campaigns`.)
pub fn valid_test_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// Creates `<root>/<test>/<timestamp>/` (and `nodes/`) and points `latest` at it.
    pub fn create_run(&self, test: &str, started: DateTime<Utc>) -> Result<RunDir, StoreError> {
        if !valid_test_name(test) {
            return Err(StoreError::BadTestName(test.to_string()));
        }
        if test == LATEST_LINK || test == CAMPAIGNS_DIR {
            return Err(StoreError::ReservedTestName(test.to_string()));
        }
        let stamp = started.format(TIMESTAMP_FORMAT).to_string();
        let rel = Path::new(test).join(&stamp);
        let path = self.root.join(&rel);
        let test_dir = self.root.join(test);
        fs::create_dir_all(&test_dir).map_err(io(&test_dir))?;
        // Never reuse a directory: two runs started in the same millisecond must not mix.
        fs::create_dir(&path).map_err(io(&path))?;
        fs::create_dir(path.join(NODES_DIR)).map_err(io(&path))?;
        let link = self.root.join(LATEST_LINK);
        // Replace the link atomically: a reader never sees it missing.
        let tmp = self
            .root
            .join(format!(".{LATEST_LINK}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&rel, &tmp).map_err(io(&tmp))?;
            fs::rename(&tmp, &link).map_err(io(&link))?;
        }
        Ok(RunDir { path })
    }

    /// The run `latest` points at.
    pub fn latest(&self) -> Option<RunDir> {
        let path = fs::canonicalize(self.root.join(LATEST_LINK)).ok()?;
        path.is_dir().then_some(RunDir { path })
    }

    /// Every run in the store, newest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut runs = Vec::new();
        let tests = match fs::read_dir(&self.root) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(runs),
            Err(e) => return Err(io(&self.root)(e)),
        };
        for test in tests {
            let test = test.map_err(io(&self.root))?;
            let name = test.file_name().to_string_lossy().into_owned();
            if name == LATEST_LINK
                || name == CAMPAIGNS_DIR
                || !valid_test_name(&name)
                || !test.path().is_dir()
            {
                continue;
            }
            if test.file_type().map(|t| t.is_symlink()).unwrap_or(true) {
                continue;
            }
            for run in fs::read_dir(test.path()).map_err(io(&test.path()))? {
                let run = run.map_err(io(&test.path()))?;
                let stamp = run.file_name().to_string_lossy().into_owned();
                if NaiveDateTime::parse_from_str(&stamp, TIMESTAMP_FORMAT).is_err()
                    || !run.path().is_dir()
                {
                    continue;
                }
                runs.push(RunDir { path: run.path() }.summary(&name, &stamp));
            }
        }
        runs.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then_with(|| a.test.cmp(&b.test))
        });
        Ok(runs)
    }
}

impl RunDir {
    /// An existing run directory.
    pub fn open(path: impl Into<PathBuf>) -> Result<RunDir, StoreError> {
        let path = path.into();
        let meta = fs::metadata(&path).map_err(io(&path))?;
        if !meta.is_dir() {
            return Err(StoreError::Parse {
                path,
                message: "not a run directory".into(),
            });
        }
        Ok(RunDir { path })
    }

    pub fn history_path(&self) -> PathBuf {
        self.path.join(HISTORY_FILE)
    }
    pub fn test_path(&self) -> PathBuf {
        self.path.join(TEST_FILE)
    }
    pub fn results_path(&self) -> PathBuf {
        self.path.join(RESULTS_FILE)
    }
    pub fn log_path(&self) -> PathBuf {
        self.path.join(LOG_FILE)
    }
    pub fn report_path(&self) -> PathBuf {
        self.path.join(REPORT_FILE)
    }
    /// `nodes/<node>/`, created if missing.
    pub fn node_dir(&self, node: &str) -> Result<PathBuf, StoreError> {
        if !valid_test_name(node) {
            return Err(StoreError::BadTestName(node.to_string()));
        }
        let dir = self.path.join(NODES_DIR).join(node);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// Writes the whole history as JSON lines.
    pub fn write_history(&self, history: &History) -> Result<(), StoreError> {
        let path = self.history_path();
        let file = fs::File::create(&path).map_err(io(&path))?;
        let mut w = BufWriter::new(file);
        for op in &history.ops {
            serde_json::to_writer(&mut w, op).map_err(|e| io(&path)(e.into()))?;
            w.write_all(b"\n").map_err(io(&path))?;
        }
        w.flush().map_err(io(&path))
    }

    /// Reads `history.jsonl`; errors name the file and line.
    pub fn read_history(&self) -> Result<History, StoreError> {
        let path = self.history_path();
        let file = fs::File::open(&path).map_err(io(&path))?;
        let name = path.display().to_string();
        read::read_history(file, &name, Format::Jsonl)
            .map_err(|e| StoreError::History(e.to_string()))
    }

    /// Writes every option of the test as YAML.
    pub fn write_test<T: Serialize>(&self, test: &T) -> Result<(), StoreError> {
        let path = self.test_path();
        let text = serde_yaml_ng::to_string(test).map_err(|e| StoreError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        fs::write(&path, text).map_err(io(&path))
    }

    /// The test's options; `Null` when the run has no `test.yaml`.
    pub fn read_test(&self) -> Result<serde_json::Value, StoreError> {
        let path = self.test_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(serde_json::Value::Null)
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_yaml_ng::from_str(&text).map_err(|e| StoreError::Parse {
            message: match e.location() {
                Some(l) => format!("line {}: {e}", l.line()),
                None => e.to_string(),
            },
            path,
        })
    }

    pub fn write_results(&self, analysis: &Analysis) -> Result<(), StoreError> {
        let path = self.results_path();
        let text = serde_json::to_string_pretty(analysis).map_err(|e| io(&path)(e.into()))?;
        fs::write(&path, text).map_err(io(&path))
    }

    /// The stored analysis; `None` when there is no `results.json`.
    pub fn read_results(&self) -> Result<Option<Analysis>, StoreError> {
        let path = self.results_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Parse {
                message: format!("line {}: {e}", e.line()),
                path,
            })
    }

    /// Log files under `nodes/`, as paths relative to the run directory, sorted.
    pub fn node_logs(&self) -> Result<Vec<NodeLog>, StoreError> {
        let nodes = self.path.join(NODES_DIR);
        let mut logs = Vec::new();
        let entries = match fs::read_dir(&nodes) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(logs),
            Err(e) => return Err(io(&nodes)(e)),
        };
        for node in entries {
            let node = node.map_err(io(&nodes))?;
            if !node.path().is_dir() {
                continue;
            }
            let name = node.file_name().to_string_lossy().into_owned();
            let mut stack = vec![node.path()];
            while let Some(dir) = stack.pop() {
                for f in fs::read_dir(&dir).map_err(io(&dir))? {
                    let f = f.map_err(io(&dir))?;
                    let p = f.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if let Ok(rel) = p.strip_prefix(&self.path) {
                        let rel: Vec<String> = rel
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect();
                        logs.push(NodeLog {
                            node: name.clone(),
                            path: rel.join("/"),
                        });
                    }
                }
            }
        }
        logs.sort_by(|a, b| a.node.cmp(&b.node).then_with(|| a.path.cmp(&b.path)));
        Ok(logs)
    }

    fn summary(&self, test: &str, stamp: &str) -> RunSummary {
        let analysis = self.read_results().ok().flatten();
        RunSummary {
            test: test.to_string(),
            timestamp: stamp.to_string(),
            rel_path: format!("{test}/{stamp}"),
            verdict: analysis.as_ref().map(|a| a.verdict),
            anomalies: analysis.as_ref().map_or(0, Analysis::anomaly_count),
            duration_s: history_span(&self.history_path()),
            has_report: self.report_path().is_file(),
        }
    }
}

/// Seconds between the first and last op's `time`, read from the ends of the file without
/// parsing all of it.
fn history_span(path: &Path) -> Option<f64> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let mut f = fs::File::open(path).ok()?;
    let mut first = String::new();
    std::io::BufReader::new(&mut f).read_line(&mut first).ok()?;
    let len = f.metadata().ok()?.len();
    let tail_len = len.min(64 * 1024);
    f.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = String::new();
    f.take(tail_len).read_to_string(&mut tail).ok()?;
    let last = tail.lines().rev().find(|l| !l.trim().is_empty())?;
    let time = |line: &str| -> Option<i64> {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()?
            .get("time")?
            .as_i64()
    };
    Some((time(last)? - time(&first)?) as f64 / 1e9)
}
