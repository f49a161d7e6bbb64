//! The maps userspace reads. Sizes here are defaults; the loader resizes them.
use aya_ebpf::{
    macros::map,
    maps::{PerCpuArray, PerCpuHashMap},
};
use flowtop_common::{ProcCounters, Unrecorded, DEFAULT_MAX_ENTRIES};

/// Cumulative bytes per thread-group id. Per-CPU, so the hot path needs no atomics,
/// and never reset by userspace (it diffs reads), so no increment is ever lost.
#[map(name = "PROC_BYTES")]
pub static PROC_BYTES: PerCpuHashMap<u32, ProcCounters> =
    PerCpuHashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);

/// Slot 0: bytes that could not be stored because `PROC_BYTES` was full.
#[map(name = "UNRECORDED")]
pub static UNRECORDED: PerCpuArray<Unrecorded> = PerCpuArray::with_max_entries(1, 0);

/// Slot 0: keys inserted into `PROC_BYTES` (occupancy = inserts - userspace deletes).
#[map(name = "PROC_INSERTS")]
pub static PROC_INSERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
