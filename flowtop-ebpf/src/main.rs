//! flowtop's kernel side: per-process byte counters for TCP and UDP sockets.
//!
//! Every probe family is a thin entry point that extracts
//! `(family, protocol, bytes returned, flags)` and hands it to the one accounting
//! function in [`account`], so families can never disagree on what counts.
#![no_std]
#![no_main]

mod account;
mod config;
mod direction;
mod exit;
mod fentry;
mod kernel;
mod kprobe;
mod maps;
mod rename;
mod tracepoint;
mod udp_peer;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// GPL-compatible, or the kernel refuses `bpf_probe_read_kernel` and friends.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
