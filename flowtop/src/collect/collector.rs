//! One interval's report for any `--by`: reads the maps the grouping needs, diffs
//! them, groups, sorts and limits.
use anyhow::Result;
use aya::Ebpf;

use super::{
    aggregate::{self, GroupBy, Groups, Report, SortBy},
    diff::{Differ, IntervalReport},
    flows::{FlowDiffer, FlowReader},
    read::MapReader,
    Bytes,
};
use crate::identity::{self, CgroupNames};

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
    procs: MapReader,
    differ: Differ,
    /// `--by conn`/`--by cgroup` only.
    flows: Option<(FlowReader, FlowDiffer)>,
    comms: Groups<String>,
    cgroups: Groups<u64>,
    names: Option<CgroupNames>,
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
        // Before MapReader::new, which takes UNRECORDED out of `ebpf`.
        let flows = match by {
            GroupBy::Conn | GroupBy::Cgroup => {
                Some((FlowReader::new(ebpf)?, FlowDiffer::default()))
            }
            GroupBy::Pid | GroupBy::Comm => None,
        };
        let names = match by {
            GroupBy::Cgroup => Some(CgroupNames::new(identity::cgroup2_mount()?)),
            _ => None,
        };
        Ok(Self {
            by,
            sort,
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            procs: MapReader::new(ebpf, capacity)?,
            differ: Differ::new(),
            flows,
            comms: Groups::default(),
            cgroups: Groups::default(),
            names,
        })
    }

    /// Between reports: reclaims exited processes' keys early when the per-process map
    /// fills up (see [`MapReader::sweep`]).
    pub fn sweep(&mut self) -> Result<()> {
        self.procs.sweep()
    }

    /// Keys in the per-process map now.
    pub fn occupancy(&self) -> Result<u64> {
        self.procs.occupancy()
    }

    /// The report for the interval that ends now.
    pub fn report(&mut self) -> Result<Interval> {
        // The per-process map is read in every mode: it keeps PID reclaiming and the
        // map-full warning the same everywhere.
        let procs = self.differ.next(self.procs.read()?);
        if self.by == GroupBy::Pid {
            return Ok(Interval::Procs(aggregate::finish_procs(
                procs, self.sort, self.limit,
            )));
        }
        let mut unrecorded = procs.unrecorded;
        let rows = match (&mut self.flows, self.by) {
            (Some((reader, differ)), by) => {
                let (samples, lost) = reader.read()?;
                let (flows, lost) = differ.next(&samples, lost);
                unrecorded = Bytes {
                    rx: unrecorded.rx + lost.rx,
                    tx: unrecorded.tx + lost.tx,
                };
                if by == GroupBy::Conn {
                    aggregate::by_conn(&flows)
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
        Ok(Interval::Grouped(aggregate::finish(
            procs.index,
            self.by,
            rows,
            self.sort,
            self.limit,
            unrecorded,
        )))
    }
}
