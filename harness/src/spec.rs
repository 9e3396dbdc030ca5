//! Run options written in YAML: the file of `faultline run --config FILE` (also the `test.yaml`
//! a stored run holds, so a stored test can be run again) and the `defaults:` of a campaign file.
//!
//! Every key is optional; the command line (or a campaign entry) overrides the file, and what
//! nobody gives takes the defaults of `faultline run`. Unknown keys are errors, and every error
//! names `FILE:LINE:COLUMN`.
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nemesis::{FaultKind, ScheduleMode};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use workloads::gen::WorkloadKind;

use crate::db::{EtcdBinary, Protocol};
use crate::run::{Concurrency, Nodes, RunConfig, Target};

/// The systems Faultline can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetName {
    Raft,
    Paxos,
    #[serde(rename = "2pc")]
    #[value(name = "2pc")]
    TwoPc,
    /// etcd, one member per node (tested with Debian's etcd 3.4).
    Etcd,
}

impl TargetName {
    pub const ALL: [TargetName; 4] = [
        TargetName::Raft,
        TargetName::Paxos,
        TargetName::TwoPc,
        TargetName::Etcd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetName::Raft => "raft",
            TargetName::Paxos => "paxos",
            TargetName::TwoPc => "2pc",
            TargetName::Etcd => "etcd",
        }
    }

    /// The bundled server's protocol, or `None` for etcd.
    pub fn protocol(self) -> Option<Protocol> {
        match self {
            TargetName::Raft => Some(Protocol::Raft),
            TargetName::Paxos => Some(Protocol::Paxos),
            TargetName::TwoPc => Some(Protocol::TwoPc),
            TargetName::Etcd => None,
        }
    }

    /// The known bugs `--bug` can switch on (targets/BUGS.md).
    pub fn bugs(self) -> &'static [&'static str] {
        const TWOPC: &[&str] = &[
            targets::twopc::BUG_EARLY_UNLOCK,
            targets::twopc::BUG_VOLATILE_PREPARE,
        ];
        match self {
            TargetName::Raft => targets::raft::BUGS,
            TargetName::Paxos => targets::paxos::BUGS,
            TargetName::TwoPc => TWOPC,
            TargetName::Etcd => &[],
        }
    }

    /// The read modes `--read-mode` accepts.
    pub fn read_modes(self) -> [&'static str; 2] {
        match self {
            TargetName::Etcd => ["linearizable", "serializable"],
            _ => ["quorum", "lease"],
        }
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Run options as a file gives them; `None` is "not given here".
///
/// Besides the options, the informational keys of a stored `test.yaml` (`test`, `cluster`,
/// `server_bin`, `schedule`, `versions`, `bank`, a `nodes` list) are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub target: Option<TargetName>,
    pub workload: Option<WorkloadKind>,
    /// `partition,kill`, `[partition, kill]`, `none` or `[]`.
    #[serde(default, deserialize_with = "fault_mix")]
    pub nemesis: Option<Vec<FaultKind>>,
    #[serde(alias = "nemesis_interval_s")]
    pub nemesis_interval: Option<f64>,
    /// `alternate` (one fault at a time) or `overlap` (each kind on its own timeline).
    pub nemesis_schedule: Option<ScheduleMode>,
    /// Share of partitions, kills, pauses (and, overlapping, clock faults) aimed at the leader.
    pub leader_share: Option<f64>,
    #[serde(alias = "time_limit_s")]
    pub time_limit: Option<f64>,
    /// A number of clients, or `3n` (per node).
    #[serde(default, deserialize_with = "concurrency")]
    pub concurrency: Option<Concurrency>,
    /// Invocations per second; 0 or `null` for as fast as the clients can.
    #[serde(default, deserialize_with = "rate")]
    pub rate: Option<f64>,
    pub seed: Option<u64>,
    /// `bug: NAME`, or `bugs: [A, B]` (switched on together).
    #[serde(default, alias = "bug", deserialize_with = "names")]
    pub bugs: Option<Vec<String>>,
    pub read_mode: Option<String>,
    /// Flags passed as they are to every server: `server_args: [--max-append-entries=1]`.
    #[serde(default, alias = "server_arg", deserialize_with = "names")]
    pub server_args: Option<Vec<String>>,
    #[serde(alias = "op_timeout_s")]
    pub op_timeout: Option<f64>,
    /// The size of the local cluster when no nodes are given otherwise. A list of node names
    /// (a stored `test.yaml`) is informational.
    #[serde(default, deserialize_with = "node_count")]
    pub nodes: Option<usize>,

    /// Informational keys of a stored test.yaml, accepted and ignored.
    #[serde(default)]
    pub test: Option<IgnoredAny>,
    #[serde(default)]
    pub cluster: Option<IgnoredAny>,
    #[serde(default)]
    pub server_bin: Option<IgnoredAny>,
    #[serde(default)]
    pub schedule: Option<IgnoredAny>,
    #[serde(default)]
    pub versions: Option<IgnoredAny>,
    /// The bank workload's accounts and total, as the runner recorded them.
    #[serde(default)]
    pub bank: Option<IgnoredAny>,
}

/// Every option of one run, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub target: TargetName,
    pub workload: WorkloadKind,
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval: f64,
    pub nemesis_schedule: ScheduleMode,
    /// `None`: the target's default (0.5 with a leader, 0 for 2PC).
    pub leader_share: Option<f64>,
    pub time_limit: f64,
    pub concurrency: Concurrency,
    /// 0: as fast as the clients can.
    pub rate: f64,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub read_mode: Option<String>,
    /// Passed as they are to every server's command line.
    pub server_args: Vec<String>,
    pub op_timeout: f64,
}

/// A bad option: `field` is the flag's name without dashes (`read-mode`); callers say where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            field,
            message: message.into(),
        }
    }

    /// `--read-mode: ...`, as the command line names it.
    pub fn as_flag(&self) -> String {
        format!("--{}: {}", self.field, self.message)
    }

    /// `read_mode: ...`, as a YAML file names it.
    pub fn as_key(&self) -> String {
        format!("{}: {}", self.field.replace('-', "_"), self.message)
    }
}

/// Where a run happens and with which binaries: what a [`RunOptions`] needs to become a
/// [`RunConfig`].
#[derive(Debug, Clone)]
pub struct Placement {
    pub nodes: Nodes,
    pub store: PathBuf,
    /// The `faultline-server` binary (needed only for the bundled targets).
    pub server_bin: Option<PathBuf>,
    pub etcd: EtcdBinary,
    pub leave_db_running: bool,
    pub progress: bool,
}

impl RunSpec {
    /// Reads a YAML file of run options; the error names `FILE:LINE:COLUMN`.
    pub fn from_file(file: &Path) -> Result<RunSpec, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        RunSpec::from_yaml(&text, file)
    }

    /// Parses run options; `file` only names the place in errors.
    pub fn from_yaml(text: &str, file: &Path) -> Result<RunSpec, String> {
        if text.trim().is_empty() {
            return Ok(RunSpec::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, &e))
    }

    /// These options, with `base`'s where these give none.
    pub fn or(&self, base: &RunSpec) -> RunSpec {
        RunSpec {
            target: self.target.or(base.target),
            workload: self.workload.or(base.workload),
            nemesis: self.nemesis.clone().or_else(|| base.nemesis.clone()),
            nemesis_interval: self.nemesis_interval.or(base.nemesis_interval),
            nemesis_schedule: self.nemesis_schedule.or(base.nemesis_schedule),
            leader_share: self.leader_share.or(base.leader_share),
            time_limit: self.time_limit.or(base.time_limit),
            concurrency: self.concurrency.or(base.concurrency),
            rate: self.rate.or(base.rate),
            seed: self.seed.or(base.seed),
            bugs: self.bugs.clone().or_else(|| base.bugs.clone()),
            read_mode: self.read_mode.clone().or_else(|| base.read_mode.clone()),
            server_args: self
                .server_args
                .clone()
                .or_else(|| base.server_args.clone()),
            op_timeout: self.op_timeout.or(base.op_timeout),
            nodes: self.nodes.or(base.nodes),
            ..RunSpec::default()
        }
    }

    /// Fills in the defaults of `faultline run` and checks the result ([`RunOptions::check`]).
    pub fn resolve(&self) -> Result<RunOptions, Invalid> {
        let target = self.target.ok_or_else(|| {
            Invalid::new(
                "target",
                "no target given (raft, paxos, 2pc or etcd) — give --target or `target:` in the file",
            )
        })?;
        let opts = RunOptions {
            target,
            workload: self.workload.unwrap_or(WorkloadKind::Register),
            nemesis: self
                .nemesis
                .clone()
                .unwrap_or_else(|| vec![FaultKind::Partition, FaultKind::Kill]),
            nemesis_interval: self.nemesis_interval.unwrap_or(10.0),
            nemesis_schedule: self.nemesis_schedule.unwrap_or_default(),
            leader_share: self.leader_share,
            time_limit: self.time_limit.unwrap_or(60.0),
            concurrency: self.concurrency.unwrap_or(Concurrency::PerNode(1)),
            rate: self.rate.unwrap_or(100.0),
            seed: self.seed.unwrap_or(0),
            bugs: self.bugs.clone().unwrap_or_default(),
            read_mode: self.read_mode.clone(),
            server_args: self.server_args.clone().unwrap_or_default(),
            op_timeout: self.op_timeout.unwrap_or(5.0),
        };
        opts.check()?;
        Ok(opts)
    }
}

/// A positive, finite number of seconds.
fn seconds(field: &'static str, s: f64) -> Result<Duration, Invalid> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Invalid::new(
                field,
                format!("expected a positive number of seconds, found {s}"),
            )
        })
}

impl RunOptions {
    /// What can be checked before touching a node: bug names and read modes for the target,
    /// positive durations, a rate.
    pub fn check(&self) -> Result<(), Invalid> {
        let t = self.target;
        if let Some(mode) = &self.read_mode {
            let modes = t.read_modes();
            if !modes.contains(&mode.as_str()) {
                return Err(Invalid::new(
                    "read-mode",
                    format!(
                        "{mode:?} (expected {} or {} for target {t})",
                        modes[0], modes[1]
                    ),
                ));
            }
        }
        if t == TargetName::Etcd && !self.bugs.is_empty() {
            return Err(Invalid::new(
                "bug",
                "etcd has no switchable bugs (they belong to the bundled servers)",
            ));
        }
        for bug in &self.bugs {
            if !t.bugs().contains(&bug.as_str()) {
                return Err(Invalid::new(
                    "bug",
                    format!(
                        "{bug:?} is not a known bug of {t} (known: {}; see targets/BUGS.md)",
                        t.bugs().join(", ")
                    ),
                ));
            }
        }
        seconds("nemesis-interval", self.nemesis_interval)?;
        if let Some(share) = self.leader_share {
            if !(0.0..=1.0).contains(&share) {
                return Err(Invalid::new(
                    "leader-share",
                    format!("{share} is not a share between 0 and 1"),
                ));
            }
        }
        seconds("time-limit", self.time_limit)?;
        seconds("op-timeout", self.op_timeout)?;
        for arg in &self.server_args {
            if arg.is_empty() || arg.chars().any(char::is_control) {
                return Err(Invalid::new(
                    "server-arg",
                    format!("{arg:?} is not a command-line flag (empty, or a control character)"),
                ));
            }
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(Invalid::new(
                "rate",
                format!("{} is not a rate in Hz", self.rate),
            ));
        }
        Ok(())
    }

    /// The runner's configuration for these options at `place`.
    pub fn run_config(&self, place: &Placement) -> Result<RunConfig, Invalid> {
        self.check()?;
        let (target, server_bin) = match self.target.protocol() {
            Some(p) => {
                let bin = place.server_bin.clone().ok_or_else(|| {
                    Invalid::new("server-bin", "no faultline-server binary was given")
                })?;
                (Target::Server(p), bin)
            }
            None => (Target::Etcd(place.etcd.clone()), PathBuf::new()),
        };
        Ok(RunConfig {
            target,
            workload: self.workload,
            nemesis: self.nemesis.clone(),
            nemesis_interval: seconds("nemesis-interval", self.nemesis_interval)?,
            nemesis_schedule: self.nemesis_schedule,
            leader_share: self.leader_share,
            time_limit: seconds("time-limit", self.time_limit)?,
            concurrency: self.concurrency,
            rate: (self.rate > 0.0).then_some(self.rate),
            seed: self.seed,
            bugs: self.bugs.clone(),
            read_mode: self.read_mode.clone(),
            server_args: self.server_args.clone(),
            nodes: place.nodes.clone(),
            store: place.store.clone(),
            server_bin,
            leave_db_running: place.leave_db_running,
            op_timeout: seconds("op-timeout", self.op_timeout)?,
            ready_timeout: Duration::from_secs(60),
            progress: place.progress,
        })
    }

    /// As the command line writes the fault kinds: `partition,kill`, or `none`.
    pub fn nemesis_list(&self) -> String {
        if self.nemesis.is_empty() {
            "none".to_string()
        } else {
            self.nemesis
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

/// `FILE:LINE:COLUMN: message` for a YAML error.
pub fn yaml_error(file: &Path, e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let message = text.strip_suffix(&suffix).unwrap_or(&text);
            format!(
                "{}:{}:{}: {message}",
                file.display(),
                loc.line(),
                loc.column()
            )
        }
        None => format!("{}: {text}", file.display()),
    }
}

/// One string or a list of strings.
pub(crate) struct Strings;

impl<'de> Visitor<'de> for Strings {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(vec![v.to_string()]))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(Some(out))
    }
}

fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(Strings)
}

/// A fault mix: `a,b` or a list of kinds (`none` or `[]` for none).
pub(crate) struct MixVisitor;

impl<'de> Visitor<'de> for MixVisitor {
    type Value = Option<Vec<FaultKind>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("fault kinds: `partition,kill`, a list of kinds, or none")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        FaultKind::parse_list(v).map(Some).map_err(E::custom)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        match Strings.visit_seq(seq)? {
            Some(parts) => self.visit_str(&parts.join(",")),
            None => Ok(None),
        }
    }
}

fn fault_mix<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<FaultKind>>, D::Error> {
    d.deserialize_any(MixVisitor)
}

/// A number of clients or `Kn`.
pub(crate) struct ConcurrencyVisitor;

impl<'de> Visitor<'de> for ConcurrencyVisitor {
    type Value = Concurrency;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a positive number of clients or a multiple of the node count such as 2n")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Concurrency, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Concurrency, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Concurrency, E> {
        v.parse().map_err(E::custom)
    }
}

fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Concurrency>, D::Error> {
    d.deserialize_any(ConcurrencyVisitor).map(Some)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    // A stored test.yaml writes an unlimited rate as null.
    Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(0.0)))
}

fn node_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number of local nodes (or a stored test's list of node names)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            match usize::try_from(v) {
                Ok(n) if (1..=200).contains(&n) => Ok(Some(n)),
                _ => Err(E::custom(format!("{v} nodes: expected 1 to 200"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{v} nodes: expected 1 to 200")))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(Count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunSpec, String> {
        RunSpec::from_yaml(text, Path::new("t.yaml"))
    }

    #[test]
    fn every_option_parses_and_defaults_fill_the_rest() {
        let spec = parse(
            "target: 2pc\nworkload: list-append\nnemesis: partition,kill\n\
             nemesis_interval: 5\nnemesis_schedule: overlap\nleader_share: 0.8\ntime_limit: 20\nconcurrency: 3n\n\
             rate: 0\nseed: 7\nbug: early-unlock\nop_timeout: 2.5\nnodes: 3\n\
             server_args: [--tick-ms=10]\n",
        )
        .unwrap();
        assert_eq!(spec.nodes, Some(3));
        let opts = spec.resolve().unwrap();
        assert_eq!(
            opts,
            RunOptions {
                target: TargetName::TwoPc,
                workload: WorkloadKind::ListAppend,
                nemesis: vec![FaultKind::Partition, FaultKind::Kill],
                nemesis_interval: 5.0,
                nemesis_schedule: ScheduleMode::Overlap,
                leader_share: Some(0.8),
                time_limit: 20.0,
                concurrency: Concurrency::PerNode(3),
                rate: 0.0,
                seed: 7,
                bugs: vec!["early-unlock".into()],
                read_mode: None,
                server_args: vec!["--tick-ms=10".into()],
                op_timeout: 2.5,
            }
        );
        let defaults = parse("target: raft").unwrap().resolve().unwrap();
        assert_eq!(defaults.time_limit, 60.0);
        assert_eq!(
            defaults.nemesis,
            vec![FaultKind::Partition, FaultKind::Kill]
        );
        assert_eq!(defaults.concurrency, Concurrency::PerNode(1));
        assert_eq!(defaults.nemesis_schedule, ScheduleMode::Alternate);
        assert_eq!(defaults.leader_share, None, "the target's own default");
        let bad = parse("target: raft\nleader_share: 1.5\n")
            .unwrap()
            .resolve();
        assert_eq!(
            bad.unwrap_err().as_flag(),
            "--leader-share: 1.5 is not a share between 0 and 1"
        );
        // The file's mode is overridden like any other key.
        let flags = RunSpec {
            nemesis_schedule: Some(ScheduleMode::Alternate),
            ..RunSpec::default()
        };
        assert_eq!(
            flags.or(&spec).nemesis_schedule,
            Some(ScheduleMode::Alternate)
        );
        assert_eq!(
            RunSpec::default().or(&spec).nemesis_schedule,
            Some(ScheduleMode::Overlap)
        );
        let e = parse("target: raft\nnemesis_schedule: mixed\n").unwrap_err();
        assert!(e.starts_with("t.yaml:2:"), "{e}");
        assert!(e.contains("mixed") && e.contains("overlap"), "{e}");
    }

    #[test]
    fn a_stored_test_yaml_is_accepted_with_its_informational_keys() {
        // The shape `run::execute` writes.
        let text = "test: raft-register\ntarget: raft\nworkload: register\nnemesis:\n- partition\n\
                    - kill\nnemesis_interval_s: 2.0\nnemesis_schedule: overlap\ntime_limit_s: 10.0\nconcurrency: 6\n\
                    rate: null\nseed: 3\nbugs: []\nread_mode: null\nnodes:\n- n1\n- n2\n- n3\n\
                    cluster: local 3 nodes (/var/lib/faultline/cluster)\n\
                    server_bin: /x/faultline-server\nop_timeout_s: 5.0\nschedule:\n- at: 1\n";
        let opts = parse(text).unwrap().resolve().unwrap();
        assert_eq!(opts.target, TargetName::Raft);
        assert_eq!(opts.nemesis, vec![FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(opts.time_limit, 10.0);
        assert_eq!(opts.nemesis_schedule, ScheduleMode::Overlap);
        assert_eq!(opts.concurrency, Concurrency::Fixed(6));
        assert_eq!(opts.rate, 0.0, "a null rate is unlimited");
        assert_eq!(opts.seed, 3);
        assert!(opts.bugs.is_empty());
        assert_eq!(parse(text).unwrap().nodes, None);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "target: raft\ntime_limt: 5\n",
                "t.yaml:2:1: unknown field `time_limt`",
            ),
            (
                "target: rafft\n",
                "t.yaml:1:9: target: unknown variant `rafft`",
            ),
            (
                "target: raft\nnemesis: partition,split\n",
                "t.yaml:2:10: nemesis: unknown fault kind \"split\"",
            ),
            (
                "target: raft\nconcurrency: 0n\n",
                "t.yaml:2:14: concurrency: \"0n\" is not a positive number",
            ),
            ("seed: -1\n", "t.yaml:1:7: seed: invalid type: integer `-1`"),
            (
                "time_limit: 5\ntime_limit_s: 6\n",
                "t.yaml:1:1: duplicate field `time_limit`",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn options_are_checked_against_the_target() {
        let bad = |text: &str| parse(text).unwrap().resolve().unwrap_err();
        assert_eq!(bad("target: raft\nbug: early-unlock").field, "bug");
        assert_eq!(bad("target: etcd\nbug: stale-read").field, "bug");
        assert_eq!(bad("target: etcd\nread_mode: lease").field, "read-mode");
        assert_eq!(bad("target: raft\ntime_limit: 0").field, "time-limit");
        assert_eq!(bad("target: raft\nserver_arg: ''").field, "server-arg");
        assert_eq!(
            parse("target: raft\nserver_arg: --max-append-entries=1")
                .unwrap()
                .resolve()
                .unwrap()
                .server_args,
            vec!["--max-append-entries=1".to_string()]
        );
        assert_eq!(bad("workload: set").field, "target");
        assert!(parse("target: etcd\nread_mode: serializable")
            .unwrap()
            .resolve()
            .is_ok());
    }

    #[test]
    fn the_file_gives_way_to_what_overrides_it() {
        let file = parse("target: raft\nseed: 4\ntime_limit: 30").unwrap();
        let flags = RunSpec {
            seed: Some(9),
            ..RunSpec::default()
        };
        let opts = flags.or(&file).resolve().unwrap();
        assert_eq!((opts.seed, opts.time_limit), (9, 30.0));
    }
}
