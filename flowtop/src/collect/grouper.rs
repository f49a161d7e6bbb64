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

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::MetadataExt as _, path::Path};

    use flowtop_common::FlowKey;

    use super::*;
    use crate::collect::Bytes;

    const ID: &str = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";
    /// Above the kernel's PID limit: `/proc` never has it, so only the flows name it.
    const PID: u32 = 4_000_000_001;

    fn flow(cgroup: u64, rx: u64) -> FlowDelta {
        let key = FlowKey {
            tgid: PID,
            cgroup,
            ..FlowKey::default()
        };
        let b = Bytes { rx, tx: 0 };
        FlowDelta {
            key,
            comm: "app".into(),
            interval: b,
            total: b,
        }
    }

    fn proc_row(rx: u64) -> ProcRow {
        let b = Bytes { rx, tx: 0 };
        ProcRow {
            pid: PID,
            nspid: None,
            comm: "app".into(),
            interval: b,
            total: b,
        }
    }

    fn ids(rows: &[Row]) -> Vec<Option<String>> {
        rows.iter()
            .map(|r| r.container.as_ref().and_then(|c| c.id.clone()))
            .collect()
    }

    #[test]
    fn a_process_is_in_the_container_its_bytes_were_counted_in_until_it_exits() {
        let dir = std::env::temp_dir().join(format!("flowtop-grouper-{}", std::process::id()));
        let podman = dir.join(format!("libpod_parent/libpod-{ID}"));
        fs::create_dir_all(&podman).unwrap();
        fs::create_dir_all(dir.join("other")).unwrap();
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        let (in_podman, in_other) = (ino(&podman), ino(&dir.join("other")));
        let mut g = Grouper::new(None);
        g.name_containers(Containers::new(dir.clone(), "/nonexistent".into()));

        // Most bytes in the podman cgroup: that is the process's container.
        let flows = [flow(in_other, 10), flow(in_podman, 1000)];
        let procs = [proc_row(1010)];
        let mut rows = g.rows(GroupBy::Pid, &procs, &flows).unwrap();
        g.show_containers(GroupBy::Pid, &mut rows, &flows);
        assert_eq!(ids(&rows), [Some(ID.to_string())]);
        // By container: the podman row and the host row, each with its bytes.
        let mut by = g.rows(GroupBy::Container, &procs, &flows).unwrap();
        by.sort_by_key(|r| r.interval.rx);
        let got: Vec<_> = by
            .iter()
            .map(|r| (r.interval.rx, r.container.as_ref().unwrap().is_container()))
            .collect();
        assert_eq!(got, [(10, false), (1000, true)]);
        // By conn: each flow row named by its own cgroup.
        let mut conns = g.rows(GroupBy::Conn, &procs, &flows).unwrap();
        g.show_containers(GroupBy::Conn, &mut conns, &flows);
        assert_eq!(ids(&conns)[1], Some(ID.to_string()));
        g.end_interval([]);

        // An interval whose flows show no delta: the remembered container.
        let mut rows = g.rows(GroupBy::Pid, &[proc_row(5)], &[]).unwrap();
        g.show_containers(GroupBy::Pid, &mut rows, &[]);
        assert_eq!(ids(&rows), [Some(ID.to_string())]);
        // Reported exited: forgotten (and /proc has no such process).
        g.end_interval([PID]);
        let mut rows = g.rows(GroupBy::Pid, &[proc_row(5)], &[]).unwrap();
        g.show_containers(GroupBy::Pid, &mut rows, &[]);
        assert_eq!(ids(&rows), [None]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn container_rows_need_names() {
        let mut g = Grouper::new(None);
        assert!(g.rows(GroupBy::Container, &[], &[]).is_err());
    }
}
