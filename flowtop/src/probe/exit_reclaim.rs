//! In-kernel reclaim of exited processes' keys (`flowtop-ebpf/src/exit.rs`): tried
//! on every kernel, kept where it loads (Linux 5.19+ with BTF). Where it does not,
//! flowtop reclaims keys itself ([`crate::collect::counters`]), which is exact too
//! but needs flowtop to get a CPU before the map fills with dead processes.
use anyhow::{anyhow, Context as _, Result};
use aya::{programs::RawTracePoint, Ebpf};
use flowtop_common::{programs, MAX_EXIT_CPUS};

/// Environment variable (undocumented, for the soak's comparison runs and tests of
/// the fallback): `0` leaves reclaim to userspace, as on kernels before 5.19.
pub const KERNEL_RECLAIM_ENV: &str = "FLOWTOP_KERNEL_RECLAIM";

/// Why the exit program is not even tried, if so: no BTF offsets (it reads
/// `task->signal->live`), more possible CPUs than its loop covers, or disabled.
pub fn not_tried(offsets_known: bool, possible_cpus: u32) -> Option<String> {
    if std::env::var(KERNEL_RECLAIM_ENV).is_ok_and(|v| v == "0") {
        return Some(format!("{KERNEL_RECLAIM_ENV}=0"));
    }
    if !offsets_known {
        return Some("no kernel BTF for task_struct offsets".into());
    }
    if possible_cpus > MAX_EXIT_CPUS {
        return Some(format!(
            "{possible_cpus} possible CPUs, more than the {MAX_EXIT_CPUS} it sums"
        ));
    }
    None
}

/// Loads and attaches the exit program; whether the kernel now reclaims keys. Says
/// which way it went at `-v`.
pub fn attach(ebpf: &mut Ebpf, skip: Option<&str>) -> bool {
    let result = match skip {
        Some(why) => Err(anyhow!("not tried: {why}")),
        None => try_attach(ebpf),
    };
    match result {
        Ok(()) => {
            log::info!(
                "exited processes' keys are reclaimed in the kernel \
                 (raw_tp/{}, final counts through a ring buffer)",
                programs::PROCESS_EXIT
            );
            true
        }
        Err(e) => {
            let full = format!("{e:#}");
            log::info!(
                "no in-kernel reclaim ({}): flowtop reclaims exited processes' keys \
                 itself, so the map can fill with them while flowtop waits for a CPU",
                short_reason(&full)
            );
            log::debug!("the exit program's load error in full: {full}");
            false
        }
    }
}

/// One line out of a load error that may carry the whole verifier log: the helper
/// a kernel before 5.19 lacks, or else the message and the verifier's last word.
fn short_reason(full: &str) -> String {
    // bpf_map_lookup_percpu_elem is helper 195.
    if full.contains("unknown#195") {
        return "this kernel has no bpf_map_lookup_percpu_elem, Linux 5.19+".into();
    }
    let Some((head, log)) = full.split_once("Verifier output:") else {
        return full.to_string();
    };
    let last = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rfind(|l| {
            !["verification time", "stack depth", "processed "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .unwrap_or("");
    format!("{} verifier: {last}", head.trim_end())
}

fn try_attach(ebpf: &mut Ebpf) -> Result<()> {
    let name = programs::RAW_TP_PROCESS_EXIT;
    let p: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the eBPF object"))?
        .try_into()?;
    // Before 5.19 the verifier refuses `bpf_map_lookup_percpu_elem` here.
    p.load()
        .with_context(|| format!("loading raw_tp/{}", programs::PROCESS_EXIT))?;
    p.attach(programs::PROCESS_EXIT)
        .with_context(|| format!("attaching raw_tp/{}", programs::PROCESS_EXIT))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_tried_without_offsets_or_with_too_many_cpus() {
        assert!(not_tried(false, 2).is_some_and(|w| w.contains("BTF")));
        assert!(not_tried(true, MAX_EXIT_CPUS + 1).is_some_and(|w| w.contains("CPUs")));
    }

    #[test]
    fn load_errors_are_cut_to_one_line() {
        // As seen on 5.10 (abridged).
        let full = "loading raw_tp/sched_process_exit: the BPF_PROG_LOAD syscall returned \
                    Invalid argument (os error 22). Verifier output: arg#0 type is not a struct\n\
                    101: (85) call unknown#195\ninvalid func unknown#195\n\
                    verification time 2145 usec\nstack depth 176\nprocessed 78 insns";
        assert!(short_reason(full).contains("Linux 5.19+"));
        let other = full.replace("unknown#195", "bpf_foo#1");
        assert_eq!(
            short_reason(&other),
            "loading raw_tp/sched_process_exit: the BPF_PROG_LOAD syscall returned Invalid \
             argument (os error 22). verifier: invalid func bpf_foo#1"
        );
        assert_eq!(short_reason("attaching: EPERM"), "attaching: EPERM");
    }
}
