//! Grudges: which node drops traffic from which other nodes.
//!
//! A [`Grudge`] maps a node to the set of nodes whose packets it drops on the way in (Jepsen's
//! meaning). A shape ([`Shape`]) builds a grudge from the node list and a seeded random source,
//! so the same seed always yields the same partition. Everything here is pure.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Node -> the nodes it drops inbound traffic from. Nodes with no grudge are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

/// The partition shapes the nemesis knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Isolate one random node from all others.
    One,
    /// Split the node list (in inventory order) into two halves.
    Halves,
    /// Split a random permutation into two halves; the first half is the smaller one.
    RandomHalves,
    /// A random majority versus the rest.
    Majority,
    /// A random third (at least one node) versus the rest.
    MinorityThird,
    /// Every node sees a majority, and no two nodes see the same majority.
    MajoritiesRing,
    /// Two halves that cannot talk, joined by one node that sees both.
    Bridge,
    /// Isolate the current leader (found at run time by the caller).
    IsolateLeader,
    /// No grudge at all.
    Heal,
}

pub const ALL_SHAPES: [Shape; 9] = [
    Shape::One,
    Shape::Halves,
    Shape::RandomHalves,
    Shape::Majority,
    Shape::MinorityThird,
    Shape::MajoritiesRing,
    Shape::Bridge,
    Shape::IsolateLeader,
    Shape::Heal,
];

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Halves => "halves",
            Shape::RandomHalves => "random-halves",
            Shape::Majority => "majority",
            Shape::MinorityThird => "minority-third",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::IsolateLeader => "isolate-leader",
            Shape::Heal => "heal",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Shape {
    type Err = GrudgeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_SHAPES
            .iter()
            .copied()
            .find(|shape| shape.as_str() == s)
            .ok_or_else(|| GrudgeError::UnknownShape(s.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrudgeError {
    #[error("unknown partition shape {0:?} (expected one of: one, halves, random-halves, majority, minority-third, majorities-ring, bridge, isolate-leader, heal)")]
    UnknownShape(String),
    #[error("partition shape {shape} needs at least {needed} nodes, the cluster has {have}")]
    TooFewNodes {
        shape: Shape,
        needed: usize,
        have: usize,
    },
    #[error("partition shape isolate-leader: no leader given")]
    NoLeader,
    #[error("partition shape isolate-leader: leader {0:?} is not a node of the cluster")]
    UnknownLeader(String),
    #[error("node {0:?} appears twice in the node list")]
    DuplicateNode(String),
}

impl Grudge {
    /// Every node drops traffic from every node outside its own component.
    pub fn from_components(components: &[Vec<String>]) -> Grudge {
        let mut map = BTreeMap::new();
        for (i, comp) in components.iter().enumerate() {
            let others: BTreeSet<String> = components
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, c)| c.iter().cloned())
                .collect();
            if others.is_empty() {
                continue;
            }
            for node in comp {
                map.insert(node.clone(), others.clone());
            }
        }
        Grudge(map)
    }

    /// Builds the grudge of `shape` over `nodes`. `leader` is used (and required) only by
    /// [`Shape::IsolateLeader`].
    pub fn for_shape<R: Rng + ?Sized>(
        shape: Shape,
        nodes: &[String],
        leader: Option<&str>,
        rng: &mut R,
    ) -> Result<Grudge, GrudgeError> {
        let mut seen = BTreeSet::new();
        for n in nodes {
            if !seen.insert(n) {
                return Err(GrudgeError::DuplicateNode(n.clone()));
            }
        }
        let needed = match shape {
            Shape::Heal => 0,
            Shape::MajoritiesRing | Shape::Bridge => 3,
            _ => 2,
        };
        if nodes.len() < needed {
            return Err(GrudgeError::TooFewNodes {
                shape,
                needed,
                have: nodes.len(),
            });
        }
        let n = nodes.len();
        let mut shuffled = || {
            let mut v = nodes.to_vec();
            v.shuffle(rng);
            v
        };
        let split = |v: Vec<String>, at: usize| {
            let (a, b) = v.split_at(at);
            Grudge::from_components(&[a.to_vec(), b.to_vec()])
        };
        Ok(match shape {
            Shape::Heal => Grudge::default(),
            Shape::One => split(shuffled(), 1),
            Shape::Halves => split(nodes.to_vec(), n / 2),
            Shape::RandomHalves => split(shuffled(), n / 2),
            Shape::Majority => split(shuffled(), n / 2 + 1),
            Shape::MinorityThird => split(shuffled(), (n / 3).max(1)),
            Shape::MajoritiesRing => majorities_ring(&shuffled()),
            Shape::Bridge => bridge(&shuffled()),
            Shape::IsolateLeader => {
                let leader = leader.ok_or(GrudgeError::NoLeader)?;
                if !nodes.iter().any(|x| x == leader) {
                    return Err(GrudgeError::UnknownLeader(leader.to_string()));
                }
                let rest: Vec<String> = nodes.iter().filter(|x| *x != leader).cloned().collect();
                Grudge::from_components(&[vec![leader.to_string()], rest])
            }
        })
    }

    /// The nodes `node` drops traffic from.
    pub fn drops(&self, node: &str) -> BTreeSet<String> {
        self.0.get(node).cloned().unwrap_or_default()
    }

    /// The nodes (itself included) whose traffic `node` accepts.
    pub fn sees(&self, node: &str, nodes: &[String]) -> BTreeSet<String> {
        let drops = self.drops(node);
        nodes
            .iter()
            .filter(|x| !drops.contains(*x))
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|s| s.is_empty())
    }
}

/// Nodes on a ring (in the given order); each sees a window of neighbours centred on itself.
/// The window is the smallest odd size that is a majority, which keeps the grudge symmetric and
/// every window distinct. Three nodes cannot have symmetric distinct majorities (a centred
/// window of three is everyone), so there each node sees itself and its successor.
fn majorities_ring(ring: &[String]) -> Grudge {
    let n = ring.len();
    let majority = n / 2 + 1;
    let (before, after) = if n == 3 {
        (0, 1)
    } else {
        let k = majority / 2; // (2k+1) >= majority, and 2k+1 < n for n >= 4
        (k, k)
    };
    let mut map = BTreeMap::new();
    for (i, node) in ring.iter().enumerate() {
        let mut visible = BTreeSet::new();
        for d in 0..=before {
            visible.insert((i + n - d) % n);
        }
        for d in 0..=after {
            visible.insert((i + d) % n);
        }
        let drops: BTreeSet<String> = (0..n)
            .filter(|j| !visible.contains(j))
            .map(|j| ring[j].clone())
            .collect();
        map.insert(node.clone(), drops);
    }
    Grudge(map)
}

/// The first node of `order` is the bridge; the rest split into two halves that cannot talk.
fn bridge(order: &[String]) -> Grudge {
    let bridge_rest = &order[1..];
    let (a, b) = bridge_rest.split_at(bridge_rest.len() / 2);
    let mut map = BTreeMap::new();
    for x in a {
        map.insert(x.clone(), b.iter().cloned().collect());
    }
    for x in b {
        map.insert(x.clone(), a.iter().cloned().collect());
    }
    Grudge(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn grudge(shape: Shape, n: usize, seed: u64) -> Grudge {
        let ns = nodes(n);
        Grudge::for_shape(shape, &ns, Some("n2"), &mut StdRng::seed_from_u64(seed)).unwrap()
    }

    /// The connected groups of a grudge built from components: nodes that see exactly the
    /// same set.
    fn groups(g: &Grudge, ns: &[String]) -> Vec<BTreeSet<String>> {
        let mut out: Vec<BTreeSet<String>> = ns.iter().map(|x| g.sees(x, ns)).collect();
        out.sort();
        out.dedup();
        out
    }

    fn check_invariants(g: &Grudge, ns: &[String]) {
        for (node, drops) in &g.0 {
            assert!(ns.contains(node), "grudge names unknown node {node}");
            assert!(
                !drops.contains(node),
                "{node} holds a grudge against itself"
            );
            for d in drops {
                assert!(ns.contains(d), "grudge names unknown node {d}");
            }
        }
    }

    fn is_symmetric(g: &Grudge) -> bool {
        g.0.iter()
            .all(|(a, drops)| drops.iter().all(|b| g.drops(b).contains(a)))
    }

    #[test]
    fn every_shape_on_3_5_7_nodes() {
        for n in [3, 5, 7] {
            let ns = nodes(n);
            let majority = n / 2 + 1;
            for seed in 0..20 {
                for shape in ALL_SHAPES {
                    let g = grudge(shape, n, seed);
                    check_invariants(&g, &ns);
                    match shape {
                        Shape::Heal => assert!(g.is_empty()),
                        Shape::One | Shape::IsolateLeader => {
                            let gs = groups(&g, &ns);
                            let sizes: BTreeSet<usize> = gs.iter().map(|s| s.len()).collect();
                            assert_eq!(gs.len(), 2, "{shape} n={n}: {g:?}");
                            assert_eq!(sizes, BTreeSet::from([1, n - 1]), "{shape} n={n}");
                            assert!(is_symmetric(&g));
                            if shape == Shape::IsolateLeader {
                                assert_eq!(g.sees("n2", &ns), BTreeSet::from(["n2".to_string()]));
                            }
                        }
                        Shape::Halves | Shape::RandomHalves => {
                            let gs = groups(&g, &ns);
                            let mut sizes: Vec<usize> = gs.iter().map(|s| s.len()).collect();
                            sizes.sort();
                            assert_eq!(sizes, vec![n / 2, n - n / 2], "{shape} n={n}");
                            assert!(is_symmetric(&g));
                            if shape == Shape::Halves {
                                let first: BTreeSet<String> = ns[..n / 2].iter().cloned().collect();
                                assert_eq!(g.sees("n1", &ns), first);
                            }
                        }
                        Shape::Majority => {
                            let gs = groups(&g, &ns);
                            let mut sizes: Vec<usize> = gs.iter().map(|s| s.len()).collect();
                            sizes.sort();
                            assert_eq!(sizes, vec![n - majority, majority], "n={n}");
                            assert!(is_symmetric(&g));
                        }
                        Shape::MinorityThird => {
                            let gs = groups(&g, &ns);
                            let mut sizes: Vec<usize> = gs.iter().map(|s| s.len()).collect();
                            sizes.sort();
                            let third = (n / 3).max(1);
                            assert_eq!(sizes, vec![third, n - third], "n={n}");
                            assert!(third < majority);
                        }
                        Shape::MajoritiesRing => {
                            let seen: Vec<BTreeSet<String>> =
                                ns.iter().map(|x| g.sees(x, &ns)).collect();
                            for (x, s) in ns.iter().zip(&seen) {
                                assert!(s.len() >= majority, "{x} sees {s:?}, n={n}");
                                assert!(s.len() < n, "{x} sees everyone, n={n}");
                                assert!(s.contains(x));
                            }
                            let distinct: BTreeSet<&BTreeSet<String>> = seen.iter().collect();
                            assert_eq!(distinct.len(), n, "two nodes see the same majority");
                            if n >= 4 {
                                assert!(is_symmetric(&g));
                            }
                        }
                        Shape::Bridge => {
                            let full: BTreeSet<String> = ns.iter().cloned().collect();
                            let bridges: Vec<&String> =
                                ns.iter().filter(|x| g.sees(x, &ns) == full).collect();
                            assert_eq!(bridges.len(), 1, "exactly one bridge, n={n}: {g:?}");
                            let b = bridges[0];
                            for x in &ns {
                                assert!(!g.drops(x).contains(b), "{x} drops the bridge {b}");
                            }
                            let others: Vec<&String> = ns.iter().filter(|x| *x != b).collect();
                            let gs: BTreeSet<BTreeSet<String>> =
                                others.iter().map(|x| g.sees(x, &ns)).collect();
                            assert_eq!(gs.len(), 2, "two halves, n={n}");
                            for half in &gs {
                                assert!(half.contains(b));
                                // a half's members drop exactly the other half
                                for x in half.iter().filter(|x| *x != b) {
                                    let other: BTreeSet<String> =
                                        full.difference(half).cloned().collect();
                                    assert_eq!(g.drops(x), other);
                                }
                            }
                            assert!(is_symmetric(&g));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn same_seed_same_grudge_and_seeds_vary() {
        let ns = nodes(7);
        let a = Grudge::for_shape(
            Shape::RandomHalves,
            &ns,
            None,
            &mut StdRng::seed_from_u64(9),
        );
        let b = Grudge::for_shape(
            Shape::RandomHalves,
            &ns,
            None,
            &mut StdRng::seed_from_u64(9),
        );
        assert_eq!(a, b);
        let distinct: BTreeSet<String> = (0..30)
            .map(|s| format!("{:?}", grudge(Shape::MajoritiesRing, 7, s)))
            .collect();
        assert!(distinct.len() > 1, "the seed must change the ring");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            Grudge::for_shape(Shape::Bridge, &nodes(2), None, &mut rng),
            Err(GrudgeError::TooFewNodes {
                shape: Shape::Bridge,
                needed: 3,
                have: 2
            })
        );
        assert_eq!(
            Grudge::for_shape(Shape::IsolateLeader, &nodes(3), None, &mut rng),
            Err(GrudgeError::NoLeader)
        );
        assert_eq!(
            Grudge::for_shape(Shape::IsolateLeader, &nodes(3), Some("n9"), &mut rng),
            Err(GrudgeError::UnknownLeader("n9".into()))
        );
        let dup = vec!["n1".to_string(), "n1".to_string(), "n2".to_string()];
        assert_eq!(
            Grudge::for_shape(Shape::One, &dup, None, &mut rng),
            Err(GrudgeError::DuplicateNode("n1".into()))
        );
        assert!("triangle".parse::<Shape>().is_err());
        for s in ALL_SHAPES {
            assert_eq!(s.as_str().parse::<Shape>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn grudge_serialises_as_a_plain_map() {
        let g = Grudge::from_components(&[vec!["n1".into()], vec!["n2".into(), "n3".into()]]);
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        );
    }
}
