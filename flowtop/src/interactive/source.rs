//! One read of the maps for every grouping at once: `-i` switches groupings at a key
//! press, so each interval's [`Deltas`] (the report mode's own read) are made into
//! rows of every grouping the kernel keyed flows for, by the report mode's
//! [`Grouper`], and every grouping's since-start totals are right whichever one is
//! on screen. Which rows are still alive comes from the same read: the keys not
//! reclaimed, grouped the same way.
use std::collections::HashSet;

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
    identity::CgroupNames,
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
}

/// The rows of one interval for every grouping there is here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// 1-based interval number.
    pub index: u64,
    pub groupings: Vec<Grouping>,
    /// All processes' bytes this interval.
    pub all: Bytes,
    /// Bytes the kernel could not attribute this interval (map full).
    pub unrecorded: Bytes,
}

pub struct Source {
    pipeline: Pipeline,
    grouper: Grouper,
    /// The groupings the flow map was keyed for, in `--by`'s order.
    groupings: Vec<GroupBy>,
    /// `--show-nspid`.
    nspids: Option<NsPids>,
}

impl Source {
    /// `flow_mode`: how the programs key the flow map (see `KernelFilters`).
    pub fn new(ebpf: &mut Ebpf, capacity: u32, flow_mode: u32, nspid: bool) -> Result<Self> {
        let names = CgroupNames::or_ids("cgroups will be shown as");
        Ok(Self {
            pipeline: Pipeline::new(ebpf, capacity, flow_mode != 0)?,
            grouper: Grouper::new(names),
            groupings: available(flow_mode),
            nspids: nspid.then(NsPids::default),
        })
    }

    /// The groupings there are rows of, in `--by`'s order.
    pub fn groupings(&self) -> &[GroupBy] {
        &self.groupings
    }

    /// See [`Pipeline::sweep`].
    pub fn sweep(&mut self) -> Result<()> {
        self.pipeline.sweep()
    }

    /// Everything that moved since the last read.
    pub fn read(&mut self) -> Result<Sample> {
        let deltas = self.pipeline.read()?;
        let (live_procs, live_flows) = live(&deltas);
        let mut groupings = Vec::with_capacity(self.groupings.len());
        for &by in &self.groupings {
            let mut rows = self.grouper.rows(by, &deltas.procs.rows, &deltas.flows);
            // The same grouping of the live keys, with no bytes: which rows live on.
            let alive = self
                .grouper
                .rows(by, &live_procs, &live_flows)
                .iter()
                .map(|r| key(by, r))
                .collect();
            if let Some(nspids) = &mut self.nspids {
                for row in &mut rows {
                    row.nspid = row.pid.and_then(|pid| nspids.get(pid));
                }
            }
            groupings.push(Grouping { by, rows, alive });
        }
        if let Some(nspids) = &mut self.nspids {
            nspids.forget(deltas.exited());
        }
        Ok(Sample {
            index: deltas.procs.index,
            all: deltas
                .procs
                .rows
                .iter()
                .fold(Bytes::default(), |a, r| a + r.interval),
            unrecorded: deltas.unrecorded,
            groupings,
        })
    }
}

/// The groupings whose flow keys `flow_mode` has (pid and comm need none).
fn available(flow_mode: u32) -> Vec<GroupBy> {
    GroupBy::all()
        .iter()
        .copied()
        .filter(|by| by.flow_mode() & !flow_mode == 0)
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
        assert_eq!(available(0), [Pid, Comm]);
        assert_eq!(available(flow_mode::CGROUP), [Pid, Comm, Cgroup]);
        assert_eq!(
            available(flow_mode::CONN | flow_mode::CGROUP),
            GroupBy::all()
        );
    }
}
