//! `--serve`: what the Prometheus exporter reads from the kernel. Flows are keyed by
//! process and cgroup (`flow_mode::CGROUP`), so every delta carries the three labels
//! the counters may have (comm, cgroup, pid). Deltas follow the same rules as every
//! other mode: cumulative kernel counters, differences between reads, dead processes'
//! keys removed with their final value in the same step.
use std::{path::PathBuf, sync::Arc};

use anyhow::Result;
use aya::Ebpf;

use super::{diff::ProcDiffer, flows::FlowDiffer, maps::KernelMaps, Bytes};
use crate::{
    container::{filter::CgroupFilter, Containers, Identity, Tracking},
    identity::{self, CgroupNames},
};

/// One process-in-a-cgroup's bytes since the previous read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBytes {
    pub pid: u32,
    pub comm: String,
    /// cgroup v2 path (`/system.slice/nginx.service`), `cgroup:<id>` if it vanished
    /// before flowtop could name it.
    pub cgroup: String,
    /// The container, pod or unit, named when its cgroup was first seen.
    pub who: Option<Arc<Identity>>,
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
    /// Socket calls the kernel skipped flowtop's programs for since the previous
    /// read (filled in by the serve loop, which watches the programs).
    pub skipped_calls: u64,
}

pub struct ExportReader {
    maps: KernelMaps,
    differ: ProcDiffer,
    flow_differ: FlowDiffer,
    names: Option<CgroupNames>,
    /// Container names; `--container`, `--pod`: the kernel filter, kept in step
    /// with the matches.
    containers: Tracking,
}

impl ExportReader {
    /// `capacity`: `--max-entries` (both maps); `host_root`: `--host-root`;
    /// `cgroup_filter`: `--container`/`--pod`, followed as containers come and go.
    pub fn new(
        ebpf: &mut Ebpf,
        capacity: u32,
        host_root: PathBuf,
        cgroup_filter: Option<CgroupFilter>,
    ) -> Result<Self> {
        let (names, containers) = match identity::cgroup2_mount() {
            Ok(m) => (
                Some(CgroupNames::new(m.clone())),
                Some(Containers::new(m, host_root)),
            ),
            Err(e) => {
                log::warn!("cgroup and container labels will be empty or ids: {e:#}");
                (None, None)
            }
        };
        Ok(Self {
            maps: KernelMaps::take(ebpf, capacity, true)?,
            differ: ProcDiffer::new(),
            flow_differ: FlowDiffer::default(),
            names,
            containers: Tracking {
                names: containers,
                filter: cgroup_filter,
            },
        })
    }

    /// Reclaims exited processes' keys early when the per-process map fills up.
    pub fn sweep(&mut self) -> Result<()> {
        self.containers.refresh()?;
        self.maps.procs.sweep()
    }

    /// Bytes moved since the previous read.
    pub fn read(&mut self) -> Result<Update> {
        // The per-process map is read too: it reclaims dead PIDs' keys there, and its
        // losses are reported as a health metric.
        let procs = self.maps.procs.read()?;
        let unstored = self.maps.unstored()?;
        // Processes whose keys were reclaimed: they exited.
        let exited: Vec<u32> = procs
            .iter()
            .filter(|p| p.reclaimed)
            .map(|p| p.key)
            .collect();
        let procs = self.differ.next(&procs, unstored.procs);
        let samples = self.maps.flows()?.read()?;
        let flow_keys = samples.iter().filter(|s| !s.reclaimed).count() as u64;
        let (deltas, lost) = self.flow_differ.next(&samples, unstored.flows);
        let (names, containers) = (&mut self.names, &mut self.containers.names);
        let flows = deltas
            .into_iter()
            .map(|d| FlowBytes {
                pid: d.key.tgid,
                comm: d.comm.to_string(),
                cgroup: match names {
                    Some(n) => n.path(d.key.cgroup),
                    None => format!("cgroup:{}", d.key.cgroup),
                },
                who: containers
                    .as_mut()
                    .map(|c| c.get(d.key.cgroup, Some(d.key.tgid))),
                bytes: d.interval,
            })
            .collect();
        if let Some(c) = containers {
            c.end_report(exited);
        }
        Ok(Update {
            flows,
            unrecorded_procs: procs.unrecorded,
            unrecorded_flows: lost,
            proc_keys: self.maps.procs.occupancy()?,
            flow_keys,
            skipped_calls: 0,
        })
    }
}
