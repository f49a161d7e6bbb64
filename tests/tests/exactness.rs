//! flowtop against ground truth on the host's real kernel: every scenario moves bytes
//! through real loopback sockets with trafficgen, which reports what its syscalls
//! returned; flowtop's JSON rows for those PIDs must add up to exactly that.
//!
//! Needs root and a built flowtop (`cargo build -p flowtop`); FLOWTOP_BIN and
//! FLOWTOP_PROBE (default auto) select the binary and the probe family. Each test runs
//! its own flowtop and checks only its own PIDs, so tests may run in parallel.
use std::sync::OnceLock;

use flowtop_tests::{
    assert_pass, cgroup_filter, comm_filter, conn_scenarios, pid_filter, pid_list_filter,
    run_isolated, scenario, steady_intervals, Ctx, ScenarioResult, CONN_EXACT, CONN_IPV4_FILTER,
    CONN_IPV6_FILTER, CONN_PEER_PORT_FILTER, CONN_PORT_FILTER, CONN_TCP_FILTER, CONN_UDP_FILTER,
    PID_IPV4_FILTER, PID_PEER_PORT_FILTER,
};

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

fn run(name: &str) {
    assert_pass(&run_isolated(&ctx(), scenario(name)));
}

#[test]
fn tcp_over_ipv4_loopback_counts_exact_bytes_per_process() {
    run("tcp4");
}

#[test]
fn tcp_over_ipv6_loopback_counts_exact_bytes_per_process() {
    run("tcp6");
}

#[test]
fn udp_over_ipv4_counts_what_send_and_recv_returned() {
    run("udp4");
}

#[test]
fn udp_over_ipv6_counts_what_send_and_recv_returned() {
    run("udp6");
}

#[test]
fn threads_add_up_under_the_process_pid_and_process_name() {
    run("threads");
}

#[test]
fn short_lived_child_keeps_its_own_name_and_bytes_after_it_exited() {
    run("short_child");
}

#[test]
fn msg_peek_is_not_counted_only_bytes_read_are() {
    run("msg_peek");
}

#[test]
fn sendfile_to_a_tcp_socket_is_counted() {
    run("sendfile");
}

#[test]
fn a_process_renamed_by_prctl_shows_its_new_name() {
    run("prctl_rename");
}

#[test]
fn a_process_that_execs_shows_the_new_programs_name() {
    run("exec_rename");
}

#[test]
fn pid_filter_shows_only_that_process() {
    assert_pass(&pid_filter(&ctx()));
}

#[test]
fn pid_list_filter_shows_exactly_two_of_three_senders() {
    assert_pass(&pid_list_filter(&ctx()));
}

#[test]
fn comm_filter_shows_exactly_the_processes_of_that_name() {
    assert_pass(&comm_filter(&ctx()));
}

#[test]
fn cgroup_filter_shows_exactly_the_processes_in_and_below_that_cgroup() {
    assert_pass(&cgroup_filter(&ctx()));
}

#[test]
fn intervals_add_up_exactly_across_boundaries() {
    // `flowtop 1 6` with 4.5 s of traffic: at least four intervals carry the sender's
    // bytes, and their sum is exact (nothing lost or double counted at boundaries).
    assert_pass(&steady_intervals(&ctx(), Some(6), 4));
}

/// One result of [`conn_scenarios`]; its one traffic run (a flowtop per result) serves
/// every test that asks.
fn conn(name: &str) {
    static RESULTS: OnceLock<Vec<ScenarioResult>> = OnceLock::new();
    let r = RESULTS
        .get_or_init(|| conn_scenarios(&ctx()))
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result {name}"));
    assert_pass(r);
}

#[test]
fn by_conn_counts_two_simultaneous_tcp_connections_and_udp_exactly_per_connection() {
    conn(CONN_EXACT);
}

#[test]
fn port_filter_keeps_exactly_the_matching_connection_and_excludes_the_others() {
    conn(CONN_PORT_FILTER);
}

#[test]
fn port_filter_matches_the_peer_port_of_each_datagram_of_an_unconnected_socket() {
    conn(CONN_PEER_PORT_FILTER);
}

#[test]
fn port_filter_matches_datagram_peers_without_by_conn() {
    conn(PID_PEER_PORT_FILTER);
}

#[test]
fn ipv4_filter_keeps_exactly_the_ipv4_tcp_and_udp_ends_and_dual_stack_ipv4_traffic() {
    conn(CONN_IPV4_FILTER);
}

#[test]
fn ipv4_filter_counts_dual_stack_ipv4_traffic_without_by_conn() {
    conn(PID_IPV4_FILTER);
}

#[test]
fn ipv6_filter_keeps_exactly_the_ipv6_tcp_and_udp_ends() {
    conn(CONN_IPV6_FILTER);
}

#[test]
fn tcp_filter_keeps_exactly_the_tcp_ends_of_both_families() {
    conn(CONN_TCP_FILTER);
}

#[test]
fn udp_filter_keeps_exactly_the_udp_ends_of_both_families() {
    conn(CONN_UDP_FILTER);
}

/// The classic tracepoint program, which flowtop loads for the tracepoint family on
/// kernels that preempt kernel code (`probe::select::PREEMPTIBLE_TRACEPOINT_KINDS`),
/// passes every scenario the VM matrix runs, here where this machine's kernel would
/// otherwise pick tp_btf. `FLOWTOP_PROGRAM_KIND` makes flowtop fail to start rather
/// than load another kind.
#[test]
fn the_classic_tracepoint_program_passes_every_scenario() {
    let ctx = Ctx {
        probe: "tracepoint".into(),
        program_kind: Some("tracepoint".into()),
        ..ctx()
    };
    let results = flowtop_tests::run_all(&ctx);
    assert_eq!(results.len(), flowtop_tests::all_scenario_names().len());
    for r in &results {
        assert_pass(r);
    }
}
