//! `faultline doctor`: what works on each node, what will be skipped, and what a previous run
//! left behind.
//!
//! Capability checks never change a node's state: netem is tried inside a scratch network
//! namespace (`unshare --net`), so a node's real interfaces are never touched. Residue checks only
//! read. The nemesis extends [`residue`] as it gains fault kinds.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nemesis::{Command, Remote, RemoteError};

use crate::db::FAKETIME_LIB;

/// What the checks look for.
#[derive(Debug, Clone)]
pub struct DoctorConfig {
    /// libfaketime path expected on every node.
    pub faketime_lib: String,
    /// Offset files the clock nemesis writes; a non-zero offset left in one is residue.
    pub faketime_files: Vec<String>,
    /// A clock further than this from the controller's gets a warning.
    pub clock_tolerance: Duration,
}

impl Default for DoctorConfig {
    fn default() -> Self {
        DoctorConfig {
            faketime_lib: FAKETIME_LIB.to_string(),
            faketime_files: vec![format!("{}/run/faketime", crate::cluster::NODE_OPT_DIR)],
            clock_tolerance: Duration::from_millis(500),
        }
    }
}

/// The capabilities the doctor checks, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Reachable,
    Root,
    Iptables,
    Faketime,
    Tc,
    Netem,
    Clock,
}

impl Check {
    pub const ALL: [Check; 7] = [
        Check::Reachable,
        Check::Root,
        Check::Iptables,
        Check::Faketime,
        Check::Tc,
        Check::Netem,
        Check::Clock,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Reachable => "reachable",
            Check::Root => "root",
            Check::Iptables => "iptables",
            Check::Faketime => "faketime",
            Check::Tc => "tc",
            Check::Netem => "netem",
            Check::Clock => "clock",
        }
    }
    /// The faults that depend on this capability.
    fn needed_for(self) -> &'static str {
        match self {
            Check::Reachable | Check::Root => "everything",
            Check::Iptables => "partitions and packet loss",
            Check::Faketime => "clock faults",
            Check::Tc => "bandwidth limits",
            Check::Netem => "latency and netem packet faults",
            Check::Clock => "clock comparisons",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Works; the text says what was found.
    Ok(String),
    /// Works, but something looks off.
    Warn(String),
    /// Missing: the faults that need it will be skipped on this node.
    Skipped(String),
    /// The node cannot be used at all.
    Failed(String),
}

impl Status {
    fn cell(&self) -> &'static str {
        match self {
            Status::Ok(_) => "ok",
            Status::Warn(_) => "warn",
            Status::Skipped(_) => "skipped",
            Status::Failed(_) => "FAILED",
        }
    }
    fn detail(&self) -> &str {
        match self {
            Status::Ok(s) | Status::Warn(s) | Status::Skipped(s) | Status::Failed(s) => s,
        }
    }
}

/// Every check's outcome on one node.
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub node: String,
    pub checks: Vec<(Check, Status)>,
}

impl NodeReport {
    pub fn status(&self, check: Check) -> Option<&Status> {
        self.checks
            .iter()
            .find(|(c, _)| *c == check)
            .map(|(_, s)| s)
    }
    /// The node cannot be used (unreachable, or no root).
    pub fn failed(&self) -> bool {
        self.checks
            .iter()
            .any(|(_, s)| matches!(s, Status::Failed(_)))
    }
}

/// A report for a node the controller could not connect to.
pub fn unreachable(node: &str, error: &RemoteError) -> NodeReport {
    NodeReport {
        node: node.to_string(),
        checks: Check::ALL
            .iter()
            .map(|&c| {
                let s = if c == Check::Reachable {
                    Status::Failed(error.to_string())
                } else {
                    Status::Skipped("node unreachable".into())
                };
                (c, s)
            })
            .collect(),
    }
}

/// Runs every check on a reachable node.
pub async fn check_node(node: &dyn Remote, cfg: &DoctorConfig) -> NodeReport {
    let mut checks = vec![(Check::Reachable, Status::Ok(node.host().to_string()))];
    let root = check_root(node).await;
    let has_root = matches!(root, Status::Ok(_));
    checks.push((Check::Root, root));
    if has_root {
        let (ipt, ft, tc, netem, clock) = futures::join!(
            check_iptables(node),
            check_faketime(node, cfg),
            check_tc(node),
            check_netem(node),
            check_clock(node, cfg),
        );
        checks.extend([
            (Check::Iptables, ipt),
            (Check::Faketime, ft),
            (Check::Tc, tc),
            (Check::Netem, netem),
            (Check::Clock, clock),
        ]);
    } else {
        for c in [Check::Iptables, Check::Faketime, Check::Tc, Check::Netem] {
            checks.push((c, Status::Skipped("needs root".into())));
        }
        checks.push((Check::Clock, check_clock(node, cfg).await));
    }
    NodeReport {
        node: node.name().to_string(),
        checks,
    }
}

/// Runs [`check_node`] on every node at once.
pub async fn check_all(nodes: &[Arc<dyn Remote>], cfg: &DoctorConfig) -> Vec<NodeReport> {
    futures::future::join_all(nodes.iter().map(|n| check_node(n.as_ref(), cfg))).await
}

async fn root_exec(node: &dyn Remote, script: &str) -> Result<nemesis::Output, RemoteError> {
    node.exec(
        Command::new(script)
            .sudo("root")
            .timeout(Duration::from_secs(20)),
    )
    .await
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

async fn check_root(node: &dyn Remote) -> Status {
    match node
        .exec(Command::new("id -u").timeout(Duration::from_secs(20)))
        .await
    {
        Ok(out) if out.success() && out.stdout_str().trim() == "0" => {
            Status::Ok("logged in as root".into())
        }
        Ok(_) => match root_exec(node, "id -u").await {
            Ok(out) if out.success() && out.stdout_str().trim() == "0" => Status::Ok("sudo".into()),
            Ok(out) => Status::Failed(format!(
                "not root and sudo refused: {}",
                first_line(&out.stderr)
            )),
            Err(e) => Status::Failed(e.to_string()),
        },
        Err(e) => Status::Failed(e.to_string()),
    }
}

fn skipped(check: Check, why: impl std::fmt::Display) -> Status {
    Status::Skipped(format!("{why}; {} will be skipped", check.needed_for()))
}

async fn check_iptables(node: &dyn Remote) -> Status {
    match root_exec(
        node,
        "command -v iptables >/dev/null || { echo 'iptables not installed' >&2; exit 9; }; \
         iptables -w 5 -S INPUT >/dev/null && iptables --version",
    )
    .await
    {
        Ok(out) if out.success() => Status::Ok(first_line(&out.stdout)),
        Ok(out) => skipped(Check::Iptables, first_line(&out.stderr)),
        Err(e) => Status::Failed(e.to_string()),
    }
}

async fn check_faketime(node: &dyn Remote, cfg: &DoctorConfig) -> Status {
    let script = format!(
        "test -r {lib} && echo {lib}",
        lib = crate::cluster::shell_quote(&cfg.faketime_lib)
    );
    match root_exec(node, &script).await {
        Ok(out) if out.success() => Status::Ok(first_line(&out.stdout)),
        Ok(_) => skipped(
            Check::Faketime,
            format!("{} missing (apt-get install libfaketime)", cfg.faketime_lib),
        ),
        Err(e) => Status::Failed(e.to_string()),
    }
}

async fn check_tc(node: &dyn Remote) -> Status {
    match root_exec(node, "command -v tc").await {
        Ok(out) if out.success() => Status::Ok(first_line(&out.stdout)),
        Ok(_) => skipped(Check::Tc, "tc not installed (apt-get install iproute2)"),
        Err(e) => Status::Failed(e.to_string()),
    }
}

/// Tries a netem qdisc on the loopback of a throwaway network namespace; falls back to asking
/// modprobe when `unshare` is missing.
async fn check_netem(node: &dyn Remote) -> Status {
    let script = "command -v tc >/dev/null || { echo 'tc not installed' >&2; exit 9; }
if command -v unshare >/dev/null; then
  unshare --net sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms' && echo 'netem qdisc accepted (scratch namespace)'
else
  modprobe -n sch_netem && echo 'sch_netem module available'
fi";
    match root_exec(node, script).await {
        Ok(out) if out.success() => Status::Ok(first_line(&out.stdout)),
        Ok(out) => skipped(
            Check::Netem,
            format!("netem unavailable ({})", first_line(&out.stderr)),
        ),
        Err(e) => Status::Failed(e.to_string()),
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The node's wall clock minus the controller's, from `date` bracketed by two controller readings.
async fn check_clock(node: &dyn Remote, cfg: &DoctorConfig) -> Status {
    let before = now_secs();
    let out = node
        .exec(Command::new("date +%s.%N").timeout(Duration::from_secs(20)))
        .await;
    let after = now_secs();
    let out = match out {
        Ok(o) if o.success() => o,
        Ok(o) => return Status::Warn(format!("date failed: {}", first_line(&o.stderr))),
        Err(e) => return Status::Failed(e.to_string()),
    };
    let Ok(remote) = out.stdout_str().trim().parse::<f64>() else {
        return Status::Warn(format!("cannot read the clock: {:?}", out.stdout_str()));
    };
    let offset = remote - (before + after) / 2.0;
    let error = (after - before) / 2.0;
    let text = format!("{offset:+.3}s (±{error:.3}s)");
    if offset.abs() > cfg.clock_tolerance.as_secs_f64() + error {
        Status::Warn(format!("{text}: more than {:?} off", cfg.clock_tolerance))
    } else {
        Status::Ok(text)
    }
}

/// Something a previous run left on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residue {
    pub node: String,
    /// `iptables`, `nft`, `qdisc`, `faketime`, `stopped-process`.
    pub kind: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Residue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "residue found: {}: {}: {}",
            self.node, self.kind, self.detail
        )
    }
}

/// Qdisc kinds a Linux interface has without anyone configuring it.
const DEFAULT_QDISCS: &[&str] = &[
    "noqueue",
    "pfifo_fast",
    "fq_codel",
    "mq",
    "noop",
    "fq",
    "pfifo",
];

/// Reads the node's fault state: iptables rules beyond the default empty ACCEPT chains, faultline
/// nft tables, non-default qdiscs, non-zero faketime offsets, SIGSTOPped processes.
pub async fn residue(node: &dyn Remote, cfg: &DoctorConfig) -> Result<Vec<Residue>, RemoteError> {
    let files: Vec<String> = cfg
        .faketime_files
        .iter()
        .map(|f| crate::cluster::shell_quote(f))
        .collect();
    let script = format!(
        "echo '#iptables'; command -v iptables >/dev/null && iptables -w 5 -S 2>&1
echo '#nft'; command -v nft >/dev/null && nft list tables 2>/dev/null
echo '#qdisc'; command -v tc >/dev/null && tc qdisc show 2>&1
echo '#faketime'; for f in {files}; do [ -f \"$f\" ] && printf '%s\\t%s\\n' \"$f\" \"$(head -c 200 \"$f\" | tr '\\n' ' ')\"; done
echo '#stopped'; for f in /proc/[0-9]*/stat; do line=$(cat \"$f\" 2>/dev/null) || continue; st=${{line##*) }}; st=${{st%% *}}; if [ \"$st\" = T ]; then p=${{f#/proc/}}; c=${{line#*(}}; echo \"${{p%/stat}} ${{c%)*}}\"; fi; done
true",
        files = if files.is_empty() { "''".to_string() } else { files.join(" ") },
    );
    let text = node
        .run(
            Command::new(script)
                .sudo("root")
                .timeout(Duration::from_secs(30)),
        )
        .await?;
    Ok(parse_residue(node.name(), &text))
}

/// Turns the sections of the residue script's output into findings.
fn parse_residue(node: &str, text: &str) -> Vec<Residue> {
    let mut found = Vec::new();
    let mut section = "";
    let mut push = |kind: &'static str, detail: String| {
        found.push(Residue {
            node: node.to_string(),
            kind,
            detail,
        })
    };
    for line in text.lines() {
        if let Some(s) = line.strip_prefix('#') {
            section = match s {
                "iptables" => "iptables",
                "nft" => "nft",
                "qdisc" => "qdisc",
                "faketime" => "faketime",
                "stopped" => "stopped-process",
                _ => "",
            };
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match section {
            "iptables" => {
                let default_policy = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"];
                if !default_policy.contains(&line) {
                    push("iptables", line.to_string());
                }
            }
            "nft" if line.contains("faultline") => push("nft", line.to_string()),
            "qdisc" => {
                let kind = line.split_whitespace().nth(1).unwrap_or("");
                if !DEFAULT_QDISCS.contains(&kind) {
                    push("qdisc", line.to_string());
                }
            }
            "faketime" => {
                let (file, value) = line.split_once('\t').unwrap_or((line, ""));
                if !is_zero_offset(value) {
                    push("faketime", format!("{file} holds {:?}", value.trim()));
                }
            }
            "stopped-process" => push(
                "stopped-process",
                format!("pid {line} is stopped (state T)"),
            ),
            _ => {}
        }
    }
    found
}

/// A libfaketime spec that shifts nothing: empty, or a relative offset of zero (`+0`, `-0.0s`).
fn is_zero_offset(spec: &str) -> bool {
    let s = spec.trim();
    if s.is_empty() {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    let number = rest.trim_end_matches(|c: char| "smhdy".contains(c));
    !number.is_empty() && number.chars().all(|c| c == '0' || c == '.') && number.contains('0')
}

/// The capability table and, below it, one line per check that is not plainly ok.
pub fn render(reports: &[NodeReport]) -> String {
    let mut header = vec!["node".to_string()];
    header.extend(Check::ALL.iter().map(|c| c.as_str().to_string()));
    let mut rows = vec![header];
    for r in reports {
        let mut row = vec![r.node.clone()];
        for c in Check::ALL {
            let cell = match r.status(c) {
                Some(Status::Ok(s)) if c == Check::Clock => {
                    s.split(' ').next().unwrap_or("ok").to_string()
                }
                Some(s) => s.cell().to_string(),
                None => "-".to_string(),
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let mut notes = Vec::new();
    for r in reports {
        for (c, s) in &r.checks {
            if !matches!(s, Status::Ok(_)) {
                notes.push(format!(
                    "{}: {}: {}: {}",
                    r.node,
                    c.as_str(),
                    s.cell(),
                    s.detail()
                ));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_offsets() {
        for z in ["", "+0", "-0", "+0s", "+0.0", " +0\n", "-0d"] {
            assert!(is_zero_offset(z), "{z:?}");
        }
        for nz in [
            "+1h",
            "-2",
            "+0.5s",
            "@2030-01-01 00:00:00",
            "2030",
            "+",
            "+s",
        ] {
            assert!(!is_zero_offset(nz), "{nz:?}");
        }
    }

    #[test]
    fn residue_sections_are_parsed() {
        let text = "#iptables\n-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A INPUT -s 10.77.0.12/32 -j DROP\n\
                    #nft\ntable ip filter\ntable inet faultline\n\
                    #qdisc\nqdisc noqueue 0: dev lo root refcnt 2\nqdisc tbf 8001: dev eth0 root refcnt 2 rate 1Mbit\n\
                    #faketime\n/opt/faultline/run/faketime\t+0 \n/opt/x/faketime\t+2h \n\
                    #stopped\n42 faultline-server\n";
        let found: Vec<String> = parse_residue("n1", text)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            found,
            vec![
                "residue found: n1: iptables: -A INPUT -s 10.77.0.12/32 -j DROP",
                "residue found: n1: nft: table inet faultline",
                "residue found: n1: qdisc: qdisc tbf 8001: dev eth0 root refcnt 2 rate 1Mbit",
                "residue found: n1: faketime: /opt/x/faketime holds \"+2h\"",
                "residue found: n1: stopped-process: pid 42 faultline-server is stopped (state T)",
            ]
        );
        assert!(parse_residue("n1", "#iptables\n-P INPUT ACCEPT\n#qdisc\n#stopped\n").is_empty());
    }

    #[test]
    fn table_lists_non_ok_checks_below() {
        let reports = vec![
            NodeReport {
                node: "n1".into(),
                checks: Check::ALL
                    .iter()
                    .map(|&c| {
                        let s = match c {
                            Check::Netem => {
                                Status::Skipped("netem unavailable; latency will be skipped".into())
                            }
                            Check::Clock => Status::Ok("+0.001s (±0.001s)".into()),
                            _ => Status::Ok("fine".into()),
                        };
                        (c, s)
                    })
                    .collect(),
            },
            unreachable(
                "n2",
                &RemoteError::Unreachable {
                    node: "n2".into(),
                    addr: "10.0.0.2:22".into(),
                    cause: "connection refused".into(),
                },
            ),
        ];
        let text = render(&reports);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "node  reachable  root     iptables  faketime  tc       netem    clock"
        );
        assert_eq!(
            lines[1],
            "n1    ok         ok       ok        ok        ok       skipped  +0.001s"
        );
        assert_eq!(
            lines[2],
            "n2    FAILED     skipped  skipped   skipped   skipped  skipped  skipped"
        );
        assert!(text.contains("n1: netem: skipped: netem unavailable"));
        assert!(text.contains("n2: reachable: FAILED: n2: unreachable at 10.0.0.2:22"));
        assert!(reports[1].failed() && !reports[0].failed());
    }
}
