//! The dependency graph between transactions: a compressed adjacency list with one bit per edge
//! kind, strongly connected components (petgraph's Kosaraju over our own CSR), and the search for
//! the shortest cycle of a given shape inside a component.
use std::collections::VecDeque;

use petgraph::visit::{
    GraphBase, GraphRef, IntoNeighbors, IntoNeighborsDirected, IntoNodeIdentifiers, NodeIndexable,
    VisitMap, Visitable,
};
use petgraph::Direction;
use serde::{Deserialize, Serialize};

use super::intern::fast_map;
use super::parse::{Status, Txns};
use crate::history::{History, Process};

pub(crate) const WW: u8 = 1;
pub(crate) const WR: u8 = 2;
pub(crate) const RW: u8 = 4;
pub(crate) const PROCESS: u8 = 8;
pub(crate) const REALTIME: u8 = 16;
pub(crate) const ALL: u8 = WW | WR | RW | PROCESS | REALTIME;

/// Why one transaction must precede another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Write-write: the second overwrote (or appended after) the first's write.
    Ww,
    /// Write-read: the second read the first's write.
    Wr,
    /// Read-write (anti-dependency): the first read a state before the second's write.
    Rw,
    /// The same process ran the first before the second.
    Process,
    /// The first completed before the second was invoked.
    Realtime,
}

impl EdgeKind {
    fn from_bit(bit: u8) -> EdgeKind {
        match bit {
            WW => EdgeKind::Ww,
            WR => EdgeKind::Wr,
            RW => EdgeKind::Rw,
            PROCESS => EdgeKind::Process,
            _ => EdgeKind::Realtime,
        }
    }
}

/// Edges collected during inference, before compression. Self-edges are dropped.
#[derive(Default)]
pub(crate) struct EdgeList {
    pub edges: Vec<(u32, u32, u8)>,
}

impl EdgeList {
    pub fn add(&mut self, from: u32, to: u32, kind: u8) {
        if from != to {
            self.edges.push((from, to, kind));
        }
    }
}

/// Compressed sparse rows: the out-edges of node `n` are `offsets[n]..offsets[n + 1]`.
pub(crate) struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    kinds: Vec<u8>,
}

impl Csr {
    /// Builds the adjacency (or, with `reverse`, the in-adjacency) of `n` nodes, merging parallel
    /// edges into one edge carrying the union of their kinds.
    fn build(n: usize, edges: &[(u32, u32, u8)], reverse: bool) -> Csr {
        let ends = |&(a, b, _): &(u32, u32, u8)| if reverse { (b, a) } else { (a, b) };
        let mut offsets = vec![0u32; n + 1];
        for e in edges {
            offsets[ends(e).0 as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut packed = vec![0u64; edges.len()];
        for e in edges {
            let (from, to) = ends(e);
            let slot = &mut fill[from as usize];
            packed[*slot as usize] = (u64::from(to) << 8) | u64::from(e.2);
            *slot += 1;
        }
        drop(fill);
        let mut targets = Vec::with_capacity(edges.len());
        let mut kinds = Vec::with_capacity(edges.len());
        let mut new_offsets = Vec::with_capacity(n + 1);
        new_offsets.push(0u32);
        for i in 0..n {
            let row = &mut packed[offsets[i] as usize..offsets[i + 1] as usize];
            row.sort_unstable();
            let mut last: Option<u32> = None;
            for &p in row.iter() {
                let to = (p >> 8) as u32;
                let kind = p as u8;
                if last == Some(to) {
                    *kinds.last_mut().expect("pushed with last") |= kind;
                } else {
                    targets.push(to);
                    kinds.push(kind);
                    last = Some(to);
                }
            }
            new_offsets.push(targets.len() as u32);
        }
        Csr {
            offsets: new_offsets,
            targets,
            kinds,
        }
    }

    fn node_count(&self) -> usize {
        self.offsets.len() - 1
    }

    fn row(&self, n: u32) -> std::ops::Range<usize> {
        self.offsets[n as usize] as usize..self.offsets[n as usize + 1] as usize
    }

    /// The kinds of the edge `a -> b`, or 0.
    #[cfg(test)]
    fn kinds_between(&self, a: u32, b: u32) -> u8 {
        let r = self.row(a);
        match self.targets[r.clone()].binary_search(&b) {
            Ok(i) => self.kinds[r.start + i],
            Err(_) => 0,
        }
    }
}

/// The dependency graph, with forward and reverse adjacency.
pub(crate) struct DepGraph {
    fwd: Csr,
    rev: Csr,
}

impl DepGraph {
    pub fn new(n: usize, edges: EdgeList) -> DepGraph {
        let fwd = Csr::build(n, &edges.edges, false);
        let rev = Csr::build(n, &edges.edges, true);
        DepGraph { fwd, rev }
    }

    pub fn edge_count(&self) -> usize {
        self.fwd.targets.len()
    }

    /// Strongly connected components with more than one transaction.
    pub fn cyclic_components(&self) -> Vec<Vec<u32>> {
        let view = Masked {
            fwd: &self.fwd,
            rev: &self.rev,
            mask: ALL,
        };
        petgraph::algo::kosaraju_scc(view)
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect()
    }
}

/// A view of a graph restricted to the edges whose kinds intersect `mask`: what petgraph walks.
#[derive(Clone, Copy)]
struct Masked<'a> {
    fwd: &'a Csr,
    rev: &'a Csr,
    mask: u8,
}

impl GraphBase for Masked<'_> {
    type EdgeId = ();
    type NodeId = u32;
}

impl GraphRef for Masked<'_> {}

struct MaskedNeighbors<'a> {
    csr: &'a Csr,
    at: usize,
    end: usize,
    mask: u8,
}

impl Iterator for MaskedNeighbors<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        while self.at < self.end {
            let i = self.at;
            self.at += 1;
            if self.csr.kinds[i] & self.mask != 0 {
                return Some(self.csr.targets[i]);
            }
        }
        None
    }
}

impl<'a> IntoNeighbors for Masked<'a> {
    type Neighbors = MaskedNeighbors<'a>;
    fn neighbors(self, a: u32) -> Self::Neighbors {
        self.neighbors_directed(a, Direction::Outgoing)
    }
}

impl<'a> IntoNeighborsDirected for Masked<'a> {
    type NeighborsDirected = MaskedNeighbors<'a>;
    fn neighbors_directed(self, a: u32, d: Direction) -> Self::NeighborsDirected {
        let csr = match d {
            Direction::Outgoing => self.fwd,
            Direction::Incoming => self.rev,
        };
        let r = csr.row(a);
        MaskedNeighbors {
            csr,
            at: r.start,
            end: r.end,
            mask: self.mask,
        }
    }
}

impl IntoNodeIdentifiers for Masked<'_> {
    type NodeIdentifiers = std::ops::Range<u32>;
    fn node_identifiers(self) -> Self::NodeIdentifiers {
        0..self.fwd.node_count() as u32
    }
}

impl NodeIndexable for Masked<'_> {
    fn node_bound(&self) -> usize {
        self.fwd.node_count()
    }
    fn to_index(&self, a: u32) -> usize {
        a as usize
    }
    fn from_index(&self, i: usize) -> u32 {
        i as u32
    }
}

/// A plain bitset as petgraph's visit map.
pub(crate) struct Marks(Vec<u64>);

impl VisitMap<u32> for Marks {
    fn visit(&mut self, a: u32) -> bool {
        let (w, b) = ((a / 64) as usize, a % 64);
        let was = self.0[w] >> b & 1 == 1;
        self.0[w] |= 1 << b;
        !was
    }
    fn is_visited(&self, a: &u32) -> bool {
        self.0[(a / 64) as usize] >> (a % 64) & 1 == 1
    }
    fn unvisit(&mut self, a: u32) -> bool {
        let was = self.is_visited(&a);
        self.0[(a / 64) as usize] &= !(1 << (a % 64));
        was
    }
}

impl Visitable for Masked<'_> {
    type Map = Marks;
    fn visit_map(&self) -> Marks {
        Marks(vec![0; self.fwd.node_count().div_ceil(64)])
    }
    fn reset_map(&self, map: &mut Marks) {
        map.0.clear();
        map.0.resize(self.fwd.node_count().div_ceil(64), 0);
    }
}

/// Adds realtime edges (an `ok` transaction completed before another was invoked) and process
/// edges (consecutive transactions of one process), both transitively reduced.
///
/// Realtime: a frontier holds the completed transactions not yet implied by a later completed
/// one. An invocation gets an edge from every frontier member. A completion removes from the
/// frontier every member that was already there at its own invocation (they precede it, so
/// anything invoked later follows them through it) and joins the frontier.
pub(crate) fn add_order_edges(
    h: &History,
    txns: &Txns,
    edges: &mut EdgeList,
    realtime: bool,
    process: bool,
) {
    const NONE: u32 = u32::MAX;
    // For each history position: the transaction invoked (bit 31 clear) or completed (set) there.
    let mut at = vec![NONE; h.ops.len()];
    for (i, t) in txns.txns.iter().enumerate() {
        if t.status == Status::Fail {
            continue;
        }
        at[t.invoke as usize] = i as u32;
        if let (Status::Ok, Some(c)) = (t.status, t.complete) {
            at[c as usize] = i as u32 | 1 << 31;
        }
    }
    let mut frontier: Vec<(u32, u64)> = Vec::new();
    let mut invoked_at = vec![0u64; txns.txns.len()];
    let mut last_ok = fast_map::<Process, u32>(64);
    for (seq, &slot) in at.iter().enumerate() {
        if slot == NONE {
            continue;
        }
        let seq = seq as u64;
        let t = slot & !(1 << 31);
        if slot & (1 << 31) == 0 {
            invoked_at[t as usize] = seq;
            if realtime {
                for &(f, _) in &frontier {
                    edges.add(f, t, REALTIME);
                }
            }
            if process {
                if let Some(&prev) = last_ok.get(&txns.txns[t as usize].process) {
                    edges.add(prev, t, PROCESS);
                }
            }
        } else {
            let since = invoked_at[t as usize];
            frontier.retain(|&(_, added)| added > since);
            frontier.push((t, seq));
            last_ok.insert(txns.txns[t as usize].process, t);
        }
    }
}

/// The base shape of a dependency cycle, after Adya.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Only ww edges.
    G0,
    /// ww and wr edges, at least one wr.
    G1c,
    /// Exactly one rw edge.
    GSingle,
    /// At least two rw edges, no two adjacent.
    GNonadjacent,
    /// At least two rw edges.
    G2Item,
}

/// Which order edges a cycle may (and must) use beyond data dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Data dependencies only.
    Plain,
    /// Also process edges, and at least one of them.
    Process,
    /// Also process and realtime edges, and at least one realtime edge.
    Realtime,
}

pub(crate) const SHAPES: [Shape; 5] = [
    Shape::G0,
    Shape::G1c,
    Shape::GSingle,
    Shape::GNonadjacent,
    Shape::G2Item,
];

impl Shape {
    fn data_mask(self) -> u8 {
        match self {
            Shape::G0 => WW,
            Shape::G1c => WW | WR,
            _ => WW | WR | RW,
        }
    }
    /// The kind of the edge every search starts from.
    fn seed(self) -> u8 {
        match self {
            Shape::G0 => WW,
            Shape::G1c => WR,
            _ => RW,
        }
    }
}

impl Variant {
    fn extra(self) -> u8 {
        match self {
            Variant::Plain => 0,
            Variant::Process => PROCESS,
            Variant::Realtime => PROCESS | REALTIME,
        }
    }
    fn required(self) -> u8 {
        match self {
            Variant::Plain => 0,
            Variant::Process => PROCESS,
            Variant::Realtime => REALTIME,
        }
    }
}

/// One cycle: `steps[i]` goes from `txn` to the `txn` of `steps[i + 1]` (wrapping).
#[derive(Debug, Clone)]
pub(crate) struct Cycle {
    pub shape: Shape,
    pub variant: Variant,
    /// (from, to, kind) for each edge, in order; the last edge returns to the first node.
    pub steps: Vec<(u32, u32, EdgeKind)>,
}

/// Limits for the cycle search, which is exponential in nothing but can be quadratic in the
/// size of a component.
pub(crate) struct Budget {
    pub steps_left: u64,
    pub seeds_per_search: usize,
    pub exhausted: bool,
}

// Automaton state: bits 0-1 the number of rw edges (saturating at 2), bit 2 whether the last
// edge was rw, bit 3 whether the variant's required edge kind has been used.
const STATES: usize = 16;

fn step(shape: Shape, variant: Variant, state: u8, label: u8) -> Option<u8> {
    let rws = state & 3;
    let last_rw = state & 4 != 0;
    if label == RW {
        match shape {
            Shape::G0 | Shape::G1c => return None,
            Shape::GSingle if rws >= 1 => return None,
            Shape::GNonadjacent if last_rw => return None,
            _ => {}
        }
    }
    let rws = if label == RW { (rws + 1).min(2) } else { rws };
    let req = state & 8 != 0 || (variant.required() & label != 0);
    Some(rws | if label == RW { 4 } else { 0 } | if req { 8 } else { 0 })
}

fn accepts(shape: Shape, variant: Variant, state: u8) -> bool {
    let rws = state & 3;
    let last_rw = state & 4 != 0;
    let req = variant == Variant::Plain || state & 8 != 0;
    req && match shape {
        Shape::G0 | Shape::G1c => true,
        Shape::GSingle => rws == 1,
        // The seed edge (first) is rw, so the closing edge must not be.
        Shape::GNonadjacent => rws >= 2 && !last_rw,
        Shape::G2Item => rws >= 2,
    }
}

/// Searches one strongly connected component for the shortest cycle of every shape and variant.
pub(crate) fn find_cycles(g: &DepGraph, component: &[u32], budget: &mut Budget) -> Vec<Cycle> {
    // Local graph of the component, so that per-search arrays are small.
    let mut local = fast_map::<u32, u32>(component.len());
    for (i, &n) in component.iter().enumerate() {
        local.insert(n, i as u32);
    }
    let mut edges = EdgeList::default();
    for (i, &n) in component.iter().enumerate() {
        for j in g.fwd.row(n) {
            if let Some(&to) = local.get(&g.fwd.targets[j]) {
                edges.add(i as u32, to, g.fwd.kinds[j]);
            }
        }
    }
    let sub = DepGraph::new(component.len(), edges);
    let mut found: Vec<Cycle> = Vec::new();
    let mut seen: std::collections::HashSet<Vec<u32>> = Default::default();
    for variant in [Variant::Plain, Variant::Process, Variant::Realtime] {
        for shape in SHAPES {
            if budget.exhausted {
                return found;
            }
            let mask = shape.data_mask() | variant.extra();
            let view = Masked {
                fwd: &sub.fwd,
                rev: &sub.rev,
                mask,
            };
            for part in petgraph::algo::kosaraju_scc(view) {
                if part.len() < 2 {
                    continue;
                }
                if let Some(steps) = shortest_in(&sub, &part, shape, variant, budget) {
                    let steps: Vec<(u32, u32, EdgeKind)> = steps
                        .into_iter()
                        .map(|(a, b, k)| (component[a as usize], component[b as usize], k))
                        .collect();
                    let mut nodes: Vec<u32> = steps.iter().map(|s| s.0).collect();
                    let min = (0..nodes.len()).min_by_key(|&i| nodes[i]).unwrap_or(0);
                    nodes.rotate_left(min);
                    if seen.insert(nodes) {
                        found.push(Cycle {
                            shape,
                            variant,
                            steps,
                        });
                    }
                }
            }
        }
    }
    found
}

/// Breadth-first search over (node, automaton state) inside `part`, from the head of each seed
/// edge back to its tail; returns the shortest accepted cycle among the seeds tried.
fn shortest_in(
    g: &DepGraph,
    part: &[u32],
    shape: Shape,
    variant: Variant,
    budget: &mut Budget,
) -> Option<Vec<(u32, u32, EdgeKind)>> {
    let allowed = shape.data_mask() | variant.extra();
    let mut idx = fast_map::<u32, u32>(part.len());
    for (i, &n) in part.iter().enumerate() {
        idx.insert(n, i as u32);
    }
    let slots = part.len() * STATES;
    let mut stamp = vec![0u32; slots];
    // Parent of each (node, state): packed slot and the edge label that led here.
    let mut parent = vec![(0u32, 0u8); slots];
    let mut best: Option<Vec<(u32, u32, EdgeKind)>> = None;
    let mut seeds = 0usize;
    let mut generation = 0u32;
    let mut queue: VecDeque<(u32, u32)> = VecDeque::new();
    for &u in part {
        for j in g.fwd.row(u) {
            let v = g.fwd.targets[j];
            if g.fwd.kinds[j] & shape.seed() == 0 || !idx.contains_key(&v) {
                continue;
            }
            if seeds >= budget.seeds_per_search || best.as_ref().is_some_and(|b| b.len() <= 2) {
                return best;
            }
            seeds += 1;
            generation += 1;
            let Some(s0) = step(shape, variant, 0, shape.seed()) else {
                continue;
            };
            let start = idx[&v] as usize * STATES + s0 as usize;
            stamp[start] = generation;
            parent[start] = (u32::MAX, shape.seed());
            queue.clear();
            queue.push_back((start as u32, 1));
            let limit = best.as_ref().map_or(usize::MAX, Vec::len);
            'bfs: while let Some((slot, depth)) = queue.pop_front() {
                if depth as usize + 1 > limit {
                    break;
                }
                let node = part[slot as usize / STATES];
                let state = (slot as usize % STATES) as u8;
                for k in g.fwd.row(node) {
                    if budget.steps_left == 0 {
                        budget.exhausted = true;
                        return best;
                    }
                    budget.steps_left -= 1;
                    let to = g.fwd.targets[k];
                    let Some(&to_i) = idx.get(&to) else {
                        continue;
                    };
                    let mut labels = g.fwd.kinds[k] & allowed;
                    while labels != 0 {
                        let label = labels & labels.wrapping_neg();
                        labels &= !label;
                        let Some(next) = step(shape, variant, state, label) else {
                            continue;
                        };
                        if to == u {
                            if accepts(shape, variant, next) {
                                let mut path = vec![(node, u, EdgeKind::from_bit(label))];
                                let mut at = slot as usize;
                                loop {
                                    let (prev, l) = parent[at];
                                    let here = part[at / STATES];
                                    if prev == u32::MAX {
                                        path.push((u, here, EdgeKind::from_bit(l)));
                                        break;
                                    }
                                    path.push((
                                        part[prev as usize / STATES],
                                        here,
                                        EdgeKind::from_bit(l),
                                    ));
                                    at = prev as usize;
                                }
                                path.reverse();
                                best = Some(path);
                                break 'bfs;
                            }
                            continue;
                        }
                        let ns = to_i as usize * STATES + next as usize;
                        if stamp[ns] != generation {
                            stamp[ns] = generation;
                            parent[ns] = (slot, label);
                            queue.push_back((ns as u32, depth + 1));
                        }
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32, u8)]) -> DepGraph {
        let mut l = EdgeList::default();
        for &(a, b, k) in edges {
            l.add(a, b, k);
        }
        DepGraph::new(n, l)
    }

    fn budget() -> Budget {
        Budget {
            steps_left: 1_000_000,
            seeds_per_search: 100,
            exhausted: false,
        }
    }

    #[test]
    fn parallel_edges_merge_their_kinds() {
        let g = graph(3, &[(0, 1, WW), (0, 1, RW), (1, 2, WR)]);
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.fwd.kinds_between(0, 1), WW | RW);
        assert_eq!(g.rev.kinds_between(2, 1), WR);
    }

    #[test]
    fn components_exclude_acyclic_nodes() {
        let g = graph(5, &[(0, 1, WW), (1, 0, WR), (1, 2, RW), (3, 4, WW)]);
        let mut c = g.cyclic_components();
        c.iter_mut().for_each(|c| c.sort());
        assert_eq!(c, vec![vec![0, 1]]);
    }

    #[test]
    fn g_single_is_shortest_cycle_with_one_rw() {
        // 0 -rw-> 1 -wr-> 0 is G-single; the long way round 0 -rw-> 2 -rw-> 3 -ww-> 0 is G2.
        let g = graph(
            4,
            &[(0, 1, RW), (1, 0, WR), (0, 2, RW), (2, 3, RW), (3, 0, WW)],
        );
        let comp = &g.cyclic_components()[0];
        let cycles = find_cycles(&g, comp, &mut budget());
        let shapes: Vec<Shape> = cycles.iter().map(|c| c.shape).collect();
        assert!(shapes.contains(&Shape::GSingle), "{shapes:?}");
        let single = cycles.iter().find(|c| c.shape == Shape::GSingle).unwrap();
        assert_eq!(single.steps.len(), 2);
        let g2 = cycles.iter().find(|c| c.shape == Shape::G2Item).unwrap();
        assert_eq!(g2.steps.len(), 3);
        assert!(!shapes.contains(&Shape::G0));
    }

    #[test]
    fn nonadjacent_rejects_adjacent_rw_edges_across_the_wrap() {
        // rw, ww, rw: the closing rw is adjacent to the opening rw, so not G-nonadjacent.
        let g = graph(3, &[(0, 1, RW), (1, 2, WW), (2, 0, RW)]);
        let comp = &g.cyclic_components()[0];
        let shapes: Vec<Shape> = find_cycles(&g, comp, &mut budget())
            .iter()
            .map(|c| c.shape)
            .collect();
        assert_eq!(shapes, vec![Shape::G2Item]);
    }

    #[test]
    fn realtime_variant_needs_a_realtime_edge() {
        let g = graph(2, &[(0, 1, RW), (1, 0, REALTIME)]);
        let comp = &g.cyclic_components()[0];
        let c = find_cycles(&g, comp, &mut budget());
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].shape, c[0].variant),
            (Shape::GSingle, Variant::Realtime)
        );
    }
}
