//! The peer of each datagram on an unconnected UDP socket (`--by conn`).
//!
//! The socket-length hooks see only the socket, whose remote is empty when the
//! program gives an address per datagram (`sendto`/`recvfrom`). The kernel runs
//! cgroup `sendmsg4/6` programs on every send that carries an address and
//! `recvmsg4/6` programs on every receive that asks for one, both in the calling
//! thread just before the socket-length hook fires; these programs note the
//! address per thread, and `account` takes it for that thread's next UDP event of
//! the same direction on the same local port. They always return 1: they observe,
//! never refuse or rewrite.
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::cgroup_sock_addr, programs::SockAddrContext,
};
use flowtop_common::net::{AF_INET, AF_INET6};

use crate::{
    direction::Direction,
    maps::{UdpPeer, UDP_PEERS},
};

/// Notes `ctx`'s user address (in network order, as the kernel hands it) for this
/// thread.
#[inline(always)]
fn note(ctx: &SockAddrContext, family: u16, dir: Direction) -> i32 {
    unsafe {
        let sa = &*ctx.sock_addr;
        let mut peer = UdpPeer {
            family,
            dir: dir as u16,
            port: u16::from_be(core::ptr::read_volatile(&sa.user_port) as u16),
            lport: (*sa.__bindgen_anon_1.sk).src_port as u16,
            addr: [0; 16],
        };
        if family == AF_INET {
            peer.addr[..4].copy_from_slice(&core::ptr::read_volatile(&sa.user_ip4).to_ne_bytes());
        } else {
            // One 4-byte load per word at a fixed context offset: the verifier only
            // allows plain loads of these fields, not a memcpy from the context.
            let ip6 = &sa.user_ip6;
            let words = [
                core::ptr::read_volatile(&ip6[0]),
                core::ptr::read_volatile(&ip6[1]),
                core::ptr::read_volatile(&ip6[2]),
                core::ptr::read_volatile(&ip6[3]),
            ];
            peer.addr = core::mem::transmute::<[u32; 4], [u8; 16]>(words);
        }
        let _ = UDP_PEERS.insert(&bpf_get_current_pid_tgid(), &peer, 0);
    }
    1
}

#[cgroup_sock_addr(sendmsg4)]
pub fn udp_sendmsg4(ctx: SockAddrContext) -> i32 {
    note(&ctx, AF_INET, Direction::Tx)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn udp_sendmsg6(ctx: SockAddrContext) -> i32 {
    note(&ctx, AF_INET6, Direction::Tx)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn udp_recvmsg4(ctx: SockAddrContext) -> i32 {
    note(&ctx, AF_INET, Direction::Rx)
}

#[cgroup_sock_addr(recvmsg6)]
pub fn udp_recvmsg6(ctx: SockAddrContext) -> i32 {
    note(&ctx, AF_INET6, Direction::Rx)
}

/// This thread's noted peer for an event of `dir` on local port `lport`, removed so
/// it names one datagram only.
#[inline(always)]
pub fn take(pid_tgid: u64, dir: Direction, lport: u16) -> Option<UdpPeer> {
    let peer = *unsafe { UDP_PEERS.get(&pid_tgid) }?;
    if peer.dir != dir as u16 || peer.lport != lport {
        return None;
    }
    let _ = UDP_PEERS.remove(&pid_tgid);
    Some(peer)
}
