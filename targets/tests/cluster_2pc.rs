//! 2PC clusters of the real binary on loopback: single-key operations through every node survive a
//! kill -9 of a participant and its restart.
mod cluster;

#[test]
fn three_node_2pc_keeps_acknowledged_writes_across_a_participant_crash() {
    cluster::write_read_kill_restart("2pc", 3);
}

#[test]
fn five_node_2pc_keeps_acknowledged_writes_across_a_participant_crash() {
    cluster::write_read_kill_restart("2pc", 5);
}
