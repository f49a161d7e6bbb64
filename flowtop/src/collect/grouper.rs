//! Rows of any `--by` from one interval's [`Deltas`](super::pipeline::Deltas): the
//! one place a grouping is mapped to its function in [`aggregate`], with the
//! running totals the groups of processes keep and the container names. Report
//! mode asks it for one grouping, `-i` for every grouping each interval, so a new
//! grouping added here (and to [`GroupBy`]) reaches both.
use std::collections::HashMap;

use anyhow::{bail, Result};

use super::{
    aggregate::{self, GroupBy, Groups, Row},
    diff::ProcRow,
    flows::FlowDelta,
};
use crate::{container::Containers, identity::CgroupNames};

/// The state the groupings keep between intervals.
#[derive(Default)]
pub struct Grouper {
    comms: Groups<String>,
    cgroups: Groups<u64>,
    /// None: cgroups are named by id (`cgroup:<id>`).
    names: Option<CgroupNames>,
    /// `--by container`, `--show-container` (and `-i`, which may switch to
    /// containers): who each cgroup is. None: no container rows can be made.
    containers: Option<Containers>,
    container_groups: Groups<String>,
}

impl Grouper {
    /// `names`: cgroup ids to paths (`--by cgroup`).
    pub fn new(names: Option<CgroupNames>) -> Self {
        Self {
            names,
            ..Self::default()
        }
    }

    /// `--by container` (required for it), `--show-container`: cgroup ids to
    /// containers.
    pub fn name_containers(&mut self, containers: Containers) {
        self.containers = Some(containers);
    }

    /// Whether containers can be named (rows of `--by container`, or
    /// `--show-container`'s column).
    pub fn names_containers(&self) -> bool {
        self.containers.is_some()
    }

    /// Between reads: containers that started since the last walk are named while
    /// they are alive.
    pub fn refresh(&mut self) {
        if let Some(c) = &mut self.containers {
            c.refresh();
        }
    }

    /// The rows of `by` for one interval. `flows` must come from a flow map keyed as
    /// [`GroupBy::flow_mode`] asks (none are needed for pid and comm).
    pub fn rows(
        &mut self,
        by: GroupBy,
        procs: &[ProcRow],
        flows: &[FlowDelta],
    ) -> Result<Vec<Row>> {
        Ok(match by {
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
            GroupBy::Container => {
                let Some(c) = self.containers.as_mut() else {
                    bail!("--by container without container names");
                };
                aggregate::by_container(&mut self.container_groups, flows, |cg, tgid| {
                    c.get(cg, Some(tgid))
                })
            }
        })
    }

    /// `--show-container`: each row of `by` pid or conn (made by [`Self::rows`] from
    /// the same `flows`, keyed by cgroup too) gets its container. A process is in
    /// the cgroup most of its bytes were counted in this interval, else in the one
    /// its bytes named before, else in the one `/proc` names. Other groupings and
    /// a grouper without names are left alone.
    pub fn show_containers(&mut self, by: GroupBy, rows: &mut [Row], flows: &[FlowDelta]) {
        let Some(c) = &mut self.containers else {
            return;
        };
        match by {
            GroupBy::Pid => {
                // Its bytes are the per-process counter's; the flows only say where.
                let mut cgroup: HashMap<u32, (u64, u64)> = HashMap::new();
                for f in flows {
                    let e = cgroup.entry(f.key.tgid).or_insert((0, f.key.cgroup));
                    if f.interval.total() > e.0 || e.0 == 0 {
                        *e = (f.interval.total(), f.key.cgroup);
                    }
                }
                for row in rows.iter_mut() {
                    let Some(pid) = row.pid else { continue };
                    row.container = match cgroup.get(&pid) {
                        Some(&(_, cg)) => {
                            let who = c.get(cg, Some(pid));
                            // For an interval where its flows show no delta.
                            c.remember_pid(pid, who.clone());
                            Some(who)
                        }
                        None => c.of_pid(pid),
                    };
                }
            }
            // by_conn makes one row per flow, in the flows' order.
            GroupBy::Conn => {
                for (row, f) in rows.iter_mut().zip(flows) {
                    row.container = Some(c.get(f.key.cgroup, Some(f.key.tgid)));
                }
            }
            GroupBy::Comm | GroupBy::Cgroup | GroupBy::Container => {}
        }
    }

    /// After each interval's rows (of every grouping asked for): forgets the
    /// processes that `exited` and the containers gone before this interval.
    pub fn end_interval(&mut self, exited: impl IntoIterator<Item = u32>) {
        if let Some(c) = &mut self.containers {
            c.end_report(exited);
        }
    }
}
