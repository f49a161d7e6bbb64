//! Reads of kernel structures at offsets the loader took from the running kernel's
//! BTF. aya cannot emit CO-RE relocations from Rust, so offsets arrive in the
//! load-time configuration (`config.rs`) instead; a build on one kernel then runs on any other.
use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_task, bpf_probe_read_kernel,
    bpf_probe_read_kernel_str_bytes,
};
use flowtop_common::{
    net::{AF_INET, AF_INET6},
    FlowKey, COMM_LEN,
};

use crate::config::config;

#[inline(always)]
unsafe fn read_at<T>(base: *const u8, offset: u32) -> Option<T> {
    if base.is_null() {
        return None;
    }
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T).ok() }
}

/// `(sk->sk_family, sk->sk_protocol)` of a `struct sock *`.
#[inline(always)]
pub fn sock_family_protocol(sk: *const u8) -> Option<(u16, u16)> {
    unsafe {
        let family: u16 = read_at(sk, config!(offsets.sock_family))?;
        let protocol: u16 = read_at(sk, config!(offsets.sock_protocol))?;
        Some((family, protocol))
    }
}

/// `(sk->sk_family, sk->sk_protocol)` for `tp_btf` programs, whose `sk` argument the
/// verifier knows as a `struct sock` (BTF): plain loads replace two
/// `bpf_probe_read_kernel` calls. The offsets live in frozen `.rodata`, so the verifier
/// sees them as constants and checks each load against the struct's BTF layout; a
/// load that would fault reads 0 instead (the JIT's exception table), which is not a
/// counted family.
#[inline(always)]
pub fn sock_family_protocol_btf(sk: *const u8) -> Option<(u16, u16)> {
    if sk.is_null() {
        return None;
    }
    unsafe {
        let family =
            core::ptr::read_volatile(sk.add(config!(offsets.sock_family) as usize) as *const u16);
        let protocol =
            core::ptr::read_volatile(sk.add(config!(offsets.sock_protocol) as usize) as *const u16);
        Some((family, protocol))
    }
}

/// `socket->sk` of a `struct socket *`.
#[inline(always)]
pub fn socket_sk(sock: *const u8) -> *const u8 {
    unsafe { read_at::<*const u8>(sock, config!(offsets.socket_sk)).unwrap_or(core::ptr::null()) }
}

/// Name of the current process: the thread-group leader's `comm`, so that the bytes
/// of a thread named "worker-3" are shown under its process's name.
#[inline(always)]
pub fn process_comm(pid_tgid: u64) -> [u8; COMM_LEN] {
    let tid = pid_tgid as u32;
    let tgid = (pid_tgid >> 32) as u32;
    if tid != tgid {
        unsafe {
            let task = bpf_get_current_task() as *const u8;
            if let Some(leader) = read_at::<*const u8>(task, config!(offsets.task_group_leader)) {
                // A string read into a zeroed buffer, not a plain copy: on older
                // kernels (5.10's `__set_task_comm` uses `strlcpy`, later ones pad) a
                // renamed task keeps the tail of its old name after the NUL
                // ("ft-comm\0gen"), and names are compared as 16 bytes (seen on 5.10:
                // `-c` missed the bytes of a renamed process's threads).
                let mut comm = [0u8; COMM_LEN];
                if !leader.is_null()
                    && bpf_probe_read_kernel_str_bytes(
                        leader.add(config!(offsets.task_comm) as usize),
                        &mut comm,
                    )
                    .is_ok()
                {
                    return comm;
                }
            }
        }
    }
    bpf_get_current_comm().unwrap_or([0; COMM_LEN])
}

/// Fills `key`'s family, ports and addresses from `sk`'s `sock_common`: what the
/// socket is bound and connected to. An unconnected UDP socket has no remote here
/// (zero address and port): the datagram's peer is in the `msghdr`, which these hooks
/// do not see. A dual-stack IPv6 socket talking IPv4 is stored as IPv4.
///
/// The local port comes from `inet_sport`, not `skc_num`: when a TCP socket reaches
/// CLOSE (the peer's FIN arrives after ours: TIME_WAIT) the kernel releases the port
/// and zeroes `skc_num`, yet the process still reads the data queued before the FIN,
/// and those bytes belong to the same connection.
#[inline(always)]
pub fn sock_endpoints(sk: *const u8, family: u16, key: &mut FlowKey) -> Option<()> {
    unsafe {
        key.lport = u16::from_be(read_at::<u16>(sk, config!(offsets.inet_sport))?);
        if key.lport == 0 {
            key.lport = read_at::<u16>(sk, config!(offsets.skc_num))?;
        }
        key.rport = u16::from_be(read_at::<u16>(sk, config!(offsets.skc_dport))?);
        if family == AF_INET {
            key.family = AF_INET;
            key.laddr[..4]
                .copy_from_slice(&read_at::<[u8; 4]>(sk, config!(offsets.skc_rcv_saddr))?);
            key.raddr[..4].copy_from_slice(&read_at::<[u8; 4]>(sk, config!(offsets.skc_daddr))?);
            return Some(());
        }
        let local: [u32; 4] = read_at(sk, config!(offsets.skc_v6_rcv_saddr))?;
        let remote: [u32; 4] = read_at(sk, config!(offsets.skc_v6_daddr))?;
        let is_zero = |a: &[u32; 4]| a[0] | a[1] | a[2] | a[3] == 0;
        let mapped = |a: &[u32; 4]| a[0] == 0 && a[1] == 0 && a[2] == V4_MAPPED_WORD;
        let v4 = (mapped(&remote) && (mapped(&local) || is_zero(&local)))
            || (is_zero(&remote) && mapped(&local));
        if v4 {
            key.family = AF_INET;
            key.laddr[..4].copy_from_slice(&local[3].to_ne_bytes());
            key.raddr[..4].copy_from_slice(&remote[3].to_ne_bytes());
        } else {
            key.family = AF_INET6;
            key.laddr = core::mem::transmute::<[u32; 4], [u8; 16]>(local);
            key.raddr = core::mem::transmute::<[u32; 4], [u8; 16]>(remote);
        }
        Some(())
    }
}

/// The third 32-bit word of `::ffff:a.b.c.d` as it lies in memory.
const V4_MAPPED_WORD: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);
