//! Recovery that always works, and the check that nothing was left behind.
//!
//! [`heal_all`] uses only what is on the nodes (our chain names, qdisc kinds, offset files,
//! pid files, process states), so a fresh controller can heal after the one that installed the
//! faults died. It is safe to call any number of times.
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{self, controller_now_ns, parse_offset};
use crate::control::TargetControl;
use crate::exec::{run_all, Access, NodeResult};
use crate::record::{FaultRecord, Outcome};
use crate::remote::Remote;
use crate::scripts;

/// What [`heal_all`] does beyond removing rules, qdiscs, strobes and offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealOptions {
    pub access: Access,
    /// Start these nodes' servers through the [`TargetControl`] (e.g. the ones the nemesis
    /// killed).
    pub restart: Vec<String>,
    /// Set every node's real clock to the controller's (only for the real-clock mechanism on
    /// VMs; never on a local cluster, whose nodes share the host's clock).
    pub reset_real_clock: bool,
    /// Send SIGCONT to every stopped process on the nodes, not only through the control.
    /// Right for nodes with their own PID namespace or machine; wrong for nodes that share the
    /// host's process table with other work.
    pub continue_stopped: bool,
}

/// The heal script for `node`: everything that needs no controller state.
pub fn heal_script(node: &str, offset_file: &str, continue_stopped: bool) -> String {
    let file = offset_file;
    let mut s = String::new();
    s.push_str(&scripts::chain_remove(scripts::PARTITION_CHAIN));
    s.push_str(&scripts::chain_remove(scripts::LOSS_CHAIN));
    s.push_str(&scripts::qdisc_remove());
    s.push_str(&scripts::stop_detached(&clock::strobe_pidfile(node)));
    s.push_str(&format!(
        "if [ -f {} ]; then {}fi\n",
        scripts::quote(file),
        scripts::write_file_atomically(file, &clock::format_offset(0))
    ));
    if continue_stopped {
        s.push_str(&scripts::continue_stopped());
    }
    s
}

/// Removes every fault of ours from every node and, through `control`, resumes every node and
/// restarts those in `opts.restart`. Returns a `heal` record: `installed` when everything
/// worked, `indeterminate` naming the nodes where something failed.
pub async fn heal_all(
    nodes: &[Arc<dyn Remote>],
    control: Option<&dyn TargetControl>,
    opts: &HealOptions,
) -> FaultRecord {
    let mut problems: Vec<String> = Vec::new();
    let jobs = nodes
        .iter()
        .map(|n| {
            let file = opts.access.offset_files.path(n.name());
            (
                n.clone(),
                heal_script(n.name(), &file, opts.continue_stopped),
            )
        })
        .collect();
    for (node, r) in run_all(jobs, &opts.access).await {
        if !r.is_done() {
            problems.push(format!("{node}: {r:?}"));
        }
    }
    if opts.reset_real_clock {
        let jobs = nodes
            .iter()
            .map(|n| (n.clone(), scripts::real_clock_set(controller_now_ns())))
            .collect();
        for (node, r) in run_all(jobs, &opts.access).await {
            if !r.is_done() {
                problems.push(format!("{node}: clock reset: {r:?}"));
            }
        }
    }
    if let Some(control) = control {
        for n in nodes {
            if let Err(e) = control.resume(n.name()).await {
                problems.push(format!("resume {e}"));
            }
        }
        for name in &opts.restart {
            if let Err(e) = control.start(name).await {
                problems.push(format!("start {e}"));
            }
        }
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
    let outcome = if problems.is_empty() {
        Outcome::Installed
    } else {
        Outcome::Indeterminate(problems.join("; "))
    };
    FaultRecord::new("heal", outcome)
        .with("nodes", names)
        .with("restarted", &opts.restart)
}

/// A fault still installed on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residue {
    pub node: String,
    pub what: ResidueKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "residue", rename_all = "kebab-case")]
pub enum ResidueKind {
    /// One of our iptables chains (`tool` is iptables or ip6tables).
    Chain { tool: String, chain: String },
    /// An nft table named `faultline`.
    NftTable { family: String },
    /// A root qdisc of a kind the nemesis installs.
    Qdisc { dev: String, kind: String },
    /// The node's offset file holds a non-zero (or unreadable) offset.
    ClockOffset { text: String },
    /// A clock strobe loop is still running.
    ClockStrobe { pid: String },
    /// A process is stopped (state T).
    StoppedProcess { pid: String, command: String },
    /// The node could not be checked; it may hold anything.
    Unchecked { cause: String },
}

impl fmt::Display for Residue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.node;
        match &self.what {
            ResidueKind::Chain { tool, chain } => write!(f, "{n}: {tool} chain {chain} present"),
            ResidueKind::NftTable { family } => {
                write!(f, "{n}: nft table {family} faultline present")
            }
            ResidueKind::Qdisc { dev, kind } => write!(f, "{n}: {kind} qdisc on {dev}"),
            ResidueKind::ClockOffset { text } => write!(f, "{n}: clock offset file holds {text:?}"),
            ResidueKind::ClockStrobe { pid } => write!(f, "{n}: clock strobe running (pid {pid})"),
            ResidueKind::StoppedProcess { pid, command } => {
                write!(f, "{n}: process {pid} ({command}) is stopped")
            }
            ResidueKind::Unchecked { cause } => write!(f, "{n}: could not check: {cause}"),
        }
    }
}

/// Parses the output of [`scripts::residue_probe`] from `node`. Lines it does not know are
/// ignored; a zero offset is no residue.
pub fn parse_residue(node: &str, probe_output: &str) -> Vec<Residue> {
    let mut out = Vec::new();
    for line in probe_output.lines() {
        let mut words = line.split_whitespace();
        let tag = words.next();
        let a = words.next().unwrap_or("").to_string();
        let b = words.next().unwrap_or("").to_string();
        let what = match tag {
            Some("chain") => ResidueKind::Chain { tool: a, chain: b },
            Some("nft") => ResidueKind::NftTable { family: a },
            Some("qdisc") => ResidueKind::Qdisc { dev: a, kind: b },
            Some("offset") => {
                let text = line["offset".len()..].trim().to_string();
                match parse_offset(&text) {
                    Ok(0) => continue,
                    _ => ResidueKind::ClockOffset { text },
                }
            }
            Some("strobe") => ResidueKind::ClockStrobe { pid: a },
            Some("stopped") => ResidueKind::StoppedProcess { pid: a, command: b },
            _ => continue,
        };
        out.push(Residue {
            node: node.to_string(),
            what,
        });
    }
    out
}

/// Every fault of ours still installed on `nodes` (as the login user; see [`residue_with`]).
pub async fn residue(nodes: &[Arc<dyn Remote>]) -> Vec<Residue> {
    residue_with(nodes, &Access::default()).await
}

/// [`residue`] with explicit privilege (iptables needs root).
pub async fn residue_with(nodes: &[Arc<dyn Remote>], access: &Access) -> Vec<Residue> {
    let jobs = nodes
        .iter()
        .map(|n| {
            (
                n.clone(),
                scripts::residue_probe(
                    &access.offset_files.path(n.name()),
                    &clock::strobe_pidfile(n.name()),
                ),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (node, r) in run_all(jobs, access).await {
        match r {
            NodeResult::Done(stdout) => out.extend(parse_residue(&node, &stdout)),
            NodeResult::Unsupported(cause)
            | NodeResult::Failed(cause)
            | NodeResult::Lost(cause) => out.push(Residue {
                node,
                what: ResidueKind::Unchecked { cause },
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residue_lines_are_parsed() {
        let probe = "chain iptables FAULTLINE\nchain ip6tables FAULTLINE-LOSS\nnft inet faultline\n\
                     qdisc eth0 tbf\noffset +0\noffset -1.500\nstrobe 4242\nstopped 77 sleep\nnoise\n";
        let got: Vec<String> = parse_residue("n1", probe)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "n1: iptables chain FAULTLINE present",
                "n1: ip6tables chain FAULTLINE-LOSS present",
                "n1: nft table inet faultline present",
                "n1: tbf qdisc on eth0",
                "n1: clock offset file holds \"-1.500\"",
                "n1: clock strobe running (pid 4242)",
                "n1: process 77 (sleep) is stopped",
            ]
        );
    }

    #[test]
    fn zero_and_empty_offsets_are_clean_but_garbage_is_not() {
        assert!(parse_residue("n1", "offset +0\noffset \noffset -0.000\n").is_empty());
        assert_eq!(
            parse_residue("n1", "offset @2030-01-01 00:00:00\n")[0].what,
            ResidueKind::ClockOffset {
                text: "@2030-01-01 00:00:00".into()
            }
        );
    }

    #[test]
    fn heal_script_removes_everything_ours() {
        let s = heal_script("n2", &clock::faketime_file("n2"), true);
        for needle in [
            "iptables -w -X FAULTLINE 2>/dev/null",
            "iptables -w -X FAULTLINE-LOSS 2>/dev/null",
            "tc qdisc del dev \"$dev\" root",
            "/var/lib/faultline/clock/n2.strobe.pid",
            "if [ -f '/var/lib/faultline/clock/n2.faketime' ]; then mkdir -p",
            "printf '%s\\n' '+0'",
            "kill -CONT",
        ] {
            assert!(s.contains(needle), "heal script lacks {needle:?}:\n{s}");
        }
        assert!(!heal_script("n2", "/f", false).contains("kill -CONT"));
        assert!(!s.contains("set -e"), "heal must go on after a step fails");
    }
}
