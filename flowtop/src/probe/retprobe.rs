//! kretprobes with enough return slots, made through tracefs's `kprobe_events`.
//!
//! A kretprobe tracks each call in flight in one of `maxactive` slots; a call that
//! enters when all are taken has its return missed. The perf kprobe PMU (how aya
//! attaches) cannot set `maxactive`, so the kernel's default applies: the number of
//! possible CPUs, or max(10, 2 x CPUs) on kernels built with CONFIG_PREEMPTION. Every
//! thread blocked in `recv()` holds a slot, so a busy server exhausts them at once:
//! in Debian's 5.10 guest (2 vCPUs, 2 slots) 16 sending threads were counted 2,391,392
//! of 6,000,000 bytes, and under `preempt=full` 6.1 lost bytes the same way.
//! tracefs's `r<N>:` syntax sets the slots; the event is then opened as a perf
//! tracepoint and the loaded BPF program attached to it with an ioctl (Linux 4.1+).
//! Dropping the probe detaches the program and deletes the event; events left by a
//! flowtop that was killed are deleted by the next one ([`delete_stale`]).
use std::{
    fs::{self, OpenOptions},
    io::Write as _,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{bail, Context as _, Result};

/// Return slots per probe: the kernel's maximum (`KRETPROBE_MAXACTIVE_MAX`). Each is
/// about a hundred bytes of kernel memory.
pub const MAX_ACTIVE: u32 = 4096;

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;

/// Events made by this process are numbered, so names never collide.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// One kretprobe event with a BPF program attached; dropping it detaches both.
pub struct TracefsRetprobe {
    perf: Option<OwnedFd>,
    tracefs: PathBuf,
    /// `GROUP/EVENT`.
    event: String,
}

impl TracefsRetprobe {
    /// Makes `r<MAX_ACTIVE>:` on `func` in `tracefs` and attaches `prog` (a loaded
    /// kprobe-type program) to it.
    pub fn attach(tracefs: &str, func: &str, prog: BorrowedFd<'_>) -> Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let event = format!("flowtop_{}/{func}_ret{n}", std::process::id());
        let mut probe = TracefsRetprobe {
            perf: None,
            tracefs: PathBuf::from(tracefs),
            event,
        };
        probe
            .write_event(&format!("r{MAX_ACTIVE}:{} {func}", probe.event))
            .with_context(|| format!("making kretprobe r{MAX_ACTIVE}:{}", probe.event))?;
        let id_path = probe.tracefs.join("events").join(&probe.event).join("id");
        let id: u64 = fs::read_to_string(&id_path)
            .with_context(|| format!("reading {}", id_path.display()))?
            .trim()
            .parse()
            .with_context(|| format!("parsing {}", id_path.display()))?;
        let perf = open_tracepoint(id).context("perf_event_open of the kretprobe event")?;
        // SAFETY: ioctls on a perf event fd we own, with a program fd argument.
        unsafe {
            if libc::ioctl(
                perf.as_raw_fd(),
                PERF_EVENT_IOC_SET_BPF as _,
                prog.as_raw_fd(),
            ) != 0
            {
                bail!("attaching the program: {}", std::io::Error::last_os_error());
            }
            if libc::ioctl(perf.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) != 0 {
                bail!("enabling the event: {}", std::io::Error::last_os_error());
            }
        }
        probe.perf = Some(perf);
        Ok(probe)
    }

    fn write_event(&self, line: &str) -> std::io::Result<()> {
        OpenOptions::new()
            .append(true)
            .open(self.tracefs.join("kprobe_events"))?
            .write_all(format!("{line}\n").as_bytes())
    }
}

impl Drop for TracefsRetprobe {
    fn drop(&mut self) {
        // The event can only be deleted once no perf event uses it.
        drop(self.perf.take());
        if let Err(e) = self.write_event(&format!("-:{}", self.event)) {
            log::debug!("deleting kretprobe {}: {e}", self.event);
        }
    }
}

/// Deletes the kretprobe events of flowtop processes that no longer exist (killed
/// before they could delete them). Their programs are already detached (closing the
/// perf fd does that); the events would only clutter `kprobe_events`.
pub fn delete_stale(tracefs: &str) {
    let events = PathBuf::from(tracefs).join("kprobe_events");
    let Ok(list) = fs::read_to_string(&events) else {
        return;
    };
    for line in list.lines() {
        // `r4096:flowtop_<pid>/<event> <func>`
        let Some(event) = line
            .split_whitespace()
            .next()
            .and_then(|p| p.split_once(':'))
        else {
            continue;
        };
        let Some(pid) = event
            .1
            .strip_prefix("flowtop_")
            .and_then(|r| r.split_once('/'))
        else {
            continue;
        };
        if pid.0.parse::<u32>().is_ok() && !PathBuf::from("/proc").join(pid.0).exists() {
            let deleted = OpenOptions::new()
                .append(true)
                .open(&events)
                .and_then(|mut f| f.write_all(format!("-:{}\n", event.1).as_bytes()));
            log::debug!("deleting stale kretprobe {}: {deleted:?}", event.1);
        }
    }
}

/// A perf event on tracepoint `id`, all processes, CPU 0: a BPF program attached to a
/// trace event runs for every hit on every CPU.
fn open_tracepoint(id: u64) -> std::io::Result<OwnedFd> {
    // perf_event_attr, first 64 bytes (PERF_ATTR_SIZE_VER0): type, size, config,
    // sample_period, sample_type, read_format, flag bits, wakeup_events.
    let mut attr = [0u64; 8];
    attr[0] = u64::from(PERF_TYPE_TRACEPOINT) | (64u64 << 32);
    attr[1] = id;
    attr[2] = 1;
    attr[6] = 1;
    // SAFETY: perf_event_open reads `attr.size` (64) bytes of the buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
