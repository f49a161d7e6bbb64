//! One interval of the counting pipeline, before any grouping: both maps read
//! ([`KernelMaps`]), each diffed ([`ProcDiffer`], [`FlowDiffer`]), the bytes the
//! programs had no room for added up. Report mode groups the result one way
//! ([`super::collector`]), `-i` every way ([`crate::interactive::source`]): both
//! start from this one read, and so does `--serve` ([`super::exporter`]), so no
//! mode can count differently.
use anyhow::Result;
use aya::Ebpf;
use flowtop_common::FlowKey;

use super::{
    aggregate::GroupBy,
    counters::Sample,
    diff::{IntervalReport, ProcDiffer},
    flows::{FlowDelta, FlowDiffer},
    maps::KernelMaps,
    realtime, Bytes,
};
use crate::container::filter::CgroupFilter;

/// What moved in one interval, per process and per flow.
#[derive(Debug)]
pub struct Deltas {
    /// Per-process rows (busiest first), numbered; its `unrecorded` is the
    /// per-process map's alone.
    pub procs: IntervalReport,
    /// Flows that moved bytes (none when the flow map is not read).
    pub flows: Vec<FlowDelta>,
    /// Bytes the flow map had no room for this interval (the per-process map's are
    /// in `procs`).
    pub flows_lost: Bytes,
    /// The reads themselves: which keys are alive, which were reclaimed (exited).
    pub proc_samples: Vec<Sample<u32>>,
    pub flow_samples: Vec<Sample<FlowKey>>,
}

impl Deltas {
    /// Bytes missing from the rows of `by` this interval: rows of processes (pid,
    /// comm) carry the per-process counters, so only that map's losses are theirs;
    /// rows made of flows miss what either map had no room for.
    pub fn unrecorded(&self, by: GroupBy) -> Bytes {
        match by.flow_mode() {
            0 => self.procs.unrecorded,
            _ => self.procs.unrecorded + self.flows_lost,
        }
    }

    /// Processes whose keys were reclaimed in this read: they exited.
    pub fn exited(&self) -> impl Iterator<Item = u32> + '_ {
        self.proc_samples
            .iter()
            .filter(|s| s.reclaimed)
            .map(|s| s.key)
    }
}

/// The maps and their differs, and what keeps the kernel's filter current.
pub struct Pipeline {
    maps: KernelMaps,
    differ: ProcDiffer,
    flows: FlowDiffer,
    /// `--container`, `--pod`: the kernel's cgroup slots, kept in step with the
    /// matching containers between reads.
    filter: Option<CgroupFilter>,
    /// Exit records drained between reads (so the ring never fills while flowtop
    /// waits for the next interval), for the next read.
    early_exits: Vec<Sample<u32>>,
}

impl Pipeline {
    /// `capacity`: `--max-entries`; `flows`: whether the flow map is read (the
    /// programs fill it only when a flow mode was set at load time).
    pub fn new(ebpf: &mut Ebpf, capacity: u32, flows: bool) -> Result<Self> {
        Ok(Self {
            maps: KernelMaps::take(ebpf, capacity, flows)?,
            differ: ProcDiffer::new(),
            flows: FlowDiffer::default(),
            filter: None,
            early_exits: Vec::new(),
        })
    }

    /// `--container`, `--pod`: matches found between reads are counted too.
    pub fn follow_cgroup_filter(&mut self, filter: CgroupFilter) {
        self.filter = Some(filter);
    }

    /// Between reads: follows containers matching `--container`/`--pod` as they
    /// come and go, drains the kernel's exit records, and reclaims exited processes'
    /// keys early when the per-process map fills up anyway (see
    /// [`CounterReader::sweep`](super::counters::CounterReader::sweep)).
    pub fn sweep(&mut self) -> Result<()> {
        if let Some(f) = &mut self.filter {
            f.refresh()?;
        }
        self.drain_exits_into_early()?;
        let _rt = realtime::Read::enter();
        self.maps.procs.sweep()
    }

    /// Keys in the per-process map now.
    pub fn occupancy(&mut self) -> Result<u64> {
        self.note_kernel_deletes()?;
        self.maps.procs.occupancy()
    }

    fn drain_exits_into_early(&mut self) -> Result<()> {
        if let Some(exits) = &mut self.maps.exits {
            exits.drain(&mut self.early_exits);
        }
        self.note_kernel_deletes()
    }

    /// Tells the per-process reader how many keys the exit program deleted, and
    /// says when exits found no room in the ring (their keys wait for flowtop).
    fn note_kernel_deletes(&mut self) -> Result<()> {
        let Some(exits) = &mut self.maps.exits else {
            return Ok(());
        };
        self.maps.procs.note_kernel_deletes(exits.reclaimed()?);
        let no_room = exits.no_room_since_last()?;
        if no_room > 0 {
            log::info!(
                "{no_room} exited processes' final counts found no room in the exit ring: \
                 their keys are reclaimed by flowtop instead (nothing is lost)"
            );
        }
        Ok(())
    }

    /// The interval that ends now. The per-process map is read in every mode: it
    /// keeps PID reclaiming and the map-full count the same everywhere.
    ///
    /// The kernel's exit records come after the map read: a record is written after
    /// its key was deleted, so a key seen in the map read whose process exits now
    /// has its final value in this drain or a later one, never in an earlier one,
    /// and the differ takes what it had not seen yet.
    pub fn read(&mut self) -> Result<Deltas> {
        let rt = realtime::Read::enter();
        let mut proc_samples = self.maps.procs.read()?;
        proc_samples.append(&mut self.early_exits);
        self.drain_exits_into_early()?;
        proc_samples.append(&mut self.early_exits);
        let unstored = self.maps.unstored()?;
        let flow_samples = match &mut self.maps.flows {
            Some(reader) => Some(reader.read()?),
            None => None,
        };
        drop(rt);
        let procs = self.differ.next(&proc_samples, unstored.procs);
        let (flow_samples, flows, lost) = match flow_samples {
            Some(samples) => {
                let (flows, lost) = self.flows.next(&samples, unstored.flows);
                (samples, flows, lost)
            }
            None => (Vec::new(), Vec::new(), Bytes::default()),
        };
        Ok(Deltas {
            flows_lost: lost,
            procs,
            flows,
            proc_samples,
            flow_samples,
        })
    }
}
