//! Loads the embedded eBPF object with its configuration global and map sizes set, and attaches
//! exactly one family's programs. On any failure everything loaded so far is dropped,
//! which detaches it: flowtop is never left half-attached.
use std::os::fd::AsFd as _;

use anyhow::{anyhow, Context as _, Result};
use aya::{
    programs::{BtfTracePoint, FExit, KProbe, RawTracePoint, TracePoint},
    Btf, Ebpf, EbpfLoader,
};
use flowtop_common::{
    hooks, programs, KernelConfig, KernelOffsets, CONFIG_GLOBAL, MAP_EXITS, MAP_FLOW_BYTES,
    MAP_PROC_BYTES,
};

use super::{
    btf::{sparse_btf, Kind},
    detect::{ensure_tracefs, BTF_TYPEDEFS},
    exit_reclaim,
    retprobe::{self, TracefsRetprobe},
    select::{Candidate, NoProbe},
    Family, ProgramKind, PROGRAM_KIND_ENV,
};

/// The eBPF object built by build.rs (aya-build), embedded in the binary.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowtop"));

/// Settings the programs are loaded with.
pub struct LoadConfig {
    /// Capacity of the per-process map.
    pub max_entries: u32,
    pub offsets: Option<KernelOffsets>,
    /// The other filters and the flow mode (`--by conn`/`--by cgroup`).
    pub filters: crate::filter::KernelFilters,
    /// Kernel BTF type ids found at detection ([`super::detect::KernelFacts::btf_ids`]).
    pub btf_ids: Vec<(Kind, &'static str, u32)>,
}

/// Programs loaded and attached; dropping this detaches them.
pub struct Attached {
    pub ebpf: Ebpf,
    pub family: Family,
    pub kind: ProgramKind,
    /// The kprobe family's return probes, when made through tracefs.
    pub retprobes: Vec<TracefsRetprobe>,
    /// Exited processes' keys are reclaimed by the kernel ([`exit_reclaim`]).
    pub kernel_reclaim: bool,
}

/// A loaded object and the tracefs-made probes its programs are attached to.
type Loaded = (Ebpf, Vec<TracefsRetprobe>);

/// Tries each candidate and program kind in order; the first that loads and attaches
/// wins. Otherwise the error lists what was tried and why each failed.
pub fn attach_first(candidates: &[Candidate], cfg: &LoadConfig) -> Result<Attached, NoProbe> {
    raise_memlock_rlimit();
    let mut no = NoProbe::default();
    let forced = ProgramKind::forced();
    for (i, candidate) in candidates.iter().enumerate() {
        let mut failures = Vec::new();
        for &kind in &candidate.kinds {
            if forced.is_some_and(|f| f != kind) {
                failures.push(format!("{kind}: skipped ({PROGRAM_KIND_ENV} is set)"));
                continue;
            }
            match attach_kind(candidate, kind, cfg) {
                Ok((mut ebpf, retprobes)) => {
                    log::info!("attached probe family {} as {kind}", candidate.family);
                    let kernel_reclaim =
                        exit_reclaim::attach(&mut ebpf, reclaim_skipped(cfg).as_deref());
                    for later in &candidates[i + 1..] {
                        log::info!(
                            "not trying probe family {}: {} attached first (cheaper)",
                            later.family,
                            candidate.family
                        );
                    }
                    return Ok(Attached {
                        ebpf,
                        family: candidate.family,
                        kind,
                        retprobes,
                        kernel_reclaim,
                    });
                }
                Err(e) => {
                    log::info!("{} as {kind} failed: {e:#}", candidate.family);
                    failures.push(format!("{kind}: {e:#}"));
                }
            }
        }
        no.reasons.push((candidate.family, failures.join(", ")));
    }
    Err(no)
}

/// The counting programs of `kind`, plus the rename hook that keeps process names
/// current. Without that hook (a kernel where it does not attach) the programs are
/// loaded again to take the name on every event instead, which costs more per event
/// but never shows a stale name.
fn attach_kind(candidate: &Candidate, kind: ProgramKind, cfg: &LoadConfig) -> Result<Loaded> {
    let (mut ebpf, retprobes) = attach_counting(candidate, kind, cfg, false)?;
    match attach_rename_hook(&mut ebpf) {
        Ok(()) => Ok((ebpf, retprobes)),
        Err(e) => {
            log::info!("{e:#}: taking process names on every event instead");
            drop(retprobes);
            drop(ebpf);
            attach_counting(candidate, kind, cfg, true)
        }
    }
}

/// `task:task_rename` as a raw tracepoint (no BTF or tracefs needed, Linux 4.17+).
fn attach_rename_hook(ebpf: &mut Ebpf) -> Result<()> {
    let p: &mut RawTracePoint = program(ebpf, programs::RAW_TP_TASK_RENAME)?.try_into()?;
    p.load()
        .and_then(|()| p.attach(programs::TASK_RENAME).map(drop))
        .with_context(|| format!("attaching raw_tp/{}", programs::TASK_RENAME))
}

fn attach_counting(
    candidate: &Candidate,
    kind: ProgramKind,
    cfg: &LoadConfig,
    comm_each_event: bool,
) -> Result<Loaded> {
    let mut ebpf = load_object(cfg, comm_each_event)?;
    let mut retprobes = Vec::new();
    match (candidate.family, kind) {
        (Family::Tracepoint, ProgramKind::TpBtf) => {
            let btf = btf_for(&cfg.btf_ids, Kind::Typedef, &BTF_TYPEDEFS)?;
            for (prog, hook) in [
                (programs::TP_BTF_SEND, "sock_send_length"),
                (programs::TP_BTF_RECV, "sock_recv_length"),
            ] {
                let p: &mut BtfTracePoint = program(&mut ebpf, prog)?.try_into()?;
                p.load(hook, &btf)
                    .with_context(|| format!("loading tp_btf/{hook}"))?;
                p.attach()
                    .with_context(|| format!("attaching tp_btf/{hook}"))?;
            }
        }
        (Family::Tracepoint, ProgramKind::RawTp) => {
            for (prog, hook) in [
                (programs::RAW_TP_SEND, "sock_send_length"),
                (programs::RAW_TP_RECV, "sock_recv_length"),
            ] {
                let p: &mut RawTracePoint = program(&mut ebpf, prog)?.try_into()?;
                p.load().with_context(|| format!("loading raw_tp/{hook}"))?;
                p.attach(hook)
                    .with_context(|| format!("attaching raw_tp/{hook}"))?;
            }
        }
        (Family::Tracepoint, ProgramKind::Classic) => {
            // aya caches the tracefs location on first use: mount it before that.
            ensure_tracefs().map_err(|e| anyhow!(e))?;
            for (prog, hook) in [
                (programs::TP_SEND, "sock_send_length"),
                (programs::TP_RECV, "sock_recv_length"),
            ] {
                let p: &mut TracePoint = program(&mut ebpf, prog)?.try_into()?;
                p.load()
                    .with_context(|| format!("loading tracepoint sock/{hook}"))?;
                p.attach("sock", hook)
                    .with_context(|| format!("attaching tracepoint sock/{hook}"))?;
            }
        }
        (Family::Fentry, ProgramKind::Fexit) => {
            let optional = programs::FEXIT_OPTIONAL
                .iter()
                .filter(|(_, f)| candidate.extra_hooks.contains(f));
            let funcs: Vec<&str> = programs::FEXIT
                .iter()
                .chain(optional.clone())
                .map(|&(_, f)| f)
                .collect();
            let btf = btf_for(&cfg.btf_ids, Kind::Func, &funcs)?;
            for &(prog, func) in programs::FEXIT.iter().chain(optional) {
                let p: &mut FExit = program(&mut ebpf, prog)?.try_into()?;
                p.load(func, &btf)
                    .map_err(|e| fentry_refused(&format!("loading fexit/{func}"), e))?;
                p.attach()
                    .map_err(|e| fentry_refused(&format!("attaching fexit/{func}"), e))?;
                log::debug!("attached fexit/{func}");
            }
        }
        (Family::Kprobe, ProgramKind::Kprobe) => {
            let send: Vec<&str> = hooks::SEND
                .iter()
                .chain(&candidate.extra_hooks)
                .copied()
                .collect();
            // Return probes first: a return without a stashed entry is ignored, while
            // an entry whose return probe is missing would leave a stale stash behind.
            // Return probes through tracefs where it can make them, for enough
            // return slots (see retprobe.rs); else through aya with the kernel's.
            let tracefs = ensure_tracefs();
            if let Ok(t) = &tracefs {
                retprobe::delete_stale(t);
            }
            for (prog, funcs, ret) in [
                (programs::KRETPROBE_SEND, &send[..], true),
                (programs::KRETPROBE_RECV, &hooks::RECV[..], true),
                (programs::KPROBE_SEND, &send[..], false),
                (programs::KPROBE_RECV, &hooks::RECV[..], false),
            ] {
                let p: &mut KProbe = program(&mut ebpf, prog)?.try_into()?;
                p.load()
                    .map_err(|e| kprobe_refused(&format!("loading {prog}"), e))?;
                for func in funcs {
                    if ret {
                        let made = tracefs
                            .as_ref()
                            .map_err(|e| anyhow!("{e}"))
                            .and_then(|t| TracefsRetprobe::attach(t, func, p.fd()?.as_fd()));
                        match made {
                            Ok(probe) => {
                                log::debug!(
                                    "attached {prog} to {func} (tracefs, {} return slots)",
                                    retprobe::MAX_ACTIVE
                                );
                                retprobes.push(probe);
                                continue;
                            }
                            Err(e) => log::warn!(
                                "kretprobe on {func} with the kernel's default return slots \
                                 (about one per CPU): {e:#}; more calls in flight at once than \
                                 that (threads blocked in recv) go uncounted"
                            ),
                        }
                    }
                    p.attach(func, 0)
                        .map_err(|e| kprobe_refused(&format!("attaching {prog} to {func}"), e))?;
                    log::debug!("attached {prog} to {func}");
                }
            }
        }
        (family, kind) => return Err(anyhow!("{family} has no {kind} programs")),
    }
    Ok((ebpf, retprobes))
}

/// An `aya::Btf` in which aya's loaders find `names` (of `kind`) at their kernel
/// type ids: aya's `BtfTracePoint::load`/`FExit::load` use the `Btf` only for that
/// lookup. Built from the ids detection found ([`sparse_btf`]), so the kernel's BTF
/// is not parsed a second time (that full parse was ~10 MB of flowtop's peak RSS);
/// falls back to the full parse when an id is unknown.
fn btf_for(ids: &[(Kind, &'static str, u32)], kind: Kind, names: &[&str]) -> Result<Btf> {
    let wanted: Option<Vec<_>> = names
        .iter()
        .map(|n| ids.iter().find(|w| w.0 == kind && w.1 == *n).copied())
        .collect();
    match wanted {
        Some(wanted) => {
            let raw = sparse_btf(&wanted)?;
            Btf::parse(&raw, aya::Endianness::Little).context("parsing the sparse BTF")
        }
        None => Btf::from_sys_fs().context("reading kernel BTF"),
    }
}

/// The kernel's internal "operation not supported" (524), which bpf(2) leaks.
const ENOTSUPP: i32 = 524;

/// Names what the kernel refused, with the kernel feature behind it.
fn fentry_refused(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    let hint = if is_errno(&e, libc::EPERM) || is_errno(&e, libc::EACCES) {
        " (this kernel does not let BPF trampolines attach: it needs \
         CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS and BPF tracing not locked down)"
    } else if is_errno(&e, ENOTSUPP) || is_errno(&e, libc::EOPNOTSUPP) {
        " (this kernel has no BPF trampolines for this architecture or configuration)"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!("fentry refused: {what}{hint}"))
}

fn kprobe_refused(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    let hint = if is_errno(&e, libc::ENOENT) {
        " (kprobes not available, or the function cannot be probed on this kernel)"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!("kprobe refused: {what}{hint}"))
}

/// True when an `io::Error` with this errno is anywhere in `e`'s source chain.
fn is_errno(e: &(dyn std::error::Error + 'static), errno: i32) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(errno) {
                return true;
            }
        }
        next = err.source();
    }
    false
}

/// Why the exit program will not be tried with this configuration, if so.
fn reclaim_skipped(cfg: &LoadConfig) -> Option<String> {
    exit_reclaim::not_tried(cfg.offsets.is_some(), exit_reclaim::summed_cpus())
}

fn load_object(cfg: &LoadConfig, comm_each_event: bool) -> Result<Ebpf> {
    // No CO-RE relocations in the object (offsets arrive in the CONFIG global), so aya never
    // parses the kernel's BTF here (it only does for objects with relocations or typed
    // ksyms); tp_btf/fentry loads get a few-type BTF instead (see `btf_for`).
    let mut config = KernelConfig {
        comm_each_event: u32::from(comm_each_event),
        possible_cpus: exit_reclaim::summed_cpus().unwrap_or(0),
        offsets: cfg.offsets.unwrap_or_default(),
        ..KernelConfig::UNSET
    };
    cfg.filters.configure(&mut config);
    // FLOW_BYTES is only written with a flow mode: otherwise keep it one entry small.
    let flow_entries = if config.flow_mode != 0 {
        cfg.max_entries
    } else {
        1
    };
    // The exit ring is only written by the exit program: one page when it is not tried.
    let ring_bytes = match reclaim_skipped(cfg) {
        None => flowtop_common::EXITS_RING_BYTES,
        Some(_) => page_size(),
    };
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(MAP_PROC_BYTES, cfg.max_entries)
        .map_max_entries(MAP_FLOW_BYTES, flow_entries)
        .map_max_entries(MAP_EXITS, ring_bytes)
        .override_global(CONFIG_GLOBAL, &config, true);
    loader.load(EBPF_OBJECT).context("loading the eBPF object")
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).unwrap_or(4096)
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::programs::Program> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the eBPF object"))
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones ignore it.
fn raise_memlock_rlimit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
