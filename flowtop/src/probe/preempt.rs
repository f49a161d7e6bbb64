//! Whether the running kernel preempts kernel code ("full" or "lazy" preemption,
//! PREEMPT_RT), under which the fentry and kprobe families miss socket calls when
//! many threads send at once: a fexit program preempted on a CPU makes the kernel
//! skip that program for every other call on that CPU until it resumes (counted
//! as recursion misses, see `misses`), and threads preempted inside the hooked
//! functions exhaust the kretprobes' return slots (not counted anywhere flowtop can
//! read on every kernel). Seen in Debian's 6.1 and 6.12 guests booted with
//! `preempt=full`: a quarter to half of the bytes of 16 sender threads on one CPU
//! went uncounted. The tracepoint family runs with preemption disabled and stays
//! exact. flowtop says so at start; it cannot tell the mode on every kernel.
use std::fs;

/// Where the mode was found and what it is, when the kernel preempts kernel code;
/// None when it does not, or when that cannot be told.
pub fn kernel_code_preemptible() -> Option<String> {
    // PREEMPT_DYNAMIC kernels: "none voluntary (full) lazy", the current mode in
    // parentheses (debugfs; not readable on every kernel).
    if let Ok(modes) = fs::read_to_string("/sys/kernel/debug/sched/preempt") {
        return current_mode(&modes)
            .filter(|m| preempting(m))
            .map(|m| format!("preemption mode {m} (/sys/kernel/debug/sched/preempt)"));
    }
    if let Ok(cmdline) = fs::read_to_string("/proc/cmdline") {
        if let Some(mode) = cmdline_mode(&cmdline) {
            return preempting(mode).then(|| format!("preempt={mode} on the kernel command line"));
        }
    }
    // Static models are in the version string (`uname -v`).
    version_preempts(&fs::read_to_string("/proc/sys/kernel/version").ok()?)
}

/// The warning flowtop gives at start on a kernel that preempts kernel code
/// (`mode`), for the family it attached. `raised_slots`: the kprobe family's
/// kretprobes have the kernel's maximum of return slots (`retprobe.rs`); exact on 7.2
/// under full preemption, yet on 6.1 0.9% of the bytes went uncounted, no count given.
pub fn start_warning(
    family: super::Family,
    kind: super::ProgramKind,
    raised_slots: bool,
    mode: &str,
) -> String {
    use super::{Family, ProgramKind};
    let what = match family {
        // See `select::PREEMPTIBLE_TRACEPOINT_KINDS`.
        Family::Tracepoint if kind == ProgramKind::Classic => {
            "the classic tracepoint program runs with preemption disabled, but the kernel \
             skips it on a CPU where another BPF map operation is preempted; skipped \
             calls are reported each interval"
        }
        Family::Kprobe if raised_slots => {
            "seen on 6.1 (not on 7.2), without a count of the calls missed"
        }
        Family::Kprobe => {
            "kretprobes with the kernel's few return slots miss returns, without a count"
        }
        Family::Fentry | Family::Tracepoint => {
            "the kernel skips a program preempted on a CPU for every other call there \
             (fentry; tracepoints on newer kernels, e.g. 7.x); skipped calls are \
             reported each interval"
        }
    };
    format!(
        "this kernel preempts kernel code ({mode}): with the {family} family, socket \
         calls can go uncounted while many threads send at once: {what}"
    )
}

fn preempting(mode: &str) -> bool {
    matches!(mode, "full" | "lazy")
}

fn current_mode(modes: &str) -> Option<&str> {
    modes
        .split_whitespace()
        .find_map(|w| w.strip_prefix('(')?.strip_suffix(')'))
}

fn cmdline_mode(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .rev()
        .find_map(|a| a.strip_prefix("preempt="))
}

/// `#1 SMP PREEMPT_RT ...`, `#1 SMP PREEMPT ...` (full, built in); not
/// `PREEMPT_DYNAMIC`, whose mode is chosen at boot.
fn version_preempts(version: &str) -> Option<String> {
    version.split_whitespace().find_map(|w| match w {
        "PREEMPT_RT" => Some("a PREEMPT_RT kernel".to_string()),
        "PREEMPT" => Some("a kernel built with full preemption (PREEMPT)".to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_dynamic_mode_is_the_one_in_parentheses() {
        assert_eq!(current_mode("none voluntary (full) lazy\n"), Some("full"));
        assert_eq!(current_mode("(none) voluntary full\n"), Some("none"));
        assert_eq!(current_mode("none voluntary full\n"), None);
    }

    #[test]
    fn the_last_preempt_argument_wins() {
        assert_eq!(
            cmdline_mode("console=ttyS0 preempt=none quiet preempt=full"),
            Some("full")
        );
        assert_eq!(cmdline_mode("console=ttyS0 quiet"), None);
        assert!(preempting("lazy") && !preempting("voluntary") && !preempting("none"));
    }

    #[test]
    fn static_models_are_read_from_the_version_string() {
        assert!(version_preempts("#1 SMP PREEMPT_RT Thu Jan 1").is_some());
        assert!(version_preempts("#1 SMP PREEMPT Thu Jan 1").is_some());
        assert_eq!(
            version_preempts("#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1"),
            None
        );
        assert_eq!(version_preempts("#1 SMP Debian 6.1.192-3"), None);
    }
}
