//! The final counters of processes whose key the kernel reclaimed at exit
//! (`flowtop-ebpf/src/exit.rs`), read from its ring buffer at flowtop's own pace.
//!
//! Each record is the absolute final value of one life of a key, so the differ takes
//! the difference from what it last saw of that life: a map read that saw part of it
//! before the exit is never counted twice. Records are drained after the map is read
//! (see [`super::pipeline::Pipeline::read`]), and lives are told apart by
//! [`Sample::born`], so a reused PID's new key read first is never mistaken for the
//! old one.
use anyhow::{Context as _, Result};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use flowtop_common::{exit_stat, ExitRecord};

use super::counters::{sum_cpus, Sample};

/// The exit program's ring and counters.
pub struct ExitRecords {
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    /// Exits with no room in the ring, already reported.
    no_room_seen: u64,
}

impl ExitRecords {
    pub fn new(ring: RingBuf<MapData>, stats: PerCpuArray<MapData, u64>) -> Self {
        Self {
            ring,
            stats,
            no_room_seen: 0,
        }
    }

    /// Appends every record in the ring to `out`, as final (reclaimed) samples.
    pub fn drain(&mut self, out: &mut Vec<Sample<u32>>) {
        while let Some(item) = self.ring.next() {
            if item.len() < std::mem::size_of::<ExitRecord>() {
                log::warn!("exit record of {} bytes ignored", item.len());
                continue;
            }
            // SAFETY: the ring holds `ExitRecord`s (Pod) written by the exit program;
            // the length was checked, and the read does not assume alignment.
            let rec: ExitRecord = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            out.push(sum_cpus(
                rec.tgid,
                std::slice::from_ref(&rec.counters),
                true,
            ));
        }
    }

    /// Keys the exit program deleted so far.
    pub fn reclaimed(&self) -> Result<u64> {
        self.stat(exit_stat::RECLAIMED)
    }

    /// Exits since the last call whose record had no room in the ring: their keys
    /// stay in the map until flowtop reclaims them (nothing is lost, but the map
    /// holds dead processes meanwhile).
    pub fn no_room_since_last(&mut self) -> Result<u64> {
        let total = self.stat(exit_stat::NO_ROOM)?;
        let new = total.saturating_sub(self.no_room_seen);
        self.no_room_seen = total;
        Ok(new)
    }

    fn stat(&self, slot: u32) -> Result<u64> {
        Ok(self
            .stats
            .get(&slot, 0)
            .context("reading the exit program's counters")?
            .iter()
            .sum())
    }
}
