//! The one accounting function every probe family calls.
use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_current_pid_tgid, Global};
use flowtop_common::{
    net::{is_counted, MSG_PEEK},
    ProcCounters,
};

use crate::{
    kernel::process_comm,
    maps::{PROC_BYTES, PROC_INSERTS, UNRECORDED},
};

/// Only count this thread-group id (0: all). Fixed at load time, so the verifier
/// prunes the branch away when it is unset.
#[unsafe(no_mangle)]
static FILTER_TGID: Global<u32> = Global::new(0);

#[derive(Clone, Copy)]
pub enum Direction {
    Rx,
    Tx,
}

/// Adds `ret` bytes moved by the current process on a socket of `family`/`protocol`.
///
/// `ret` is the value the send/receive returned: bytes actually moved, or a negative
/// errno. `flags` are the caller's `MSG_*` flags: a `MSG_PEEK` read moves nothing.
#[inline(always)]
pub fn account(family: u16, protocol: u16, ret: i64, flags: i32, dir: Direction) {
    if ret <= 0 || flags & MSG_PEEK != 0 || !is_counted(family, protocol) {
        return;
    }
    let bytes = ret as u64;
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let filter = FILTER_TGID.load();
    if filter != 0 && filter != tgid {
        return;
    }
    let comm = process_comm(pid_tgid);
    if add_to_existing(tgid, bytes, dir, comm) {
        return;
    }
    let mut fresh = ProcCounters {
        comm,
        ..ProcCounters::default()
    };
    add(&mut fresh, bytes, dir);
    // A per-CPU insert from a program sets this CPU's slot and zeroes the others.
    // EEXIST means another CPU inserted the key first: add to it instead. Anything
    // else (E2BIG: map full) is counted as unrecorded, never dropped silently.
    if PROC_BYTES.insert(tgid, fresh, BPF_NOEXIST as u64).is_ok() {
        if let Some(inserts) = PROC_INSERTS.get_ptr_mut(0) {
            unsafe { *inserts += 1 };
        }
        return;
    }
    if add_to_existing(tgid, bytes, dir, comm) {
        return;
    }
    if let Some(lost) = UNRECORDED.get_ptr_mut(0) {
        let lost = unsafe { &mut *lost };
        match dir {
            Direction::Rx => lost.rx_bytes += bytes,
            Direction::Tx => lost.tx_bytes += bytes,
        }
    }
}

#[inline(always)]
fn add_to_existing(tgid: u32, bytes: u64, dir: Direction, comm: [u8; 16]) -> bool {
    match PROC_BYTES.get_ptr_mut(tgid) {
        Some(counters) => {
            // This CPU's slot: no other CPU writes it, and programs of one CPU do not
            // nest on these hooks, so a plain add is exact.
            let counters = unsafe { &mut *counters };
            add(counters, bytes, dir);
            counters.comm = comm;
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
