//! Scenarios: traffic that produces ground truth, run under a flowtop and checked.
//! The same scenarios run as `cargo test` on the host and in VM guests through the
//! `flowtop-scenarios` binary.
mod conn;
mod process_filter;
mod steady;
mod traffic;

use anyhow::Result;

use crate::{check, Ctx, Expect, Flowtop, ScenarioResult};
use traffic::{
    exec_rename, msg_peek, prctl_rename, sendfile, short_child, tcp4, tcp6, threads, udp4, udp6,
};

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
