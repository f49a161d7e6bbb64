//! End-to-end harness for flowtop: real sockets over loopback, ground truth from the
//! return values of the syscalls that moved the bytes (printed by `trafficgen`),
//! compared byte for byte with what flowtop reported.
//!
//! A scenario's traffic is a plain function producing [`Expect`]ations; the runners
//! start flowtop, run the traffic, stop flowtop with SIGINT (it prints the partial
//! last interval) and compare. The same scenarios run as `cargo test` on the host
//! (`tests/exactness.rs`, one flowtop per test) and in VM guests through the
//! `flowtop-scenarios` binary (one flowtop for most scenarios, to keep emulated runs
//! short). Every check compares only the PIDs the scenario created, so other traffic
//! on the machine, and other tests running in parallel, cannot disturb it.
//!
//! One module per job, everything re-exported here so that tests name
//! `flowtop_tests::X`:
//! - [`binaries`]: where flowtop and trafficgen are;
//! - [`host`]: what the machine must provide (root, loopback, tools), failing loudly;
//! - [`ctx`]: binaries, probe family and sizes of a run;
//! - [`child`]: child processes with readers on their pipes;
//! - [`flowtop`]: the one wrapper around a running flowtop;
//! - [`rows`]: parsing flowtop's output (JSON Lines, CSV) and summing it;
//! - [`trafficgen`]: driving the one traffic generator;
//! - [`verdict`]: expectations, verdicts and the comparison;
//! - [`cgroup`]: cgroup v2 fixtures;
//! - [`prometheus`]: a real Prometheus server scraping an exporter;
//! - [`podman`]: real podman containers running trafficgen, image built offline;
//! - [`tmux`]: a real terminal for `flowtop -i`;
//! - [`scenarios`]: the scenarios shared with the VM matrix.
pub mod binaries;
pub mod cgroup;
pub mod child;
pub mod ctx;
pub mod flowtop;
pub mod host;
pub mod podman;
pub mod prometheus;
pub mod rows;
pub mod scenarios;
pub mod tmux;
pub mod trafficgen;
pub mod verdict;

pub use binaries::{find_flowtop, find_trafficgen};
pub use cgroup::{cgroup2_mount, own_cgroup, CgroupTree, ScenarioCgroup};
pub use child::{output_within, send_signal, wait_timeout};
pub use ctx::Ctx;
pub use flowtop::{panic_text, Flowtop, FlowtopBuilder, FlowtopRun, READY_MARKER};
pub use host::{ensure_loopback_up, require_root, require_tool};
pub use prometheus::{free_port, Prometheus};
pub use rows::{csv_header, csv_values, json_values, sum_by, Reported, Row, CORE_KEYS};
pub use scenarios::{
    all_scenario_names, cgroup_filter, check_conns, comm_filter, conn_scenario_names,
    conn_scenarios, pid_filter, pid_list_filter, run_all, run_batch, run_isolated, scenario,
    steady_intervals, ConnFilter, ConnPorts, Scenario, Traffic, CGROUP_FILTER, COMM_FILTER,
    CONN_EXACT, CONN_FILTERS, CONN_IPV4_FILTER, CONN_IPV6_FILTER, CONN_PEER_PORT_FILTER,
    CONN_PORT_FILTER, CONN_TCP_FILTER, CONN_UDP_FILTER, PID_FILTER, PID_IPV4_FILTER,
    PID_LIST_FILTER, PID_PEER_PORT_FILTER, SCENARIOS, STEADY_INTERVALS,
};
pub use tmux::{Tmux, PROMPT};
pub use trafficgen::{args, target, ConnTruth, Gen, Ready, Truth};
pub use verdict::{assert_pass, check, Expect, ScenarioResult, Verdict};
