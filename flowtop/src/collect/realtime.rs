//! Map reads at the lowest real-time priority.
//!
//! While a `bpf(2)` command copies map entries out (a lookup, each bucket of a batch
//! read), the kernel raises the CPU's `bpf_prog_active` count, and every kprobe
//! program that fires on that CPU meanwhile is skipped (counted as a miss, which
//! flowtop reports as skipped calls). That window is microseconds, unless the
//! scheduler preempts flowtop inside it: kernels that preempt kernel code (Debian's
//! 7.x boot `lazy`, any `preempt=full`) do, and then the kprobe family misses the
//! calls of whatever runs on that CPU until flowtop gets it back. The VM matrix saw
//! exactly that on 7.2 (kprobe and auto, the `--by conn` scenarios, whose reads are
//! longest). As SCHED_FIFO, even at priority 1, flowtop cannot be preempted by the
//! ordinary tasks whose bytes it counts, so its reads finish first; it returns to
//! its normal policy right after each read, and the kernel's real-time throttling
//! bounds any mistake.
//!
//! No capability is needed for that once [`allow`] has raised `RLIMIT_RTPRIO` to 1
//! while flowtop still was privileged (the limit survives the capability drop);
//! where that fails (no CAP_SYS_RESOURCE, a container refusing it) reads simply run
//! at normal priority, as before.

/// The real-time priority used for reads: the lowest, above every ordinary task.
const PRIORITY: libc::c_int = 1;

/// Lets this process switch itself to SCHED_FIFO priority [`PRIORITY`] later,
/// without capabilities. Call before the capabilities are dropped.
pub fn allow() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_RTPRIO, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= PRIORITY as libc::rlim_t {
            return;
        }
        lim.rlim_cur = PRIORITY as libc::rlim_t;
        lim.rlim_max = lim.rlim_max.max(lim.rlim_cur);
        if libc::setrlimit(libc::RLIMIT_RTPRIO, &lim) != 0 {
            log::debug!(
                "map reads at normal priority: raising RLIMIT_RTPRIO: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// SCHED_FIFO for as long as it lives; back to SCHED_OTHER when dropped. Does
/// nothing where the switch is refused or flowtop already runs real-time.
pub struct Read {
    raised: bool,
}

impl Read {
    pub fn enter() -> Self {
        // SAFETY: sched_getscheduler/sched_setscheduler on this thread with a valid
        // sched_param.
        let raised = unsafe {
            libc::sched_getscheduler(0) == libc::SCHED_OTHER && {
                let p = libc::sched_param {
                    sched_priority: PRIORITY,
                };
                libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &p) == 0
            }
        };
        Self { raised }
    }
}

impl Drop for Read {
    fn drop(&mut self) {
        if self.raised {
            let p = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in `enter`; leaving real-time is always allowed.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &p) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (CAP_SYS_NICE or the raised limit), as every test run does here.
    #[test]
    fn a_read_runs_real_time_and_then_returns_to_normal() {
        allow();
        // SAFETY: plain queries of this thread's policy.
        let policy = || unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
        assert_eq!(policy(), libc::SCHED_OTHER);
        {
            let r = Read::enter();
            assert!(r.raised, "SCHED_FIFO refused");
            assert_eq!(policy(), libc::SCHED_FIFO);
        }
        assert_eq!(policy(), libc::SCHED_OTHER);
    }
}
