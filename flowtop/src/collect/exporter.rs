//! `--serve`: what the Prometheus exporter reads from the kernel. Flows are keyed by
//! process and cgroup (`flow_mode::CGROUP`), so every delta carries the three labels
//! the counters may have (comm, cgroup, pid). Deltas follow the same rules as every
//! other mode: cumulative kernel counters, differences between reads, dead processes'
//! keys removed with their final value in the same step.
use anyhow::Result;
use aya::Ebpf;

use super::{diff::ProcDiffer, flows::FlowDiffer, maps::KernelMaps, Bytes};
use crate::identity::CgroupNames;

/// One process-in-a-cgroup's bytes since the previous read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBytes {
    pub pid: u32,
    pub comm: String,
    /// cgroup v2 path (`/system.slice/nginx.service`), `cgroup:<id>` if it vanished
    /// before flowtop could name it.
    pub cgroup: String,
    pub bytes: Bytes,
}

/// Everything one read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub flows: Vec<FlowBytes>,
    /// Bytes the per-process map had no room for since the previous read.
    pub unrecorded_procs: Bytes,
    /// Bytes the flow map had no room for since the previous read: these are missing
    /// from the labelled counters.
    pub unrecorded_flows: Bytes,
    /// Keys in the per-process and flow maps after this read.
    pub proc_keys: u64,
    pub flow_keys: u64,
}

pub struct ExportReader {
    maps: KernelMaps,
    differ: ProcDiffer,
    flow_differ: FlowDiffer,
    names: Option<CgroupNames>,
}

impl ExportReader {
    /// `capacity`: `--max-entries` (both maps).
    pub fn new(ebpf: &mut Ebpf, capacity: u32) -> Result<Self> {
        let names = CgroupNames::or_ids("cgroup labels will be");
        Ok(Self {
            maps: KernelMaps::take(ebpf, capacity, true)?,
            differ: ProcDiffer::new(),
            flow_differ: FlowDiffer::default(),
            names,
        })
    }

    /// Reclaims exited processes' keys early when the per-process map fills up.
    pub fn sweep(&mut self) -> Result<()> {
        self.maps.procs.sweep()
    }

    /// Bytes moved since the previous read.
    pub fn read(&mut self) -> Result<Update> {
        // The per-process map is read too: it reclaims dead PIDs' keys there, and its
        // losses are reported as a health metric.
        let procs = self.maps.procs.read()?;
        let unstored = self.maps.unstored()?;
        let procs = self.differ.next(&procs, unstored.procs);
        let samples = self.maps.flows()?.read()?;
        let flow_keys = samples.iter().filter(|s| !s.reclaimed).count() as u64;
        let (deltas, lost) = self.flow_differ.next(&samples, unstored.flows);
        let names = &mut self.names;
        let flows = deltas
            .into_iter()
            .map(|d| FlowBytes {
                pid: d.key.tgid,
                comm: d.comm.to_string(),
                cgroup: match names {
                    Some(n) => n.path(d.key.cgroup),
                    None => format!("cgroup:{}", d.key.cgroup),
                },
                bytes: d.interval,
            })
            .collect();
        Ok(Update {
            flows,
            unrecorded_procs: procs.unrecorded,
            unrecorded_flows: lost,
            proc_keys: self.maps.procs.occupancy()?,
            flow_keys,
        })
    }
}
