//! Checks, before touching the kernel, that flowtop may load BPF programs, so that
//! the user gets one clear line instead of an EPERM from deep inside the loader.
use std::fs;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What every feature of flowtop needs together, found by running each feature as
/// `nobody` with file capabilities (docs/capabilities.md): CAP_BPF and CAP_PERFMON
/// load and attach the tracing programs (tp_btf, fentry, kprobe PMU) and read maps;
/// CAP_NET_ADMIN loads the cgroup sock_addr programs that name unconnected UDP
/// peers (`--by conn`, `--port`, `-4`/`-6`). `--cgroup`, `--by cgroup` and `--serve`
/// on a port from 1024 up need nothing more.
pub const SETCAP_LINE: &str = "setcap cap_bpf,cap_perfmon,cap_net_admin+ep";

/// The error for a process that may not load tracing programs: which capabilities
/// are missing and how an administrator grants them, so that a non-root user is not
/// left with a bare EPERM or a "use sudo".
pub fn cannot_trace_message(caps: u64, exe: &str) -> Option<String> {
    if can_trace(caps) {
        return None;
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(cap, _)| caps & (1u64 << cap) == 0)
        .map(|(_, name)| name)
        .collect();
    Some(format!(
        "missing capabilities {} (loading eBPF programs needs CAP_BPF and CAP_PERFMON, \
         or root); an administrator can grant them to this binary with: \
         sudo {SETCAP_LINE} {exe}",
        missing.join(" and ")
    ))
}

/// A loading error with EPERM although flowtop has the capabilities, under a seccomp
/// filter: almost always a container runtime's default profile, which allows
/// `bpf()` and `perf_event_open()` only with CAP_SYS_ADMIN. Says so, instead of
/// leaving the user with EPERM next to capabilities that look right.
pub fn explain_refusal(e: anyhow::Error) -> anyhow::Error {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eperm = format!("{e:#}").contains("Operation not permitted");
    if eperm && can_trace(effective_caps()) && seccomp_filtered(&status) {
        e.context(
            "bpf() refused (EPERM) despite CAP_BPF and CAP_PERFMON, under a seccomp \
             filter: container runtimes' default profiles allow bpf() and \
             perf_event_open() only with CAP_SYS_ADMIN; use a profile that allows them \
             (deploy/kubernetes/seccomp/flowtop.json)",
        )
    } else {
        e
    }
}

/// `Seccomp: 2` in /proc/PID/status: a seccomp filter is installed.
pub fn seccomp_filtered(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .is_some_and(|v| v.trim() == "2")
}

/// Why the cgroup programs of `--by conn` could not be loaded, when the reason is a
/// missing capability (the kernel only says EPERM).
pub fn net_admin_hint(caps: u64) -> Option<&'static str> {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    (!has(CAP_NET_ADMIN) && !has(CAP_SYS_ADMIN)).then_some("missing capability CAP_NET_ADMIN")
}

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

/// Drops every capability flowtop no longer needs once its programs are attached and
/// its maps open, from all sets (bounding, ambient, inheritable, permitted,
/// effective), and sets no_new_privs, so that a bug later in flowtop cannot load
/// programs, mount, or regain privileges through exec. All sets end empty where this
/// kernel lets a process read a map it holds without CAP_BPF; elsewhere only the one
/// capability that grants `bpf(2)` (CAP_BPF, or CAP_SYS_ADMIN for a process started
/// with that instead) stays. Returns the capabilities kept.
///
/// The test: before anything is dropped, the effective set is emptied for a moment
/// (the permitted set stays, so it can be raised again) and a read-only command (`BPF_MAP_GET_NEXT_KEY`) runs on a map fd this process holds:
/// EPERM means reads need it. Before Linux 5.19, with
/// `kernel.unprivileged_bpf_disabled` set (most distributions' default), every
/// `bpf(2)` command needs CAP_BPF, even on a map fd already held; from 5.19 on only
/// the commands that create maps and load programs check it. Trying tells which
/// case this kernel is, without version numbers.
pub fn drop_after_attach() -> anyhow::Result<u64> {
    use anyhow::Context as _;
    use caps::{CapSet, CapsHashSet};
    let effective =
        caps::read(None, CapSet::Effective).context("reading the effective capabilities")?;
    // CAP_BPF where held, else CAP_SYS_ADMIN (a process started with that alone).
    let grant: CapsHashSet = [caps::Capability::CAP_BPF, caps::Capability::CAP_SYS_ADMIN]
        .into_iter()
        .find(|c| effective.contains(c))
        .into_iter()
        .collect();
    let kept = if grant.is_empty() || map_reads_without_caps(&effective)? {
        CapsHashSet::default()
    } else {
        grant
    };
    set_only(&kept)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
    }
    Ok(kept.iter().fold(0, |m, c| m | c.bitmask()))
}

/// Makes `kept` the whole of the effective, permitted and (where CAP_SETPCAP allows)
/// bounding sets; clears the inheritable and ambient sets.
fn set_only(kept: &caps::CapsHashSet) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use caps::{CapSet, CapsHashSet};
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
        (CapSet::Effective, kept),
        (CapSet::Permitted, kept),
    ] {
        caps::set(None, set, to).with_context(|| format!("setting the {set:?} capabilities"))?;
    }
    Ok(())
}

/// Whether a map fd this process holds can be read with an empty effective set.
/// Restores the effective set to `effective` (all permitted) either way.
fn map_reads_without_caps(effective: &caps::CapsHashSet) -> anyhow::Result<bool> {
    use anyhow::Context as _;
    use caps::{CapSet, CapsHashSet};
    // Without a map fd there is nothing to test: keep the capability (the safe side).
    let Some((fd, key_size)) = held_map() else {
        return Ok(false);
    };
    let mut key = vec![0u8; key_size];
    caps::set(None, CapSet::Effective, &CapsHashSet::default())
        .context("lowering the effective capabilities")?;
    let refused = crate::collect::sys_bpf::first_key(fd, &mut key)
        .err()
        .is_some_and(|e| e.raw_os_error() == Some(libc::EPERM));
    caps::set(None, CapSet::Effective, effective).context("raising the effective capabilities")?;
    Ok(!refused)
}

/// Some BPF map file descriptor of this process (`anon_inode:bpf-map` in
/// /proc/self/fd) and its key size (from its fdinfo).
fn held_map() -> Option<(std::os::fd::RawFd, usize)> {
    fs::read_dir("/proc/self/fd").ok()?.flatten().find_map(|e| {
        let name = e.file_name();
        let fd = name.to_str()?.parse().ok()?;
        if fs::read_link(e.path()).ok()? != std::path::Path::new("anon_inode:bpf-map") {
            return None;
        }
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        let key_size = crate::probe::misses::fdinfo_field(&info, "key_size")?;
        Some((fd, usize::try_from(key_size).ok()?))
    })
}

/// This binary's path for the `setcap` hint: the one the administrator must grant.
pub fn current_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "$(command -v flowtop)".to_string())
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

    #[test]
    fn message_names_only_the_missing_capabilities_and_the_setcap_line() {
        let m = cannot_trace_message(1 << CAP_BPF, "/usr/bin/flowtop").unwrap();
        assert!(m.starts_with("missing capabilities CAP_PERFMON ("), "{m}");
        assert!(
            m.ends_with(&format!("sudo {SETCAP_LINE} /usr/bin/flowtop")),
            "{m}"
        );
        let m = cannot_trace_message(0, "x").unwrap();
        assert!(
            m.starts_with("missing capabilities CAP_BPF and CAP_PERFMON"),
            "{m}"
        );
        assert_eq!(cannot_trace_message(1 << CAP_SYS_ADMIN, "x"), None);
    }

    #[test]
    fn seccomp_mode_two_is_a_filter() {
        assert!(seccomp_filtered(
            "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n"
        ));
        assert!(!seccomp_filtered("Seccomp:\t0\n"));
        assert!(!seccomp_filtered("Name:\tx\n"));
    }

    #[test]
    fn net_admin_hint_only_without_net_admin_or_sys_admin() {
        assert!(net_admin_hint(1 << CAP_BPF).is_some());
        assert_eq!(net_admin_hint(1 << CAP_NET_ADMIN), None);
        assert_eq!(net_admin_hint(1 << CAP_SYS_ADMIN), None);
    }
}
