//! The flow instance of the pipeline (`--by conn`, `--by cgroup`, `--serve`): the
//! flow map's reads diffed per key, as the per-process map's are.
use flowtop_common::FlowKey;

use super::{
    counters::Sample,
    diff::{Cumulative, Differ},
    Bytes, Comm,
};

/// One flow's bytes in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDelta {
    pub key: FlowKey,
    pub comm: Comm,
    pub interval: Bytes,
    /// Since flowtop started.
    pub total: Bytes,
}

/// Remembers the flow map's previous read.
#[derive(Debug, Default)]
pub struct FlowDiffer {
    differ: Differ<FlowKey>,
    unrecorded: Cumulative,
}

impl FlowDiffer {
    /// Flows that moved bytes since the last call, and the bytes the flow map had no
    /// room for in that time (`unrecorded`: the programs' cumulative count).
    pub fn next(
        &mut self,
        samples: &[Sample<FlowKey>],
        unrecorded: Bytes,
    ) -> (Vec<FlowDelta>, Bytes) {
        let rows = self
            .differ
            .next(samples, |s, interval, total| FlowDelta {
                key: s.key,
                comm: s.comm.clone(),
                interval,
                total,
            })
            .rows;
        (rows, self.unrecorded.delta(unrecorded))
    }
}
