//! A deterministic network and disk simulator for any [`StateMachine`] (no sockets, no sleeps).
//!
//! Time is a counter in milliseconds. Messages get a random delay (so they reorder), may be lost
//! or duplicated, and are dropped across a partition or to a crashed node. A crash forgets the
//! machine but keeps its "disk" (the records it persisted, with `compact` applied exactly as the
//! real runtime does); a restart rebuilds the machine from that disk. Everything random comes from
//! one seeded RNG, so a seed replays a schedule exactly.
//!
//! Two ways to drive it: [`Sim::run_for`] delivers and ticks automatically under [`Faults`];
//! the manual calls ([`Sim::tick`], [`Sim::deliver_where`], [`Sim::drop_where`]) let a test script
//! an exact schedule (e.g. Raft's Figure 8).
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use targets::protocol::{ClientOp, Response};
use targets::sm::{ClientToken, Config, NodeId, Now, Out, ReadMode, StateMachine};

/// Wall-clock milliseconds at simulated time 0 (any plausible epoch time).
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// Network misbehaviour for automatic runs.
#[derive(Debug, Clone)]
pub struct Faults {
    pub loss: f64,
    pub duplicate: f64,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            loss: 0.0,
            duplicate: 0.0,
            min_delay_ms: 1,
            max_delay_ms: 3,
        }
    }
}

pub struct SimNode<S: StateMachine> {
    pub config: Config,
    /// `None` while crashed.
    pub sm: Option<S>,
    /// What survived: persisted records.
    pub disk: Vec<S::Record>,
    /// Added to this node's wall clock (a clock fault).
    pub skew_ms: i64,
}

#[derive(Debug, Clone)]
pub struct InFlight<M> {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: M,
    pub at: u64,
}

/// A reply a client received.
#[derive(Debug, Clone)]
pub struct Reply {
    pub node: NodeId,
    pub token: ClientToken,
    pub response: Response,
    pub at: u64,
}

/// Called after every event of an automatic run with the node the event touched.
pub type Check<'a, S> = dyn FnMut(&Sim<S>, &NodeId) -> Result<(), String> + 'a;

type Make<S> = Box<dyn Fn(Config, Vec<<S as StateMachine>::Record>, Now) -> S>;

pub struct Sim<S: StateMachine> {
    pub now: u64,
    pub nodes: BTreeMap<NodeId, SimNode<S>>,
    /// In-flight messages, ordered by delivery time then by send order.
    net: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: BTreeMap<u64, InFlight<S::Msg>>,
    seq: u64,
    pub faults: Faults,
    pub rng: StdRng,
    /// Directed links that drop everything (a partition).
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub replies: Vec<Reply>,
    pub tick_ms: u64,
    next_tick: u64,
    next_token: ClientToken,
    make: Make<S>,
}

/// Node ids `n1..=nN`.
pub fn node_ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

impl<S: StateMachine> Sim<S> {
    /// A cluster of `n` nodes. `bugs` and `read_mode` apply to every node; `make` builds a machine
    /// from its configuration and disk (usually `S::recover`, or a constructor with tuning).
    pub fn new(
        n: usize,
        seed: u64,
        bugs: &[&str],
        read_mode: ReadMode,
        make: impl Fn(Config, Vec<S::Record>, Now) -> S + 'static,
    ) -> Self {
        let ids = node_ids(n);
        let mut sim = Sim {
            now: 0,
            nodes: BTreeMap::new(),
            net: BinaryHeap::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(seed),
            blocked: BTreeSet::new(),
            replies: Vec::new(),
            tick_ms: 5,
            next_tick: 5,
            next_token: 1,
            make: Box::new(make),
        };
        for id in &ids {
            let config = Config {
                id: id.clone(),
                peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                bugs: bugs.iter().map(|b| b.to_string()).collect(),
                read_mode,
                seed,
            };
            let now = sim.now_for(0);
            let sm = (sim.make)(config.clone(), Vec::new(), now);
            sim.nodes.insert(
                id.clone(),
                SimNode {
                    config,
                    sm: Some(sm),
                    disk: Vec::new(),
                    skew_ms: 0,
                },
            );
        }
        sim
    }

    fn now_for(&self, skew_ms: i64) -> Now {
        Now {
            mono_ms: self.now,
            wall_ms: (EPOCH_MS as i64 + self.now as i64 + skew_ms) as u64,
        }
    }

    pub fn node_now(&self, id: &str) -> Now {
        self.now_for(self.nodes[id].skew_ms)
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().cloned().collect()
    }

    pub fn is_up(&self, id: &str) -> bool {
        self.nodes[id].sm.is_some()
    }

    pub fn sm(&self, id: &str) -> Option<&S> {
        self.nodes[id].sm.as_ref()
    }

    /// Performs a step's effects the way the runtime does: compact, persist, then send and reply.
    fn perform(&mut self, id: &str, out: Out<S::Msg, S::Record>) {
        let node = self.nodes.get_mut(id).expect("known node");
        if let Some(c) = out.compact {
            node.disk = c;
        }
        node.disk.extend(out.persist);
        for (to, msg) in out.send {
            self.post(id.to_string(), to, msg);
        }
        for (token, response) in out.reply {
            self.replies.push(Reply {
                node: id.to_string(),
                token,
                response,
                at: self.now,
            });
        }
    }

    fn post(&mut self, from: NodeId, to: NodeId, msg: S::Msg) {
        if self.blocked.contains(&(from.clone(), to.clone())) {
            return;
        }
        if self.faults.loss > 0.0 && self.rng.random_bool(self.faults.loss) {
            return;
        }
        let copies = if self.faults.duplicate > 0.0 && self.rng.random_bool(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let lo = self.faults.min_delay_ms;
            let hi = self.faults.max_delay_ms.max(lo);
            let at = self.now + self.rng.random_range(lo..=hi);
            self.seq += 1;
            self.net.push(Reverse((at, self.seq)));
            self.in_flight.insert(
                self.seq,
                InFlight {
                    from: from.clone(),
                    to: to.clone(),
                    msg: msg.clone(),
                    at,
                },
            );
        }
    }

    /// Hands one message to its destination (dropped if the destination is down).
    fn deliver(&mut self, m: InFlight<S::Msg>) {
        let now = self.node_now(&m.to);
        let Some(sm) = self.nodes.get_mut(&m.to).and_then(|n| n.sm.as_mut()) else {
            return;
        };
        let mut out = Out::default();
        sm.on_message(now, m.from, m.msg, &mut out);
        self.perform(&m.to, out);
    }

    /// A client request to `id`; `None` if the node is down.
    pub fn request(&mut self, id: &str, op: ClientOp) -> Option<ClientToken> {
        let now = self.node_now(id);
        let token = self.next_token;
        let sm = self.nodes.get_mut(id)?.sm.as_mut()?;
        self.next_token += 1;
        let mut out = Out::default();
        sm.on_request(now, token, op, &mut out);
        self.perform(id, out);
        Some(token)
    }

    pub fn tick(&mut self, id: &str) {
        let now = self.node_now(id);
        let Some(sm) = self.nodes.get_mut(id).and_then(|n| n.sm.as_mut()) else {
            return;
        };
        let mut out = Out::default();
        sm.on_tick(now, &mut out);
        self.perform(id, out);
    }

    /// Moves time forward without delivering or ticking anything.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    pub fn crash(&mut self, id: &str) {
        self.nodes.get_mut(id).expect("known node").sm = None;
    }

    pub fn restart(&mut self, id: &str) {
        let now = self.node_now(id);
        let node = &self.nodes[id];
        let sm = (self.make)(node.config.clone(), node.disk.clone(), now);
        self.nodes.get_mut(id).expect("known node").sm = Some(sm);
    }

    /// Cuts every link between the groups (both directions); nodes in no group keep all links.
    pub fn partition(&mut self, groups: &[&[&str]]) {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            self.blocked.insert((x.to_string(), y.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Cuts `id` off from everyone.
    pub fn isolate(&mut self, id: &str) {
        for other in self.ids() {
            if other != id {
                self.blocked.insert((id.to_string(), other.clone()));
                self.blocked.insert((other, id.to_string()));
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// The messages currently in flight, in send order.
    pub fn in_flight(&self) -> Vec<&InFlight<S::Msg>> {
        self.in_flight.values().collect()
    }

    /// Delivers, now, every in-flight message matching `pred` (in send order). Messages sent as a
    /// consequence are queued, not delivered. Returns how many were delivered.
    pub fn deliver_where(&mut self, pred: impl Fn(&InFlight<S::Msg>) -> bool) -> usize {
        let keys: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, m)| pred(m))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            if let Some(m) = self.in_flight.remove(k) {
                self.deliver(m);
            }
        }
        keys.len()
    }

    /// Delivers matching messages, including ones they cause, until none match.
    pub fn deliver_all_where(&mut self, pred: impl Fn(&InFlight<S::Msg>) -> bool) {
        while self.deliver_where(&pred) > 0 {}
    }

    /// Drops every in-flight message matching `pred`.
    pub fn drop_where(&mut self, pred: impl Fn(&InFlight<S::Msg>) -> bool) {
        self.in_flight.retain(|_, m| !pred(m));
    }

    /// Runs `ms` milliseconds: each millisecond delivers the messages due and ticks every live
    /// node every `tick_ms`. `check` runs after every event with the node it touched; an `Err`
    /// stops the run and is returned.
    pub fn run_for(&mut self, ms: u64, check: &mut Check<'_, S>) -> Result<(), String> {
        let end = self.now + ms;
        while self.now < end {
            self.now += 1;
            while let Some(Reverse((at, seq))) = self.net.peek().copied() {
                if at > self.now {
                    break;
                }
                self.net.pop();
                // Already delivered or dropped by a manual call.
                let Some(m) = self.in_flight.remove(&seq) else {
                    continue;
                };
                let to = m.to.clone();
                self.deliver(m);
                check(self, &to)?;
            }
            if self.now >= self.next_tick {
                self.next_tick = self.now + self.tick_ms;
                for id in self.ids() {
                    self.tick(&id);
                    check(self, &id)?;
                }
            }
        }
        Ok(())
    }

    /// Runs without checks.
    pub fn run(&mut self, ms: u64) {
        self.run_for(ms, &mut |_, _| Ok(()))
            .expect("no check can fail");
    }

    /// Runs until `done` holds (checked every millisecond) or `limit_ms` passes; returns whether
    /// it held.
    pub fn run_until(&mut self, limit_ms: u64, done: impl Fn(&Sim<S>) -> bool) -> bool {
        for _ in 0..limit_ms {
            if done(self) {
                return true;
            }
            self.run(1);
        }
        done(self)
    }

    /// The reply for `token`, if one arrived.
    pub fn reply(&self, token: ClientToken) -> Option<&Response> {
        self.replies
            .iter()
            .find(|r| r.token == token)
            .map(|r| &r.response)
    }

    /// The live nodes whose `status` says they lead, with their terms.
    pub fn leaders(&self) -> Vec<(NodeId, u64)> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| {
                let s = n.sm.as_ref()?.status(self.node_now(id));
                (s.role == "leader").then_some((id.clone(), s.term))
            })
            .collect()
    }
}

/// Checks "at most one leader per term" across a whole run, from `status` alone (so it works for
/// any protocol whose status reports `role: leader` and a term).
#[derive(Default)]
pub struct LeadersPerTerm {
    seen: BTreeMap<u64, NodeId>,
}

impl LeadersPerTerm {
    pub fn check<S: StateMachine>(&mut self, sim: &Sim<S>, id: &NodeId) -> Result<(), String> {
        let Some(sm) = sim.sm(id) else { return Ok(()) };
        let s = sm.status(sim.node_now(id));
        if s.role != "leader" {
            return Ok(());
        }
        match self.seen.get(&s.term) {
            Some(other) if other != id => Err(format!(
                "two leaders in term {}: {other} and {id} (t={})",
                s.term, sim.now
            )),
            Some(_) => Ok(()),
            None => {
                self.seen.insert(s.term, id.clone());
                Ok(())
            }
        }
    }
}
