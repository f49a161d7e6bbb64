//! The one place that takes the counting maps out of the loaded object. Every mode
//! (report, serve, benchmarks) reads them through [`KernelMaps`], so there is no
//! order in which readers must be made and no second handle on a shared map.
use anyhow::{anyhow, Context as _, Result};
use aya::{
    maps::{Map, PerCpuArray, PerCpuHashMap, RingBuf},
    Ebpf,
};
use flowtop_common::{
    FlowKey, Unrecorded, MAP_EXITS, MAP_EXIT_STATS, MAP_FLOW_BYTES, MAP_PROC_BYTES,
    MAP_PROC_INSERTS, MAP_UNRECORDED, UNRECORDED_FLOW,
};

use super::{counters::CounterReader, exits::ExitRecords, Bytes};

/// The maps the programs count into.
pub struct KernelMaps {
    /// Per process (key: PID). Read in every mode: it reclaims exited processes'
    /// keys and carries the map-full count every mode reports.
    pub procs: CounterReader<u32>,
    /// Per flow (key: process, connection or cgroup; `--by conn|cgroup`, `--serve`).
    pub flows: Option<CounterReader<FlowKey>>,
    /// Final values of per-process keys the kernel reclaimed at exit (empty where
    /// the exit program is not attached).
    pub exits: Option<ExitRecords>,
    unrecorded: PerCpuArray<aya::maps::MapData, Unrecorded>,
}

/// Cumulative bytes the programs saw but had no room for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unstored {
    /// The per-process map was full.
    pub procs: Bytes,
    /// The flow map was full (these bytes are in `procs` rows but in no flow row).
    pub flows: Bytes,
}

impl KernelMaps {
    /// `capacity`: `--max-entries` (both maps' size); `flows`: whether the flow map
    /// is read (the programs fill it only when a flow mode was set at load time).
    pub fn take(ebpf: &mut Ebpf, capacity: u32, flows: bool) -> Result<Self> {
        let procs = PerCpuHashMap::try_from(take(ebpf, MAP_PROC_BYTES)?)?;
        let inserts = PerCpuArray::try_from(take(ebpf, MAP_PROC_INSERTS)?)?;
        let flows = if flows {
            let map = PerCpuHashMap::try_from(take(ebpf, MAP_FLOW_BYTES)?)?;
            Some(CounterReader::new(map, None, capacity)?)
        } else {
            None
        };
        let exits = ExitRecords::new(
            RingBuf::try_from(take(ebpf, MAP_EXITS)?)?,
            PerCpuArray::try_from(take(ebpf, MAP_EXIT_STATS)?)?,
        );
        Ok(Self {
            procs: CounterReader::new(procs, Some(inserts), capacity)?,
            flows,
            exits: Some(exits),
            unrecorded: PerCpuArray::try_from(take(ebpf, MAP_UNRECORDED)?)?,
        })
    }

    /// Maps of flowtop's layout made elsewhere (benchmarks): no flows, no insert
    /// counter.
    pub fn from_maps(
        procs: PerCpuHashMap<aya::maps::MapData, u32, flowtop_common::ProcCounters>,
        unrecorded: PerCpuArray<aya::maps::MapData, Unrecorded>,
    ) -> Result<Self> {
        Ok(Self {
            procs: CounterReader::new(procs, None, u32::MAX)?,
            flows: None,
            exits: None,
            unrecorded,
        })
    }

    /// The flow map's reader; an error when it was not taken (`flows: false`).
    pub fn flows(&mut self) -> Result<&mut CounterReader<FlowKey>> {
        self.flows
            .as_mut()
            .ok_or_else(|| anyhow!("the flow map was not taken from the eBPF object"))
    }

    /// What the programs could not store so far.
    pub fn unstored(&self) -> Result<Unstored> {
        let read = |index: u32| -> Result<Bytes> {
            Ok(self
                .unrecorded
                .get(&index, 0)
                .context("reading unrecorded bytes")?
                .iter()
                .fold(Bytes::default(), |acc, u| acc + Bytes::from(*u)))
        };
        Ok(Unstored {
            procs: read(0)?,
            flows: if self.flows.is_some() {
                read(UNRECORDED_FLOW)?
            } else {
                Bytes::default()
            },
        })
    }
}

fn take(ebpf: &mut Ebpf, name: &str) -> Result<Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("map {name} missing from the eBPF object"))
}
