//! Multi-Paxos clusters of the real binary on loopback: writes and reads through every node survive
//! a kill -9 of the leader and its restart.
mod cluster;

#[test]
fn three_node_paxos_keeps_acknowledged_writes_across_a_leader_crash() {
    cluster::write_read_kill_restart("paxos", 3);
}

#[test]
fn five_node_paxos_keeps_acknowledged_writes_across_a_leader_crash() {
    cluster::write_read_kill_restart("paxos", 5);
}
