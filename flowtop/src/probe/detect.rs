//! What the running kernel offers, each fact with the reason when it is missing.
//! Detection only looks (files, BTF); loading is `load`'s job.
use std::path::Path;

use flowtop_common::{hooks, KernelOffsets};

use super::{
    btf::{KernelBtf, Kind},
    btf_offsets::{kernel_offsets, VMLINUX_BTF},
};

/// Where tracefs lives on current kernels, and where old setups have it.
const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Facts about the running kernel that decide which probes can work.
pub struct KernelFacts {
    /// Field offsets from the kernel's BTF, or why there are none.
    pub offsets: Result<KernelOffsets, String>,
    /// Whether `sock:sock_send_length`/`sock_recv_length` exist (Linux 6.3+).
    pub sock_tracepoints: Result<(), String>,
    /// Whether fexit programs can target the hooked functions: the kernel's BTF must
    /// describe them. (Whether the kernel then lets the trampolines attach is only
    /// known by trying: `load` does that.)
    pub fentry: Result<(), String>,
    /// Whether kprobes exist and the hooked functions can be probed.
    pub kprobes: Result<(), String>,
    /// The optional hooks ([`hooks::SEND_OPTIONAL`]) this kernel has.
    pub optional_hooks: Vec<&'static str>,
    /// Kernel BTF type ids of the tp_btf typedefs and fexit functions flowtop may
    /// load against, found here so loading need not parse the kernel's BTF again.
    pub btf_ids: Vec<(Kind, &'static str, u32)>,
    /// How this kernel preempts kernel code, when it does (see `preempt`).
    pub preemption: Option<String>,
}

impl KernelFacts {
    pub fn detect() -> Self {
        let btf = KernelBtf::from_file(VMLINUX_BTF).map_err(|e| {
            format!("cannot read kernel BTF at {VMLINUX_BTF} ({e:#}); the kernel needs CONFIG_DEBUG_INFO_BTF")
        });
        let offsets = btf
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|b| kernel_offsets(b).map_err(|e| format!("{e:#}")));
        let sock_tracepoints = match &btf {
            // tp_btf hooks are described in BTF as `btf_trace_<name>` typedefs.
            Ok(b)
                if b.find(Kind::Typedef, "btf_trace_sock_send_length")
                    .is_some() =>
            {
                Ok(())
            }
            Ok(_) => Err(NO_SOCK_TRACEPOINTS.to_string()),
            Err(_) => tracefs_event_exists("sock/sock_send_length"),
        };
        let fentry = match &btf {
            Ok(b) => required_hooks()
                .find(|f| !btf_has_func(b, f))
                .map_or(Ok(()), |f| {
                    Err(format!(
                        "kernel BTF does not describe function {f}, which fexit programs need"
                    ))
                }),
            Err(e) => Err(e.clone()),
        };
        // The kernel's function list (tracefs or /proc/kallsyms, ~100k lines: tens of
        // milliseconds) is only read when there is no BTF to ask: BTF describes every
        // function of vmlinux, and the attach itself is the final word anyway.
        let kernel_funcs = match &btf {
            Ok(b) => KernelFunctions::Btf(b),
            Err(_) => KernelFunctions::read(),
        };
        let kprobes = kprobes_available().and_then(|()| {
            required_hooks()
                .find(|f| kernel_funcs.lacks(f))
                .map_or(Ok(()), |f| {
                    Err(format!(
                        "kernel function {f} cannot be probed (not in {})",
                        kernel_funcs.source()
                    ))
                })
        });
        let optional_hooks = hooks::SEND_OPTIONAL
            .into_iter()
            .filter(|f| kernel_funcs.has(f))
            .collect();
        let btf_ids = match &btf {
            Ok(b) => BTF_TYPEDEFS
                .iter()
                .map(|&n| (Kind::Typedef, n))
                .chain(
                    hooks::SEND
                        .into_iter()
                        .chain(hooks::RECV)
                        .chain(hooks::SEND_OPTIONAL)
                        .map(|n| (Kind::Func, n)),
                )
                .filter_map(|(kind, name)| Some((kind, name, b.find(kind, name)?)))
                .collect(),
            Err(_) => Vec::new(),
        };
        Self {
            offsets,
            sock_tracepoints,
            fentry,
            kprobes,
            optional_hooks,
            btf_ids,
            preemption: super::preempt::kernel_code_preemptible(),
        }
    }
}
/// The `btf_trace_<tracepoint>` typedefs tp_btf programs are loaded against.
pub const BTF_TYPEDEFS: [&str; 2] = ["btf_trace_sock_send_length", "btf_trace_sock_recv_length"];

fn required_hooks() -> impl Iterator<Item = &'static str> {
    hooks::SEND.into_iter().chain(hooks::RECV)
}

fn btf_has_func(btf: &KernelBtf, name: &str) -> bool {
    btf.find(Kind::Func, name).is_some()
}

/// kprobes need CONFIG_KPROBES: it brings the `kprobe` perf PMU (what aya attaches
/// through) and tracefs's `kprobe_events` (the older way).
fn kprobes_available() -> Result<(), String> {
    if Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || TRACEFS_DIRS
            .iter()
            .any(|d| Path::new(d).join("kprobe_events").exists())
    {
        Ok(())
    } else {
        Err(
            "kprobes not available (CONFIG_KPROBES off: no kprobe PMU in \
             /sys/bus/event_source/devices and no kprobe_events in tracefs)"
                .to_string(),
        )
    }
}

/// Where the names of the kernel's functions come from: its BTF when it has one,
/// else tracefs's `available_filter_functions` (when mounted) or `/proc/kallsyms`,
/// else nowhere (then the attach decides).
enum KernelFunctions<'a> {
    Btf(&'a KernelBtf),
    Listed { source: &'static str, text: String },
    Unknown,
}

impl KernelFunctions<'_> {
    fn read() -> Self {
        let filter_functions = TRACEFS_DIRS.iter().find_map(|d| {
            std::fs::read_to_string(Path::new(d).join("available_filter_functions")).ok()
        });
        match filter_functions {
            Some(text) => Self::Listed {
                source: "available_filter_functions",
                text,
            },
            None => match std::fs::read_to_string("/proc/kallsyms") {
                Ok(text) => Self::Listed {
                    source: "/proc/kallsyms",
                    text,
                },
                Err(_) => Self::Unknown,
            },
        }
    }

    fn source(&self) -> &'static str {
        match self {
            Self::Btf(_) => "the kernel's BTF",
            Self::Listed { source, .. } => source,
            Self::Unknown => "any list",
        }
    }

    /// Known to exist. `available_filter_functions` lines are `name [module]`;
    /// kallsyms lines are `address type name [module]`.
    fn has(&self, name: &str) -> bool {
        match self {
            Self::Btf(b) => btf_has_func(b, name),
            Self::Listed { source, text } => text.lines().any(|line| {
                let mut words = line.split_whitespace();
                match *source {
                    "/proc/kallsyms" => words.nth(2) == Some(name),
                    _ => words.next() == Some(name),
                }
            }),
            Self::Unknown => false,
        }
    }

    /// Known to be missing (nothing is, without a list).
    fn lacks(&self, name: &str) -> bool {
        !matches!(self, Self::Unknown) && !self.has(name)
    }
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
