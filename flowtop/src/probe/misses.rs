//! Socket events the kernel did not run flowtop's programs for.
//!
//! The kernel runs a tracing program (tp_btf, raw_tp, fentry/fexit, kprobe) at most
//! once at a time on a CPU: when a hook fires while the same program is still running
//! on that CPU (preempted on a fully preemptible kernel, or nested under an
//! interrupt), the kernel skips the program and counts a recursion miss. Such an
//! event's bytes are lost to every eBPF tool. flowtop cannot know how many bytes, but
//! it can say how many events, so that a loss is never silent. The kernel shows the
//! count in `/proc/self/fdinfo/<program fd>` as `recursion_misses` (Linux 5.12+;
//! absent means none counted). The kprobe family's probes also miss hits of their
//! own (a kprobe hit while another runs on that CPU, a return beyond the
//! kretprobe's room for calls in flight): for probes made through tracefs, as
//! flowtop makes them, the kernel lists those in `kprobe_profile`.
use std::{
    fs,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
    path::PathBuf,
};

use aya::Ebpf;

/// The recursion misses of flowtop's programs, read once per interval.
pub struct MissedEvents<'a> {
    /// The loaded programs' own fds, borrowed: a duplicate would show every program
    /// twice to anything that sums flowtop's fdinfo (run counts, run times).
    programs: Vec<BorrowedFd<'a>>,
    /// tracefs's `kprobe_profile`, for the kprobe family.
    kprobe_profile: Option<PathBuf>,
    /// Misses already reported.
    seen: u64,
}

impl<'a> MissedEvents<'a> {
    /// Every program of `ebpf` that is loaded now, and the probes of this process
    /// in `kprobe_profile` when given.
    pub fn new(ebpf: &'a Ebpf, kprobe_profile: Option<PathBuf>) -> Self {
        let programs = ebpf
            .programs()
            .filter_map(|(_, p)| Some(p.fd().ok()?.as_fd()))
            .collect();
        Self {
            programs,
            kprobe_profile,
            seen: 0,
        }
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
            .sum::<u64>()
            + self
                .kprobe_profile
                .as_ref()
                .and_then(|p| fs::read_to_string(p).ok())
                .map_or(0, |text| probe_misses(&text, std::process::id()));
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

/// Misses of this process's probes in `kprobe_profile` text (`  NAME  HITS  MISSES`
/// per line; aya names the probes it makes `aya_<pid>_...`).
pub fn probe_misses(profile: &str, pid: u32) -> u64 {
    let ours = format!("aya_{pid}_");
    profile
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let missed = f.nth(1)?.parse::<u64>().ok()?;
            name.starts_with(&ours).then_some(missed)
        })
        .sum()
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
    fn sums_the_misses_of_this_process_probes_only() {
        let profile = "  aya_42_r_inet_sendmsg_0x0_0                          1200               7\n  \
                       aya_42_p_inet_recvmsg_0x0_3                           900               2\n  \
                       aya_420_r_inet_sendmsg_0x0_0                          500              99\n  \
                       myprobe                                                10               1\n";
        assert_eq!(probe_misses(profile, 42), 9);
        assert_eq!(probe_misses(profile, 7), 0);
    }

    #[test]
    fn each_miss_is_reported_once() {
        let mut m = MissedEvents {
            programs: Vec::new(),
            kprobe_profile: None,
            seen: 0,
        };
        assert_eq!(m.news(0), 0);
        assert_eq!(m.news(5), 5);
        assert_eq!(m.news(5), 0);
        assert_eq!(m.news(9), 4);
    }
}
