//! One interval's report for any `--by`: reads the maps the grouping needs, diffs
//! them, groups, sorts and limits.
use std::{collections::HashMap, path::PathBuf};

use anyhow::Result;
use aya::Ebpf;

use super::{
    aggregate::{self, GroupBy, Groups, Report, SortBy},
    diff::{IntervalReport, ProcDiffer},
    flows::FlowDiffer,
    maps::KernelMaps,
    Bytes,
};
use crate::{
    container::{filter::CgroupFilter, Containers, Tracking},
    identity::{self, CgroupNames},
    nspid::NsPids,
};

/// One interval's rows, as the printers take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interval {
    /// `--by pid`: the differ's rows after `-s` and `-r`, not converted.
    Procs(IntervalReport),
    /// `--by conn|comm|cgroup|container`, and `--by pid --show-container`.
    Grouped(Report),
}

impl Interval {
    /// 1-based interval number.
    pub fn index(&self) -> u64 {
        match self {
            Interval::Procs(r) => r.index,
            Interval::Grouped(r) => r.index,
        }
    }

    /// Bytes the kernel could not attribute this interval (map full).
    pub fn unrecorded(&self) -> Bytes {
        match self {
            Interval::Procs(r) => r.unrecorded,
            Interval::Grouped(r) => r.unrecorded,
        }
    }

    /// No row to show.
    pub fn is_empty(&self) -> bool {
        match self {
            Interval::Procs(r) => r.rows.is_empty(),
            Interval::Grouped(r) => r.rows.is_empty(),
        }
    }
}

pub struct Collector {
    by: GroupBy,
    sort: SortBy,
    limit: Option<usize>,
    maps: KernelMaps,
    differ: ProcDiffer,
    /// `--by conn|cgroup|container`, `--by pid --show-container` only (with
    /// `maps.flows`).
    flows: FlowDiffer,
    comms: Groups<String>,
    cgroups: Groups<u64>,
    names: Option<CgroupNames>,
    /// `--show-nspid` only.
    nspids: Option<NsPids>,
    /// `--by container`, `--show-container`: names; `--container`, `--pod`: the
    /// kernel filter, kept in step with the matches.
    containers: Tracking,
    container_groups: Groups<String>,
}

impl Collector {
    /// `capacity`: the per-process map's size (`--max-entries`), for early reclaims.
    /// `cgroups`: the programs key flows by cgroup too (`--show-container` on
    /// `--by pid`: a process's container is the cgroup its bytes were counted in).
    pub fn new(
        ebpf: &mut Ebpf,
        by: GroupBy,
        sort: SortBy,
        limit: Option<u64>,
        capacity: u32,
        cgroups: bool,
    ) -> Result<Self> {
        let flows = match by {
            GroupBy::Conn | GroupBy::Cgroup | GroupBy::Container => true,
            GroupBy::Pid => cgroups,
            GroupBy::Comm => false,
        };
        let names = match by {
            GroupBy::Cgroup => Some(CgroupNames::new(identity::cgroup2_mount()?)),
            _ => None,
        };
        Ok(Self {
            by,
            sort,
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            maps: KernelMaps::take(ebpf, capacity, flows)?,
            differ: ProcDiffer::new(),
            flows: FlowDiffer::default(),
            comms: Groups::default(),
            cgroups: Groups::default(),
            names,
            nspids: None,
            containers: Tracking::default(),
            container_groups: Groups::default(),
        })
    }

    /// `--by container` (required for it), `--show-container`: names containers
    /// from the files under `host_root`, as their cgroups appear.
    pub fn name_containers(&mut self, host_root: PathBuf) -> Result<()> {
        let mount = identity::cgroup2_mount()?;
        self.containers.names = Some(Containers::new(mount, host_root));
        Ok(())
    }

    /// `--container`, `--pod`: matches found between reports are counted too.
    pub fn follow_cgroup_filter(&mut self, filter: CgroupFilter) {
        self.containers.filter = Some(filter);
    }

    /// `--show-nspid`: rows with a PID get the PID in its innermost namespace.
    pub fn show_nspids(&mut self) {
        self.nspids = Some(NsPids::default());
    }

    /// Between reports: reclaims exited processes' keys early when the per-process map
    /// fills up (see [`CounterReader::sweep`](super::counters::CounterReader::sweep)).
    pub fn sweep(&mut self) -> Result<()> {
        self.containers.refresh()?;
        self.maps.procs.sweep()
    }

    /// Keys in the per-process map now.
    pub fn occupancy(&self) -> Result<u64> {
        self.maps.procs.occupancy()
    }

    /// The report for the interval that ends now.
    pub fn report(&mut self) -> Result<Interval> {
        // The per-process map is read in every mode: it keeps PID reclaiming and the
        // map-full warning the same everywhere.
        let samples = self.maps.procs.read()?;
        let unstored = self.maps.unstored()?;
        // Processes whose keys were reclaimed: they exited.
        let exited: Vec<u32> = match (&self.nspids, &self.containers.names) {
            (None, None) => Vec::new(),
            _ => samples
                .iter()
                .filter(|p| p.reclaimed)
                .map(|p| p.key)
                .collect(),
        };
        let procs = self.differ.next(&samples, unstored.procs);
        if self.by == GroupBy::Pid && self.containers.names.is_none() {
            let mut report = aggregate::finish_procs(procs, self.sort, self.limit);
            if let Some(nspids) = &mut self.nspids {
                for row in &mut report.rows {
                    row.nspid = nspids.get(row.pid);
                }
                nspids.forget(exited);
            }
            return Ok(Interval::Procs(report));
        }
        let mut unrecorded = procs.unrecorded;
        let rows = match (&mut self.maps.flows, self.by) {
            (Some(reader), GroupBy::Pid) => {
                // --show-container: each process in the cgroup most of its bytes
                // were counted in this interval. Its bytes are the per-process
                // counter's, so the flow map's losses are not added.
                let (flows, _) = self.flows.next(&reader.read()?, unstored.flows);
                let mut cgroup: HashMap<u32, (u64, u64)> = HashMap::new();
                for f in &flows {
                    let e = cgroup.entry(f.key.tgid).or_insert((0, f.key.cgroup));
                    if f.interval.total() > e.0 || e.0 == 0 {
                        *e = (f.interval.total(), f.key.cgroup);
                    }
                }
                let mut rows = aggregate::by_pid(&procs.rows);
                if let Some(c) = &mut self.containers.names {
                    for row in &mut rows {
                        let pid = row.pid.unwrap_or(0);
                        row.container = cgroup.get(&pid).map(|(_, cg)| c.get(*cg, Some(pid)));
                        if let Some(who) = &row.container {
                            // For an interval where its flows show no delta.
                            c.remember_pid(pid, who.clone());
                        }
                    }
                }
                rows
            }
            (Some(reader), by) => {
                let (flows, lost) = self.flows.next(&reader.read()?, unstored.flows);
                unrecorded = unrecorded + lost;
                if by == GroupBy::Conn {
                    let mut rows = aggregate::by_conn(&flows, &procs.rows);
                    if let Some(c) = &mut self.containers.names {
                        for (row, f) in rows.iter_mut().zip(&flows) {
                            row.container = Some(c.get(f.key.cgroup, Some(f.key.tgid)));
                        }
                    }
                    rows
                } else if by == GroupBy::Container {
                    let Some(c) = self.containers.names.as_mut() else {
                        anyhow::bail!("--by container without container names");
                    };
                    aggregate::by_container(&mut self.container_groups, &flows, |cg, tgid| {
                        c.get(cg, Some(tgid))
                    })
                } else {
                    let names = &mut self.names;
                    aggregate::by_cgroup(&mut self.cgroups, &flows, |id| match names {
                        Some(n) => n.path(id),
                        None => format!("cgroup:{id}"),
                    })
                }
            }
            (None, GroupBy::Pid) => aggregate::by_pid(&procs.rows),
            (None, _) => aggregate::by_comm(&mut self.comms, &procs.rows),
        };
        let mut report = aggregate::finish(
            procs.index,
            self.by,
            rows,
            self.sort,
            self.limit,
            unrecorded,
        );
        if let Some(nspids) = &mut self.nspids {
            // Only the rows shown; an exited process's last row still gets its
            // cached value, then it is forgotten.
            for row in &mut report.rows {
                row.nspid = row.pid.and_then(|pid| nspids.get(pid));
            }
            nspids.forget(exited.iter().copied());
        }
        if let Some(c) = &mut self.containers.names {
            if self.by == GroupBy::Pid {
                for row in report.rows.iter_mut().filter(|r| r.container.is_none()) {
                    row.container = row.pid.and_then(|pid| c.of_pid(pid));
                }
            }
            c.end_report(exited);
        }
        Ok(Interval::Grouped(report))
    }
}
