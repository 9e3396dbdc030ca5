//! The bank workload's client mapping against real servers: three-node 2PC, Raft and Paxos
//! clusters run in this process on loopback (the `faultline-server` runtime), and etcd when
//! Debian's etcd is installed. Transfers commit as one transaction, an overdraft fails without
//! effect, and reads of every account add up to the total.
use checkers::history::OpType;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use targets::runtime::{self, RunOptions};
use targets::sm::{Config, ReadMode, StateMachine};
use targets::twopc::owner_of;
use workloads::bundled::{spread_accounts, BundledClient};
use workloads::etcd::ReadMode as EtcdReadMode;
use workloads::gen::{generator, BankOptions, WorkloadKind, WorkloadOptions};
use workloads::{Completion, Invocation};

mod etcd_support;

const LONG: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the nodes' data directories when the test ends.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a cluster of `ids` speaking protocol `S` in this process; returns each node's address.
fn start<S: StateMachine + 'static>(tag: &str, ids: &[&str]) -> (DataDir, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("faultline-bank-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addrs: BTreeMap<String, String> = ids
        .iter()
        .map(|id| (id.to_string(), format!("127.0.0.1:{}", free_port())))
        .collect();
    for id in ids {
        let config = Config {
            id: id.to_string(),
            peers: ids
                .iter()
                .filter(|p| *p != id)
                .map(|p| p.to_string())
                .collect(),
            bugs: Default::default(),
            read_mode: ReadMode::Quorum,
            seed: 1,
        };
        let opts = RunOptions {
            listen: addrs[*id].parse().unwrap(),
            peer_addrs: addrs
                .iter()
                .filter(|(p, _)| p.as_str() != *id)
                .map(|(p, a)| (p.clone(), a.clone()))
                .collect(),
            data_dir: dir.join(id),
            tick: Duration::from_millis(5),
            config,
        };
        tokio::spawn(async move {
            if let Err(e) = runtime::run::<S>(opts).await {
                panic!("node failed: {e}");
            }
        });
    }
    (DataDir(dir), addrs.into_values().collect())
}

fn transfer(from: u64, to: u64, amount: i64) -> Invocation {
    Invocation {
        f: "transfer".into(),
        key: None,
        value: json!({"from": from, "to": to, "amount": amount}),
    }
}

fn total(balances: &Value) -> i64 {
    balances
        .as_object()
        .expect("balances are an object")
        .values()
        .map(|b| b.as_i64().expect("integer balance"))
        .sum()
}

/// Something that performs invocations (the bundled or the etcd client).
trait Invoke {
    async fn call(&mut self, inv: &Invocation) -> Completion;
}

impl Invoke for BundledClient {
    async fn call(&mut self, inv: &Invocation) -> Completion {
        self.invoke(inv).await
    }
}

impl Invoke for workloads::etcd::EtcdClient {
    async fn call(&mut self, inv: &Invocation) -> Completion {
        self.invoke(inv).await
    }
}

/// Retries until `ok` (a cluster that just started may still elect a leader).
async fn until_ok(c: &mut impl Invoke, inv: &Invocation) -> Completion {
    for _ in 0..100 {
        let done = c.call(inv).await;
        if done.kind == OpType::Ok {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{inv:?} never succeeded");
}

/// The bank protocol on one client: setup, transfers, an overdraft, reads.
async fn bank_session(c: &mut impl Invoke, accounts: Vec<u64>) {
    let opts = WorkloadOptions {
        bank: BankOptions {
            accounts: accounts.clone(),
            initial_balance: 10,
            max_transfer: 5,
        },
        ..Default::default()
    };
    let gen = generator(WorkloadKind::Bank, &opts);
    for setup in gen.setup_ops() {
        until_ok(c, &setup).await;
    }
    let read = gen.final_ops().remove(0);
    let balances = until_ok(c, &read).await.value;
    let expected: BTreeMap<String, Value> = accounts
        .iter()
        .map(|a| (a.to_string(), json!(10)))
        .collect();
    assert_eq!(balances, json!(expected));

    let (a, b) = (accounts[0], accounts[1]);
    let done = until_ok(c, &transfer(a, b, 7)).await;
    assert_eq!(
        done.value,
        transfer(a, b, 7).value,
        "a transfer's value is echoed"
    );
    // a holds 3 now: moving 4 would overdraw it.
    let over = c.call(&transfer(a, b, 4)).await;
    assert_eq!(over.kind, OpType::Fail, "{over:?}");
    assert!(
        over.error
            .as_deref()
            .unwrap_or("")
            .starts_with("insufficient-funds"),
        "{over:?}"
    );
    until_ok(c, &transfer(b, a, 2)).await;
    let balances = until_ok(c, &read).await.value;
    assert_eq!(balances[a.to_string()], json!(5));
    assert_eq!(balances[b.to_string()], json!(15));
    assert_eq!(total(&balances), 10 * accounts.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_over_2pc_spreads_accounts_over_shards_and_refuses_overdrafts() {
    let ids = ["n1", "n2", "n3"];
    let (_dir, addrs) = start::<targets::twopc::TwoPc>("2pc", &ids);
    let names: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let accounts = spread_accounts(5, &names);
    let owners: std::collections::BTreeSet<&String> = accounts
        .iter()
        .map(|a| owner_of(&names, *a).unwrap())
        .collect();
    assert_eq!(owners.len(), 3, "accounts {accounts:?} on every shard");
    let mut c = BundledClient::new("n2", addrs[1].clone(), LONG);
    bank_session(&mut c, accounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_over_raft() {
    let (_dir, addrs) = start::<targets::raft::Raft>("raft", &["n1", "n2", "n3"]);
    let mut c = BundledClient::new("n1", addrs[0].clone(), LONG);
    bank_session(&mut c, vec![0, 1, 2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_over_paxos() {
    let (_dir, addrs) = start::<targets::paxos::Paxos>("paxos", &["n1", "n2", "n3"]);
    let mut c = BundledClient::new("n3", addrs[2].clone(), LONG);
    bank_session(&mut c, vec![3, 4, 5, 6]).await;
}

#[tokio::test]
async fn bank_over_etcd() {
    if etcd_support::etcd_missing() {
        return;
    }
    let members = etcd_support::cluster(1).await;
    let mut c = members[0].client(LONG, EtcdReadMode::Linearizable);
    bank_session(&mut c, vec![0, 1, 2]).await;
}

#[test]
fn spread_accounts_covers_every_shard_of_five_nodes() {
    let names: Vec<String> = ["n5", "n1", "n3", "n2", "n4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let accounts = spread_accounts(5, &names);
    assert_eq!(accounts.len(), 5);
    let mut sorted = names.clone();
    sorted.sort();
    let owners: std::collections::BTreeSet<&String> = accounts
        .iter()
        .map(|a| owner_of(&sorted, *a).unwrap())
        .collect();
    assert_eq!(owners.len(), 5, "{accounts:?}");
    assert_eq!(spread_accounts(5, &names), accounts, "deterministic");
}
