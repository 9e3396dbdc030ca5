//! A three-node cluster driven by hand: nothing is delivered unless the test says so.
use std::collections::BTreeMap;
use targets::paxos::{Paxos, PaxosMsg, Record, Role, Slot, Tuning, Value};
use targets::protocol::{ClientOp, Response};
use targets::sm::{ClientToken, Config, Now, Out, ReadMode, StateMachine};

/// Three nodes driven by hand: nothing is delivered unless the test says so.
pub struct Script {
    pub ids: Vec<String>,
    pub configs: Vec<Config>,
    pub nodes: Vec<Option<Paxos>>,
    pub logs: Vec<Vec<Record>>,
    /// Sent but not yet delivered: (from, to, message).
    pub in_flight: Vec<(usize, usize, PaxosMsg)>,
    pub replies: BTreeMap<ClientToken, Response>,
    pub now: u64,
    pub tuning: Tuning,
}

impl Script {
    pub fn new(bugs: &[&str]) -> Self {
        Script::with_tuning(
            bugs,
            Tuning {
                // Long enough that only the ticks the script asks for start elections.
                election_timeout_min_ms: 1_000,
                election_timeout_max_ms: 1_001,
                ..Tuning::default()
            },
        )
    }

    pub fn with_tuning(bugs: &[&str], tuning: Tuning) -> Self {
        let ids: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
        let configs: Vec<Config> = ids
            .iter()
            .map(|id| Config {
                id: id.clone(),
                peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                bugs: bugs.iter().map(|b| b.to_string()).collect(),
                read_mode: ReadMode::Quorum,
                seed: 7,
            })
            .collect();
        let mut s = Script {
            ids,
            configs,
            nodes: vec![None, None, None],
            logs: vec![Vec::new(); 3],
            in_flight: Vec::new(),
            replies: BTreeMap::new(),
            now: 0,
            tuning,
        };
        for i in 0..3 {
            s.start(i);
        }
        s
    }

    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.now,
            wall_ms: 1_700_000_000_000 + self.now,
        }
    }

    pub fn start(&mut self, i: usize) {
        self.nodes[i] = Some(Paxos::recover_with(
            self.configs[i].clone(),
            self.tuning.clone(),
            self.logs[i].clone(),
            self.now(),
        ));
    }

    pub fn crash_and_restart(&mut self, i: usize) {
        self.nodes[i] = None;
        self.in_flight.retain(|(_, to, _)| *to != i);
        self.now += 1;
        self.start(i);
    }

    pub fn step(&mut self, i: usize, f: impl FnOnce(&mut Paxos, Now, &mut Out<PaxosMsg, Record>)) {
        let now = self.now();
        let mut out = Out::default();
        f(self.nodes[i].as_mut().expect("node is up"), now, &mut out);
        if let Some(records) = out.compact {
            self.logs[i] = records;
        }
        self.logs[i].extend(out.persist);
        for (to, msg) in out.send {
            let j = self.ids.iter().position(|id| *id == to).expect("member");
            self.in_flight.push((i, j, msg));
        }
        self.replies.extend(out.reply);
    }

    /// Lets node `i`'s election timeout expire.
    pub fn time_out(&mut self, i: usize) {
        self.now += 2 * self.tuning.election_timeout_max_ms;
        self.tick(i);
    }

    pub fn tick(&mut self, i: usize) {
        self.step(i, |sm, now, out| sm.on_tick(now, out));
    }

    pub fn node(&self, i: usize) -> &Paxos {
        self.nodes[i].as_ref().expect("node is up")
    }

    pub fn request(&mut self, i: usize, token: ClientToken, op: ClientOp) {
        self.step(i, |sm, now, out| sm.on_request(now, token, op, out));
    }

    /// Delivers every in-flight message from `from` to `to` accepted by `pick`; the others stay.
    pub fn deliver(&mut self, from: usize, to: usize, pick: impl Fn(&PaxosMsg) -> bool) -> usize {
        let (chosen, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(f, t, m)| *f == from && *t == to && pick(m));
        self.in_flight = rest;
        let n = chosen.len();
        for (f, t, msg) in chosen {
            let sender = self.ids[f].clone();
            self.step(t, |sm, now, out| sm.on_message(now, sender, msg, out));
        }
        n
    }

    pub fn deliver_all(&mut self, from: usize, to: usize) -> usize {
        self.deliver(from, to, |_| true)
    }

    /// Forgets every in-flight message.
    pub fn drop_all(&mut self) {
        self.in_flight.clear();
    }

    pub fn role(&self, i: usize) -> Role {
        self.nodes[i].as_ref().expect("up").role()
    }

    /// What node `i` persisted as decided, slot by slot.
    pub fn decided(&self, i: usize) -> BTreeMap<Slot, Value> {
        self.logs[i]
            .iter()
            .filter_map(|r| match r {
                Record::Decide { slot, value } => Some((*slot, value.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Script {
    /// Delivers every message (and the messages they cause) in send order, dropping those to or
    /// from `cut` nodes, until the network is empty.
    pub fn settle(&mut self, cut: &[usize]) {
        for _ in 0..10_000 {
            if self.in_flight.is_empty() {
                return;
            }
            let (from, to, msg) = self.in_flight.remove(0);
            if cut.contains(&from) || cut.contains(&to) || self.nodes[to].is_none() {
                continue;
            }
            let sender = self.ids[from].clone();
            self.step(to, |sm, now, out| sm.on_message(now, sender, msg, out));
        }
        panic!("the network did not quiesce");
    }

    /// Node `leader` times out and wins an election with everybody not `cut`.
    pub fn elect(&mut self, leader: usize, cut: &[usize]) {
        self.time_out(leader);
        self.settle(cut);
        assert_eq!(self.role(leader), Role::Leader);
    }
}
