//! The one accounting function every probe family calls.
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    maps::PerCpuHashMap,
};
use flowtop_common::{
    flow_mode,
    net::{
        is_counted, AF_INET, IPPROTO_MPTCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, MSG_PEEK,
    },
    proto_filter, FlowKey, ProcCounters, COMM_LEN, MAX_FILTER_CGROUPS, UNRECORDED_FLOW,
    UNRECORDED_PROC,
};

use crate::{
    config::config,
    direction::Direction,
    kernel::{process_comm, sock_endpoints},
    maps::UdpPeer,
    maps::{FILTER_CGROUP, FILTER_PIDS, FLOW_BYTES, PROC_BYTES, PROC_INSERTS, UNRECORDED},
    udp_peer,
};

/// Adds `ret` bytes moved by the current process on socket `sk` of `family`/`protocol`.
///
/// `ret` is the value the send/receive returned: bytes actually moved, or a negative
/// errno. `flags` are the caller's `MSG_*` flags: a `MSG_PEEK` read moves nothing.
/// `sk` (`struct sock *`) is only read for addresses and ports; null if unknown.
#[inline(always)]
pub fn account(sk: *const u8, family: u16, protocol: u16, ret: i64, flags: i32, dir: Direction) {
    if ret <= 0 || flags & MSG_PEEK != 0 || !is_counted(family, protocol) {
        return;
    }
    let bytes = ret as u64;
    match config!(filter_proto) {
        proto_filter::TCP if protocol != IPPROTO_TCP && protocol != IPPROTO_MPTCP => return,
        proto_filter::UDP if protocol != IPPROTO_UDP && protocol != IPPROTO_UDPLITE => return,
        _ => {}
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let filter = config!(filter_tgid);
    if filter != 0 && filter != tgid {
        return;
    }
    if config!(filter_pid_map) != 0 && unsafe { FILTER_PIDS.get(&tgid) }.is_none() {
        return;
    }
    let want = config!(filter_comm);
    if want[0] != 0 && !same_comm(&want, &process_comm(pid_tgid)) {
        return;
    }
    let slots = config!(filter_cgroup_on);
    if slots != 0 && !under_filter_cgroup(slots) {
        return;
    }
    let mode = config!(flow_mode);
    if config!(read_addrs) == 0 && mode == 0 {
        // `--by pid`/`--by comm` without address filters: the process counter only,
        // so these modes pay nothing for flows (the verifier drops the rest).
        let want_family = config!(filter_family);
        if want_family == 0 || want_family == family {
            add_bytes(&PROC_BYTES, &tgid, bytes, dir, pid_tgid, UNRECORDED_PROC);
        }
        return;
    }
    account_flow(sk, pid_tgid, family, protocol, bytes, dir, mode);
}

/// The rest of [`account`] when addresses are read or a flow map is kept.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn account_flow(
    sk: *const u8,
    pid_tgid: u64,
    family: u16,
    protocol: u16,
    bytes: u64,
    dir: Direction,
    mode: u32,
) {
    let tgid = (pid_tgid >> 32) as u32;
    let mut key = FlowKey {
        tgid,
        family,
        protocol,
        ..FlowKey::default()
    };
    if config!(read_addrs) != 0 {
        // A failed read (a family that passed a null `sk`) leaves the addresses zero:
        // the bytes still count, under an unknown flow (and match no `--port`).
        let mut with_addrs = key;
        if sock_endpoints(sk, family, &mut with_addrs).is_some() {
            key = with_addrs;
        }
        // Unconnected UDP: the datagram's peer, for the remote end (`--by conn`), the
        // remote port (`--port`) and the family of a dual-stack socket (`-4`/`-6`).
        if protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE {
            if let Some(peer) = udp_peer::take(pid_tgid, dir, key.lport) {
                set_remote(&mut key, &peer);
            }
        }
        let port = config!(filter_port);
        if port != 0 && port != key.lport && port != key.rport {
            return;
        }
    }
    // Without `read_addrs` (no BTF) this is the socket's own family.
    let want_family = config!(filter_family);
    if want_family != 0 && want_family != key.family {
        return;
    }
    add_bytes(&PROC_BYTES, &tgid, bytes, dir, pid_tgid, UNRECORDED_PROC);
    if mode == 0 {
        return;
    }
    if mode & flow_mode::CONN == 0 {
        key.family = 0;
        key.protocol = 0;
        key.lport = 0;
        key.rport = 0;
        key.laddr = [0; 16];
        key.raddr = [0; 16];
    }
    if mode & flow_mode::CGROUP != 0 {
        key.cgroup = unsafe { bpf_get_current_cgroup_id() };
    }
    add_bytes(&FLOW_BYTES, &key, bytes, dir, pid_tgid, UNRECORDED_FLOW);
}

/// The datagram's peer as the remote end. An IPv4 peer stays IPv4 however it is
/// handed over: as `AF_INET` (a dual-stack IPv6 socket's `sendto` to
/// `::ffff:a.b.c.d` runs the kernel's IPv4 path, so `sendmsg4`) or as
/// `::ffff:a.b.c.d` (`recvmsg6` on the same socket). On an IPv6 key whose local
/// address is `::` or mapped, the key becomes IPv4, as `sock_endpoints` stores
/// connected ones.
#[inline(always)]
fn set_remote(key: &mut FlowKey, peer: &UdpPeer) {
    const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    key.rport = peer.port;
    let peer_v4 = if peer.family == AF_INET {
        Some([peer.addr[0], peer.addr[1], peer.addr[2], peer.addr[3]])
    } else if peer.addr[..12] == MAPPED {
        Some([peer.addr[12], peer.addr[13], peer.addr[14], peer.addr[15]])
    } else {
        None
    };
    let Some(remote) = peer_v4 else {
        key.raddr = peer.addr;
        return;
    };
    if key.family != AF_INET {
        if key.laddr != [0; 16] && key.laddr[..12] != MAPPED {
            // An IPv6 local address cannot talk to an IPv4 peer: keep what was given.
            key.raddr = peer.addr;
            return;
        }
        let local = [key.laddr[12], key.laddr[13], key.laddr[14], key.laddr[15]];
        key.family = AF_INET;
        key.laddr = [0; 16];
        key.laddr[..4].copy_from_slice(&local);
    }
    key.raddr = [0; 16];
    key.raddr[..4].copy_from_slice(&remote);
}

/// Task names compared as two u64 (no memcmp in eBPF).
#[inline(always)]
fn same_comm(a: &[u8; COMM_LEN], b: &[u8; COMM_LEN]) -> bool {
    let words =
        |c: &[u8; COMM_LEN]| unsafe { core::mem::transmute::<[u8; COMM_LEN], [u64; 2]>(*c) };
    words(a) == words(b)
}

/// Adds to `map[key]` on this CPU, inserting it if new; what cannot be stored goes
/// to `UNRECORDED[slot]`.
///
/// The process name is only read when the key is created (and by `rename.rs` when
/// the process renames itself): reading it on every event cost ~75 ns of ~165 ns
/// (`cargo xtask bench --parts events`, multi-threaded iperf3).
#[inline(always)]
fn add_bytes<K>(
    map: &PerCpuHashMap<K, ProcCounters>,
    key: &K,
    bytes: u64,
    dir: Direction,
    pid_tgid: u64,
    slot: u32,
) {
    if add_to_existing(map, key, bytes, dir, pid_tgid) {
        return;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let mut fresh = ProcCounters {
        comm: process_comm(pid_tgid),
        comm_ns: now,
        born_ns: now,
        ..ProcCounters::default()
    };
    add(&mut fresh, bytes, dir);
    // A per-CPU insert from a program sets this CPU's slot and zeroes the others.
    // EEXIST means another CPU inserted the key first: add to it instead. Anything
    // else (E2BIG: map full) is counted as unrecorded, never dropped silently.
    if map.insert(key, &fresh, BPF_NOEXIST as u64).is_ok() {
        if let Some(inserts) = PROC_INSERTS.get_ptr_mut(slot) {
            unsafe { *inserts += 1 };
        }
        return;
    }
    if add_to_existing(map, key, bytes, dir, pid_tgid) {
        return;
    }
    if let Some(lost) = UNRECORDED.get_ptr_mut(slot) {
        let lost = unsafe { &mut *lost };
        match dir {
            Direction::Rx => lost.rx_bytes += bytes,
            Direction::Tx => lost.tx_bytes += bytes,
        }
    }
}

#[inline(always)]
fn add_to_existing<K>(
    map: &PerCpuHashMap<K, ProcCounters>,
    key: &K,
    bytes: u64,
    dir: Direction,
    pid_tgid: u64,
) -> bool {
    match map.get_ptr_mut(key) {
        Some(counters) => {
            // This CPU's slot: no other CPU writes it, and programs of one CPU do not
            // nest on these hooks, so a plain add is exact.
            let counters = unsafe { &mut *counters };
            add(counters, bytes, dir);
            if config!(comm_each_event) != 0 {
                counters.comm = process_comm(pid_tgid);
                counters.comm_ns = unsafe { bpf_ktime_get_ns() };
            }
            true
        }
        None => false,
    }
}

#[inline(always)]
fn add(counters: &mut ProcCounters, bytes: u64, dir: Direction) {
    match dir {
        Direction::Rx => counters.rx_bytes += bytes,
        Direction::Tx => counters.tx_bytes += bytes,
    }
}

/// Whether the current task is under one of the cgroups in `FILTER_CGROUP` slots
/// `0..slots` (a load-time constant: the verifier sees a bounded loop).
#[inline(always)]
fn under_filter_cgroup(slots: u32) -> bool {
    for i in 0..MAX_FILTER_CGROUPS {
        if i >= slots {
            break;
        }
        if FILTER_CGROUP.current_task_under_cgroup(i).unwrap_or(false) {
            return true;
        }
    }
    false
}
