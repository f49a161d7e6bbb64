//! Scenarios: traffic that produces ground truth, run under a flowtop and checked.
//! The same scenarios run as `cargo test` on the host and in VM guests through the
//! `flowtop-scenarios` binary.
mod conn;
mod process_filter;
mod steady;

use std::path::Path;

use anyhow::{ensure, Context as _, Result};

use crate::{args, check, target, Ctx, Expect, Flowtop, Gen, ScenarioResult, Truth};

pub use conn::*;
pub use process_filter::*;
pub use steady::*;

/// Traffic that produces ground truth; flowtop is already running.
pub type Traffic = fn(&Ctx) -> Result<Vec<Expect>>;

/// A scenario that any running flowtop (no `-p`) can check.
#[derive(Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub traffic: Traffic,
}

/// Scenarios that need nothing but a running flowtop.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tcp4",
        traffic: tcp4,
    },
    Scenario {
        name: "tcp6",
        traffic: tcp6,
    },
    Scenario {
        name: "udp4",
        traffic: udp4,
    },
    Scenario {
        name: "udp6",
        traffic: udp6,
    },
    Scenario {
        name: "threads",
        traffic: threads,
    },
    Scenario {
        name: "short_child",
        traffic: short_child,
    },
    Scenario {
        name: "msg_peek",
        traffic: msg_peek,
    },
    Scenario {
        name: "sendfile",
        traffic: sendfile,
    },
    Scenario {
        name: "prctl_rename",
        traffic: prctl_rename,
    },
    Scenario {
        name: "exec_rename",
        traffic: exec_rename,
    },
];

/// The named scenario of [`SCENARIOS`].
pub fn scenario(name: &str) -> Scenario {
    *SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A sink on `addr`, then `source` against it; both ground truths.
fn sink_and_source(
    ctx: &Ctx,
    sink: &[&str],
    addr: &str,
    source: &[String],
) -> Result<(Truth, Truth)> {
    let mut sink_args = args(sink);
    sink_args.push(addr.into());
    let sink = Gen::spawn(ctx, &sink_args)?;
    let port = sink.ready()?.port.context("sink printed no port")?;
    let mut src_args = vec![source[0].clone(), target(addr, port)];
    src_args.extend_from_slice(&source[1..]);
    let src = Gen::spawn(ctx, &src_args)?;
    let src_truth = src.finish()?;
    let sink_truth = sink.finish()?;
    Ok((src_truth, sink_truth))
}

fn stream(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        addr,
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    // The generator's own sanity: TCP delivers what was sent.
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

fn tcp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "127.0.0.1", ctx.bytes + 4_099)
}

fn tcp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "::1", ctx.bytes + 6_007)
}

fn datagrams(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["udp-recv"],
        addr,
        &args(&["udp-send", &bytes.to_string(), "--dgram", "1333"]),
    )?;
    ensure!(
        src.tx_bytes == bytes,
        "sender moved {src:?}, wanted {bytes}"
    );
    ensure!(sink.rx_bytes > 0, "receiver got nothing: {sink:?}");
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

fn udp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "127.0.0.1", ctx.bytes / 8 + 4_111)
}

fn udp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "::1", ctx.bytes / 8 + 6_113)
}

/// Four threads named ft-worker-N send under a process named ft-mtmain.
fn threads(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 1_237;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "4"],
        "127.0.0.1",
        &args(&["threads", &bytes.to_string(), "4", "--name", "ft-mtmain"]),
    )?;
    ensure!(src.comm == "ft-mtmain", "process name not set: {src:?}");
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("threads", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A forked child renames itself ft-short, sends and exits before flowtop reads.
fn short_child(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 4 + 3_001;
    let (child, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["short", &bytes.to_string(), "--name", "ft-short"]),
    )?;
    let parent = child.parent_pid.context("short: no parent_pid")?;
    ensure!(
        child.comm == "ft-short" && child.pid != parent,
        "bad child truth {child:?}"
    );
    ensure!(
        !Path::new(&format!("/proc/{}", child.pid)).exists(),
        "child {} still exists",
        child.pid
    );
    Ok(vec![
        Expect::from_truth("child", &child),
        Expect {
            role: "parent".into(),
            pid: parent,
            comm: None,
            renamed_from: None,
            rx: 0,
            tx: 0,
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// The receiver peeks at every chunk before reading it: peeks move nothing.
fn msg_peek(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 2 + 2_221;
    let (src, sink) = sink_and_source(
        ctx,
        &["peek-sink"],
        "::1",
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    ensure!(
        sink.rx_bytes == bytes,
        "peek sink read {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("peek-receiver", &sink),
    ])
}

fn sendfile(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 8_191;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["sendfile", &bytes.to_string()]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("sendfile", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A sender that renames itself half-way (`trafficgen renamed`): its bytes stay one
/// process's, and the rows after the rename carry the new name.
fn renamed(ctx: &Ctx, bytes: u64, how: &str, before: &str) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "2"],
        "127.0.0.1",
        &args(&["renamed", &bytes.to_string(), how, "--name", before]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes && src.comm != before,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect {
            renamed_from: Some(before.into()),
            ..Expect::from_truth("renamed", &src)
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// `prctl(PR_SET_NAME)` half-way.
fn prctl_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_109, "prctl:ft-renamed", "ft-prename")
}

/// exec half-way: the same PID continues as `trafficgen`.
fn exec_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_201, "exec", "ft-preexec")
}

/// Runs `f`, then stops flowtop and checks; a harness error becomes a FAIL.
fn with_flowtop(
    ctx: &Ctx,
    name: &str,
    extra: &[String],
    f: impl FnOnce(&Ctx) -> Result<Vec<Expect>>,
) -> ScenarioResult {
    let run = || -> Result<ScenarioResult> {
        let ft = Flowtop::start(ctx, extra)?;
        let expects = f(ctx);
        let run = ft.stop()?;
        Ok(check(name, &expects?, &run, None))
    };
    run().unwrap_or_else(|e| ScenarioResult::error(name, &e))
}

/// One scenario with a flowtop of its own.
pub fn run_isolated(ctx: &Ctx, sc: Scenario) -> ScenarioResult {
    with_flowtop(ctx, sc.name, &[], sc.traffic)
}

/// Several scenarios, one after another, under one flowtop (saves start-ups in slow
/// guests); each is checked on its own PIDs.
pub fn run_batch(ctx: &Ctx, scs: &[Scenario]) -> Vec<ScenarioResult> {
    let ft = match Flowtop::start(ctx, &[]) {
        Ok(ft) => ft,
        Err(e) => {
            return scs
                .iter()
                .map(|s| ScenarioResult::error(s.name, &e))
                .collect()
        }
    };
    let traffic: Vec<Result<Vec<Expect>>> = scs.iter().map(|s| (s.traffic)(ctx)).collect();
    let run = match ft.stop() {
        Ok(r) => r,
        Err(e) => {
            return scs
                .iter()
                .map(|s| ScenarioResult::error(s.name, &e))
                .collect()
        }
    };
    scs.iter()
        .zip(traffic)
        .map(|(s, t)| match t {
            Ok(expects) => check(s.name, &expects, &run, None),
            Err(e) => ScenarioResult::error(s.name, &e),
        })
        .collect()
}

pub const PID_FILTER: &str = "pid_filter";
pub const STEADY_INTERVALS: &str = "steady_intervals";
pub const PID_LIST_FILTER: &str = "pid_list_filter";
pub const COMM_FILTER: &str = "comm_filter";
pub const CGROUP_FILTER: &str = "cgroup_filter";

/// The name of every result [`run_all`] produces, in its order: what each cell of the
/// VM matrix must report (`cargo xtask vm-test` fails a cell that lacks one).
pub fn all_scenario_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = SCENARIOS.iter().map(|s| s.name).collect();
    names.extend([PID_FILTER, STEADY_INTERVALS]);
    names.extend(conn_scenario_names());
    names.extend([PID_LIST_FILTER, COMM_FILTER, CGROUP_FILTER]);
    names
}

/// Everything, for one probe family, as the `flowtop-scenarios` binary runs it: the
/// plain scenarios under one flowtop, then the `-p`, interval, per-connection and
/// process-filter scenarios ([`all_scenario_names`] lists them).
pub fn run_all(ctx: &Ctx) -> Vec<ScenarioResult> {
    let mut results = run_batch(ctx, SCENARIOS);
    results.push(pid_filter(ctx));
    results.push(steady_intervals(ctx, None, 3));
    results.extend(conn_scenarios(ctx));
    results.push(pid_list_filter(ctx));
    results.push(comm_filter(ctx));
    results.push(cgroup_filter(ctx));
    results
}
