//! Reads of kernel structures at offsets the loader took from the running kernel's
//! BTF. aya cannot emit CO-RE relocations from Rust, so offsets arrive as globals
//! instead; a build on one kernel then runs on any other.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_task, bpf_probe_read_kernel},
    Global,
};
use flowtop_common::COMM_LEN;

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
