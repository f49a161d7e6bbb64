//! The maps userspace reads. Sizes here are defaults; the loader resizes them.
use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, PerCpuHashMap},
};
use flowtop_common::{ProcCounters, Unrecorded, DEFAULT_MAX_ENTRIES, IN_FLIGHT_MAX};

/// Cumulative bytes per thread-group id. Per-CPU, so the hot path needs no atomics,
/// and never reset by userspace (it diffs reads), so no increment is ever lost.
#[map(name = "PROC_BYTES")]
pub static PROC_BYTES: PerCpuHashMap<u32, ProcCounters> =
    PerCpuHashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);

/// Slot 0: bytes that could not be stored because `PROC_BYTES` was full.
#[map(name = "UNRECORDED")]
pub static UNRECORDED: PerCpuArray<Unrecorded> = PerCpuArray::with_max_entries(1, 0);

/// A socket call in progress, stashed by the kprobe family's entry program for its
/// return program (a kretprobe sees no arguments).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct InFlight {
    pub family: u16,
    pub protocol: u16,
    pub flags: i32,
}

/// Thread (pid_tgid) -> its socket call in progress (kprobe family only).
#[map(name = "IN_FLIGHT")]
pub static IN_FLIGHT: HashMap<u64, InFlight> = HashMap::with_max_entries(IN_FLIGHT_MAX, 0);
/// Slot 0: keys inserted into `PROC_BYTES` (occupancy = inserts - userspace deletes).
#[map(name = "PROC_INSERTS")]
pub static PROC_INSERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
