//! One interval's report for any `--by`: one [`Pipeline`] read (the maps the
//! grouping needs, diffed), grouped by the [`Grouper`], sorted and limited.
use std::path::PathBuf;

use anyhow::Result;
use aya::Ebpf;

use super::{
    aggregate::{self, GroupBy, Report, SortBy},
    diff::IntervalReport,
    grouper::Grouper,
    pipeline::Pipeline,
    Bytes,
};
use crate::{
    container::{filter::CgroupFilter, Containers},
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
    pipeline: Pipeline,
    grouper: Grouper,
    /// `--show-container`: rows of processes carry their container.
    show_container: bool,
    /// `--show-nspid` only.
    nspids: Option<NsPids>,
}

impl Collector {
    /// `capacity`: the per-process map's size (`--max-entries`), for early reclaims.
    /// `show_container`: the programs key flows by cgroup too, and a process's
    /// container is the cgroup its bytes were counted in (see
    /// [`Grouper::show_containers`]; names come from [`Self::name_containers`]).
    pub fn new(
        ebpf: &mut Ebpf,
        by: GroupBy,
        sort: SortBy,
        limit: Option<u64>,
        capacity: u32,
        show_container: bool,
    ) -> Result<Self> {
        let names = match by {
            GroupBy::Cgroup => Some(CgroupNames::new(identity::cgroup2_mount()?)),
            _ => None,
        };
        let flows = by.flow_mode() != 0 || (show_container && by == GroupBy::Pid);
        Ok(Self {
            by,
            sort,
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            pipeline: Pipeline::new(ebpf, capacity, flows)?,
            grouper: Grouper::new(names),
            show_container,
            nspids: None,
        })
    }

    /// `--by container` (required for it), `--show-container`: names containers
    /// from the files under `host_root`, as their cgroups appear.
    pub fn name_containers(&mut self, host_root: PathBuf) -> Result<()> {
        let mount = identity::cgroup2_mount()?;
        self.grouper
            .name_containers(Containers::new(mount, host_root));
        Ok(())
    }

    /// `--container`, `--pod`: matches found between reports are counted too.
    pub fn follow_cgroup_filter(&mut self, filter: CgroupFilter) {
        self.pipeline.follow_cgroup_filter(filter);
    }

    /// `--show-nspid`: rows with a PID get the PID in its innermost namespace.
    pub fn show_nspids(&mut self) {
        self.nspids = Some(NsPids::default());
    }

    /// Between reports: see [`Grouper::refresh`] and [`Pipeline::sweep`].
    pub fn sweep(&mut self) -> Result<()> {
        self.grouper.refresh();
        self.pipeline.sweep()
    }

    /// Keys in the per-process map now.
    pub fn occupancy(&mut self) -> Result<u64> {
        self.pipeline.occupancy()
    }

    /// The report for the interval that ends now.
    pub fn report(&mut self) -> Result<Interval> {
        let deltas = self.pipeline.read()?;
        // Processes whose keys were reclaimed: they exited.
        let exited: Vec<u32> = deltas.exited().collect();
        let show_container = self.show_container && self.grouper.names_containers();
        if self.by == GroupBy::Pid && !show_container {
            let mut report = aggregate::finish_procs(deltas.procs, self.sort, self.limit);
            if let Some(nspids) = &mut self.nspids {
                for row in &mut report.rows {
                    row.nspid = nspids.get(row.pid);
                }
                nspids.forget(exited.iter().copied());
            }
            self.grouper.end_interval(exited);
            return Ok(Interval::Procs(report));
        }
        let mut rows = self
            .grouper
            .rows(self.by, &deltas.procs.rows, &deltas.flows)?;
        if show_container {
            self.grouper
                .show_containers(self.by, &mut rows, &deltas.flows);
        }
        let unrecorded = deltas.unrecorded(self.by);
        let mut report = aggregate::finish(
            deltas.procs.index,
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
        self.grouper.end_interval(exited);
        Ok(Interval::Grouped(report))
    }
}
