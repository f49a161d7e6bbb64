//! Entry points of the `kprobe` family: the same functions as the `fentry` family
//! (see fentry.rs), for kernels that have kprobes but no BPF trampolines. A kprobe
//! sees only the arguments and a kretprobe only the return value, so the entry
//! program resolves the socket's family and protocol and stashes them with the
//! receive flags, keyed by thread; the return program takes them back and accounts
//! the bytes returned.
//!
//! Each program attaches to several functions with the same argument layout:
//! `kprobe_send`/`kretprobe_send` to `inet_sendmsg`, `inet6_sendmsg` (and
//! `inet_sendpage` where it exists); `kprobe_recv`/`kretprobe_recv` to
//! `inet_recvmsg`, `inet6_recvmsg`.
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};

use crate::{
    account::account,
    direction::Direction,
    kernel::{sock_family_protocol, socket_sk},
    maps::{InFlight, IN_FLIGHT},
};

#[inline(always)]
fn enter(sock: Option<*const u8>, flags: i32) {
    let Some(sock) = sock else { return };
    let sk = socket_sk(sock);
    let Some((family, protocol)) = sock_family_protocol(sk) else {
        return;
    };
    let call = InFlight {
        sk: sk as u64,
        family,
        protocol,
        flags,
    };
    // On failure (map full) the call is not counted; the map is sized far above the
    // number of threads that can be inside a socket call at once.
    let _ = IN_FLIGHT.insert(&bpf_get_current_pid_tgid(), &call, 0);
}

/// `ret`: the hooked function's return value, sign-extended from 32 bits (`int`, or
/// a `ssize_t` no larger than one call's size).
#[inline(always)]
fn exit(ret: i32, dir: Direction) {
    let key = bpf_get_current_pid_tgid();
    let Some(call) = IN_FLIGHT.get_ptr(&key) else {
        return;
    };
    let call = unsafe { *call };
    let _ = IN_FLIGHT.remove(&key);
    account(
        call.sk as *const u8,
        call.family,
        call.protocol,
        ret as i64,
        call.flags,
        dir,
    );
}

/// `(struct socket *sock, ...)`: inet_sendmsg, inet6_sendmsg, inet_sendpage.
#[kprobe]
pub fn kprobe_send(ctx: ProbeContext) -> u32 {
    enter(ctx.arg(0), 0);
    0
}

#[kretprobe]
pub fn kretprobe_send(ctx: RetProbeContext) -> u32 {
    exit(ctx.ret(), Direction::Tx);
    0
}

/// `(struct socket *sock, struct msghdr *msg, size_t size, int flags)`:
/// inet_recvmsg, inet6_recvmsg.
#[kprobe]
pub fn kprobe_recv(ctx: ProbeContext) -> u32 {
    enter(ctx.arg(0), ctx.arg(3).unwrap_or(0));
    0
}

#[kretprobe]
pub fn kretprobe_recv(ctx: RetProbeContext) -> u32 {
    exit(ctx.ret(), Direction::Rx);
    0
}
