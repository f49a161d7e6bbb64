//! Reads of kernel structures at offsets the loader took from the running kernel's
//! BTF. aya cannot emit CO-RE relocations from Rust, so offsets arrive as globals
//! instead; a build on one kernel then runs on any other.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_task, bpf_probe_read_kernel},
    Global,
};
use flowtop_common::{
    net::{AF_INET, AF_INET6},
    FlowKey, COMM_LEN,
};

#[unsafe(no_mangle)]
static OFF_SOCK_FAMILY: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SOCK_PROTOCOL: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SOCKET_SK: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_TASK_GROUP_LEADER: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_TASK_COMM: Global<u32> = Global::new(0);

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
        let family: u16 = read_at(sk, OFF_SOCK_FAMILY.load())?;
        let protocol: u16 = read_at(sk, OFF_SOCK_PROTOCOL.load())?;
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
            core::ptr::read_volatile(sk.add(OFF_SOCK_FAMILY.load() as usize) as *const u16);
        let protocol =
            core::ptr::read_volatile(sk.add(OFF_SOCK_PROTOCOL.load() as usize) as *const u16);
        Some((family, protocol))
    }
}

/// `socket->sk` of a `struct socket *`.
#[inline(always)]
pub fn socket_sk(sock: *const u8) -> *const u8 {
    unsafe { read_at::<*const u8>(sock, OFF_SOCKET_SK.load()).unwrap_or(core::ptr::null()) }
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
            if let Some(leader) = read_at::<*const u8>(task, OFF_TASK_GROUP_LEADER.load()) {
                if let Some(comm) = read_at::<[u8; COMM_LEN]>(leader, OFF_TASK_COMM.load()) {
                    return comm;
                }
            }
        }
    }
    bpf_get_current_comm().unwrap_or([0; COMM_LEN])
}

#[unsafe(no_mangle)]
static OFF_SKC_DADDR: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SKC_RCV_SADDR: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SKC_DPORT: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SKC_NUM: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_INET_SPORT: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SKC_V6_DADDR: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static OFF_SKC_V6_RCV_SADDR: Global<u32> = Global::new(0);

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
        key.lport = u16::from_be(read_at::<u16>(sk, OFF_INET_SPORT.load())?);
        if key.lport == 0 {
            key.lport = read_at::<u16>(sk, OFF_SKC_NUM.load())?;
        }
        key.rport = u16::from_be(read_at::<u16>(sk, OFF_SKC_DPORT.load())?);
        if family == AF_INET {
            key.family = AF_INET;
            key.laddr[..4].copy_from_slice(&read_at::<[u8; 4]>(sk, OFF_SKC_RCV_SADDR.load())?);
            key.raddr[..4].copy_from_slice(&read_at::<[u8; 4]>(sk, OFF_SKC_DADDR.load())?);
            return Some(());
        }
        let local: [u32; 4] = read_at(sk, OFF_SKC_V6_RCV_SADDR.load())?;
        let remote: [u32; 4] = read_at(sk, OFF_SKC_V6_DADDR.load())?;
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
