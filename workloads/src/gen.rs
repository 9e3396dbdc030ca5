//! Seeded operation generators, one per workload. The same seed gives the same operations.
use checkers::history::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The workloads Faultline knows, each implying its checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Read/write/cas over many keys, each key with a bounded number of writes; linearizability per key.
    Register,
    /// Transactions of reads and appends of unique values; Elle-style list-append checker.
    ListAppend,
    /// Transactions of reads and writes of unique values; Elle-style rw-register checker.
    RwRegister,
    /// Unique adds to a set, then final reads; set checker.
    Set,
    /// Transfers between accounts and reads of every balance; bank checker (the total is
    /// conserved, no balance goes negative).
    Bank,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::RwRegister => "rw-register",
            WorkloadKind::Set => "set",
            WorkloadKind::Bank => "bank",
        }
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(WorkloadKind::Register),
            "list-append" => Ok(WorkloadKind::ListAppend),
            "rw-register" => Ok(WorkloadKind::RwRegister),
            "set" => Ok(WorkloadKind::Set),
            "bank" => Ok(WorkloadKind::Bank),
            other => Err(format!(
                "unknown workload {other:?} (expected register, list-append, rw-register, set or bank)"
            )),
        }
    }
}

/// Options shared by the generators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadOptions {
    pub seed: u64,
    /// Keys in play at any moment (a retired key is replaced by a fresh one).
    pub key_count: u64,
    /// Writes (or appends) a key receives before it is retired.
    pub max_writes_per_key: u64,
    /// Micro-operations per transaction, at most.
    pub max_txn_len: usize,
    /// The bank workload's accounts and amounts.
    pub bank: BankOptions,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            seed: 0,
            key_count: 8,
            max_writes_per_key: 32,
            max_txn_len: 4,
            bank: BankOptions::default(),
        }
    }
}

/// The bank workload: which keys are accounts, what each holds at the start, how much one
/// transfer moves at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankOptions {
    /// The account keys (distinct). The runner picks keys that the 2PC server places on
    /// different shards (`bundled::spread_accounts`), so transfers and reads cross shards.
    pub accounts: Vec<u64>,
    /// Every account's balance before the first transfer (written by the runner's setup).
    pub initial_balance: i64,
    /// A transfer moves between 1 and this much.
    pub max_transfer: i64,
}

impl Default for BankOptions {
    fn default() -> Self {
        BankOptions {
            accounts: (0..5).collect(),
            initial_balance: 100,
            max_transfer: 5,
        }
    }
}

impl BankOptions {
    /// The sum every read of all balances must show.
    pub fn total(&self) -> i64 {
        self.initial_balance
            .saturating_mul(i64::try_from(self.accounts.len()).unwrap_or(i64::MAX))
    }

    /// Why these options cannot make a bank test, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        let mut sorted = self.accounts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() < 2 || sorted.len() != self.accounts.len() {
            return Err(format!(
                "bank: needs at least two distinct accounts, got {:?}",
                self.accounts
            ));
        }
        if self.initial_balance < 0 || self.max_transfer < 1 {
            return Err(format!(
                "bank: initial balance {} must be >= 0 and max transfer {} >= 1",
                self.initial_balance, self.max_transfer
            ));
        }
        Ok(())
    }
}

/// What a client should invoke: the fields of the `invoke` op.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub f: String,
    pub key: Option<Value>,
    pub value: Value,
}

impl Invocation {
    /// True when performing the operation cannot change the store (a read, or a txn of reads only):
    /// an unknown outcome may then be recorded as `fail`.
    pub fn is_read_only(&self) -> bool {
        match self.f.as_str() {
            "read" => true,
            "txn" => self
                .value
                .as_array()
                .is_some_and(|mops| mops.iter().all(|m| m.get(0) == Some(&json!("r")))),
            _ => false,
        }
    }
}

/// A source of invocations for one test.
pub trait Generator: Send {
    /// The next invocation of the main phase.
    fn next_op(&mut self) -> Invocation;
    /// Invocations for the final phase, after faults are healed (e.g. the set's final reads).
    fn final_ops(&self) -> Vec<Invocation> {
        Vec::new()
    }
    /// Invocations the runner performs before the main phase, each until it is `ok`, without
    /// recording them (e.g. the bank's initial balances). They must be idempotent.
    fn setup_ops(&self) -> Vec<Invocation> {
        Vec::new()
    }
}

/// Builds the generator for a workload.
pub fn generator(kind: WorkloadKind, opts: &WorkloadOptions) -> Box<dyn Generator> {
    match kind {
        WorkloadKind::Register => Box::new(RegisterGen::new(opts)),
        WorkloadKind::ListAppend => Box::new(TxnGen::new(opts, TxnFlavor::Append)),
        WorkloadKind::RwRegister => Box::new(TxnGen::new(opts, TxnFlavor::Write)),
        WorkloadKind::Set => Box::new(SetGen::new(opts)),
        WorkloadKind::Bank => Box::new(BankGen::new(opts)),
    }
}

/// A rotating pool of keys: each key takes a bounded number of writes, then a fresh key replaces it.
/// This keeps every key's history short, so per-key checking stays cheap (as Jepsen's independent
/// tests do).
#[derive(Debug)]
struct KeyPool {
    active: Vec<(u64, u64)>,
    next_key: u64,
    budget: u64,
}

impl KeyPool {
    fn new(count: u64, budget: u64) -> Self {
        let count = count.max(1);
        KeyPool {
            active: (0..count).map(|k| (k, 0)).collect(),
            next_key: count,
            budget: budget.max(1),
        }
    }

    fn pick(&self, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.active.len())
    }

    fn key(&self, slot: usize) -> u64 {
        self.active[slot].0
    }

    /// Counts one write to the key in `slot` and returns its 1-based write number on that key.
    fn write(&mut self, slot: usize) -> u64 {
        let entry = &mut self.active[slot];
        entry.1 += 1;
        let n = entry.1;
        if n >= self.budget {
            *entry = (self.next_key, 0);
            self.next_key += 1;
        }
        n
    }
}

/// read/write/cas on a rotating key pool; values are small so that cas sometimes succeeds.
pub struct RegisterGen {
    rng: StdRng,
    keys: KeyPool,
}

impl RegisterGen {
    pub fn new(opts: &WorkloadOptions) -> Self {
        RegisterGen {
            rng: StdRng::seed_from_u64(opts.seed),
            keys: KeyPool::new(opts.key_count, opts.max_writes_per_key),
        }
    }
}

impl Generator for RegisterGen {
    fn next_op(&mut self) -> Invocation {
        let slot = self.keys.pick(&mut self.rng);
        let key = Some(json!(self.keys.key(slot)));
        let roll = self.rng.random_range(0..4);
        if roll < 2 {
            return Invocation {
                f: "read".into(),
                key,
                value: Value::Null,
            };
        }
        self.keys.write(slot);
        if roll == 2 {
            Invocation {
                f: "write".into(),
                key,
                value: json!(self.rng.random_range(0..5)),
            }
        } else {
            let (from, to) = (self.rng.random_range(0..5), self.rng.random_range(0..5));
            Invocation {
                f: "cas".into(),
                key,
                value: json!([from, to]),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnFlavor {
    Append,
    Write,
}

/// Transactions of reads and appends (list-append) or reads and writes (rw-register). Written
/// values are unique per key (the n-th write to a key writes n), which the Elle-style checkers need
/// to recover version orders.
pub struct TxnGen {
    rng: StdRng,
    keys: KeyPool,
    max_len: usize,
    flavor: TxnFlavor,
}

impl TxnGen {
    fn new(opts: &WorkloadOptions, flavor: TxnFlavor) -> Self {
        TxnGen {
            rng: StdRng::seed_from_u64(opts.seed),
            keys: KeyPool::new(opts.key_count, opts.max_writes_per_key),
            max_len: opts.max_txn_len.max(1),
            flavor,
        }
    }
}

impl Generator for TxnGen {
    fn next_op(&mut self) -> Invocation {
        let len = self.rng.random_range(1..=self.max_len);
        let mut mops = Vec::with_capacity(len);
        for _ in 0..len {
            let slot = self.keys.pick(&mut self.rng);
            let key = self.keys.key(slot);
            if self.rng.random_bool(0.5) {
                mops.push(json!(["r", key, null]));
            } else {
                let n = self.keys.write(slot);
                let f = if self.flavor == TxnFlavor::Append {
                    "append"
                } else {
                    "w"
                };
                mops.push(json!([f, key, n]));
            }
        }
        Invocation {
            f: "txn".into(),
            key: None,
            value: Value::Array(mops),
        }
    }
}

/// Unique adds to one set (the integers 0, 1, 2, ...), then reads of the whole set at the end.
pub struct SetGen {
    next: u64,
}

impl SetGen {
    pub fn new(_opts: &WorkloadOptions) -> Self {
        SetGen { next: 0 }
    }
}

impl Generator for SetGen {
    fn next_op(&mut self) -> Invocation {
        let v = self.next;
        self.next += 1;
        Invocation {
            f: "add".into(),
            key: None,
            value: json!(v),
        }
    }

    fn final_ops(&self) -> Vec<Invocation> {
        vec![Invocation {
            f: "read".into(),
            key: None,
            value: Value::Null,
        }]
    }
}

/// Transfers between random pairs of distinct accounts and reads of every balance, half each.
///
/// A transfer is `f: "transfer"` with value `{"from": a, "to": b, "amount": x}`. A read is
/// `f: "read"` with no key whose invocation value lists the accounts to read; its `ok` completion
/// holds an object mapping each account (as a string) to its balance, as `checkers::bank` wants.
/// The setup writes every account's initial balance in one transaction; the final phase reads
/// every balance once more.
pub struct BankGen {
    rng: StdRng,
    opts: BankOptions,
}

impl BankGen {
    pub fn new(opts: &WorkloadOptions) -> Self {
        BankGen {
            rng: StdRng::seed_from_u64(opts.seed),
            opts: opts.bank.clone(),
        }
    }

    fn read(&self) -> Invocation {
        Invocation {
            f: "read".into(),
            key: None,
            value: json!(self.opts.accounts),
        }
    }
}

impl Generator for BankGen {
    fn next_op(&mut self) -> Invocation {
        let n = self.opts.accounts.len();
        if n < 2 || self.rng.random_bool(0.5) {
            return self.read();
        }
        let from = self.rng.random_range(0..n);
        // Any other account, uniformly.
        let to = (from + self.rng.random_range(1..n)) % n;
        let amount = self.rng.random_range(1..=self.opts.max_transfer.max(1));
        Invocation {
            f: "transfer".into(),
            key: None,
            value: json!({
                "from": self.opts.accounts[from],
                "to": self.opts.accounts[to],
                "amount": amount,
            }),
        }
    }

    fn final_ops(&self) -> Vec<Invocation> {
        vec![self.read()]
    }

    fn setup_ops(&self) -> Vec<Invocation> {
        let writes: Vec<Value> = self
            .opts
            .accounts
            .iter()
            .map(|a| json!(["w", a, self.opts.initial_balance]))
            .collect();
        vec![Invocation {
            f: "txn".into(),
            key: None,
            value: Value::Array(writes),
        }]
    }
}

/// What a bank read's invocation asks for: the accounts listed in its value (`None` when the
/// invocation is not a bank read, e.g. the set workload's key-less read of `null`).
pub fn bank_read_accounts(inv: &Invocation) -> Option<Vec<u64>> {
    if inv.f != "read" || inv.key.is_some() {
        return None;
    }
    inv.value
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()
}

/// A transfer's `(from, to, amount)`, or why the invocation is not a transfer.
pub fn transfer_of(inv: &Invocation) -> Result<(u64, u64, i64), String> {
    let field = |name: &str| inv.value.get(name).cloned().unwrap_or(Value::Null);
    let account = |name: &str| {
        field(name).as_u64().ok_or_else(|| {
            format!(
                "transfer needs a non-negative integer {name:?}, got {}",
                inv.value
            )
        })
    };
    let (from, to) = (account("from")?, account("to")?);
    let amount = field("amount")
        .as_i64()
        .filter(|a| *a >= 0)
        .ok_or_else(|| {
            format!(
                "transfer needs a non-negative integer \"amount\", got {}",
                inv.value
            )
        })?;
    if from == to {
        return Err(format!("transfer from account {from} to itself"));
    }
    Ok((from, to, amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(kind: WorkloadKind, opts: &WorkloadOptions, n: usize) -> Vec<Invocation> {
        let mut g = generator(kind, opts);
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn same_seed_same_ops_other_seed_other_ops() {
        for kind in [
            WorkloadKind::Register,
            WorkloadKind::ListAppend,
            WorkloadKind::RwRegister,
            WorkloadKind::Bank,
        ] {
            let opts = WorkloadOptions {
                seed: 7,
                ..Default::default()
            };
            assert_eq!(take(kind, &opts, 200), take(kind, &opts, 200), "{kind:?}");
            let other = WorkloadOptions {
                seed: 8,
                ..Default::default()
            };
            assert_ne!(take(kind, &opts, 200), take(kind, &other, 200), "{kind:?}");
        }
    }

    #[test]
    fn register_keys_take_a_bounded_number_of_writes() {
        let opts = WorkloadOptions {
            max_writes_per_key: 5,
            key_count: 3,
            ..Default::default()
        };
        let mut writes: std::collections::HashMap<u64, u64> = Default::default();
        for op in take(WorkloadKind::Register, &opts, 5000) {
            if op.f != "read" {
                *writes.entry(op.key.unwrap().as_u64().unwrap()).or_default() += 1;
            }
        }
        assert!(writes.len() > 100, "keys must rotate, saw {}", writes.len());
        assert!(
            writes.values().all(|&w| w <= 5),
            "a key took more than 5 writes"
        );
    }

    #[test]
    fn appended_values_are_unique_per_key() {
        let opts = WorkloadOptions {
            max_txn_len: 5,
            ..Default::default()
        };
        let mut seen = std::collections::HashSet::new();
        let mut appends = 0;
        for op in take(WorkloadKind::ListAppend, &opts, 3000) {
            let mops = op.value.as_array().unwrap();
            assert!((1..=5).contains(&mops.len()));
            for m in mops {
                if m[0] == "append" {
                    appends += 1;
                    assert!(
                        seen.insert((m[1].as_u64().unwrap(), m[2].as_u64().unwrap())),
                        "duplicate append {m}"
                    );
                }
            }
        }
        assert!(appends > 1000);
    }

    #[test]
    fn read_only_detection() {
        let r = Invocation {
            f: "txn".into(),
            key: None,
            value: json!([["r", 1, null], ["r", 2, null]]),
        };
        let w = Invocation {
            f: "txn".into(),
            key: None,
            value: json!([["r", 1, null], ["append", 2, 3]]),
        };
        assert!(r.is_read_only());
        assert!(!w.is_read_only());
        assert!(Invocation {
            f: "read".into(),
            key: Some(json!(1)),
            value: Value::Null
        }
        .is_read_only());
    }

    #[test]
    fn set_adds_are_unique_and_final_phase_reads() {
        let mut g = generator(WorkloadKind::Set, &WorkloadOptions::default());
        let adds: Vec<_> = (0..100)
            .map(|_| g.next_op().value.as_u64().unwrap())
            .collect();
        assert_eq!(adds, (0..100).collect::<Vec<_>>());
        assert_eq!(g.final_ops()[0].f, "read");
    }

    #[test]
    fn bank_transfers_between_distinct_accounts_and_reads_all_of_them() {
        let opts = WorkloadOptions {
            seed: 3,
            bank: BankOptions {
                accounts: vec![2, 7, 9],
                initial_balance: 10,
                max_transfer: 4,
            },
            ..Default::default()
        };
        let ops = take(WorkloadKind::Bank, &opts, 2000);
        let reads = ops.iter().filter(|o| o.f == "read").count();
        assert!(
            (800..1200).contains(&reads),
            "about half are reads: {reads}"
        );
        let mut amounts = std::collections::BTreeSet::new();
        let mut pairs = std::collections::BTreeSet::new();
        for op in &ops {
            match op.f.as_str() {
                "read" => assert_eq!(bank_read_accounts(op), Some(vec![2, 7, 9])),
                "transfer" => {
                    let (from, to, amount) = transfer_of(op).unwrap();
                    assert_ne!(from, to);
                    assert!([2, 7, 9].contains(&from) && [2, 7, 9].contains(&to));
                    amounts.insert(amount);
                    pairs.insert((from, to));
                }
                other => panic!("unexpected op {other}"),
            }
            assert!(op.key.is_none());
        }
        assert_eq!(amounts, (1..=4).collect(), "amounts range over 1..=max");
        assert_eq!(pairs.len(), 6, "every ordered pair of accounts: {pairs:?}");

        let g = generator(WorkloadKind::Bank, &opts);
        assert_eq!(
            g.setup_ops()[0].value,
            json!([["w", 2, 10], ["w", 7, 10], ["w", 9, 10]])
        );
        assert_eq!(bank_read_accounts(&g.final_ops()[0]), Some(vec![2, 7, 9]));
        assert_eq!(opts.bank.total(), 30);
    }

    #[test]
    fn bank_options_and_transfers_are_validated() {
        assert!(BankOptions::default().validate().is_ok());
        let one = BankOptions {
            accounts: vec![1],
            ..Default::default()
        };
        assert!(one.validate().unwrap_err().contains("two distinct"));
        let dup = BankOptions {
            accounts: vec![1, 1],
            ..Default::default()
        };
        assert!(dup.validate().is_err());
        let t = |v: Value| Invocation {
            f: "transfer".into(),
            key: None,
            value: v,
        };
        assert_eq!(
            transfer_of(&t(json!({"from": 1, "to": 2, "amount": 3}))),
            Ok((1, 2, 3))
        );
        assert!(transfer_of(&t(json!({"from": 1, "to": 1, "amount": 3})))
            .unwrap_err()
            .contains("itself"));
        assert!(transfer_of(&t(json!({"from": 1, "amount": 3})))
            .unwrap_err()
            .contains("\"to\""));
        // The set workload's read is not a bank read.
        assert_eq!(
            bank_read_accounts(&SetGen::new(&Default::default()).final_ops()[0]),
            None
        );
    }
}
