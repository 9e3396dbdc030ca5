//! Pages of `faultline serve`: the index of all runs and directory listings. Like the report,
//! rendered through auto-escaping templates (run and file names are not trusted).
use minijinja::{context, Environment};
use serde::Serialize;

use crate::store::RunSummary;

const INDEX: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Faultline runs</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 4px 10px; text-align: left; border-bottom: 1px solid #eee; }
.verdict { padding: 1px 8px; border-radius: 4px; color: #fff; font-weight: 600; }
.valid { background: #2e7d32; } .invalid { background: #c62828; } .unknown { background: #b26a00; } .none { background: #888; }
</style></head><body>
<h1>Faultline runs</h1>
{% if runs %}<table><tr><th>test</th><th>started (UTC)</th><th>verdict</th><th>anomalies</th><th>duration</th><th></th></tr>
{% for r in runs %}<tr><td>{{ r.test }}</td><td>{{ r.timestamp }}</td>
<td>{% if r.verdict %}<span class="verdict {{ r.verdict }}">{{ r.verdict }}</span>{% else %}<span class="verdict none">no results</span>{% endif %}</td>
<td>{{ r.anomalies }}</td><td>{% if r.duration_s is not none %}{{ r.duration_s|round(1) }} s{% endif %}</td>
<td>{% if r.has_report %}<a href="/{{ r.rel_path|urlencode }}/report.html">report</a> · {% endif %}<a href="/{{ r.rel_path|urlencode }}/">files</a></td></tr>
{% endfor %}</table>{% else %}<p>No runs in this store yet.</p>{% endif %}
</body></html>
"#;

const LISTING: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ path }}</title>
<style>body { font: 14px/1.45 system-ui, sans-serif; margin: 20px auto; max-width: 1100px; }</style></head><body>
<h1>/{{ path }}</h1>
<p><a href="/">all runs</a>{% if path %} · <a href="../">up</a>{% endif %}</p>
<ul>{% for e in entries %}<li><a href="{{ e.href|urlencode }}">{{ e.name }}{% if e.dir %}/{% endif %}</a></li>
{% endfor %}</ul>
</body></html>
"#;

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub dir: bool,
    /// Link relative to the listed directory.
    pub href: String,
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("index.html", INDEX)
        .expect("the index template parses");
    env.add_template("listing.html", LISTING)
        .expect("the listing template parses");
    env
}

/// The index of all runs, newest first.
pub fn render_index(runs: &[RunSummary]) -> String {
    env()
        .get_template("index.html")
        .and_then(|t| t.render(context! { runs => runs }))
        .expect("the index template renders")
}

/// A directory listing; `path` is relative to the store root, without leading `/`.
pub fn render_listing(path: &str, entries: &[Entry]) -> String {
    env()
        .get_template("listing.html")
        .and_then(|t| t.render(context! { path => path, entries => entries }))
        .expect("the listing template renders")
}
