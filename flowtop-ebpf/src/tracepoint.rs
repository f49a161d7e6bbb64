//! Entry points on the `sock:sock_send_length` / `sock:sock_recv_length` tracepoints
//! (kernel 6.3+). They fire in `sock_sendmsg`/`sock_recvmsg` with the returned length,
//! so write(), send*(), sendfile()/splice() and read()/recv*() are all covered.
//!
//! Three program types attach to the same hooks; the loader picks one:
//! `tp_btf` (cheapest, needs BTF), `raw_tp`, and the classic `tracepoint` (needs
//! tracefs, but its record carries family and protocol, so it needs no BTF).
use aya_ebpf::{
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};

use crate::{
    account::account,
    direction::Direction,
    kernel::{sock_family_protocol, sock_family_protocol_btf},
};

/// Arguments of both hooks: `(struct sock *sk, int ret, int flags)`.
#[inline(always)]
fn on_sock_length(sk: *const u8, ret: i32, flags: i32, dir: Direction) {
    // Cheap tests first: failed calls need no struct read at all.
    if ret <= 0 {
        return;
    }
    if let Some((family, protocol)) = sock_family_protocol(sk) {
        account(sk, family, protocol, ret as i64, flags, dir);
    }
}

/// tp_btf: `sk` is a BTF-typed pointer, read with plain loads (no helper calls).
#[inline(always)]
fn on_sock_length_btf(sk: *const u8, ret: i32, flags: i32, dir: Direction) {
    // Cheap tests first: most failed or peeking calls need no struct read at all.
    if ret <= 0 {
        return;
    }
    if let Some((family, protocol)) = sock_family_protocol_btf(sk) {
        account(sk, family, protocol, ret as i64, flags, dir);
    }
}

#[btf_tracepoint(function = "sock_send_length")]
pub fn tp_btf_sock_send_length(ctx: BtfTracePointContext) -> i32 {
    on_sock_length_btf(ctx.arg(0), ctx.arg(1), ctx.arg(2), Direction::Tx);
    0
}

#[btf_tracepoint(function = "sock_recv_length")]
pub fn tp_btf_sock_recv_length(ctx: BtfTracePointContext) -> i32 {
    on_sock_length_btf(ctx.arg(0), ctx.arg(1), ctx.arg(2), Direction::Rx);
    0
}

#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn raw_tp_sock_send_length(ctx: RawTracePointContext) -> i32 {
    on_sock_length(ctx.arg(0), ctx.arg(1), ctx.arg(2), Direction::Tx);
    0
}

#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn raw_tp_sock_recv_length(ctx: RawTracePointContext) -> i32 {
    on_sock_length(ctx.arg(0), ctx.arg(1), ctx.arg(2), Direction::Rx);
    0
}

/// Offsets in the classic tracepoint record
/// (`/sys/kernel/tracing/events/sock/sock_send_length/format`, same for recv).
mod record {
    pub const SK: usize = 8;
    pub const FAMILY: usize = 16;
    pub const PROTOCOL: usize = 18;
    pub const RET: usize = 20;
    pub const FLAGS: usize = 24;
}

#[inline(always)]
fn on_record(ctx: &TracePointContext, dir: Direction) {
    unsafe {
        let (Ok(sk), Ok(family), Ok(protocol), Ok(ret), Ok(flags)) = (
            ctx.read_at::<*const u8>(record::SK),
            ctx.read_at::<u16>(record::FAMILY),
            ctx.read_at::<u16>(record::PROTOCOL),
            ctx.read_at::<i32>(record::RET),
            ctx.read_at::<i32>(record::FLAGS),
        ) else {
            return;
        };
        // `sk` is only read (for addresses) when the loader had BTF offsets.
        account(sk, family, protocol, ret as i64, flags, dir);
    }
}

#[tracepoint(category = "sock", name = "sock_send_length")]
pub fn tp_sock_send_length(ctx: TracePointContext) -> u32 {
    on_record(&ctx, Direction::Tx);
    0
}

#[tracepoint(category = "sock", name = "sock_recv_length")]
pub fn tp_sock_recv_length(ctx: TracePointContext) -> u32 {
    on_record(&ctx, Direction::Rx);
    0
}
