//! Seeded fault schedules: the same seed and configuration always give the same schedule.
//!
//! Two modes ([`ScheduleMode`]):
//! - **alternate** (the default): quiet and faulty periods of `interval` each: at `interval` a
//!   fault of a randomly chosen kind starts, at `2 * interval` it stops, at `3 * interval` the
//!   next one starts, and so on while a whole start/stop pair fits in `duration`. One fault at a
//!   time.
//! - **overlap** (Jepsen's mixed nemesis): every kind in the mix has its own timeline of quiet
//!   and active periods, each drawn between half and one and a half `interval`s, so faults of
//!   different kinds overlap (a leader's clock set back while it is isolated, a node killed and
//!   restarted while a partition stands). Faults of one kind never overlap each other. In this
//!   mode a clock fault may also be aimed at the current leader (by `leader_share`), and such a
//!   change always sets the leader's clock back: forward only shortens a leader's lease.
//!
//! In both modes every start has its stop, no later than `duration`.
use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::clock::ClockChange;
use crate::fault::{pick, FaultKind, FaultOp, PacketFault, TargetSpec, Targets, ALL_TARGET_SPECS};
use crate::grudge::{Grudge, Shape};

/// How the faults of a schedule are laid out in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleMode {
    /// One fault at a time: quiet and faulty periods of `interval` each.
    #[default]
    Alternate,
    /// Each fault kind on its own randomised start/stop timeline, so kinds overlap.
    Overlap,
}

impl ScheduleMode {
    pub const ALL: [ScheduleMode; 2] = [ScheduleMode::Alternate, ScheduleMode::Overlap];

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleMode::Alternate => "alternate",
            ScheduleMode::Overlap => "overlap",
        }
    }
}

impl std::fmt::Display for ScheduleMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ScheduleMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ScheduleMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown nemesis schedule {s:?} (expected alternate or overlap)")
            })
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    pub seed: u64,
    /// How faults are laid out in time.
    #[serde(default)]
    pub mode: ScheduleMode,
    /// The node names, in inventory order.
    pub nodes: Vec<String>,
    /// The kinds to mix; empty gives an empty schedule.
    pub kinds: Vec<FaultKind>,
    /// Length of each quiet and each faulty period (alternate), or their mean (overlap).
    pub interval: Duration,
    /// The whole test; no fault is active after it.
    pub duration: Duration,
    /// Largest clock offset, in milliseconds, a bump or strobe uses.
    pub max_clock_offset_ms: u64,
    /// Partition shapes to draw from.
    pub shapes: Vec<Shape>,
    /// Packet faults to draw from.
    pub packet_faults: Vec<PacketFault>,
    /// Probability that a partition isolates the current leader, and that a kill or a pause
    /// hits it, instead of the random shape or node set (0 = never: the only choice for targets
    /// without a leader, whose leader faults would all be skipped). Leader-based protocols break
    /// where the leader is cut off or crashes (a deposed leader answering reads, a new leader
    /// missing acknowledged entries); a random minority contains the leader only now and then.
    /// In overlap mode the share also sets the leader's clock back that often.
    pub leader_share: f64,
}

impl ScheduleConfig {
    /// Defaults for a run: every partition shape but heal, offsets up to 5 s, loss, bandwidth
    /// and the netem faults.
    pub fn new(seed: u64, nodes: Vec<String>, kinds: Vec<FaultKind>) -> Self {
        ScheduleConfig {
            seed,
            mode: ScheduleMode::Alternate,
            nodes,
            kinds,
            interval: Duration::from_secs(10),
            duration: Duration::from_secs(60),
            max_clock_offset_ms: 5_000,
            shapes: crate::grudge::ALL_SHAPES
                .into_iter()
                .filter(|s| *s != Shape::Heal)
                .collect(),
            packet_faults: vec![
                PacketFault::Loss { probability: 0.2 },
                PacketFault::Loss { probability: 0.5 },
                PacketFault::Bandwidth { kbit: 1_000 },
                PacketFault::Delay {
                    ms: 100,
                    jitter_ms: 20,
                },
                PacketFault::Duplicate { percent: 10.0 },
                PacketFault::Reorder {
                    percent: 25.0,
                    delay_ms: 20,
                },
            ],
            leader_share: 0.0,
        }
    }
}

/// One operation and when (from the start of the test) to apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    #[serde(with = "millis")]
    pub at: Duration,
    pub op: FaultOp,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("nemesis interval must be longer than zero")]
    ZeroInterval,
    #[error("nemesis needs at least one node")]
    NoNodes,
    #[error("partition faults need at least 2 nodes, the cluster has {0}")]
    TooFewForPartition(usize),
    #[error("partition faults asked for but no partition shape given")]
    NoShapes,
    #[error("packet faults asked for but no packet fault given")]
    NoPacketFaults,
}

/// Builds the schedule for `cfg`.
pub fn schedule(cfg: &ScheduleConfig) -> Result<Vec<Scheduled>, ScheduleError> {
    if cfg.interval.is_zero() {
        return Err(ScheduleError::ZeroInterval);
    }
    if cfg.nodes.is_empty() {
        return Err(ScheduleError::NoNodes);
    }
    if cfg.kinds.contains(&FaultKind::Partition) {
        if cfg.nodes.len() < 2 {
            return Err(ScheduleError::TooFewForPartition(cfg.nodes.len()));
        }
        if cfg.shapes.is_empty() {
            return Err(ScheduleError::NoShapes);
        }
    }
    if cfg.kinds.contains(&FaultKind::Packet) && cfg.packet_faults.is_empty() {
        return Err(ScheduleError::NoPacketFaults);
    }
    if cfg.kinds.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match cfg.mode {
        ScheduleMode::Alternate => alternate(cfg),
        ScheduleMode::Overlap => overlap(cfg),
    })
}

/// One fault at a time, each start `interval` after the previous stop.
fn alternate(cfg: &ScheduleConfig) -> Vec<Scheduled> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut out = Vec::new();
    let mut start = cfg.interval;
    while start + cfg.interval <= cfg.duration {
        let kind = pick(&cfg.kinds, &mut rng);
        let (begin, end) = fault_pair(kind, cfg, &mut rng);
        out.push(Scheduled {
            at: start,
            op: begin,
        });
        out.push(Scheduled {
            at: start + cfg.interval,
            op: end,
        });
        start += cfg.interval * 2;
    }
    out
}

/// A period between half and one and a half `interval`s, in whole milliseconds (the unit a
/// schedule is stored in, so a stored schedule reads back exactly).
fn jittered(interval: Duration, rng: &mut StdRng) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    let lo = (ms / 2).max(1);
    Duration::from_millis(rng.random_range(lo..=ms + ms / 2))
}

/// Every kind on its own timeline: quiet, active, quiet, active, ... with jittered lengths,
/// while a whole active period fits in `duration`. Each kind draws from its own generator,
/// seeded from `seed` and the kind, so adding a kind to the mix leaves the others' timelines
/// as they were. The timelines are merged by time (ties in the mix's order).
fn overlap(cfg: &ScheduleConfig) -> Vec<Scheduled> {
    let mut out = Vec::new();
    for kind in &cfg.kinds {
        let mut rng = StdRng::seed_from_u64(kind_seed(cfg.seed, *kind));
        let mut t = jittered(cfg.interval, &mut rng);
        loop {
            let stop = t + jittered(cfg.interval, &mut rng);
            if stop > cfg.duration {
                break;
            }
            let (begin, end) = fault_pair(*kind, cfg, &mut rng);
            out.push(Scheduled { at: t, op: begin });
            out.push(Scheduled { at: stop, op: end });
            t = stop + jittered(cfg.interval, &mut rng);
        }
    }
    // Stable: at equal times the mix's order, and a kind's stop before its next start.
    out.sort_by_key(|s| s.at);
    out
}

/// The seed of `kind`'s timeline (a fixed odd multiplier per kind, mixed into `seed`).
fn kind_seed(seed: u64, kind: FaultKind) -> u64 {
    let k = crate::fault::ALL_KINDS
        .iter()
        .position(|x| *x == kind)
        .unwrap_or(0) as u64;
    seed ^ (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn fault_pair(kind: FaultKind, cfg: &ScheduleConfig, rng: &mut StdRng) -> (FaultOp, FaultOp) {
    let nodes = &cfg.nodes;
    match kind {
        FaultKind::Partition => {
            let mut shapes = cfg.shapes.clone();
            if nodes.len() < 3 {
                shapes.retain(|s| !matches!(s, Shape::MajoritiesRing | Shape::Bridge));
            }
            let shape = if leader_first(cfg, rng) {
                Shape::IsolateLeader
            } else if shapes.is_empty() {
                Shape::One
            } else {
                pick(&shapes, rng)
            };
            let grudge = match shape {
                Shape::IsolateLeader => None,
                // Node counts were checked above, so every other shape builds.
                other => Grudge::for_shape(other, nodes, None, rng).ok(),
            };
            (
                FaultOp::StartPartition { shape, grudge },
                FaultOp::StopPartition,
            )
        }
        FaultKind::Clock => {
            let max = cfg.max_clock_offset_ms.max(1) as i64;
            // Only the overlap mode aims clock changes at the leader: alternate schedules stay
            // what they were for every seed, and a changed clock matters to a leader's lease
            // only together with a partition, which alternate never runs at the same time.
            if cfg.mode == ScheduleMode::Overlap && leader_first(cfg, rng) {
                let change = ClockChange::BumpLeader {
                    offset_ms: -rng.random_range((max + 1) / 2..=max),
                };
                return (
                    FaultOp::Clock { change },
                    FaultOp::Clock {
                        change: ClockChange::Reset,
                    },
                );
            }
            let chosen = match Targets::choose(pick(&ALL_TARGET_SPECS[..4], rng), nodes, rng) {
                Targets::Nodes(v) => v,
                Targets::Leader => unreachable!("leader is not among the first four specs"),
            };
            let change = if rng.random_bool(0.5) {
                let offsets_ms: BTreeMap<String, i64> = chosen
                    .into_iter()
                    .map(|n| {
                        let mag = rng.random_range(1..=max);
                        (n, if rng.random_bool(0.5) { mag } else { -mag })
                    })
                    .collect();
                ClockChange::Bump { offsets_ms }
            } else {
                let interval_ms = cfg.interval.as_millis() as u64;
                ClockChange::Strobe {
                    nodes: chosen,
                    a_ms: rng.random_range(0..=max),
                    b_ms: -rng.random_range(0..=max),
                    period_ms: rng.random_range(100..=1_000),
                    duration_ms: interval_ms.max(1),
                }
            };
            (
                FaultOp::Clock { change },
                FaultOp::Clock {
                    change: ClockChange::Reset,
                },
            )
        }
        FaultKind::Kill => (
            FaultOp::Kill {
                targets: process_targets(cfg, rng),
            },
            FaultOp::Restart,
        ),
        FaultKind::Pause => (
            FaultOp::Pause {
                targets: process_targets(cfg, rng),
            },
            FaultOp::Resume,
        ),
        FaultKind::Packet => {
            let fault = cfg.packet_faults[rng.random_range(0..cfg.packet_faults.len())].clone();
            let spec = pick(
                &[TargetSpec::One, TargetSpec::Minority, TargetSpec::All],
                rng,
            );
            (
                FaultOp::StartPacket {
                    fault,
                    targets: Targets::choose(spec, nodes, rng),
                },
                FaultOp::StopPacket,
            )
        }
    }
}

/// Whether this fault goes to the leader by [`ScheduleConfig::leader_share`]. Draws nothing when
/// the share is 0, so schedules without a leader share stay what they were for every seed.
fn leader_first(cfg: &ScheduleConfig, rng: &mut StdRng) -> bool {
    cfg.leader_share > 0.0 && rng.random_bool(cfg.leader_share.min(1.0))
}

/// The nodes a kill or pause hits.
fn process_targets(cfg: &ScheduleConfig, rng: &mut StdRng) -> Targets {
    if leader_first(cfg, rng) {
        Targets::Leader
    } else {
        Targets::choose(pick(&ALL_TARGET_SPECS, rng), &cfg.nodes, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::ALL_KINDS;

    fn cfg(seed: u64) -> ScheduleConfig {
        let nodes = (1..=5).map(|i| format!("n{i}")).collect();
        let mut c = ScheduleConfig::new(seed, nodes, ALL_KINDS.to_vec());
        c.duration = Duration::from_secs(600);
        c
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = schedule(&cfg(42)).unwrap();
        let b = schedule(&cfg(42)).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let c = schedule(&cfg(43)).unwrap();
        assert_ne!(a, c, "a different seed should give a different schedule");
    }

    #[test]
    fn every_start_has_its_stop_inside_the_duration() {
        for seed in 0..20 {
            let c = cfg(seed);
            let s = schedule(&c).unwrap();
            assert_eq!(s.len(), 2 * 30, "starts at 10, 30, ..., 590 s: 30 pairs");
            for pair in s.chunks(2) {
                let (start, stop) = (&pair[0], &pair[1]);
                assert_eq!(start.op.kind(), stop.op.kind());
                assert_eq!(stop.at, start.at + c.interval);
                assert!(stop.at <= c.duration);
                assert!(is_stop(&stop.op), "{:?}", stop.op);
            }
            assert!(s.windows(2).all(|w| w[0].at < w[1].at));
        }
    }

    #[test]
    fn the_mix_uses_only_and_all_requested_kinds() {
        let mut c = cfg(7);
        c.kinds = vec![FaultKind::Partition, FaultKind::Kill];
        let s = schedule(&c).unwrap();
        let kinds: std::collections::BTreeSet<FaultKind> = s.iter().map(|x| x.op.kind()).collect();
        assert_eq!(kinds, [FaultKind::Partition, FaultKind::Kill].into());
        for x in &s {
            if let FaultOp::StartPartition { shape, grudge } = &x.op {
                assert_eq!(grudge.is_none(), *shape == Shape::IsolateLeader, "{shape}");
            }
        }
    }

    #[test]
    fn a_leader_share_aims_that_share_of_partitions_kills_and_pauses_at_the_leader() {
        let mut c = cfg(11);
        c.kinds = vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];
        c.duration = Duration::from_secs(20 * 600);
        let leader_faults = |c: &ScheduleConfig| {
            let s = schedule(c).unwrap();
            let starts: Vec<&FaultOp> = s.iter().step_by(2).map(|x| &x.op).collect();
            let at_leader = starts
                .iter()
                .filter(|op| {
                    matches!(
                        op,
                        FaultOp::StartPartition {
                            shape: Shape::IsolateLeader,
                            ..
                        } | FaultOp::Kill {
                            targets: Targets::Leader
                        } | FaultOp::Pause {
                            targets: Targets::Leader
                        }
                    )
                })
                .count();
            at_leader as f64 / starts.len() as f64
        };
        // Without a share the leader is one shape of eight and one target spec of five.
        let base = leader_faults(&c);
        assert!((0.1..0.25).contains(&base), "{base}");
        c.leader_share = 0.5;
        let biased = leader_faults(&c);
        assert!((0.5..0.7).contains(&biased), "{biased}");
        c.leader_share = 1.0;
        assert_eq!(leader_faults(&c), 1.0);
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut c = cfg(1);
        c.interval = Duration::ZERO;
        assert_eq!(schedule(&c), Err(ScheduleError::ZeroInterval));
        let mut c = cfg(1);
        c.nodes = vec!["n1".into()];
        assert_eq!(schedule(&c), Err(ScheduleError::TooFewForPartition(1)));
        c.kinds = vec![FaultKind::Kill];
        assert!(schedule(&c).is_ok());
        let mut c = cfg(1);
        c.kinds = vec![];
        assert_eq!(schedule(&c), Ok(vec![]));
    }

    fn overlap_cfg(seed: u64, kinds: Vec<FaultKind>) -> ScheduleConfig {
        let mut c = cfg(seed);
        c.mode = ScheduleMode::Overlap;
        c.kinds = kinds;
        c.interval = Duration::from_secs(3);
        c.duration = Duration::from_secs(60);
        c
    }

    fn is_stop(op: &FaultOp) -> bool {
        matches!(
            op,
            FaultOp::StopPartition
                | FaultOp::Restart
                | FaultOp::Resume
                | FaultOp::StopPacket
                | FaultOp::Clock {
                    change: ClockChange::Reset
                }
        )
    }

    /// Per kind, the (start, stop) times, checking on the way that a kind's operations
    /// alternate start, stop, start, stop.
    fn periods(s: &[Scheduled]) -> BTreeMap<FaultKind, Vec<(Duration, Duration)>> {
        let mut open: BTreeMap<FaultKind, Duration> = BTreeMap::new();
        let mut out: BTreeMap<FaultKind, Vec<(Duration, Duration)>> = BTreeMap::new();
        for x in s {
            let k = x.op.kind();
            if is_stop(&x.op) {
                let start = open.remove(&k).expect("a stop without its start");
                assert!(start < x.at, "{k}: stop at {:?} not after start", x.at);
                out.entry(k).or_default().push((start, x.at));
            } else {
                assert!(open.insert(k, x.at).is_none(), "{k} started twice");
            }
        }
        assert!(open.is_empty(), "starts without a stop: {open:?}");
        out
    }

    #[test]
    fn the_default_mode_is_alternate_and_alternate_schedules_are_unchanged() {
        let c = cfg(3);
        assert_eq!(c.mode, ScheduleMode::Alternate);
        let mut o = c.clone();
        o.mode = ScheduleMode::Overlap;
        assert_ne!(schedule(&c).unwrap(), schedule(&o).unwrap());
        // A config stored before the mode existed reads as alternate.
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("mode");
        let back: ScheduleConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        // Alternate clock faults never name the leader, whatever the share.
        let mut c = cfg(9);
        c.kinds = vec![FaultKind::Clock];
        c.leader_share = 1.0;
        assert!(schedule(&c).unwrap().iter().all(|x| !matches!(
            x.op,
            FaultOp::Clock {
                change: ClockChange::BumpLeader { .. }
            }
        )));
        assert_eq!("overlap".parse(), Ok(ScheduleMode::Overlap));
        assert_eq!("alternate".parse(), Ok(ScheduleMode::Alternate));
        assert!("mixed"
            .parse::<ScheduleMode>()
            .unwrap_err()
            .contains("\"mixed\""));
    }

    #[test]
    fn overlap_schedules_are_deterministic_per_seed() {
        let c = overlap_cfg(42, ALL_KINDS.to_vec());
        let a = schedule(&c).unwrap();
        assert_eq!(a, schedule(&c).unwrap());
        assert_ne!(a, schedule(&overlap_cfg(43, ALL_KINDS.to_vec())).unwrap());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at), "sorted by time");
        let text = serde_json::to_string(&a).unwrap();
        let back: Vec<Scheduled> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back, a,
            "whole milliseconds: a stored schedule reads back exactly"
        );
        // A kind's timeline does not depend on the rest of the mix.
        let alone = schedule(&overlap_cfg(42, vec![FaultKind::Kill])).unwrap();
        let kills: Vec<Scheduled> = a
            .into_iter()
            .filter(|x| x.op.kind() == FaultKind::Kill)
            .collect();
        assert_eq!(kills, alone);
    }

    #[test]
    fn overlap_stops_every_fault_inside_the_duration_with_periods_around_the_interval() {
        for seed in 0..50 {
            let c = overlap_cfg(seed, ALL_KINDS.to_vec());
            let s = schedule(&c).unwrap();
            let per = periods(&s);
            assert_eq!(
                per.keys().copied().collect::<Vec<_>>(),
                ALL_KINDS.to_vec(),
                "seed {seed}: every kind has a timeline"
            );
            let (lo, hi) = (c.interval / 2, c.interval * 3 / 2);
            for (kind, ps) in &per {
                let mut prev_stop = Duration::ZERO;
                for (start, stop) in ps {
                    assert!(*stop <= c.duration, "seed {seed} {kind}: stop {stop:?}");
                    assert!((lo..=hi).contains(&(*stop - *start)), "{kind}: active");
                    assert!((lo..=hi).contains(&(*start - prev_stop)), "{kind}: quiet");
                    prev_stop = *stop;
                }
                // 60 s of periods of 1.5 to 4.5 s: between 6 and 20 starts.
                assert!(
                    (6..=20).contains(&ps.len()),
                    "seed {seed} {kind}: {}",
                    ps.len()
                );
            }
        }
    }

    #[test]
    fn overlap_makes_faults_of_different_kinds_overlap() {
        let mut overlapped = 0;
        for seed in 0..20 {
            let c = overlap_cfg(seed, vec![FaultKind::Partition, FaultKind::Clock]);
            let per = periods(&schedule(&c).unwrap());
            let both = per[&FaultKind::Partition].iter().any(|(a, b)| {
                per[&FaultKind::Clock]
                    .iter()
                    .any(|(c, d)| a.max(c) < b.min(d))
            });
            overlapped += both as usize;
            // The alternate mode never overlaps.
            let mut alt = c.clone();
            alt.mode = ScheduleMode::Alternate;
            let mut active = 0i32;
            for x in schedule(&alt).unwrap() {
                active += if is_stop(&x.op) { -1 } else { 1 };
                assert!(active <= 1);
            }
        }
        assert_eq!(
            overlapped, 20,
            "every seed has a partition during a clock fault"
        );
    }

    #[test]
    fn overlap_aims_clock_faults_at_the_leader_by_the_share_and_sets_its_clock_back() {
        let mut c = overlap_cfg(5, vec![FaultKind::Clock]);
        c.duration = Duration::from_secs(6_000);
        let leader_bumps = |c: &ScheduleConfig| {
            let s = schedule(c).unwrap();
            let starts: Vec<&FaultOp> = s.iter().step_by(2).map(|x| &x.op).collect();
            let mut n = 0;
            for op in &starts {
                if let FaultOp::Clock {
                    change: ClockChange::BumpLeader { offset_ms },
                } = op
                {
                    let max = c.max_clock_offset_ms as i64;
                    assert!((-max..=-max / 2).contains(offset_ms), "{offset_ms}");
                    n += 1;
                }
            }
            n as f64 / starts.len() as f64
        };
        assert_eq!(leader_bumps(&c), 0.0, "no share, no leader clock faults");
        c.leader_share = 0.5;
        let share = leader_bumps(&c);
        assert!((0.4..0.6).contains(&share), "{share}");
        c.leader_share = 1.0;
        assert_eq!(leader_bumps(&c), 1.0);
    }

    #[test]
    fn a_schedule_serialises_with_millisecond_times() {
        let mut c = cfg(5);
        c.kinds = vec![FaultKind::Pause];
        c.duration = Duration::from_secs(20);
        let s = schedule(&c).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v[0]["at"], 10_000);
        assert_eq!(v[0]["op"]["op"], "pause");
        assert_eq!(v[1]["op"], serde_json::json!({"op": "resume"}));
        let back: Vec<Scheduled> = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
