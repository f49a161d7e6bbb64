//! What the running kernel offers, each fact with the reason when it is missing.
//! Detection only looks (files, BTF); loading is `load`'s job.
use std::path::Path;

use btf_rs::Btf;

use super::btf_offsets::{KernelOffsets, VMLINUX_BTF};

/// Where tracefs lives on current kernels, and where old setups have it.
const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Facts about the running kernel that decide which probes can work.
pub struct KernelFacts {
    /// Field offsets from the kernel's BTF, or why there are none.
    pub offsets: Result<KernelOffsets, String>,
    /// Whether `sock:sock_send_length`/`sock_recv_length` exist (Linux 6.3+).
    pub sock_tracepoints: Result<(), String>,
}

impl KernelFacts {
    pub fn detect() -> Self {
        let btf = read_vmlinux_btf().map_err(|e| {
            format!("cannot read kernel BTF at {VMLINUX_BTF} ({e}); the kernel needs CONFIG_DEBUG_INFO_BTF")
        });
        let offsets = btf
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|b| KernelOffsets::from_btf(b).map_err(|e| format!("{e:#}")));
        let sock_tracepoints = match &btf {
            // tp_btf hooks are described in BTF as `btf_trace_<name>` typedefs.
            Ok(b) if b.resolve_ids_by_name("btf_trace_sock_send_length").is_ok() => Ok(()),
            Ok(_) => Err(NO_SOCK_TRACEPOINTS.to_string()),
            Err(_) => tracefs_event_exists("sock/sock_send_length"),
        };
        Self {
            offsets,
            sock_tracepoints,
        }
    }
}

/// The kernel's BTF, mapped rather than parsed up front: flowtop looks up a handful
/// of types, and parsing all of vmlinux's BTF through a reader cost most of a second
/// and ~25 MB here (see docs/performance.md). Kernels that cannot mmap the file
/// (before 6.16) get one plain read and a parse from memory.
fn read_vmlinux_btf() -> btf_rs::Result<Btf> {
    Btf::from_file_with_backend(VMLINUX_BTF, btf_rs::Backend::Mmap).or_else(|e| {
        log::debug!("mmap of {VMLINUX_BTF} failed ({e}); reading it");
        Btf::from_bytes(&std::fs::read(VMLINUX_BTF)?)
    })
}

const NO_SOCK_TRACEPOINTS: &str =
    "kernel has no sock:sock_send_length/sock_recv_length tracepoints (added in Linux 6.3)";

fn tracefs_event_exists(event: &str) -> Result<(), String> {
    let dir = ensure_tracefs()?;
    if Path::new(&dir).join("events").join(event).exists() {
        Ok(())
    } else {
        Err(NO_SOCK_TRACEPOINTS.to_string())
    }
}

/// Returns tracefs's mount point, mounting it at /sys/kernel/tracing when it is not
/// mounted (fresh machines often lack it). Classic tracepoints need it.
pub fn ensure_tracefs() -> Result<String, String> {
    for dir in TRACEFS_DIRS {
        if Path::new(dir).join("events").is_dir() {
            return Ok(dir.to_string());
        }
    }
    let dir = TRACEFS_DIRS[0];
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in constant");
    let (src, target, fstype) = (c("nodev"), c(dir), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it at {dir} failed: {err}"
        ));
    }
    log::info!("mounted tracefs at {dir}");
    Ok(dir.to_string())
}
