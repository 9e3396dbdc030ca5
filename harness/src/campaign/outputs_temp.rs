// TEMP until outputs lands: minimal local versions of what the `outputs` branch adds to the
// results crate (`Analysis::anomaly_types`, `Analysis::summary_line`,
// `results::analysis::detection_time`, `results::campaign::CampaignDir`), with the same
// signatures, so that the campaign runner compiles and runs. When outputs lands, delete this
// file and the `outputs_temp` lines in `campaign/mod.rs`, and import from `results` instead.
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use checkers::verdict::Verdict;
use chrono::{DateTime, Utc};
use results::campaign::{CampaignSummary, Outcome};
use results::{Analysis, CheckerOutput, StoreError};

// TEMP until outputs lands.
pub trait AnalysisOutputs {
    fn anomaly_types(&self) -> Vec<String>;
    fn summary_line(&self) -> String;
}

// TEMP until outputs lands.
impl AnalysisOutputs for Analysis {
    fn anomaly_types(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.checkers {
            match &c.output {
                CheckerOutput::Linear(r) if r.counterexample.is_some() => {
                    out.push("nonlinearizable".into())
                }
                CheckerOutput::Txn(r) => out.extend(
                    r.anomaly_counts
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(t, _)| t.clone()),
                ),
                CheckerOutput::Bank(r) if r.bad_reads > 0 => out.push("wrong-total".into()),
                CheckerOutput::Set(r) => {
                    if !r.lost.is_empty() {
                        out.push("lost".into());
                    }
                    if !r.unexpected.is_empty() {
                        out.push("unexpected".into());
                    }
                }
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn summary_line(&self) -> String {
        if self.verdict == Verdict::Valid {
            return String::new();
        }
        let types = self.anomaly_types();
        if types.is_empty() {
            self.verdict.to_string()
        } else {
            format!("{} anomalies: {}", self.anomaly_count(), types.join(", "))
        }
    }
}

// TEMP until outputs lands: the real one finds the earliest op an anomaly implicates.
pub fn detection_time(_analysis: &Analysis, _history: &checkers::History) -> Option<Duration> {
    None
}

// TEMP until outputs lands.
#[derive(Debug, Clone)]
pub struct CampaignDir {
    root: PathBuf,
    path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// TEMP until outputs lands.
impl CampaignDir {
    pub fn create(
        store_root: &Path,
        name: &str,
        started: DateTime<Utc>,
    ) -> Result<CampaignDir, StoreError> {
        if !results::store::valid_test_name(name) {
            return Err(StoreError::BadTestName(name.to_string()));
        }
        let root = store_root.join("campaigns").join(name);
        let path = root.join(started.format(results::store::TIMESTAMP_FORMAT).to_string());
        fs::create_dir_all(&path).map_err(io(&path))?;
        Ok(CampaignDir { root, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, summary: &CampaignSummary) -> Result<(), StoreError> {
        let json = serde_json::to_string_pretty(summary).unwrap_or_default();
        let p = self.path.join("summary.json");
        fs::write(&p, json).map_err(io(&p))?;
        let failures = summary
            .entries
            .iter()
            .filter(|e| !e.passed && !matches!(e.outcome, Outcome::HarnessError | Outcome::Skipped))
            .count();
        let errors = summary
            .entries
            .iter()
            .filter(|e| e.outcome == Outcome::HarnessError)
            .count();
        let skipped = summary
            .entries
            .iter()
            .filter(|e| e.outcome == Outcome::Skipped)
            .count();
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">\n",
            esc(&summary.name),
            summary.entries.len()
        );
        for e in &summary.entries {
            xml.push_str(&format!(
                "<testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\">",
                esc(&e.id),
                esc(&summary.name),
                e.duration_s
            ));
            match e.outcome {
                Outcome::HarnessError => {
                    xml.push_str(&format!("<error message=\"{}\"/>", esc(&e.summary)))
                }
                Outcome::Skipped => xml.push_str("<skipped/>"),
                _ if !e.passed => {
                    xml.push_str(&format!("<failure message=\"{}\"/>", esc(&e.summary)))
                }
                _ => {}
            }
            xml.push_str("</testcase>\n");
        }
        xml.push_str("</testsuite>\n</testsuites>\n");
        let p = self.path.join("junit.xml");
        fs::write(&p, xml).map_err(io(&p))?;
        let mut html = format!(
            "<!doctype html><meta charset=utf-8><title>{0}</title><h1>{0}</h1><table>",
            esc(&summary.name)
        );
        for e in &summary.entries {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.id),
                e.outcome,
                if e.passed { "pass" } else { "FAIL" },
                esc(&e.summary)
            ));
        }
        html.push_str("</table>");
        let p = self.path.join("index.html");
        fs::write(&p, html).map_err(io(&p))
    }

    pub fn finish(&self, summary: &CampaignSummary) -> Result<(), StoreError> {
        self.write(summary)?;
        use std::io::Write;
        let p = self.root.join("trends.jsonl");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io(&p))?;
        for e in &summary.entries {
            let line = serde_json::json!({
                "started": summary.started, "id": e.id, "outcome": e.outcome,
                "passed": e.passed, "detection_s": e.detection_s,
            });
            writeln!(f, "{line}").map_err(io(&p))?;
        }
        let link = self.root.join("latest");
        let _ = fs::remove_file(&link);
        if let Some(stamp) = self.path.file_name() {
            std::os::unix::fs::symlink(stamp, &link).map_err(io(&link))?;
        }
        Ok(())
    }
}
