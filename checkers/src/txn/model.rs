//! Consistency models and the anomalies each one rules out, after Adya (PL-1 .. PL-3, PL-SI)
//! and Elle's session and realtime strengthenings.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::anomaly::{AnomalyKind, AnomalyType};
use super::graph::Variant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConsistencyModel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    SnapshotIsolation,
    Serializable,
    StrongSessionSnapshotIsolation,
    StrongSnapshotIsolation,
    StrongSessionSerializable,
    StrictSerializable,
}

use ConsistencyModel as M;

impl ConsistencyModel {
    pub const ALL: [ConsistencyModel; 9] = [
        M::ReadUncommitted,
        M::ReadCommitted,
        M::RepeatableRead,
        M::SnapshotIsolation,
        M::Serializable,
        M::StrongSessionSnapshotIsolation,
        M::StrongSnapshotIsolation,
        M::StrongSessionSerializable,
        M::StrictSerializable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            M::ReadUncommitted => "read-uncommitted",
            M::ReadCommitted => "read-committed",
            M::RepeatableRead => "repeatable-read",
            M::SnapshotIsolation => "snapshot-isolation",
            M::Serializable => "serializable",
            M::StrongSessionSnapshotIsolation => "strong-session-snapshot-isolation",
            M::StrongSnapshotIsolation => "strong-snapshot-isolation",
            M::StrongSessionSerializable => "strong-session-serializable",
            M::StrictSerializable => "strict-serializable",
        }
    }

    /// The models this one directly strengthens.
    pub fn weaker(self) -> &'static [ConsistencyModel] {
        match self {
            M::ReadUncommitted => &[],
            M::ReadCommitted => &[M::ReadUncommitted],
            M::RepeatableRead | M::SnapshotIsolation => &[M::ReadCommitted],
            M::Serializable => &[M::RepeatableRead],
            M::StrongSessionSnapshotIsolation => &[M::SnapshotIsolation],
            M::StrongSnapshotIsolation => &[M::StrongSessionSnapshotIsolation],
            M::StrongSessionSerializable => &[M::Serializable, M::StrongSessionSnapshotIsolation],
            M::StrictSerializable => &[M::StrongSessionSerializable, M::StrongSnapshotIsolation],
        }
    }

    /// The strongest order edges whose cycles this model forbids.
    fn order(self) -> Variant {
        match self {
            M::StrongSessionSnapshotIsolation | M::StrongSessionSerializable => Variant::Process,
            M::StrongSnapshotIsolation | M::StrictSerializable => Variant::Realtime,
            _ => Variant::Plain,
        }
    }

    /// The data-dependency strength underneath the session or realtime guarantee.
    fn base(self) -> ConsistencyModel {
        match self {
            M::StrongSessionSnapshotIsolation | M::StrongSnapshotIsolation => M::SnapshotIsolation,
            M::StrongSessionSerializable | M::StrictSerializable => M::Serializable,
            m => m,
        }
    }

    /// Whether a history with anomaly `a` cannot satisfy this model.
    pub fn proscribes(self, a: AnomalyType) -> bool {
        use AnomalyKind as K;
        let base = self.base();
        match a.kind {
            K::Internal
            | K::DuplicateElements
            | K::IncompatibleOrder
            | K::GarbageRead
            | K::CyclicVersions => true,
            K::CycleSearchTimeout => false,
            K::G1a | K::G1b | K::DirtyUpdate => base != M::ReadUncommitted,
            K::LostUpdate => !matches!(base, M::ReadUncommitted | M::ReadCommitted),
            K::G0 | K::G1c | K::GSingle | K::GNonadjacent | K::G2Item => {
                if a.variant > self.order() {
                    return false;
                }
                // A cycle of one shape is also a cycle of the more general shapes.
                let implied: &[K] = match a.kind {
                    K::G0 => &[K::G0, K::G1c],
                    K::G1c => &[K::G1c],
                    K::GSingle => &[K::GSingle, K::GNonadjacent, K::G2Item],
                    K::GNonadjacent => &[K::GNonadjacent, K::G2Item],
                    _ => &[K::G2Item],
                };
                let forbidden: &[K] = match base {
                    M::ReadUncommitted => &[K::G0],
                    M::ReadCommitted => &[K::G0, K::G1c],
                    M::SnapshotIsolation => &[K::G0, K::G1c, K::GSingle, K::GNonadjacent],
                    _ => &[K::G0, K::G1c, K::G2Item],
                };
                implied.iter().any(|k| forbidden.contains(k))
            }
        }
    }

    /// Every model ruled out by these anomalies, and the weakest of them (those with no weaker
    /// model also ruled out).
    pub fn ruled_out(anomalies: &[AnomalyType]) -> (Vec<ConsistencyModel>, Vec<ConsistencyModel>) {
        let out: Vec<M> = M::ALL
            .into_iter()
            .filter(|m| anomalies.iter().any(|&a| m.proscribes(a)))
            .collect();
        let weakest = out
            .iter()
            .copied()
            .filter(|m| !m.weaker().iter().any(|w| out.contains(w)))
            .collect();
        (out, weakest)
    }
}

impl fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency model {0:?} (known: read-uncommitted, read-committed, repeatable-read, snapshot-isolation, serializable, strong-session-snapshot-isolation, strong-snapshot-isolation, strong-session-serializable, strict-serializable)")]
pub struct UnknownModel(pub String);

impl FromStr for ConsistencyModel {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        M::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

impl Serialize for ConsistencyModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ConsistencyModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> AnomalyType {
        s.parse().unwrap()
    }

    #[test]
    fn write_skew_rules_out_serializable_but_not_snapshot_isolation() {
        let (out, weakest) = ConsistencyModel::ruled_out(&[t("G2-item")]);
        assert!(out.contains(&M::Serializable));
        assert!(out.contains(&M::RepeatableRead));
        assert!(!out.contains(&M::SnapshotIsolation));
        assert_eq!(weakest, vec![M::RepeatableRead]);
    }

    #[test]
    fn read_skew_rules_out_snapshot_isolation_and_repeatable_read() {
        let (_, weakest) = ConsistencyModel::ruled_out(&[t("G-single")]);
        assert_eq!(weakest, vec![M::RepeatableRead, M::SnapshotIsolation]);
    }

    #[test]
    fn realtime_cycles_only_rule_out_realtime_models() {
        let (out, weakest) = ConsistencyModel::ruled_out(&[t("G-single-realtime")]);
        assert_eq!(out, vec![M::StrongSnapshotIsolation, M::StrictSerializable]);
        assert_eq!(weakest, vec![M::StrongSnapshotIsolation]);
        let (out, _) = ConsistencyModel::ruled_out(&[t("G0-process")]);
        assert!(out.contains(&M::StrongSessionSnapshotIsolation));
        assert!(out.contains(&M::StrictSerializable));
        assert!(!out.contains(&M::Serializable));
    }

    #[test]
    fn names_round_trip() {
        for m in M::ALL {
            assert_eq!(m.name().parse::<M>().unwrap(), m);
        }
        assert_eq!(
            t("G-nonadjacent-process").to_string(),
            "G-nonadjacent-process"
        );
        assert!("lost-update-realtime".parse::<AnomalyType>().is_err());
    }
}
