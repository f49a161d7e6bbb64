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

/// The kernel's possible CPUs, where the exit program reads them.
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// How many CPUs the exit program sums over: the possible CPUs when they are
/// numbered `0..N` (`0` or `0-N`), as its loop reads CPUs 0..N; `None` with holes
/// (`0-3,8-11`, rare) or when the file cannot be read.
pub fn summed_cpus() -> Option<u32> {
    contiguous_cpus(std::fs::read_to_string(POSSIBLE_CPUS).ok()?.trim())
}

fn contiguous_cpus(ranges: &str) -> Option<u32> {
    match ranges.split_once('-') {
        None => (ranges == "0").then_some(1),
        Some(("0", last)) => last.parse::<u32>().ok()?.checked_add(1),
        Some(_) => None,
    }
}

/// Why the exit program is not even tried, if so: no BTF offsets (it reads
/// `task->signal->live`), possible CPUs it cannot sum (holes in their numbers,
/// more than its loop covers), or disabled.
pub fn not_tried(offsets_known: bool, possible_cpus: Option<u32>) -> Option<String> {
    if std::env::var(KERNEL_RECLAIM_ENV).is_ok_and(|v| v == "0") {
        return Some(format!("{KERNEL_RECLAIM_ENV}=0"));
    }
    if !offsets_known {
        return Some("no kernel BTF for task_struct offsets".into());
    }
    match possible_cpus {
        None => Some(format!(
            "the possible CPUs in {POSSIBLE_CPUS} are not numbered 0..N"
        )),
        Some(n) if n > MAX_EXIT_CPUS => Some(format!(
            "{n} possible CPUs, more than the {MAX_EXIT_CPUS} it sums"
        )),
        Some(_) => None,
    }
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
        assert!(not_tried(false, Some(2)).is_some_and(|w| w.contains("BTF")));
        assert!(not_tried(true, Some(MAX_EXIT_CPUS + 1)).is_some_and(|w| w.contains("CPUs")));
        assert!(not_tried(true, None).is_some_and(|w| w.contains("0..N")));
    }

    #[test]
    fn only_cpus_numbered_from_zero_without_holes_are_summed() {
        assert_eq!(contiguous_cpus("0"), Some(1));
        assert_eq!(contiguous_cpus("0-1"), Some(2));
        assert_eq!(contiguous_cpus("0-127"), Some(128));
        assert_eq!(contiguous_cpus("0-3,8-11"), None);
        assert_eq!(contiguous_cpus("1-3"), None);
        assert_eq!(contiguous_cpus(""), None);
        assert!(
            summed_cpus().is_some_and(|n| n >= 1),
            "this machine's {POSSIBLE_CPUS}"
        );
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
