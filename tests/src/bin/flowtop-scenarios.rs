//! Runs every exactness scenario against one probe family and prints one line per
//! scenario, for VM guests (busybox userland: needs only this binary, flowtop,
//! trafficgen, loopback and /proc):
//!
//! ```text
//! flowtop-scenarios --flowtop PATH --trafficgen PATH --probe auto|tracepoint|fentry|kprobe
//! SCENARIO tcp4 PASS expected=... reported=...
//! ...
//! SCENARIO cgroup_filter SKIP reason=no cgroup2 file system mounted (...)
//! 18 passed, 0 failed, 1 skipped
//! ```
//!
//! A scenario this machine cannot run (no cgroup v2) is a SKIP with its reason, never a
//! PASS; the VM matrix fails a cell with a skip.
//!
//! Exit status: 0 none failed (some may have been skipped), 1 any failed, 2 bad
//! arguments.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use flowtop_tests::{ensure_loopback_up, find_flowtop, find_trafficgen, run_all, Ctx, Verdict};

const USAGE: &str = "usage: flowtop-scenarios [--flowtop PATH] [--trafficgen PATH] \
[--probe auto|tracepoint|fentry|kprobe] [--bytes N] [--timeout SECS] [--verbose]";

fn main() -> ExitCode {
    let mut flowtop = None;
    let mut trafficgen = None;
    let mut probe = "auto".to_string();
    let mut bytes: u64 = 256 << 10;
    let mut timeout = 60u64;
    let mut verbose = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next().unwrap_or_else(|| {
                eprintln!("flowtop-scenarios: {a} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--flowtop" => flowtop = Some(PathBuf::from(value())),
            "--trafficgen" => trafficgen = Some(PathBuf::from(value())),
            "--probe" => probe = value(),
            "--bytes" => bytes = number(&value()),
            "--timeout" => timeout = number(&value()),
            "--verbose" | "-v" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("flowtop-scenarios: unexpected argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("flowtop-scenarios: must run as root (flowtop loads eBPF programs)");
        return ExitCode::from(1);
    }
    if let Err(e) = ensure_loopback_up() {
        eprintln!("flowtop-scenarios: cannot bring lo up: {e:#}");
        return ExitCode::from(1);
    }
    let ctx = Ctx {
        flowtop: flowtop.unwrap_or_else(find_flowtop),
        trafficgen: trafficgen.unwrap_or_else(|| find_trafficgen(None)),
        probe,
        bytes,
        timeout: Duration::from_secs(timeout),
        steady_secs: 3.5,
        steady_rate: 256 << 10,
        program_kind: None,
    };
    let results = run_all(&ctx);
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let (passed, failed, skipped) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skip),
    );
    for r in &results {
        println!("{r}");
        if r.verdict == Verdict::Fail || verbose {
            for l in r.detail.lines() {
                eprintln!("  {}: {l}", r.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn number(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("flowtop-scenarios: not a number: {s:?}\n{USAGE}");
        std::process::exit(2)
    })
}
