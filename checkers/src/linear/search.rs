//! Just-in-time linearization of one key (Wing & Gong, Lowe; the layout follows Porcupine).
//!
//! The entries of a key's history form a doubly linked list in time order. The search walks
//! the list from its head: at a call entry it tries to linearize that operation now (the model
//! allows the step and the resulting configuration is new), lifting the call and its return out
//! of the list; at a return entry it has found an operation that had to be linearized already,
//! so it backtracks. A configuration is the set of linearized operations plus the model state;
//! every configuration reached is remembered, so no configuration is explored twice.
//! Operations without a return entry (`info`, never completed) can be linearized at any time
//! and need not be linearized at all: the search succeeds once no return entries are left.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::model::{Step, Sym};
use super::Partition;

/// State shared by the searches of all keys of one check.
pub(crate) struct Shared {
    pub(crate) deadline: Option<Instant>,
    /// Set when some key is not linearizable: the other keys need not finish.
    pub(crate) cancel: AtomicBool,
    pub(crate) cache_bytes: AtomicUsize,
    pub(crate) max_cache_bytes: usize,
    /// Keys with more operations remember fingerprints instead of exact sets.
    pub(crate) exact_memo_max_ops: usize,
}

/// How far the search got before it had to give up: the operation whose return it could not
/// pass, the linearization that got furthest, and the states in which it was stuck there.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub(crate) blocked: u32,
    pub(crate) prefix: Vec<u32>,
    pub(crate) states: Vec<Sym>,
    pub(crate) more_states: bool,
}

pub(crate) enum Outcome {
    Valid,
    Invalid(Evidence),
    Unknown(String),
}

/// At most this many distinct stuck states are reported.
const MAX_REPORTED_STATES: usize = 16;

const OPTIONAL_SALT: u64 = 0x243F_6A88_85A3_08D3;

const HEAD: u32 = 0;
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    op: u32,
    /// For a call entry, the node of its return entry (`NONE` if it has none).
    ret: u32,
    is_call: bool,
}

struct List {
    nodes: Vec<Node>,
}

impl List {
    fn build(events: &[(u32, bool)], ops: usize) -> List {
        let tail = events.len() as u32 + 1;
        let mut nodes = Vec::with_capacity(events.len() + 2);
        let sentinel = |prev, next| Node {
            prev,
            next,
            op: NONE,
            ret: NONE,
            is_call: false,
        };
        nodes.push(sentinel(NONE, 1));
        let mut call_node = vec![NONE; ops];
        for (i, &(op, is_call)) in events.iter().enumerate() {
            let n = i as u32 + 1;
            nodes.push(Node {
                prev: n - 1,
                next: n + 1,
                op,
                ret: NONE,
                is_call,
            });
            if is_call {
                call_node[op as usize] = n;
            } else {
                let c = call_node[op as usize];
                nodes[c as usize].ret = n;
            }
        }
        nodes.push(sentinel(tail - 1, NONE));
        List { nodes }
    }

    #[inline]
    fn unlink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        self.nodes[prev as usize].next = next;
        self.nodes[next as usize].prev = prev;
    }

    #[inline]
    fn relink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        self.nodes[prev as usize].next = n;
        self.nodes[next as usize].prev = n;
    }

    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.nodes[call as usize].ret;
        if ret != NONE {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, call: u32) {
        let ret = self.nodes[call as usize].ret;
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// The memo of configurations: an open-addressing hash set of (state, bitset) rows stored
/// flat, keyed by a Zobrist hash of the bitset mixed with the state. A slot holds the row number
/// and the hash's high half, so most mismatches cost one cache line.
struct Memo {
    words: usize,
    slots: Vec<u64>,
    /// Rows in fixed-size chunks, so growing never copies them.
    chunks: Vec<Vec<u64>>,
    rows_per_chunk: usize,
    len: usize,
}

impl Memo {
    fn new(words: usize) -> Memo {
        Memo {
            words,
            slots: vec![0; 1024],
            chunks: Vec::new(),
            rows_per_chunk: (1 << 15) / (words + 1) + 1,
            len: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.chunks.iter().map(Vec::capacity).sum::<usize>() * 8
    }

    #[inline]
    fn row(&self, e: usize) -> &[u64] {
        let stride = self.words + 1;
        let start = (e % self.rows_per_chunk) * stride;
        &self.chunks[e / self.rows_per_chunk][start..start + stride]
    }

    /// Inserts the configuration; false when it was already present.
    #[inline]
    fn insert(&mut self, hash: u64, state: u64, bits: &[u64]) -> bool {
        let stride = self.words + 1;
        let mask = self.slots.len() - 1;
        let high = hash >> 32;
        let mut i = high as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            if slot >> 32 == high {
                let row = self.row((slot & 0xFFFF_FFFF) as usize - 1);
                if row[0] == state && &row[1..] == bits {
                    return false;
                }
            }
            i = (i + 1) & mask;
        }
        let chunk_rows = self.rows_per_chunk * stride;
        if self.chunks.last().is_none_or(|c| c.len() >= chunk_rows) {
            self.chunks
                .push(Vec::with_capacity(self.rows_per_chunk * stride));
        }
        let chunk = self.chunks.last_mut().expect("a chunk with room");
        chunk.push(state);
        chunk.extend_from_slice(bits);
        self.len += 1;
        self.slots[i] = (high << 32) | self.len as u64;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let mut slots = vec![0u64; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for &slot in self.slots.iter().filter(|&&s| s != 0) {
            let mut i = (slot >> 32) as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = slot;
        }
        self.slots = slots;
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[inline]
fn state_hash(s: Sym) -> u64 {
    splitmix(u64::from(s) ^ 0x5151_5151_0000_0000)
}

/// The search of one key, resumable so that many keys can share the cores fairly: a key
/// that turns out not linearizable early stops the others, as Porcupine's goroutines do.
pub(crate) struct KeySearch {
    list: List,
    zobrist: Vec<u64>,
    /// A second, independent Zobrist table: with `zobrist` it fingerprints a set in 128 bits.
    zobrist2: Vec<u64>,
    hash2: u64,
    /// Remember configurations by 128-bit fingerprint instead of the full bitset.
    fingerprint: bool,
    bits: Vec<u64>,
    hash: u64,
    memo: Memo,
    reported_bytes: usize,
    returns_left: usize,
    state: Sym,
    /// Lifted call entries with the state before them, and whether the move was forced.
    stack: Vec<(u32, Sym, bool)>,
    evidence: Evidence,
    furthest_block: u32,
    entry: u32,
    steps: u64,
    /// Per operation, the last (state, next state) it was applied to: the search often retries
    /// an op from the same state, and an `append` otherwise costs a hash lookup.
    last_step: Vec<(Sym, Sym)>,
    /// The stack depth below which `evidence.prefix` still equals the stack.
    prefix_valid: usize,
}

impl KeySearch {
    pub(crate) fn new(p: &Partition, shared: &Shared) -> KeySearch {
        let n = p.calls.len();
        let list = List::build(&p.events, n);
        let words = n.div_ceil(64).max(1);
        // Small keys remember configurations exactly. Bigger keys remember a 128-bit Zobrist
        // fingerprint of the linearized set instead of the set, so a memo entry stays 24 bytes
        // however long the key's history is. Two distinct configurations share a fingerprint
        // with probability 2^-128 per pair; only such a collision could prune a configuration
        // that was never explored.
        let fingerprint = n > shared.exact_memo_max_ops;
        let entry = list.nodes[HEAD as usize].next;
        KeySearch {
            list,
            zobrist: (0..n as u64).map(splitmix).collect(),
            zobrist2: (0..n as u64)
                .map(|i| splitmix(i ^ 0x6A09_E667_F3BC_C908))
                .collect(),
            hash2: 0,
            fingerprint,
            bits: vec![0u64; words],
            hash: 0,
            memo: Memo::new(if fingerprint { 2 } else { words }),
            reported_bytes: 0,
            returns_left: p.calls.iter().filter(|c| c.must).count(),
            state: 0,
            stack: Vec::with_capacity(n),
            evidence: Evidence {
                blocked: NONE,
                prefix: Vec::new(),
                states: Vec::new(),
                more_states: false,
            },
            furthest_block: 0,
            entry,
            steps: 0,
            last_step: vec![(Sym::MAX, 0); n],
            prefix_valid: 0,
        }
    }

    /// Searches for at most `budget` more steps; `None` when the budget ran out first.
    pub(crate) fn run(
        &mut self,
        p: &mut Partition,
        shared: &Shared,
        budget: u64,
    ) -> Option<Outcome> {
        let outcome = self.run_inner(p, shared, budget);
        if outcome.is_some() {
            shared
                .cache_bytes
                .fetch_sub(self.reported_bytes, Ordering::Relaxed);
            self.reported_bytes = 0;
            self.memo = Memo::new(1);
        }
        outcome
    }

    fn run_inner(&mut self, p: &mut Partition, shared: &Shared, budget: u64) -> Option<Outcome> {
        let stop = self.steps.saturating_add(budget);
        let list = &mut self.list;
        let bits = &mut self.bits;
        let zobrist = &self.zobrist;
        let zobrist2 = &self.zobrist2;
        let fingerprint = self.fingerprint;
        let mut hash2 = self.hash2;
        let memo = &mut self.memo;
        let stack = &mut self.stack;
        let evidence = &mut self.evidence;
        let last_step = &mut self.last_step;
        let mut hash = self.hash;
        let mut state = self.state;
        let mut entry = self.entry;
        let mut returns_left = self.returns_left;
        let mut steps = self.steps;
        let tail = list.nodes.len() as u32 - 1;
        let outcome = loop {
            if returns_left == 0 {
                break Some(Outcome::Valid);
            }
            if steps >= stop {
                break None;
            }
            steps += 1;
            if steps & 0x3FF == 0 {
                if shared.cancel.load(Ordering::Relaxed) {
                    break Some(Outcome::Unknown(
                        "cancelled: another key is not linearizable".into(),
                    ));
                }
                if shared.deadline.is_some_and(|d| Instant::now() >= d) {
                    break Some(Outcome::Unknown("time limit reached".into()));
                }
                let now = memo.bytes();
                if now > self.reported_bytes {
                    let total = shared
                        .cache_bytes
                        .fetch_add(now - self.reported_bytes, Ordering::Relaxed)
                        + (now - self.reported_bytes);
                    self.reported_bytes = now;
                    if total > shared.max_cache_bytes {
                        break Some(Outcome::Unknown(format!(
                            "memory guard: the search memo reached {} MiB (limit {} MiB)",
                            total >> 20,
                            shared.max_cache_bytes >> 20
                        )));
                    }
                }
            }
            let node = list.nodes[entry as usize];
            if node.is_call {
                let op = node.op as usize;
                let step = p.calls[op].step;
                let optional = !p.calls[op].must;
                // Right after an optional (info) op only an op that observes the state may
                // follow: an info op followed by a blind write could be left out, and one
                // followed by anything else could move later, so some linearization always has
                // this shape if any does. This stops stale info writes from being retried deep.
                let after_optional = stack
                    .last()
                    .is_some_and(|&(c, _, _)| !p.calls[list.nodes[c as usize].op as usize].must);
                let applied = match step {
                    Step::Write(_) if after_optional => None,
                    Step::Append(_) if last_step[op].0 == state => Some(last_step[op].1),
                    Step::Append(_) => {
                        let next = p.machine.step(state, step);
                        if let Some(next) = next {
                            last_step[op] = (state, next);
                        }
                        next
                    }
                    _ => p.machine.step(state, step),
                };
                if let Some(next) = applied {
                    bits[op / 64] |= 1 << (op % 64);
                    // Configurations right after an optional op allow fewer moves: remember
                    // them apart from the same set and state reached otherwise.
                    let key = u64::from(next) | (u64::from(optional) << 32);
                    let key_hash = state_hash(next) ^ if optional { OPTIONAL_SALT } else { 0 };
                    let new = if fingerprint {
                        let print = [hash ^ zobrist[op], hash2 ^ zobrist2[op]];
                        memo.insert(print[0] ^ key_hash, key, &print)
                    } else {
                        memo.insert(hash ^ zobrist[op] ^ key_hash, key, bits)
                    };
                    if new {
                        hash ^= zobrist[op];
                        hash2 ^= zobrist2[op];
                        // A read that fits the current state can go first in any linearization
                        // from here (it changes nothing, and every op that must precede it is
                        // already linearized), so no alternative to it needs exploring.
                        let forced = matches!(step, Step::Read(_));
                        stack.push((entry, state, forced));
                        state = next;
                        list.lift(entry);
                        if node.ret != NONE {
                            returns_left -= 1;
                        }
                        entry = list.nodes[HEAD as usize].next;
                        continue;
                    }
                    bits[op / 64] &= !(1 << (op % 64));
                }
                entry = node.next;
            } else {
                // Stuck: this return's operation should have been linearized by now.
                if node.op != NONE {
                    if entry > self.furthest_block {
                        self.furthest_block = entry;
                        evidence.blocked = node.op;
                        // Copy only the part of the stack that changed since the last record.
                        evidence.prefix.truncate(self.prefix_valid);
                        evidence.prefix.extend(
                            stack[self.prefix_valid..]
                                .iter()
                                .map(|&(c, _, _)| list.nodes[c as usize].op),
                        );
                        self.prefix_valid = stack.len();
                        evidence.states = vec![state];
                        evidence.more_states = false;
                    } else if entry == self.furthest_block && !evidence.states.contains(&state) {
                        if evidence.states.len() < MAX_REPORTED_STATES {
                            evidence.states.push(state);
                        } else {
                            evidence.more_states = true;
                        }
                    }
                }
                let Some((call, prev_state, forced)) = stack.pop() else {
                    break Some(Outcome::Invalid(evidence.clone()));
                };
                let op = list.nodes[call as usize].op as usize;
                bits[op / 64] &= !(1 << (op % 64));
                hash ^= zobrist[op];
                hash2 ^= zobrist2[op];
                state = prev_state;
                list.unlift(call);
                self.prefix_valid = self.prefix_valid.min(stack.len());
                if list.nodes[call as usize].ret != NONE {
                    returns_left += 1;
                }
                // After a forced move, the configuration below it fails too: keep backtracking
                // (the tail sentinel acts as a return entry with no operation).
                entry = if forced {
                    tail
                } else {
                    list.nodes[call as usize].next
                };
            }
        };
        self.hash = hash;
        self.hash2 = hash2;
        self.state = state;
        self.entry = entry;
        self.returns_left = returns_left;
        self.steps = steps;
        outcome
    }
}
