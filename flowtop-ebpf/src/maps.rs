//! The maps userspace reads. Sizes here are defaults; the loader resizes them.
use aya_ebpf::{
    macros::map,
    maps::{CgroupArray, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use flowtop_common::{
    exit_stat, FlowKey, ProcCounters, Unrecorded, DEFAULT_MAX_ENTRIES, EXITS_RING_BYTES,
    IN_FLIGHT_MAX, MAX_FILTER_CGROUPS, MAX_FILTER_PIDS, UDP_PEERS_MAX,
};

/// Cumulative bytes per thread-group id. Per-CPU, so the hot path needs no atomics,
/// and never reset by userspace (it diffs reads), so no increment is ever lost.
#[map(name = "PROC_BYTES")]
pub static PROC_BYTES: PerCpuHashMap<u32, ProcCounters> =
    PerCpuHashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);

/// Cumulative bytes per flow (`--by conn`/`--by cgroup`), same rules as `PROC_BYTES`.
/// Only written when `KernelConfig::flow_mode` is set; the loader shrinks it otherwise.
#[map(name = "FLOW_BYTES")]
pub static FLOW_BYTES: PerCpuHashMap<FlowKey, ProcCounters> =
    PerCpuHashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);

/// Bytes that could not be stored because a map was full: slot 0 `PROC_BYTES`,
/// slot 1 `FLOW_BYTES`.
#[map(name = "UNRECORDED")]
pub static UNRECORDED: PerCpuArray<Unrecorded> = PerCpuArray::with_max_entries(2, 0);

/// `-p PID,PID,...`: the thread-group ids to count (value unused).
#[map(name = "FILTER_PIDS")]
pub static FILTER_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_FILTER_PIDS, 0);

/// `--cgroup PATH`, `--container`, `--pod`: the cgroups (v2) to count, with
/// everything below them; slot 0 for `--cgroup`, one slot per match otherwise.
#[map(name = "FILTER_CGROUP")]
pub static FILTER_CGROUP: CgroupArray = CgroupArray::with_max_entries(MAX_FILTER_CGROUPS, 0);

/// A socket call in progress, stashed by the kprobe family's entry program for its
/// return program (a kretprobe sees no arguments).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct InFlight {
    /// The `struct sock *`, for addresses and ports when flows are kept.
    pub sk: u64,
    pub family: u16,
    pub protocol: u16,
    pub flags: i32,
}

/// Thread (pid_tgid) -> its socket call in progress (kprobe family only).
#[map(name = "IN_FLIGHT")]
pub static IN_FLIGHT: HashMap<u64, InFlight> = HashMap::with_max_entries(IN_FLIGHT_MAX, 0);

/// Keys inserted, by the same slots as `UNRECORDED` (0: `PROC_BYTES`, 1:
/// `FLOW_BYTES`); occupancy = inserts - userspace deletes.
#[map(name = "PROC_INSERTS")]
pub static PROC_INSERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// The address of one datagram's peer, noted by `udp_peer`'s cgroup programs.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct UdpPeer {
    /// `AF_INET` (address in the first 4 bytes) or `AF_INET6`.
    pub family: u16,
    /// `Direction as u16`: the send or receive it was noted for.
    pub dir: u16,
    /// Peer port, host order.
    pub port: u16,
    /// The socket's local port, host order: ties the note to one socket.
    pub lport: u16,
    /// Peer address, network order.
    pub addr: [u8; 16],
}

/// Thread (pid_tgid) -> the peer of its datagram in flight (`--by conn` only). LRU:
/// a note nobody took (an event the filters dropped) is evicted, never piles up.
#[map(name = "UDP_PEERS")]
pub static UDP_PEERS: LruHashMap<u64, UdpPeer> = LruHashMap::with_max_entries(UDP_PEERS_MAX, 0);

/// Final counters of exited processes (`flowtop_common::ExitRecord`), written by
/// `exit.rs` as it deletes their keys; userspace drains it at its own pace.
#[map(name = "EXITS")]
pub static EXITS: RingBuf = RingBuf::with_byte_size(EXITS_RING_BYTES, 0);

/// What the exit program did, by `exit_stat` slot (reclaimed, no room in `EXITS`).
#[map(name = "EXIT_STATS")]
pub static EXIT_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(exit_stat::SLOTS, 0);
