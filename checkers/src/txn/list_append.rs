//! Inference for list-append histories: every read of a key returns the whole list of appended
//! elements, so the longest read of a key fixes the order of its versions, and every other read
//! must be a prefix of it. From that order come ww, wr and rw edges.
use super::anomaly::{show, AnomalyKind, AnomalyType};
use super::graph::{EdgeKind, EdgeList, RW, WR, WW};
use super::intern::{fast_map, pair, FastMap};
use std::collections::hash_map::Entry;

use super::parse::{duplicate_write, InputError, MopKind, MopValue, Status, Txns};
use super::{Explain, Finding};
use crate::history::Value;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Elem {
    /// The micro-op that appended this element, or NONE.
    writer: u32,
    /// Position in the key's version order, or NONE when no read that fixed the order saw it.
    pos: u32,
    /// The writer appended to the same key again later in the same transaction.
    intermediate: bool,
}

/// What list-append inference learned, kept for explaining edges.
pub(crate) struct ListAppend<'a> {
    txns: &'a Txns,
    /// Per key: the read that fixes its version order (a slice of `txns.elems`), and where the
    /// writers of those elements start in `order_writers`.
    order: Vec<(u32, u32, u32)>,
    /// For each element of each order: its writer transaction (NONE if nobody appended it),
    /// with INTERMEDIATE set when that was not the writer's last append to the key.
    order_writers: Vec<u32>,
    elems: FastMap<u64, Elem>,
}

const INTERMEDIATE: u32 = 1 << 31;
/// Position of an element seen only in reads incompatible with the version order.
const SEEN: u32 = u32::MAX - 1;

impl ListAppend<'_> {
    fn order_of(&self, key: u32) -> &[u32] {
        let (start, len, _) = self.order[key as usize];
        &self.txns.elems[start as usize..(start + len) as usize]
    }

    /// The writer of the element at position `i` of the key's order, if it did not fail.
    fn committed_at(&self, key: u32, i: usize) -> Option<u32> {
        let (_, _, w) = self.order[key as usize];
        let t = self.order_writers[w as usize + i];
        (t != NONE && self.txns.txns[(t & !INTERMEDIATE) as usize].status != Status::Fail)
            .then_some(t & !INTERMEDIATE)
    }

    fn writer(&self, key: u32, e: u32) -> Option<u32> {
        self.elems
            .get(&pair(key, e))
            .filter(|x| x.writer != NONE)
            .map(|x| self.txns.mop_txn[x.writer as usize])
    }

    fn committed_writer(&self, key: u32, e: u32) -> Option<u32> {
        self.writer(key, e)
            .filter(|&t| self.txns.txns[t as usize].status != Status::Fail)
    }

    /// The external reads of a transaction: reads of a key before it touched that key.
    fn ext_reads(&self, t: u32) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        let r = self.txns.mops_of(t);
        let mops = &self.txns.mops[r];
        mops.iter().enumerate().filter_map(move |(i, m)| {
            let first = !mops[..i].iter().any(|p| p.key == m.key);
            match (m.kind, m.value, first) {
                (MopKind::Read, v @ (MopValue::List { .. } | MopValue::Nil), true) => {
                    Some((m.key, self.txns.list(v)))
                }
                _ => None,
            }
        })
    }

    fn key(&self, k: u32) -> String {
        show(self.txns.keys.value(k))
    }

    fn val(&self, e: u32) -> String {
        show(&self.txns.values.value(e))
    }
}

pub(crate) fn infer<'a>(
    txns: &'a Txns,
    edges: &mut EdgeList,
    found: &mut Vec<Finding>,
) -> Result<ListAppend<'a>, InputError> {
    let nkeys = txns.keys.len();
    let appends = txns
        .mops
        .iter()
        .filter(|m| m.kind == MopKind::Append)
        .count();
    let mut elems: FastMap<u64, Elem> = fast_map(appends);
    let mut reads_by_key: Vec<Vec<u32>> = vec![Vec::new(); nkeys];
    let mut ext_reads: Vec<u32> = Vec::with_capacity(txns.mops.len());
    // (key, length read, txn) for transactions that read a key and then appended to it.
    let mut rmw: Vec<(u32, u32, u32)> = Vec::new();

    for (t, txn) in txns.txns.iter().enumerate() {
        let t = t as u32;
        let range = txns.mops_of(t);
        let mops = &txns.mops[range.clone()];
        for (i, m) in mops.iter().enumerate() {
            let mop = (range.start + i) as u32;
            match (m.kind, m.value) {
                (MopKind::Append, MopValue::Atom(e)) => {
                    let later = mops[i + 1..]
                        .iter()
                        .any(|n| n.kind == MopKind::Append && n.key == m.key);
                    match elems.entry(pair(m.key, e)) {
                        Entry::Occupied(o) => {
                            return Err(duplicate_write(txns, o.get().writer, mop));
                        }
                        Entry::Vacant(v) => {
                            v.insert(Elem {
                                writer: mop,
                                pos: NONE,
                                intermediate: later,
                            });
                        }
                    }
                }
                (MopKind::Read, v @ (MopValue::List { .. } | MopValue::Nil)) => {
                    if txn.status != Status::Ok {
                        continue;
                    }
                    reads_by_key[m.key as usize].push(mop);
                    let earlier = &mops[..i];
                    if !earlier.iter().any(|p| p.key == m.key) {
                        ext_reads.push(mop);
                        if mops[i + 1..]
                            .iter()
                            .any(|n| n.kind == MopKind::Append && n.key == m.key)
                        {
                            rmw.push((m.key, txns.list(v).len() as u32, t));
                        }
                    } else {
                        check_internal(txns, t, earlier, m.key, txns.list(v), found);
                    }
                }
                _ => {}
            }
        }
    }

    let mut la = ListAppend {
        txns,
        order: vec![(0, 0, 0); nkeys],
        order_writers: Vec::with_capacity(txns.mops.len()),
        elems,
    };

    // Version orders, and the anomalies visible in them.
    for (k, reads) in reads_by_key.iter().enumerate() {
        let k = k as u32;
        let Some(&longest) = reads
            .iter()
            .max_by_key(|&&r| txns.list(txns.mops[r as usize].value).len())
        else {
            continue;
        };
        let lv = txns.mops[longest as usize].value;
        let order = txns.list(lv);
        let wstart = la.order_writers.len();
        let mut dup = None;
        let mut garbage = None;
        for (i, &e) in order.iter().enumerate() {
            match la.elems.get_mut(&pair(k, e)) {
                Some(x) if x.pos != NONE => {
                    dup = Some(e);
                    break;
                }
                Some(x) => {
                    x.pos = i as u32;
                    let t = txns.mop_txn[x.writer as usize];
                    la.order_writers
                        .push(if x.intermediate { t | INTERMEDIATE } else { t });
                }
                None => {
                    garbage.get_or_insert(e);
                    la.order_writers.push(NONE);
                }
            }
        }
        if let Some(dup) = dup {
            for &e in order {
                if let Some(x) = la.elems.get_mut(&pair(k, e)) {
                    x.pos = NONE;
                }
            }
            la.order_writers.truncate(wstart);
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::DuplicateElements),
                key: Some(k),
                txns: vec![txns.mop_txn[longest as usize]],
                text: format!(
                    "T1 read key {} as {}, which holds {} more than once",
                    la.key(k),
                    render_list(&la, order),
                    la.val(dup)
                ),
            });
            continue;
        }
        if let MopValue::List { start, len } = lv {
            la.order[k as usize] = (start, len, wstart as u32);
        }
        if let Some(e) = garbage {
            found.push(Finding {
                kind: AnomalyType::plain(AnomalyKind::GarbageRead),
                key: Some(k),
                txns: vec![txns.mop_txn[longest as usize]],
                text: format!(
                    "T1 read {} in key {}, but no transaction appended it",
                    la.val(e),
                    la.key(k)
                ),
            });
        }
        let writers = &la.order_writers[wstart..];
        // Every read must be a prefix of the longest.
        let mut reported = false;
        for &r in reads {
            let list = txns.list(txns.mops[r as usize].value);
            if order[..list.len()] == *list {
                continue;
            }
            // Elements seen only in an incompatible read are not "unobserved" appends.
            for &e in list {
                if let Some(x) = la.elems.get_mut(&pair(k, e)) {
                    if x.pos == NONE {
                        x.pos = SEEN;
                    }
                }
            }
            if !reported {
                reported = true;
                let (a, b) = (txns.mop_txn[longest as usize], txns.mop_txn[r as usize]);
                found.push(Finding {
                    kind: AnomalyType::plain(AnomalyKind::IncompatibleOrder),
                    key: Some(k),
                    txns: vec![a, b],
                    text: format!(
                        "T1 read key {} as {} but T2 read it as {}: neither is a prefix of the other, so no single order of appends explains both",
                        la.key(k),
                        render_list(&la, order),
                        render_list(&la, list)
                    ),
                });
            }
        }
        // Aborted reads and dirty updates: an element of a failed transaction in the order.
        let failed = writers.iter().position(|&t| {
            t != NONE && txns.txns[(t & !INTERMEDIATE) as usize].status == Status::Fail
        });
        if let Some(fp) = failed {
            let fe = order[fp];
            let ft = writers[fp] & !INTERMEDIATE;
            for &r in reads {
                let list = txns.list(txns.mops[r as usize].value);
                if list.len() > fp && list[fp] == fe {
                    found.push(Finding {
                        kind: AnomalyType::plain(AnomalyKind::G1a),
                        key: Some(k),
                        txns: vec![txns.mop_txn[r as usize], ft],
                        text: format!(
                            "T1 read key {} as {}, which includes the append of {} by T2, a transaction that failed",
                            la.key(k),
                            render_list(&la, list),
                            la.val(fe)
                        ),
                    });
                }
            }
            if let Some(lp) = (fp + 1..order.len()).find(|&i| la.committed_at(k, i).is_some()) {
                let later = order[lp];
                let lt = writers[lp] & !INTERMEDIATE;
                found.push(Finding {
                    kind: AnomalyType::plain(AnomalyKind::DirtyUpdate),
                    key: Some(k),
                    txns: vec![ft, lt],
                    text: format!(
                        "T2 appended {} to key {} after the append of {} by T1, a transaction that failed: a committed write built on an aborted one",
                        la.val(later),
                        la.key(k),
                        la.val(fe)
                    ),
                });
            }
        }
        // Intermediate reads: the last element read was not its writer's final append.
        for &r in reads {
            let list = txns.list(txns.mops[r as usize].value);
            let Some(&last) = list.last() else { continue };
            let w = if order[..list.len()] == *list {
                writers[list.len() - 1]
            } else {
                match la.elems.get(&pair(k, last)) {
                    Some(x) if x.intermediate => txns.mop_txn[x.writer as usize] | INTERMEDIATE,
                    _ => NONE,
                }
            };
            let reader = txns.mop_txn[r as usize];
            if w != NONE && w & INTERMEDIATE != 0 && w & !INTERMEDIATE != reader {
                found.push(Finding {
                    kind: AnomalyType::plain(AnomalyKind::G1b),
                    key: Some(k),
                    txns: vec![reader, w & !INTERMEDIATE],
                    text: format!(
                        "T1 read key {} as {}, ending in {}, an intermediate state: T2 appended more to key {} after {}",
                        la.key(k),
                        render_list(&la, list),
                        la.val(last),
                        la.key(k),
                        la.val(last)
                    ),
                });
            }
        }
        // ww edges between consecutive versions.
        let mut prev: Option<u32> = None;
        for i in 0..order.len() {
            let w = la.committed_at(k, i);
            if let (Some(a), Some(b)) = (prev, w) {
                edges.add(a, b, WW);
            }
            prev = w;
        }
    }

    // Committed appends that no read observed come after every observed one: had one come
    // earlier, the longest read (a later state, by the prefix property) would hold it.
    let mut unobserved: Vec<(u32, u32)> = la
        .elems
        .iter()
        .filter(|(_, x)| x.pos == NONE && x.writer != NONE)
        .map(|(&kv, x)| ((kv >> 32) as u32, txns.mop_txn[x.writer as usize]))
        .filter(|&(_, t)| txns.txns[t as usize].status == Status::Ok)
        .collect();
    unobserved.sort_unstable();
    unobserved.dedup();
    let unobserved_of = |k: u32| {
        let lo = unobserved.partition_point(|&(k2, _)| k2 < k);
        unobserved[lo..]
            .iter()
            .take_while(move |&&(k2, _)| k2 == k)
            .map(|&(_, t)| t)
    };
    for k in 0..nkeys as u32 {
        let len = la.order_of(k).len();
        if let Some(w) = len.checked_sub(1).and_then(|i| la.committed_at(k, i)) {
            for t in unobserved_of(k) {
                edges.add(w, t, WW);
            }
        }
    }

    // wr and rw edges from external reads.
    for &r in &ext_reads {
        let m = txns.mops[r as usize];
        let reader = txns.mop_txn[r as usize];
        let list = txns.list(m.value);
        let order = la.order_of(m.key);
        let prefix = list.len() <= order.len() && order[..list.len()] == *list;
        let wrote_last = match list.last() {
            None => None,
            Some(_) if prefix => la.committed_at(m.key, list.len() - 1),
            Some(&e) => la.committed_writer(m.key, e),
        };
        if let Some(w) = wrote_last {
            edges.add(w, reader, WR);
        }
        if prefix && list.len() < order.len() {
            if let Some(w) = la.committed_at(m.key, list.len()) {
                edges.add(reader, w, RW);
            }
        } else if prefix {
            for w in unobserved_of(m.key) {
                edges.add(reader, w, RW);
            }
        }
    }

    // Lost updates: two committed transactions read the same version and both appended.
    rmw.sort_unstable();
    for group in rmw.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (k, len, _) = group[0];
        let order = la.order_of(k);
        if group.len() < 2 || len as usize > order.len() {
            continue;
        }
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
                "{names} read key {} as {} and then appended to it, {unseen}",
                la.key(k),
                render_list(&la, &order[..len as usize])
            ),
        });
    }
    Ok(la)
}

/// A read after the transaction's own reads or appends of a key must reflect exactly them.
fn check_internal(
    txns: &Txns,
    t: u32,
    earlier: &[super::parse::Mop],
    key: u32,
    got: &[u32],
    found: &mut Vec<Finding>,
) {
    let last_read = earlier
        .iter()
        .rposition(|p| p.key == key && p.kind == MopKind::Read);
    let since = last_read.map_or(0, |i| i + 1);
    let appended: Vec<u32> = earlier[since..]
        .iter()
        .filter(|p| p.key == key && p.kind == MopKind::Append)
        .filter_map(|p| match p.value {
            MopValue::Atom(e) => Some(e),
            _ => None,
        })
        .collect();
    let (ok, expected) = match last_read.map(|i| earlier[i].value) {
        Some(v @ (MopValue::List { .. } | MopValue::Nil)) => {
            let mut exp = txns.list(v).to_vec();
            exp.extend_from_slice(&appended);
            (got == exp.as_slice(), exp)
        }
        _ => (got.ends_with(&appended), appended),
    };
    if ok {
        return;
    }
    let show_list = |l: &[u32]| {
        let items: Vec<String> = l.iter().map(|&e| show(&txns.values.value(e))).collect();
        format!("[{}]", items.join(" "))
    };
    let what = if last_read.is_some() {
        format!("exactly {}", show_list(&expected))
    } else {
        format!("a list ending in {}", show_list(&expected))
    };
    found.push(Finding {
        kind: AnomalyType::plain(AnomalyKind::Internal),
        key: Some(key),
        txns: vec![t],
        text: format!(
            "T1 read key {} as {}, but its own earlier operations on that key imply {}",
            show(txns.keys.value(key)),
            show_list(got),
            what
        ),
    });
}

fn render_list(la: &ListAppend, l: &[u32]) -> String {
    let items: Vec<String> = l.iter().map(|&e| la.val(e)).collect();
    format!("[{}]", items.join(" "))
}

impl Explain for ListAppend<'_> {
    fn why(
        &self,
        a: u32,
        b: u32,
        kind: EdgeKind,
        na: &str,
        nb: &str,
    ) -> Option<(Value, Value, String)> {
        let txns = self.txns;
        match kind {
            EdgeKind::Ww => txns.mops[txns.mops_of(b)].iter().find_map(|m| {
                let MopValue::Atom(e) = m.value else {
                    return None;
                };
                let pos = self.elems.get(&pair(m.key, e))?.pos;
                let order = self.order_of(m.key);
                if m.kind != MopKind::Append || pos == 0 || pos == SEEN || order.is_empty() {
                    return None;
                }
                // An unobserved append comes after the last observed element.
                let before = if pos == NONE {
                    order[order.len() - 1]
                } else {
                    order[pos as usize - 1]
                };
                (self.writer(m.key, before) == Some(a)).then(|| {
                    (
                        txns.keys.value(m.key).clone(),
                        txns.values.value(e),
                        format!(
                            "{na} < {nb} because {nb} appended {} after {na} appended {} to key {}",
                            self.val(e),
                            self.val(before),
                            self.key(m.key)
                        ),
                    )
                })
            }),
            EdgeKind::Wr => self.ext_reads(b).find_map(|(k, list)| {
                let &e = list.last()?;
                (self.writer(k, e) == Some(a)).then(|| {
                    (
                        txns.keys.value(k).clone(),
                        txns.values.value(e),
                        format!(
                            "{na} < {nb} because {nb} read {na}'s append of {} to key {}",
                            self.val(e),
                            self.key(k)
                        ),
                    )
                })
            }),
            EdgeKind::Rw => self.ext_reads(a).find_map(|(k, list)| {
                let order = self.order_of(k);
                let next = match order.get(list.len()) {
                    Some(&next) => next,
                    // A read of the whole observed order precedes every unobserved append.
                    None => txns.mops[txns.mops_of(b)]
                        .iter()
                        .find_map(|m| match m.value {
                            MopValue::Atom(e) if m.kind == MopKind::Append && m.key == k => {
                                (self.elems.get(&pair(k, e))?.pos == NONE).then_some(e)
                            }
                            _ => None,
                        })?,
                };
                (self.writer(k, next) == Some(b)).then(|| {
                    let state = if list.is_empty() {
                        format!("read key {} as empty", self.key(k))
                    } else {
                        format!("read the state of key {}", self.key(k))
                    };
                    (
                        txns.keys.value(k).clone(),
                        txns.values.value(next),
                        format!(
                            "{na} < {nb} because {na} {state} before {nb} appended {}",
                            self.val(next)
                        ),
                    )
                })
            }),
            EdgeKind::Process | EdgeKind::Realtime => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rw_edge_points_at_the_next_append() {
        // T0 appends 1 to x; T1 reads x as [] (so before T0); T2 reads [1].
        let h = crate::txn::tests::history(&[
            (0, r#"[["append","x",1]]"#, r#"[["append","x",1]]"#),
            (1, r#"[["r","x",null]]"#, r#"[["r","x",null]]"#),
            (2, r#"[["r","x",null]]"#, r#"[["r","x",[1]]]"#),
        ]);
        let txns = super::super::parse::parse(&h, super::super::parse::Shape::ListAppend).unwrap();
        let mut edges = EdgeList::default();
        let mut found = Vec::new();
        let _ = infer(&txns, &mut edges, &mut found).unwrap();
        edges.edges.sort();
        assert!(found.is_empty());
        assert_eq!(edges.edges, vec![(0, 2, WR), (1, 0, RW)]);
    }
}
