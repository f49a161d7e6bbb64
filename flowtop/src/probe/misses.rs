//! Socket events the kernel did not run flowtop's programs for.
//!
//! The kernel runs a tracing program (tp_btf, raw_tp, fentry/fexit, kprobe) at most
//! once at a time on a CPU: when a hook fires while the same program is still running
//! on that CPU (preempted on a fully preemptible kernel, or nested under an
//! interrupt), the kernel skips the program and counts a recursion miss. Such an
//! event's bytes are lost to every eBPF tool. flowtop cannot know how many bytes, but
//! it can say how many events, so that a loss is never silent. The kernel shows the
//! count in `/proc/self/fdinfo/<program fd>` as `recursion_misses` (Linux 5.12+;
//! absent means none counted).
use std::{
    fs,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::Ebpf;

/// The recursion misses of flowtop's programs, read once per interval.
pub struct MissedEvents<'a> {
    /// The loaded programs' own fds, borrowed: a duplicate would show every program
    /// twice to anything that sums flowtop's fdinfo (run counts, run times).
    programs: Vec<BorrowedFd<'a>>,
    /// Misses already reported.
    seen: u64,
}

impl<'a> MissedEvents<'a> {
    /// Every counting program of `ebpf` that is loaded now.
    pub fn new(ebpf: &'a Ebpf) -> Self {
        // The exit program is no socket call: when the kernel skips it, flowtop
        // reclaims that key itself and nothing is lost.
        let programs = ebpf
            .programs()
            .filter(|(name, _)| *name != flowtop_common::programs::RAW_TP_PROCESS_EXIT)
            .filter_map(|(_, p)| Some(p.fd().ok()?.as_fd()))
            .collect();
        Self { programs, seen: 0 }
    }

    /// Events skipped since the last call (the first call: since loading).
    pub fn since_last(&mut self) -> u64 {
        let total: u64 = self
            .programs
            .iter()
            .filter_map(|fd| {
                fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()
            })
            .filter_map(|info| fdinfo_field(&info, "recursion_misses"))
            .sum();
        self.news(total)
    }

    /// The part of `total` (the kernel's running count) not reported before.
    fn news(&mut self, total: u64) -> u64 {
        let new = total.saturating_sub(self.seen);
        self.seen = self.seen.max(total);
        new
    }
}

/// A numeric field (`run_cnt`, `recursion_misses`, ...) of a BPF object's fdinfo
/// text (`/proc/PID/fdinfo/FD`: `name:\tvalue` lines).
pub fn fdinfo_field(fdinfo: &str, name: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count_from_fdinfo() {
        let info = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nrun_time_ns:\t0\nrun_cnt:\t0\nrecursion_misses:\t17\nverified_insns:\t40\n";
        assert_eq!(fdinfo_field(info, "recursion_misses"), Some(17));
        assert_eq!(fdinfo_field(info, "run_cnt"), Some(0));
        assert_eq!(fdinfo_field(info, "prog_type"), Some(26));
        assert_eq!(fdinfo_field("prog_type:\t26\n", "recursion_misses"), None);
        // A name is not a prefix of a longer one.
        assert_eq!(fdinfo_field("run_cnt_x:\t5\n", "run_cnt"), None);
    }

    #[test]
    fn each_miss_is_reported_once() {
        let mut m = MissedEvents {
            programs: Vec::new(),
            seen: 0,
        };
        assert_eq!(m.news(0), 0);
        assert_eq!(m.news(5), 5);
        assert_eq!(m.news(5), 0);
        assert_eq!(m.news(9), 4);
    }
}
