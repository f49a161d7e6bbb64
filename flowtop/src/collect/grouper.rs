//! Rows of any `--by` from one interval's [`Deltas`](super::pipeline::Deltas): the
//! one place a grouping is mapped to its function in [`aggregate`], with the
//! running totals the groups of processes keep. Report mode asks it for one
//! grouping, `-i` for every grouping each interval, so a new grouping added here
//! (and to [`GroupBy`]) reaches both.
use super::{
    aggregate::{self, GroupBy, Groups, Row},
    diff::ProcRow,
    flows::FlowDelta,
};
use crate::identity::CgroupNames;

/// The state the groupings keep between intervals.
#[derive(Default)]
pub struct Grouper {
    comms: Groups<String>,
    cgroups: Groups<u64>,
    /// None: cgroups are named by id (`cgroup:<id>`).
    names: Option<CgroupNames>,
}

impl Grouper {
    /// `names`: cgroup ids to paths (`--by cgroup`).
    pub fn new(names: Option<CgroupNames>) -> Self {
        Self {
            names,
            ..Self::default()
        }
    }

    /// The rows of `by` for one interval. `flows` must come from a flow map keyed as
    /// [`GroupBy::flow_mode`] asks (none are needed for pid and comm).
    pub fn rows(&mut self, by: GroupBy, procs: &[ProcRow], flows: &[FlowDelta]) -> Vec<Row> {
        match by {
            GroupBy::Pid => aggregate::by_pid(procs),
            GroupBy::Conn => aggregate::by_conn(flows, procs),
            GroupBy::Comm => aggregate::by_comm(&mut self.comms, procs),
            GroupBy::Cgroup => {
                let names = &mut self.names;
                aggregate::by_cgroup(&mut self.cgroups, flows, |id| match names {
                    Some(n) => n.path(id),
                    None => format!("cgroup:{id}"),
                })
            }
        }
    }
}
