//! Fault operations: what a schedule asks the nemesis to do, as plain serialisable data.
use std::fmt;
use std::str::FromStr;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::ClockChange;
use crate::grudge::{Grudge, Shape};

/// The families of faults, as named on the command line (`--nemesis partition,clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Partition,
    Clock,
    Kill,
    Pause,
    Packet,
}

pub const ALL_KINDS: [FaultKind; 5] = [
    FaultKind::Partition,
    FaultKind::Clock,
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Packet,
];

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Clock => "clock",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Packet => "packet",
        }
    }

    /// Parses a comma-separated list (`partition,clock`); `all` means every kind, `none` or
    /// an empty string none. Duplicates are dropped, order kept.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, FaultParseError> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let kinds: Vec<FaultKind> = match item {
                "all" => ALL_KINDS.to_vec(),
                "none" => vec![],
                other => vec![other.parse()?],
            };
            for k in kinds {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    #[error("unknown fault kind {0:?} (expected a comma-separated list of partition, clock, kill, pause, packet, or all)")]
    UnknownKind(String),
    #[error("unknown target set {0:?} (expected one, minority, majority, all or leader)")]
    UnknownTargets(String),
}

impl FromStr for FaultKind {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| FaultParseError::UnknownKind(s.to_string()))
    }
}

/// How to choose the nodes a crash, pause or packet fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetSpec {
    One,
    Minority,
    Majority,
    All,
    Leader,
}

pub const ALL_TARGET_SPECS: [TargetSpec; 5] = [
    TargetSpec::One,
    TargetSpec::Minority,
    TargetSpec::Majority,
    TargetSpec::All,
    TargetSpec::Leader,
];

impl FromStr for TargetSpec {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "one" => TargetSpec::One,
            "minority" => TargetSpec::Minority,
            "majority" => TargetSpec::Majority,
            "all" => TargetSpec::All,
            "leader" => TargetSpec::Leader,
            other => return Err(FaultParseError::UnknownTargets(other.to_string())),
        })
    }
}

/// Concrete targets: chosen when the schedule is made, or the leader found at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Targets {
    Nodes(Vec<String>),
    Leader,
}

impl Targets {
    /// Picks nodes for `spec` (a minority is a random non-empty set smaller than half, a
    /// majority a random set of exactly n/2+1).
    pub fn choose<R: Rng + ?Sized>(spec: TargetSpec, nodes: &[String], rng: &mut R) -> Targets {
        let n = nodes.len();
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let take = match spec {
            TargetSpec::Leader => return Targets::Leader,
            TargetSpec::All => n,
            TargetSpec::One => n.min(1),
            TargetSpec::Majority => (n / 2 + 1).min(n),
            TargetSpec::Minority => {
                let max = n.saturating_sub(1) / 2; // largest size that is < n/2 ... strictly a minority
                if max == 0 {
                    n.min(1)
                } else {
                    rng.random_range(1..=max)
                }
            }
        };
        shuffled.truncate(take);
        shuffled.sort();
        Targets::Nodes(shuffled)
    }
}

/// A packet-level fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PacketFault {
    /// Drop inbound packets from peers with this probability (iptables `statistic`).
    Loss { probability: f64 },
    /// Limit egress bandwidth (tc `tbf`).
    Bandwidth { kbit: u64 },
    /// Delay egress packets (tc `netem`).
    Delay { ms: u64, jitter_ms: u64 },
    /// Duplicate a share of egress packets (tc `netem`).
    Duplicate { percent: f64 },
    /// Reorder a share of egress packets (tc `netem`; needs a delay to reorder against).
    Reorder { percent: f64, delay_ms: u64 },
}

impl PacketFault {
    /// The netem arguments, for the kinds that need netem.
    pub fn netem_args(&self) -> Option<String> {
        match self {
            PacketFault::Loss { .. } | PacketFault::Bandwidth { .. } => None,
            PacketFault::Delay { ms, jitter_ms } => Some(format!("delay {ms}ms {jitter_ms}ms")),
            PacketFault::Duplicate { percent } => Some(format!("duplicate {percent}%")),
            PacketFault::Reorder { percent, delay_ms } => {
                Some(format!("delay {delay_ms}ms reorder {percent}%"))
            }
        }
    }
}

/// One thing the nemesis is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum FaultOp {
    /// Install a partition. `grudge` is fixed when the schedule is made, except for shapes that
    /// depend on the run (isolate-leader), which are resolved when applied.
    StartPartition {
        shape: Shape,
        grudge: Option<Grudge>,
    },
    StopPartition,
    Clock {
        change: ClockChange,
    },
    Kill {
        targets: Targets,
    },
    /// Restart every node the nemesis killed.
    Restart,
    Pause {
        targets: Targets,
    },
    /// Resume every node the nemesis paused.
    Resume,
    StartPacket {
        fault: PacketFault,
        targets: Targets,
    },
    StopPacket,
}

impl FaultOp {
    /// The history `f` of the record this operation produces.
    pub fn f(&self) -> &'static str {
        match self {
            FaultOp::StartPartition { .. } => "start-partition",
            FaultOp::StopPartition => "stop-partition",
            FaultOp::Clock { change } => match change {
                ClockChange::Bump { .. } | ClockChange::BumpLeader { .. } => "bump-clock",
                ClockChange::Strobe { .. } => "strobe-clock",
                ClockChange::Reset => "reset-clock",
            },
            FaultOp::Kill { .. } => "kill",
            FaultOp::Restart => "start",
            FaultOp::Pause { .. } => "pause",
            FaultOp::Resume => "resume",
            FaultOp::StartPacket { .. } => "start-packet",
            FaultOp::StopPacket => "stop-packet",
        }
    }

    /// The fault kind this operation belongs to.
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultOp::StartPartition { .. } | FaultOp::StopPartition => FaultKind::Partition,
            FaultOp::Clock { .. } => FaultKind::Clock,
            FaultOp::Kill { .. } | FaultOp::Restart => FaultKind::Kill,
            FaultOp::Pause { .. } | FaultOp::Resume => FaultKind::Pause,
            FaultOp::StartPacket { .. } | FaultOp::StopPacket => FaultKind::Packet,
        }
    }
}

/// A random element of a non-empty slice.
pub(crate) fn pick<T: Copy, R: Rng + ?Sized>(xs: &[T], rng: &mut R) -> T {
    *xs.choose(rng).expect("non-empty choice list")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn kinds_parse_from_the_command_line() {
        assert_eq!(
            FaultKind::parse_list("partition, clock,partition"),
            Ok(vec![FaultKind::Partition, FaultKind::Clock])
        );
        assert_eq!(FaultKind::parse_list("all").unwrap(), ALL_KINDS.to_vec());
        assert_eq!(FaultKind::parse_list("").unwrap(), vec![]);
        let e = FaultKind::parse_list("partition,flood").unwrap_err();
        assert_eq!(e, FaultParseError::UnknownKind("flood".into()));
        assert!(e.to_string().contains("\"flood\""));
    }

    #[test]
    fn target_sets_have_the_right_sizes() {
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let mut size = |spec| match Targets::choose(spec, &nodes, &mut rng) {
                Targets::Nodes(v) => v.len(),
                Targets::Leader => usize::MAX,
            };
            assert_eq!(size(TargetSpec::One), 1);
            assert_eq!(size(TargetSpec::Majority), 3);
            assert_eq!(size(TargetSpec::All), 5);
            let m = size(TargetSpec::Minority);
            assert!((1..=2).contains(&m), "minority of 5 was {m}");
            assert_eq!(size(TargetSpec::Leader), usize::MAX);
        }
        let three: Vec<String> = nodes[..3].to_vec();
        match Targets::choose(TargetSpec::Minority, &three, &mut rng) {
            Targets::Nodes(v) => assert_eq!(v.len(), 1),
            Targets::Leader => panic!("not a leader spec"),
        }
        assert_eq!("leader".parse::<TargetSpec>(), Ok(TargetSpec::Leader));
        assert!("most".parse::<TargetSpec>().is_err());
    }

    #[test]
    fn netem_arguments() {
        assert_eq!(
            PacketFault::Delay {
                ms: 100,
                jitter_ms: 10
            }
            .netem_args()
            .as_deref(),
            Some("delay 100ms 10ms")
        );
        assert_eq!(
            PacketFault::Reorder {
                percent: 25.0,
                delay_ms: 20
            }
            .netem_args()
            .as_deref(),
            Some("delay 20ms reorder 25%")
        );
        assert_eq!(PacketFault::Loss { probability: 0.5 }.netem_args(), None);
    }
}
