//! Checks, before touching the kernel, that flowtop may load BPF programs, so that
//! the user gets one clear line instead of an EPERM from deep inside the loader.
use std::fs;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capabilities of this process, from /proc/self/status.
pub fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_cap_eff(&s))
        .unwrap_or(0)
}

pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Tracing programs need CAP_BPF + CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN.
pub fn can_trace(caps: u64) -> bool {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// The only capability flowtop keeps once its programs are attached and its maps
/// open: reading and deleting map entries is a `bpf(2)` call, which kernels before
/// 6.5 refuse without CAP_BPF when unprivileged BPF is disabled (Debian's default).
pub const KEPT_AFTER_ATTACH: u64 = 1 << CAP_BPF;

/// Drops every capability but [`KEPT_AFTER_ATTACH`] from all sets (bounding,
/// ambient, inheritable, permitted, effective) and sets no_new_privs, so that a bug
/// later in flowtop cannot load programs, mount, or regain privileges through exec.
pub fn drop_after_attach() -> anyhow::Result<()> {
    use anyhow::Context as _;
    use caps::{CapSet, CapsHashSet};
    let kept: CapsHashSet = caps::read(None, CapSet::Effective)
        .context("reading the effective capabilities")?
        .into_iter()
        .filter(|c| KEPT_AFTER_ATTACH & c.bitmask() != 0)
        .collect();
    for cap in caps::runtime::thread_all_supported() {
        if !kept.contains(&cap) {
            // Refused without CAP_SETPCAP (flowtop may run with CAP_BPF and
            // CAP_PERFMON only): the bounding set then stays, the rest still drops.
            let _ = caps::drop(None, CapSet::Bounding, cap);
        }
    }
    // Fails only on kernels without ambient capabilities (before 4.3): nothing to clear.
    let _ = caps::clear(None, CapSet::Ambient);
    // Effective before permitted: the kernel refuses an effective set larger than
    // the permitted one.
    let none = CapsHashSet::default();
    for (set, to) in [
        (CapSet::Inheritable, &none),
        (CapSet::Effective, &kept),
        (CapSet::Permitted, &kept),
    ] {
        caps::set(None, set, to).with_context(|| format!("setting the {set:?} capabilities"))?;
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_eff_line() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
    }

    #[test]
    fn root_or_bpf_plus_perfmon_may_trace() {
        assert!(can_trace(0x1ff_ffff_ffff));
        assert!(can_trace(1 << CAP_SYS_ADMIN));
        assert!(can_trace((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!can_trace(1 << CAP_BPF));
        assert!(!can_trace(0));
    }
}
