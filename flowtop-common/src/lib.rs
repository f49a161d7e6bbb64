//! Types and names shared by the eBPF programs and the userspace loader.
//!
//! Everything here is `#[repr(C)]` with explicit padding so that both sides agree
//! on the byte layout of map keys and values, and so that `aya::Pod` (which reads
//! the bytes as-is) never sees uninitialised padding.
#![no_std]

/// Length of a kernel task name (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Per-CPU hash: process (thread-group id) -> [`ProcCounters`].
pub const MAP_PROC_BYTES: &str = "PROC_BYTES";
/// Per-CPU array with one [`Unrecorded`] slot: bytes seen but not stored (map full).
pub const MAP_UNRECORDED: &str = "UNRECORDED";
/// Per-CPU array with one `u64` slot: keys ever inserted into [`MAP_PROC_BYTES`].
/// With the number of keys userspace deleted, it gives the map's occupancy without
/// walking it, so flowtop knows when to reclaim early.
pub const MAP_PROC_INSERTS: &str = "PROC_INSERTS";
/// Ring buffer of [`ExitRecord`]s: the final counters of processes whose key the
/// exit program reclaimed, for userspace to read at its own pace.
pub const MAP_EXITS: &str = "EXITS";
/// Bytes of [`MAP_EXITS`]: 16384 records of 64 bytes (header included), the exits
/// it holds while flowtop waits for a CPU (unpaced forks on 2 cores: ~5,000/s, so
/// ~3 s; past that, keys wait in the map for flowtop's own reclaim). flowtop maps
/// the ring, so it adds about its size to flowtop's RSS (2 MiB added 3.7 MB).
/// A power-of-2 multiple of the page size, as the kernel requires.
pub const EXITS_RING_BYTES: u32 = 1 << 20;
/// Per-CPU array of `u64`, slots [`exit_stat`]: what the exit program did.
pub const MAP_EXIT_STATS: &str = "EXIT_STATS";
/// Largest number of possible CPUs the exit program sums over (its loop bound):
/// beyond it the program is not loaded and flowtop reclaims keys itself. The
/// verifier walks every iteration (~14 instructions, 2 jumps each): 4096 failed on
/// 6.18 ("the sequence of 8193 jumps is too complex") after 355 ms; 1024 passes.
pub const MAX_EXIT_CPUS: u32 = 1024;

/// Slots of [`MAP_EXIT_STATS`].
pub mod exit_stat {
    /// Keys the exit program deleted, each with its [`super::ExitRecord`] submitted.
    pub const RECLAIMED: u32 = 0;
    /// Exits whose record found no room in the ring: the key was left in the map
    /// for flowtop's own reclaim, so no byte is lost (only the map holds it longer).
    pub const NO_ROOM: u32 = 1;
    pub const SLOTS: u32 = 2;
}
/// Default capacity of [`MAP_PROC_BYTES`] (processes alive at once that moved bytes).
pub const DEFAULT_MAX_ENTRIES: u32 = 16384;
/// Hash: thread -> socket call in progress, for the kprobe family's return probes.
pub const MAP_IN_FLIGHT: &str = "IN_FLIGHT";
/// Capacity of [`MAP_IN_FLIGHT`]: threads inside a send/receive at the same moment.
pub const IN_FLIGHT_MAX: u32 = 65536;
/// Threads whose datagram peer can be in flight at once (`--by conn`, kernel side).
pub const UDP_PEERS_MAX: u32 = 4096;
/// Per-CPU hash: [`FlowKey`] -> [`ProcCounters`], written only when
/// [`KernelConfig::flow_mode`] != 0
/// (`--by conn`, `--by cgroup`), so `--by pid` pays nothing for it.
pub const MAP_FLOW_BYTES: &str = "FLOW_BYTES";
/// Hash: thread-group ids to count when `-p` names more than one process.
pub const MAP_FILTER_PIDS: &str = "FILTER_PIDS";
/// Cgroup array with one slot: the `--cgroup` directory.
pub const MAP_FILTER_CGROUP: &str = "FILTER_CGROUP";
/// Capacity of [`MAP_FILTER_PIDS`].
pub const MAX_FILTER_PIDS: u32 = 1024;
/// Slots of `FILTER_CGROUP`: `--cgroup` uses one, `--container`/`--pod` one per
/// matching container or pod (replicas).
pub const MAX_FILTER_CGROUPS: u32 = 8;
/// Slots of [`MAP_UNRECORDED`]: bytes lost because this map was full.
pub const UNRECORDED_PROC: u32 = 0;
pub const UNRECORDED_FLOW: u32 = 1;

/// Bits of [`KernelConfig::flow_mode`]: what goes into a [`FlowKey`].
pub mod flow_mode {
    /// Addresses, ports, family and protocol (`--by conn`).
    pub const CONN: u32 = 1;
    /// The cgroup v2 id of the task that moved the bytes (`--by cgroup`).
    pub const CGROUP: u32 = 2;
}

/// Values of [`KernelConfig::filter_proto`] (`--tcp`/`--udp`).
pub mod proto_filter {
    pub const ANY: u32 = 0;
    /// TCP and MPTCP.
    pub const TCP: u32 = 1;
    /// UDP and UDP-Lite.
    pub const UDP: u32 = 2;
}

/// Name of the one global the loader overrides (`aya::EbpfLoader::override_global`):
/// a [`KernelConfig`] in the object's frozen `.rodata`.
pub const CONFIG_GLOBAL: &str = "CONFIG";

/// Everything the programs are told at load time, in one place: filters, modes and
/// kernel struct offsets. It lives in frozen `.rodata`, so the verifier sees every
/// field as a constant and prunes the branches of unset filters (an unused filter
/// costs nothing), and the offsets count as constants for `tp_btf` loads.
///
/// All-zero is "count everything, process counters only, no offsets". The fields are
/// ordered so that none needs padding (checked below at compile time): `aya::Pod`
/// copies the bytes as they are, and uninitialised padding must never reach it. A
/// field that breaks that order gets an explicit `_pad` field, as [`FlowKey`] has.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// Only count this thread-group id; 0 counts every process.
    pub filter_tgid: u32,
    /// 1 = only count thread-group ids present in [`MAP_FILTER_PIDS`].
    pub filter_pid_map: u32,
    /// N > 0 = only count tasks under one of the cgroups in [`MAP_FILTER_CGROUP`]
    /// slots 0..N (empty slots match nothing).
    pub filter_cgroup_on: u32,
    /// A [`proto_filter`] value.
    pub filter_proto: u32,
    /// Only this (effective, see [`FlowKey::family`]) address family; 0 = any.
    pub filter_family: u16,
    /// Only sockets with this local or remote port; 0 = any.
    pub filter_port: u16,
    /// Only count processes with this name (NUL-padded); all NUL = any.
    pub filter_comm: [u8; COMM_LEN],
    /// [`flow_mode`] bits; 0 leaves [`MAP_FLOW_BYTES`] alone.
    pub flow_mode: u32,
    /// 1 = read addresses and ports from `struct sock` (needs [`Self::offsets`]).
    pub read_addrs: u32,
    /// 1 = write the process name on every event (when no rename hook could be
    /// attached); 0 = only at key creation and on `task:task_rename`.
    pub comm_each_event: u32,
    /// Possible CPUs (numbered 0..N): how many per-CPU values the exit program sums.
    pub possible_cpus: u32,
    pub offsets: KernelOffsets,
}

/// Byte offsets of the kernel struct fields the programs read, taken from the
/// running kernel's BTF: aya cannot emit CO-RE relocations from Rust, so this is how
/// one build reads `struct sock` and `task_struct` correctly on every kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub sock_family: u32,
    pub sock_protocol: u32,
    pub socket_sk: u32,
    pub task_group_leader: u32,
    pub task_comm: u32,
    /// `struct sock_common` addresses and ports, as offsets inside `struct sock`
    /// (`--by conn`, `--port`, `-4`/`-6` on dual-stack sockets).
    pub skc_daddr: u32,
    pub skc_rcv_saddr: u32,
    /// `__be16`.
    pub skc_dport: u32,
    /// `__u16`, host order: the local port while the socket is bound (zeroed when a
    /// TCP socket reaches CLOSE, e.g. on entering TIME_WAIT with unread data).
    pub skc_num: u32,
    /// `struct inet_sock`'s `__be16 inet_sport`: the local port, kept after CLOSE.
    pub inet_sport: u32,
    pub skc_v6_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
    /// `task_struct`'s `struct signal_struct *signal` and `signal_struct`'s
    /// `atomic_t live` (threads of the group not yet past `do_exit`'s decrement):
    /// the exit program reclaims a key when it reaches 0.
    pub task_signal: u32,
    pub signal_live: u32,
}

impl KernelConfig {
    /// All zero: every filter off, no flow map, no offsets (what the object carries
    /// until the loader overrides it).
    // SAFETY: integers and byte arrays only, for which all-zero is a valid value.
    pub const UNSET: Self = unsafe { core::mem::zeroed() };
}

// No implicit padding: each struct is exactly the sum of its fields, so the bytes
// `aya::Pod` hands to the loader are all initialised.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<KernelOffsets>() == 14 * 4);
    assert!(size_of::<KernelConfig>() == 4 * 4 + 2 * 2 + COMM_LEN + 4 * 4 + 14 * 4);
};

/// Program names in the eBPF object, by probe family.
pub mod programs {
    /// BTF-enabled tracepoints on `sock:sock_{send,recv}_length` (kernel 6.3+, needs BTF).
    pub const TP_BTF_SEND: &str = "tp_btf_sock_send_length";
    pub const TP_BTF_RECV: &str = "tp_btf_sock_recv_length";
    /// The same hooks as raw tracepoints (no tracefs, no BTF for the program itself).
    pub const RAW_TP_SEND: &str = "raw_tp_sock_send_length";
    pub const RAW_TP_RECV: &str = "raw_tp_sock_recv_length";
    /// The same hooks as classic tracepoints (needs tracefs; the record carries family
    /// and protocol, so this works without BTF).
    pub const TP_SEND: &str = "tp_sock_send_length";
    pub const TP_RECV: &str = "tp_sock_recv_length";

    /// fentry family: one fexit program per kernel function (a trampoline program is
    /// loaded for one target), as `(program, function)`.
    pub const FEXIT: [(&str, &str); 4] = [
        ("fexit_inet_sendmsg", "inet_sendmsg"),
        ("fexit_inet6_sendmsg", "inet6_sendmsg"),
        ("fexit_inet_recvmsg", "inet_recvmsg"),
        ("fexit_inet6_recvmsg", "inet6_recvmsg"),
    ];
    /// fentry family, attached only where the kernel has the function (before 6.5).
    pub const FEXIT_OPTIONAL: [(&str, &str); 1] = [("fexit_inet_sendpage", "inet_sendpage")];

    /// Every family: `task:task_rename` (exec and `prctl(PR_SET_NAME)`) as a raw
    /// tracepoint, so the name follows the process without a read per event.
    pub const RAW_TP_TASK_RENAME: &str = "raw_tp_task_rename";
    /// The tracepoint it attaches to.
    pub const TASK_RENAME: &str = "task_rename";

    /// Every family where the kernel can (5.19+, BTF): `sched:sched_process_exit` as
    /// a raw tracepoint, which reclaims an exited process's key in the kernel.
    pub const RAW_TP_PROCESS_EXIT: &str = "raw_tp_sched_process_exit";
    /// The tracepoint it attaches to.
    pub const PROCESS_EXIT: &str = "sched_process_exit";

    /// `--by conn`, every family: cgroup sock_addr programs that note the peer of each
    /// datagram of an unconnected UDP socket (`sendto`/`recvfrom` addresses).
    pub const UDP_PEER: [&str; 4] = [
        "udp_sendmsg4",
        "udp_sendmsg6",
        "udp_recvmsg4",
        "udp_recvmsg6",
    ];

    /// kprobe family: entry and return programs, each attached to several functions.
    pub const KPROBE_SEND: &str = "kprobe_send";
    pub const KRETPROBE_SEND: &str = "kretprobe_send";
    pub const KPROBE_RECV: &str = "kprobe_recv";
    pub const KRETPROBE_RECV: &str = "kretprobe_recv";
}

/// Kernel functions the fentry and kprobe families hook. The socket operations of
/// IPv4/IPv6 sockets: never inlined (called through `struct proto_ops`), one place
/// for TCP and UDP over both, and above the protocol functions, so nothing is counted
/// twice.
pub mod hooks {
    /// Every kernel flowtop supports has these.
    pub const SEND: [&str; 2] = ["inet_sendmsg", "inet6_sendmsg"];
    pub const RECV: [&str; 2] = ["inet_recvmsg", "inet6_recvmsg"];
    /// sendfile/splice to an inet socket before Linux 6.5 (`kernel_sendpage` ->
    /// `inet_sendpage`); from 6.5 on the same bytes go through `inet_sendmsg`.
    pub const SEND_OPTIONAL: [&str; 1] = ["inet_sendpage"];
}

/// Address families and protocols that flowtop counts.
pub mod net {
    pub const AF_INET: u16 = 2;
    pub const AF_INET6: u16 = 10;
    pub const IPPROTO_TCP: u16 = 6;
    pub const IPPROTO_UDP: u16 = 17;
    pub const IPPROTO_UDPLITE: u16 = 136;
    /// MPTCP sockets are TCP to the user; their subflows never pass `sock_sendmsg`.
    pub const IPPROTO_MPTCP: u16 = 262;
    /// `recv(..., MSG_PEEK)` copies without consuming: not a byte moved.
    pub const MSG_PEEK: i32 = 2;

    /// True for the families and protocols flowtop counts: TCP and UDP over IPv4/IPv6.
    #[inline(always)]
    pub fn is_counted(family: u16, protocol: u16) -> bool {
        (family == AF_INET || family == AF_INET6)
            && (protocol == IPPROTO_TCP
                || protocol == IPPROTO_UDP
                || protocol == IPPROTO_UDPLITE
                || protocol == IPPROTO_MPTCP)
    }
}

/// Cumulative bytes of one process on one CPU, never reset while the process lives:
/// userspace diffs successive reads, so nothing is lost between intervals.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// When `comm` was written on this CPU (`bpf_ktime_get_ns`, 0: never): the name
    /// is only taken when the key is created and when the process renames itself
    /// (exec, `prctl(PR_SET_NAME)`), each time on one CPU, so the newest CPU's wins.
    pub comm_ns: u64,
    /// When the key was created (`bpf_ktime_get_ns`), on the CPU that created it (0
    /// on the others): which life of a reused key (PID) a value belongs to, so a
    /// final value and a new life's first value are never mixed up.
    pub born_ns: u64,
    /// Name of the thread-group leader (NUL-padded).
    pub comm: [u8; COMM_LEN],
}

/// One exited process's final counters, written by the exit program to
/// [`MAP_EXITS`] when it deletes the process's key: `counters` is the sum over
/// CPUs (the newest CPU's name, the creating CPU's `born_ns`), the absolute final
/// value of that key, so a reader that already saw part of it takes the difference.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    pub tgid: u32,
    pub _pad: u32,
    pub counters: ProcCounters,
}

/// One flow of one process: the key of [`MAP_FLOW_BYTES`]. Fields not asked for by
/// [`KernelConfig::flow_mode`] stay zero, so e.g. `--by cgroup` has one key per (process, cgroup).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub tgid: u32,
    /// Effective family: an `AF_INET6` socket talking to an IPv4-mapped address
    /// (`::ffff:a.b.c.d`) is stored as `AF_INET` with the IPv4 addresses.
    pub family: u16,
    pub protocol: u16,
    /// Host byte order. 0 if unbound.
    pub lport: u16,
    /// Host byte order. 0 if not connected (unconnected UDP).
    pub rport: u16,
    pub _pad: u32,
    /// cgroup v2 id (inode of the cgroup's directory), with `flow_mode::CGROUP`.
    pub cgroup: u64,
    /// Network byte order; IPv4 in the first 4 bytes. All zero if unbound.
    pub laddr: [u8; 16],
    /// Network byte order; IPv4 in the first 4 bytes. All zero if not connected.
    pub raddr: [u8; 16],
}

/// Bytes the programs saw but could not store because the map was full.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unrecorded {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain-old-data, `#[repr(C)]`, no padding (4 x u64, [u8; 16]).
    unsafe impl aya::Pod for super::ProcCounters {}
    // SAFETY: plain-old-data, `#[repr(C)]`, two u64.
    unsafe impl aya::Pod for super::Unrecorded {}
    // SAFETY: `#[repr(C)]`, padding written out (`_pad`), then `ProcCounters`.
    unsafe impl aya::Pod for super::ExitRecord {}
    // SAFETY: `#[repr(C)]`, padding written out (`_pad`), 56 bytes.
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: `#[repr(C)]`, u32/u16/u8 fields with no implicit padding (checked by
    // the `const` assertion next to the type).
    unsafe impl aya::Pod for super::KernelConfig {}
    // SAFETY: `#[repr(C)]`, fourteen u32.
    unsafe impl aya::Pod for super::KernelOffsets {}

    // The SAFETY claims above, checked by the compiler rather than by a test: a field
    // added without its padding written out stops the build here. (Both sides of the
    // map are compiled from these definitions, so no test can catch a mismatch.)
    use super::{ExitRecord, FlowKey, ProcCounters, Unrecorded, COMM_LEN};
    use core::mem::size_of;
    const _: () = assert!(size_of::<ProcCounters>() == 8 + 8 + 8 + 8 + COMM_LEN);
    const _: () = assert!(size_of::<ExitRecord>() == 4 + 4 + size_of::<ProcCounters>());
    const _: () = assert!(size_of::<Unrecorded>() == 8 + 8);
    const _: () = assert!(size_of::<FlowKey>() == 4 + 2 + 2 + 2 + 2 + 4 + 8 + 16 + 16);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_tcp_and_udp_over_ip() {
        use net::*;
        assert!(is_counted(AF_INET, IPPROTO_TCP));
        assert!(is_counted(AF_INET6, IPPROTO_UDP));
        assert!(is_counted(AF_INET6, IPPROTO_MPTCP));
        assert!(!is_counted(1, 0)); // AF_UNIX
        assert!(!is_counted(16, 0)); // AF_NETLINK
        assert!(!is_counted(AF_INET, 1)); // ICMP
        assert!(!is_counted(AF_INET, 255)); // raw
    }
}
