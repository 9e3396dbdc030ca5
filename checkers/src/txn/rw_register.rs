//! Inference for rw-register histories with unique writes: a read names the one transaction that
//! wrote its value (wr edges). Version orders are partial, inferred from the initial state (null
//! precedes every write), from write-follows-read inside a transaction and, for keys assumed
//! linearizable, from realtime order. ww and rw edges follow from the version order.
use super::anomaly::{show, AnomalyKind, AnomalyType};
use super::graph::{EdgeKind, EdgeList, RW, WR, WW};
use super::intern::{fast_map, pair, FastMap};
use std::collections::hash_map::Entry;

use super::parse::{duplicate_write, InputError, MopKind, MopValue, Status, Txns};
use super::{Explain, Finding, Options};
use crate::history::Value;

/// The version of a key before any write.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Write {
    mop: u32,
    /// The writer wrote the key again later in the same transaction.
    intermediate: bool,
}

pub(crate) struct RwRegister<'a> {
    txns: &'a Txns,
    writes: FastMap<u64, Write>,
    /// (key, earlier version, later version), sorted and deduplicated.
    versions: Vec<(u32, u32, u32)>,
}

/// The first and last version of each key a transaction saw or made.
#[derive(Clone, Copy)]
struct Touch {
    key: u32,
    txn: u32,
    /// The version read before the transaction wrote the key, if it read first.
    first: Option<u32>,
    /// The final write, or the version read when it only read.
    last: Option<u32>,
    /// Whether `last` was written by this transaction.
    wrote: bool,
}

impl RwRegister<'_> {
    fn writer(&self, key: u32, v: u32) -> Option<u32> {
        if v == NIL {
            return None;
        }
        self.writes
            .get(&pair(key, v))
            .map(|w| self.txns.mop_txn[w.mop as usize])
    }

    fn committed_writer(&self, key: u32, v: u32) -> Option<u32> {
        self.writer(key, v)
            .filter(|&t| self.txns.txns[t as usize].status != Status::Fail)
    }

    fn key(&self, k: u32) -> String {
        show(self.txns.keys.value(k))
    }

    fn val(&self, v: u32) -> String {
        if v == NIL {
            "null".into()
        } else {
            show(&self.txns.values.value(v))
        }
    }

    fn version_value(&self, v: u32) -> Value {
        if v == NIL {
            Value::Null
        } else {
            self.txns.values.value(v)
        }
    }
}

fn touches(txns: &Txns, t: u32) -> Vec<Touch> {
    let mut out: Vec<Touch> = Vec::new();
    let known = txns.txns[t as usize].status == Status::Ok;
    for m in &txns.mops[txns.mops_of(t)] {
        let i = match out.iter().position(|x| x.key == m.key) {
            Some(i) => i,
            None => {
                out.push(Touch {
                    key: m.key,
                    txn: t,
                    first: None,
                    last: None,
                    wrote: false,
                });
                let i = out.len() - 1;
                if m.kind == MopKind::Read && known {
                    let v = match m.value {
                        MopValue::Atom(v) => Some(v),
                        MopValue::Nil => Some(NIL),
                        _ => None,
                    };
                    out[i].first = v;
                    out[i].last = v;
                }
                i
            }
        };
        if let (MopKind::Write, MopValue::Atom(v)) = (m.kind, m.value) {
            out[i].last = Some(v);
            out[i].wrote = true;
        }
    }
    out
}

pub(crate) fn infer<'a>(
    txns: &'a Txns,
    opts: &Options,
    edges: &mut EdgeList,
    found: &mut Vec<Finding>,
) -> Result<RwRegister<'a>, InputError> {
    let mut writes: FastMap<u64, Write> = fast_map(txns.mops.len());
    for t in 0..txns.txns.len() as u32 {
        let r = txns.mops_of(t);
        let mops = &txns.mops[r.clone()];
        for (i, m) in mops.iter().enumerate() {
            if let (MopKind::Write, MopValue::Atom(v)) = (m.kind, m.value) {
                let later = mops[i + 1..]
                    .iter()
                    .any(|n| n.kind == MopKind::Write && n.key == m.key);
                let mop = (r.start + i) as u32;
                match writes.entry(pair(m.key, v)) {
                    Entry::Occupied(o) => return Err(duplicate_write(txns, o.get().mop, mop)),
                    Entry::Vacant(slot) => {
                        slot.insert(Write {
                            mop,
                            intermediate: later,
                        });
                    }
                }
            }
        }
    }
    let mut rr = RwRegister {
        txns,
        writes,
        versions: Vec::new(),
    };

    let mut all_touches: Vec<Touch> = Vec::new();
    // (key, version read, reader) for external reads of ok transactions.
    let mut ext_reads: Vec<(u32, u32, u32)> = Vec::new();
    let mut rmw: Vec<(u32, u32, u32)> = Vec::new();
    for (t, txn) in txns.txns.iter().enumerate() {
        let t = t as u32;
        if txn.status == Status::Fail {
            continue;
        }
        if txn.status == Status::Ok {
            check_internal(&rr, t, found);
        }
        for x in touches(txns, t) {
            if let Some(v) = x.first {
                ext_reads.push((x.key, v, t));
                if x.wrote {
                    rmw.push((x.key, v, t));
                    if opts.wfr_keys {
                        rr.versions.push((x.key, v, x.last.unwrap_or(NIL)));
                    }
                }
            }
            all_touches.push(x);
        }
    }

    // Reads of aborted, intermediate or unwritten values.
    for &(k, v, reader) in &ext_reads {
        if v == NIL {
            continue;
        }
        let Some(w) = rr.writes.get(&pair(k, v)).copied() else {
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::GarbageRead),
                key: Some(k),
                txns: vec![reader],
                text: format!(
                    "T1 read {} from key {}, but no transaction wrote it",
                    rr.val(v),
                    rr.key(k)
                ),
            });
            continue;
        };
        let writer = txns.mop_txn[w.mop as usize];
        if txns.txns[writer as usize].status == Status::Fail {
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::G1a),
                key: Some(k),
                txns: vec![reader, writer],
                text: format!(
                    "T1 read {} from key {}, written by T2, a transaction that failed",
                    rr.val(v),
                    rr.key(k)
                ),
            });
        } else if w.intermediate && writer != reader {
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::G1b),
                key: Some(k),
                txns: vec![reader, writer],
                text: format!(
                    "T1 read {} from key {}, an intermediate write: T2 wrote key {} again afterwards",
                    rr.val(v),
                    rr.key(k),
                    rr.key(k)
                ),
            });
        }
    }

    if opts.linearizable_keys {
        realtime_versions(txns, &mut all_touches, &mut rr.versions);
    }
    rr.versions.retain(|&(_, a, b)| a != b);
    // The initial state precedes every committed version with no other known predecessor.
    let mut has_pred = fast_map::<u64, ()>(rr.versions.len());
    for &(k, a, b) in &rr.versions {
        if a != NIL {
            has_pred.insert(pair(k, b), ());
        }
    }
    let mut roots: Vec<(u32, u32, u32)> = Vec::new();
    for (&kv, w) in &rr.writes {
        let t = txns.mop_txn[w.mop as usize];
        if txns.txns[t as usize].status != Status::Fail
            && !w.intermediate
            && !has_pred.contains_key(&kv)
        {
            roots.push(((kv >> 32) as u32, NIL, kv as u32));
        }
    }
    rr.versions.extend(roots);
    rr.versions.sort_unstable();
    rr.versions.dedup();
    check_cyclic_versions(&rr, found);

    // Edges.
    ext_reads.sort_unstable();
    for &(k, v, reader) in &ext_reads {
        if let Some(w) = rr.committed_writer(k, v) {
            edges.add(w, reader, WR);
        }
    }
    for &(k, a, b) in &rr.versions {
        let Some(wb) = rr.committed_writer(k, b) else {
            continue;
        };
        if let Some(wa) = rr.committed_writer(k, a) {
            edges.add(wa, wb, WW);
        }
        let lo = ext_reads.partition_point(|&(k2, v2, _)| (k2, v2) < (k, a));
        for &(k2, v2, reader) in &ext_reads[lo..] {
            if (k2, v2) != (k, a) {
                break;
            }
            edges.add(reader, wb, RW);
        }
    }

    rmw.sort_unstable();
    for group in rmw.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        if group.len() < 2 {
            continue;
        }
        let (k, v, _) = group[0];
        let names = super::anomaly::name_list(group.len());
        let unseen = if group.len() == 2 {
            "neither seeing the other's update"
        } else {
            "none seeing the others' updates"
        };
        found.push(Finding {
            kind: AnomalyType::plain(AnomalyKind::LostUpdate),
            key: Some(k),
            txns: group.iter().map(|g| g.2).collect(),
            text: format!(
                "{names} read key {} as {} and then wrote it, {unseen}",
                rr.key(k),
                rr.val(v)
            ),
        });
    }
    Ok(rr)
}

/// A read after the transaction's own read or write of a key must return that value.
fn check_internal(rr: &RwRegister, t: u32, found: &mut Vec<Finding>) {
    let txns = rr.txns;
    let mops = &txns.mops[txns.mops_of(t)];
    for (i, m) in mops.iter().enumerate() {
        let got = match (m.kind, m.value) {
            (MopKind::Read, MopValue::Atom(v)) => v,
            (MopKind::Read, MopValue::Nil) => NIL,
            _ => continue,
        };
        let Some(prev) = mops[..i].iter().rev().find(|p| p.key == m.key) else {
            continue;
        };
        let expected = match prev.value {
            MopValue::Atom(v) => v,
            MopValue::Nil => NIL,
            _ => continue,
        };
        if expected != got {
            let why = if prev.kind == MopKind::Write {
                "wrote"
            } else {
                "read"
            };
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::Internal),
                key: Some(m.key),
                txns: vec![t],
                text: format!(
                    "T1 read {} from key {}, but it had just {why} {}",
                    rr.val(got),
                    rr.key(m.key),
                    rr.val(expected)
                ),
            });
        }
    }
}

/// For keys assumed linearizable: if T1 completed before T2 began, T1's last version of a key
/// precedes (or equals) the versions T2 saw or made. Uses the same frontier reduction as the
/// realtime edges between transactions, per key.
fn realtime_versions(txns: &Txns, touches: &mut [Touch], versions: &mut Vec<(u32, u32, u32)>) {
    touches.sort_unstable_by_key(|x| (x.key, txns.txns[x.txn as usize].invoke));
    for group in touches.chunk_by(|a, b| a.key == b.key) {
        let k = group[0].key;
        // (history position, index in group, is completion)
        let mut events: Vec<(u32, u32, bool)> = Vec::with_capacity(group.len() * 2);
        for (i, x) in group.iter().enumerate() {
            let t = &txns.txns[x.txn as usize];
            events.push((t.invoke, i as u32, false));
            if let (Status::Ok, Some(c)) = (t.status, t.complete) {
                events.push((c, i as u32, true));
            }
        }
        events.sort_unstable();
        let mut frontier: Vec<(u32, usize)> = Vec::new();
        let mut invoked_at = vec![0usize; group.len()];
        for (seq, &(_, i, done)) in events.iter().enumerate() {
            let x = group[i as usize];
            if done {
                let since = invoked_at[i as usize];
                frontier.retain(|&(_, added)| added > since);
                frontier.push((i, seq));
                continue;
            }
            invoked_at[i as usize] = seq;
            for &(p, _) in &frontier {
                let Some(before) = group[p as usize].last else {
                    continue;
                };
                if let Some(first) = x.first {
                    versions.push((k, before, first));
                } else if let (true, Some(v)) = (x.wrote, x.last) {
                    versions.push((k, before, v));
                }
            }
        }
    }
}

/// Reports keys whose version order has a cycle (Kahn's algorithm per key).
fn check_cyclic_versions(rr: &RwRegister, found: &mut Vec<Finding>) {
    for group in rr.versions.chunk_by(|a, b| a.0 == b.0) {
        let k = group[0].0;
        let mut indeg = fast_map::<u32, u32>(group.len());
        for &(_, a, b) in group {
            indeg.entry(a).or_insert(0);
            *indeg.entry(b).or_insert(0) += 1;
        }
        let mut ready: Vec<u32> = indeg
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&v, _)| v)
            .collect();
        let mut done = 0;
        while let Some(v) = ready.pop() {
            done += 1;
            let lo = group.partition_point(|&(_, a, _)| a < v);
            for &(_, a, b) in &group[lo..] {
                if a != v {
                    break;
                }
                let d = indeg.get_mut(&b).expect("every target counted");
                *d -= 1;
                if *d == 0 {
                    ready.push(b);
                }
            }
        }
        if done < indeg.len() {
            let mut stuck: Vec<u32> = indeg
                .iter()
                .filter(|(_, &d)| d > 0)
                .map(|(&v, _)| v)
                .collect();
            stuck.sort_unstable();
            let shown: Vec<String> = stuck.iter().map(|&v| rr.val(v)).collect();
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::CyclicVersions),
                key: Some(k),
                txns: Vec::new(),
                text: format!(
                    "the versions of key {} cannot be ordered: {} each follow one another",
                    rr.key(k),
                    shown.join(", ")
                ),
            });
        }
    }
}

impl Explain for RwRegister<'_> {
    fn why(
        &self,
        a: u32,
        b: u32,
        kind: EdgeKind,
        na: &str,
        nb: &str,
    ) -> Option<(Value, Value, String)> {
        let txns = self.txns;
        let key = |k: u32| txns.keys.value(k).clone();
        match kind {
            EdgeKind::Ww => self.versions.iter().find_map(|&(k, va, vb)| {
                (self.writer(k, va) == Some(a) && self.writer(k, vb) == Some(b)).then(|| {
                    (
                        key(k),
                        self.version_value(vb),
                        format!(
                            "{na} < {nb} because {nb} wrote {} to key {} after {na}'s write of {}",
                            self.val(vb),
                            self.key(k),
                            self.val(va)
                        ),
                    )
                })
            }),
            EdgeKind::Wr => touches(txns, b).into_iter().find_map(|x| {
                let v = x.first?;
                (self.writer(x.key, v) == Some(a)).then(|| {
                    (
                        key(x.key),
                        self.version_value(v),
                        format!("{na} < {nb} because {nb} read {na}'s write of {} to key {}", self.val(v), self.key(x.key)),
                    )
                })
            }),
            EdgeKind::Rw => touches(txns, a).into_iter().find_map(|x| {
                let v = x.first?;
                let lo = self.versions.partition_point(|&(k, va, _)| (k, va) < (x.key, v));
                self.versions[lo..]
                    .iter()
                    .take_while(|&&(k, va, _)| (k, va) == (x.key, v))
                    .find(|&&(k, _, vb)| self.writer(k, vb) == Some(b))
                    .map(|&(k, _, vb)| {
                        let read = if v == NIL {
                            format!("read key {} as null (its initial state)", self.key(k))
                        } else {
                            format!("read {} from key {}", self.val(v), self.key(k))
                        };
                        (
                            key(k),
                            self.version_value(vb),
                            format!("{na} < {nb} because {na} {read}, a version before {nb}'s write of {}", self.val(vb)),
                        )
                    })
            }),
            EdgeKind::Process | EdgeKind::Realtime => None,
        }
    }
}
