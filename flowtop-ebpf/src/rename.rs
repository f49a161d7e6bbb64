//! Keeps a process's name current without reading it on every event: `account`
//! takes the name when it creates a key, and this program writes the new one when
//! the process renames itself. `task:task_rename` fires in `__set_task_comm`, so
//! it sees exec (the new program's name) and `prctl(PR_SET_NAME)`, before the
//! kernel copies the name into the task.
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use flowtop_common::COMM_LEN;

use crate::maps::PROC_BYTES;

/// `task_rename(struct task_struct *task, const char *comm)`.
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn raw_tp_task_rename(ctx: RawTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    let comm: *const u8 = ctx.arg(1);
    // Renames of other tasks (a write to /proc/PID/comm) are left alone: their
    // thread-group id would need the task's fields; the next key creation takes
    // the name then.
    if task as u64 != unsafe { bpf_get_current_task() } {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // A thread's own name is not the process's (rows show the leader's name);
    // exec makes the calling thread the leader before it renames it.
    if pid_tgid as u32 != tgid {
        return 0;
    }
    let Some(counters) = PROC_BYTES.get_ptr_mut(&tgid) else {
        return 0;
    };
    let mut name = [0u8; COMM_LEN];
    // The kernel keeps the first COMM_LEN - 1 bytes; so does a bounded string read.
    if unsafe { bpf_probe_read_kernel_str_bytes(comm, &mut name) }.is_err() {
        return 0;
    }
    let counters = unsafe { &mut *counters };
    counters.comm = name;
    counters.comm_ns = unsafe { bpf_ktime_get_ns() };
    0
}
