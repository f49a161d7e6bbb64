//! One interval's report for any `--by`: reads the maps the grouping needs, diffs
//! them, groups, sorts and limits.
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
    identity::{self, CgroupNames},
    nspid::NsPids,
};

/// One interval's rows, as the printers take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interval {
    /// `--by pid`: the differ's rows after `-s` and `-r`, not converted.
    Procs(IntervalReport),
    /// `--by conn|comm|cgroup`.
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
    /// `--by conn`/`--by cgroup` only (with `maps.flows`).
    flows: FlowDiffer,
    comms: Groups<String>,
    cgroups: Groups<u64>,
    names: Option<CgroupNames>,
    /// `--show-nspid` only.
    nspids: Option<NsPids>,
}

impl Collector {
    /// `capacity`: the per-process map's size (`--max-entries`), for early reclaims.
    pub fn new(
        ebpf: &mut Ebpf,
        by: GroupBy,
        sort: SortBy,
        limit: Option<u64>,
        capacity: u32,
    ) -> Result<Self> {
        let flows = matches!(by, GroupBy::Conn | GroupBy::Cgroup);
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
        })
    }

    /// `--show-nspid`: rows with a PID get the PID in its innermost namespace.
    pub fn show_nspids(&mut self) {
        self.nspids = Some(NsPids::default());
    }

    /// Between reports: reclaims exited processes' keys early when the per-process map
    /// fills up (see [`CounterReader::sweep`](super::counters::CounterReader::sweep)).
    pub fn sweep(&mut self) -> Result<()> {
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
        let exited: Vec<u32> = match self.nspids {
            Some(_) => samples
                .iter()
                .filter(|p| p.reclaimed)
                .map(|p| p.key)
                .collect(),
            None => Vec::new(),
        };
        let procs = self.differ.next(&samples, unstored.procs);
        if self.by == GroupBy::Pid {
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
            (Some(reader), by) => {
                let (flows, lost) = self.flows.next(&reader.read()?, unstored.flows);
                unrecorded = unrecorded + lost;
                if by == GroupBy::Conn {
                    aggregate::by_conn(&flows, &procs.rows)
                } else {
                    let names = &mut self.names;
                    aggregate::by_cgroup(&mut self.cgroups, &flows, |id| match names {
                        Some(n) => n.path(id),
                        None => format!("cgroup:{id}"),
                    })
                }
            }
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
            nspids.forget(exited);
        }
        Ok(Interval::Grouped(report))
    }
}
