//! In-kernel reclaim: when the last thread of a process exits, its key in
//! `PROC_BYTES` is summed over CPUs, written to the `EXITS` ring buffer as the final
//! value, and deleted. The map then holds live processes only, however long flowtop
//! waits for a CPU (a busy machine, `nice 19`); the ring holds the finals meanwhile.
//!
//! Needs `bpf_map_lookup_percpu_elem` (Linux 5.19): on older kernels this program
//! fails to load and flowtop reclaims exited processes' keys itself, as before.
//!
//! Nothing is ever lost here: when the ring has no room the key is left in the map
//! (and the miss counted) for flowtop's own reclaim, and the record is only
//! submitted by the one exit that deleted the key.
use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_map_lookup_percpu_elem,
        bpf_probe_read_kernel,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use flowtop_common::{exit_stat, ExitRecord, ProcCounters, MAX_EXIT_CPUS};

use crate::{
    config::config,
    maps::{EXITS, EXIT_STATS, PROC_BYTES},
};

/// `sched_process_exit(struct task_struct *p)`, fired in `do_exit` for the exiting
/// task (`current`), after its thread group's `signal->live` was decremented and
/// after its last socket call: what the key holds now is final.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn raw_tp_sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // Most exiting tasks never moved a byte: one lookup (this CPU's slot) and out.
    // Threads that are not the group's last leave the key to the last one.
    if PROC_BYTES.get_ptr(&tgid).is_none() || !group_dead() {
        return 0;
    }
    let Some(mut entry) = EXITS.reserve::<ExitRecord>(0) else {
        bump(exit_stat::NO_ROOM);
        return 0;
    };
    // Two threads exiting together can both see `live == 0`: only the one whose
    // delete succeeds submits, so each key has exactly one final value.
    let Some(counters) = final_counters(tgid) else {
        entry.discard(0);
        return 0;
    };
    if PROC_BYTES.remove(&tgid).is_err() {
        entry.discard(0);
        return 0;
    }
    entry.write(ExitRecord {
        tgid,
        _pad: 0,
        counters,
    });
    entry.submit(0);
    bump(exit_stat::RECLAIMED);
    0
}

/// Whether every thread of the current task's group has passed `do_exit`'s
/// `atomic_dec_and_test(&tsk->signal->live)`: none of them moves a byte again.
#[inline(always)]
fn group_dead() -> bool {
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        let field = task.add(config!(offsets.task_signal) as usize) as *const *const u8;
        let Ok(signal) = bpf_probe_read_kernel(field) else {
            return false;
        };
        if signal.is_null() {
            return false;
        }
        let live = signal.add(config!(offsets.signal_live) as usize) as *const i32;
        matches!(bpf_probe_read_kernel(live), Ok(0))
    }
}

/// The key's values summed over the possible CPUs (a load-time constant, so the
/// verifier walks a loop of known length), with the newest name and the creating
/// CPU's `born_ns`. `None` when the key went away meanwhile.
#[inline(always)]
fn final_counters(tgid: u32) -> Option<ProcCounters> {
    // `PerCpuHashMap` is `repr(transparent)` over its map definition.
    let map = core::ptr::addr_of!(PROC_BYTES) as *mut c_void;
    let key = core::ptr::addr_of!(tgid) as *const c_void;
    let cpus = config!(possible_cpus);
    let mut sum = ProcCounters::default();
    for cpu in 0..MAX_EXIT_CPUS {
        if cpu >= cpus {
            break;
        }
        let v = unsafe { bpf_map_lookup_percpu_elem(map, key, cpu) } as *const ProcCounters;
        if v.is_null() {
            return None;
        }
        let v = unsafe { &*v };
        sum.rx_bytes += v.rx_bytes;
        sum.tx_bytes += v.tx_bytes;
        if v.born_ns > sum.born_ns {
            sum.born_ns = v.born_ns;
        }
        if v.comm[0] != 0 && (sum.comm[0] == 0 || v.comm_ns > sum.comm_ns) {
            sum.comm_ns = v.comm_ns;
            sum.comm = v.comm;
        }
    }
    Some(sum)
}

#[inline(always)]
fn bump(slot: u32) {
    if let Some(n) = EXIT_STATS.get_ptr_mut(slot) {
        unsafe { *n += 1 };
    }
}
