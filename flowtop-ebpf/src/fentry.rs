//! Entry points of the `fentry` family: fexit programs (BTF trampolines) on the
//! socket operations of IPv4/IPv6 sockets. They see the arguments (the socket, the
//! receive flags) together with the return value (the bytes actually moved), and one
//! place covers TCP and UDP, v4 and v6:
//!
//! - `inet_sendmsg`/`inet6_sendmsg`, `inet_recvmsg`/`inet6_recvmsg`: every send and
//!   receive of a `struct socket` (write/send*/read/recv*, and on 6.5+ also
//!   sendfile/splice, which go through sendmsg there);
//! - `inet_sendpage` (kernels before 6.5 only): sendfile/splice to an inet socket.
//!
//! The protocol functions underneath (`tcp_sendmsg`, `tcp_sendpage`, ...) are never
//! hooked as well, so no byte is counted twice.
use aya_ebpf::{macros::fexit, programs::FExitContext};

use crate::{
    account::account,
    direction::Direction,
    kernel::{sock_family_protocol, socket_sk},
};

/// `sock` is the hooked function's `struct socket *`; `ret` what it returned.
#[inline(always)]
fn on_exit(sock: *const u8, ret: i64, flags: i32, dir: Direction) {
    let sk = socket_sk(sock);
    if let Some((family, protocol)) = sock_family_protocol(sk) {
        account(sk, family, protocol, ret, flags, dir);
    }
}

/// The return value of a function with `nargs` arguments. An fexit program's context
/// holds the arguments and then the return value, one u64 each; reading it from
/// there works on every kernel with fexit (5.5+), while `FExitContext::ret`'s
/// `bpf_get_func_ret` helper needs 5.17 and fails to load on 5.10.
#[inline(always)]
fn ret_u64(ctx: &FExitContext, nargs: usize) -> u64 {
    ctx.arg::<u64>(nargs)
}

/// The return value of an `int` function: the upper half of the register is not
/// defined, so a negative errno must be sign-extended from 32 bits.
#[inline(always)]
fn int_ret(ctx: &FExitContext, nargs: usize) -> i64 {
    ret_u64(ctx, nargs) as i32 as i64
}

// int inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t size)
#[fexit(function = "inet_sendmsg")]
pub fn fexit_inet_sendmsg(ctx: FExitContext) -> i32 {
    on_exit(ctx.arg(0), int_ret(&ctx, 3), 0, Direction::Tx);
    0
}

#[fexit(function = "inet6_sendmsg")]
pub fn fexit_inet6_sendmsg(ctx: FExitContext) -> i32 {
    on_exit(ctx.arg(0), int_ret(&ctx, 3), 0, Direction::Tx);
    0
}

// int inet_recvmsg(struct socket *sock, struct msghdr *msg, size_t size, int flags)
#[fexit(function = "inet_recvmsg")]
pub fn fexit_inet_recvmsg(ctx: FExitContext) -> i32 {
    on_exit(ctx.arg(0), int_ret(&ctx, 4), ctx.arg(3), Direction::Rx);
    0
}

#[fexit(function = "inet6_recvmsg")]
pub fn fexit_inet6_recvmsg(ctx: FExitContext) -> i32 {
    on_exit(ctx.arg(0), int_ret(&ctx, 4), ctx.arg(3), Direction::Rx);
    0
}

// ssize_t inet_sendpage(struct socket *sock, struct page *page, int offset,
//                       size_t size, int flags)   (gone in 6.5)
#[fexit(function = "inet_sendpage")]
pub fn fexit_inet_sendpage(ctx: FExitContext) -> i32 {
    on_exit(ctx.arg(0), ret_u64(&ctx, 5) as i64, 0, Direction::Tx);
    0
}
