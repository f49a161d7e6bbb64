//! One read of the maps for every grouping at once: `-i` switches groupings at a key
//! press, so each interval's [`Deltas`] (the report mode's own read) are made into
//! rows of every grouping the kernel keyed flows for, by the report mode's
//! [`Grouper`], and every grouping's since-start totals are right whichever one is
//! on screen. Which rows are still alive comes from the same read: the keys not
//! reclaimed, grouped the same way.
use std::{collections::HashSet, path::PathBuf};

use anyhow::Result;
use aya::Ebpf;

use super::rowkey::key;
use crate::{
    collect::{
        aggregate::{GroupBy, Row},
        counters::Sample as KeySample,
        diff::ProcRow,
        flows::FlowDelta,
        grouper::Grouper,
        pipeline::{Deltas, Pipeline},
        Bytes,
    },
    container::{filter::CgroupFilter, Containers},
    identity::{self, CgroupNames},
    nspid::NsPids,
};

/// One grouping's rows of one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub by: GroupBy,
    /// Rows that moved bytes this interval.
    pub rows: Vec<Row>,
    /// Keys ([`key`]) of rows with a process still alive after this read.
    pub alive: HashSet<String>,
    /// Bytes missing from these rows this interval (a map full).
    pub unrecorded: Bytes,
}

/// The rows of one interval for every grouping there is here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// 1-based interval number.
    pub index: u64,
    pub groupings: Vec<Grouping>,
    /// All processes' bytes this interval.
    pub all: Bytes,
}

pub struct Source {
    pipeline: Pipeline,
    grouper: Grouper,
    /// The groupings the flow map was keyed for, in `--by`'s order.
    groupings: Vec<GroupBy>,
    /// `--show-nspid`.
    nspids: Option<NsPids>,
    /// `--show-container`: rows of processes and connections carry their container.
    show_container: bool,
}

impl Source {
    /// `flow_mode`: how the programs key the flow map (see `KernelFilters`);
    /// `host_root`: `--host-root`. Containers are named whenever the cgroup2 mount
    /// is found: `g` may switch to them at any time.
    pub fn new(
        ebpf: &mut Ebpf,
        capacity: u32,
        flow_mode: u32,
        nspid: bool,
        show_container: bool,
        host_root: PathBuf,
    ) -> Result<Self> {
        let mut grouper = Grouper::new(CgroupNames::or_ids("cgroups will be shown as"));
        match identity::cgroup2_mount() {
            Ok(mount) => grouper.name_containers(Containers::new(mount, host_root)),
            Err(e) => log::warn!("no container rows or names: {e:#}"),
        }
        Ok(Self {
            pipeline: Pipeline::new(ebpf, capacity, flow_mode != 0)?,
            groupings: available(flow_mode, grouper.names_containers()),
            grouper,
            nspids: nspid.then(NsPids::default),
            show_container,
        })
    }

    /// `--container`, `--pod`: matches found between reads are counted too.
    pub fn follow_cgroup_filter(&mut self, filter: CgroupFilter) {
        self.pipeline.follow_cgroup_filter(filter);
    }

    /// The groupings there are rows of, in `--by`'s order.
    pub fn groupings(&self) -> &[GroupBy] {
        &self.groupings
    }

    /// See [`Grouper::refresh`] and [`Pipeline::sweep`].
    pub fn sweep(&mut self) -> Result<()> {
        self.grouper.refresh();
        self.pipeline.sweep()
    }

    /// Everything that moved since the last read.
    pub fn read(&mut self) -> Result<Sample> {
        let deltas = self.pipeline.read()?;
        let (live_procs, live_flows) = live(&deltas);
        let mut groupings = Vec::with_capacity(self.groupings.len());
        for &by in &self.groupings {
            let mut rows = self.grouper.rows(by, &deltas.procs.rows, &deltas.flows)?;
            if self.show_container {
                self.grouper.show_containers(by, &mut rows, &deltas.flows);
            }
            // The same grouping of the live keys, with no bytes: which rows live on.
            let alive = self
                .grouper
                .rows(by, &live_procs, &live_flows)?
                .iter()
                .map(|r| key(by, r))
                .collect();
            if let Some(nspids) = &mut self.nspids {
                for row in &mut rows {
                    row.nspid = row.pid.and_then(|pid| nspids.get(pid));
                }
            }
            groupings.push(Grouping {
                by,
                rows,
                alive,
                unrecorded: deltas.unrecorded(by),
            });
        }
        if let Some(nspids) = &mut self.nspids {
            nspids.forget(deltas.exited());
        }
        self.grouper.end_interval(deltas.exited());
        Ok(Sample {
            index: deltas.procs.index,
            all: deltas
                .procs
                .rows
                .iter()
                .fold(Bytes::default(), |a, r| a + r.interval),
            groupings,
        })
    }
}

/// The groupings whose flow keys `flow_mode` has (pid and comm need none), and
/// containers only where they can be named.
fn available(flow_mode: u32, containers: bool) -> Vec<GroupBy> {
    GroupBy::all()
        .iter()
        .copied()
        .filter(|by| by.flow_mode() & !flow_mode == 0)
        .filter(|by| containers || *by != GroupBy::Container)
        .collect()
}

/// The keys still alive after this read, as rows with no bytes.
fn live(deltas: &Deltas) -> (Vec<ProcRow>, Vec<FlowDelta>) {
    let procs = alive(&deltas.proc_samples, |s| ProcRow {
        pid: s.key,
        nspid: None,
        comm: s.comm.clone(),
        interval: Bytes::default(),
        total: Bytes::default(),
    });
    let flows = alive(&deltas.flow_samples, |s| FlowDelta {
        key: s.key,
        comm: s.comm.clone(),
        interval: Bytes::default(),
        total: Bytes::default(),
    });
    (procs, flows)
}

/// `row` of each sample whose key was not reclaimed.
fn alive<K, R>(samples: &[KeySample<K>], row: impl Fn(&KeySample<K>) -> R) -> Vec<R> {
    samples.iter().filter(|s| !s.reclaimed).map(row).collect()
}

#[cfg(test)]
mod tests {
    use flowtop_common::flow_mode;

    use super::*;

    #[test]
    fn groupings_are_those_the_flow_map_was_keyed_for() {
        use GroupBy::*;
        assert_eq!(available(0, true), [Pid, Comm]);
        assert_eq!(
            available(flow_mode::CGROUP, true),
            [Pid, Comm, Cgroup, Container]
        );
        assert_eq!(available(flow_mode::CGROUP, false), [Pid, Comm, Cgroup]);
        assert_eq!(
            available(flow_mode::CONN | flow_mode::CGROUP, true),
            GroupBy::all()
        );
    }
}
