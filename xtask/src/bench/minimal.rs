//! The floor: the cheapest possible program on flowtop's hooks, `r0 = 0; exit`,
//! attached to `sock:sock_send_length` and `sock:sock_recv_length` as tp_btf or raw_tp.
//!
//! No design that counts in a program on these tracepoints can cost less than this,
//! so the benchmark measures it in the same run as flowtop: the difference between the
//! two is what flowtop's own work costs, and the floor's throughput ratio is the best
//! any such monitor could reach on this machine.
//!
//! Loaded with `bpf(2)` directly (two instructions need no ELF object or loader).
use std::{
    ffi::CString,
    fs, io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{Context as _, Result};
use flowtop::{
    collect::sys_bpf::sys_bpf,
    probe::btf::{KernelBtf, Kind},
};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;
const HOOKS: [&str; 2] = ["sock_send_length", "sock_recv_length"];

/// `r0 = 0` (BPF_ALU64 | BPF_MOV | BPF_K), then `exit` (BPF_JMP | BPF_EXIT).
const NOOP: [u64; 2] = [0xb7, 0x95];

/// The `prog_load` member of `union bpf_attr`, up to `attach_btf_obj_fd`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    _pad: u32,
}

/// The `raw_tracepoint` member of `union bpf_attr`.
#[repr(C)]
struct RawTpAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// A `bpf(2)` command that returns a new file descriptor.
///
/// # Safety
/// As [`sys_bpf`]: `attr` matches `cmd` and its pointers outlive the call.
unsafe fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: the caller's contract.
    let fd = unsafe { sys_bpf(cmd, attr) }?;
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorKind {
    TpBtf,
    RawTp,
}

impl FloorKind {
    pub fn label(self) -> &'static str {
        match self {
            FloorKind::TpBtf => "floor tp_btf",
            FloorKind::RawTp => "floor raw_tp",
        }
    }
}

/// No-op programs attached to both hooks; dropping it detaches them.
pub struct Floor {
    progs: Vec<OwnedFd>,
    _links: Vec<OwnedFd>,
}

impl Floor {
    pub fn attach(kind: FloorKind) -> Result<Self> {
        let btf = match kind {
            FloorKind::TpBtf => Some(
                KernelBtf::from_file("/sys/kernel/btf/vmlinux").context("reading kernel BTF")?,
            ),
            FloorKind::RawTp => None,
        };
        let license = CString::new("GPL").expect("no NUL");
        let (mut progs, mut links) = (Vec::new(), Vec::new());
        for hook in HOOKS {
            let mut attr = ProgLoadAttr {
                insn_cnt: NOOP.len() as u32,
                insns: NOOP.as_ptr() as u64,
                license: license.as_ptr() as u64,
                ..Default::default()
            };
            attr.prog_name[..5].copy_from_slice(b"floor");
            match &btf {
                Some(btf) => {
                    attr.prog_type = BPF_PROG_TYPE_TRACING;
                    attr.expected_attach_type = BPF_TRACE_RAW_TP;
                    attr.attach_btf_id = btf
                        .find(Kind::Typedef, &format!("btf_trace_{hook}"))
                        .with_context(|| format!("no btf_trace_{hook} in kernel BTF"))?;
                }
                None => attr.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT,
            }
            // SAFETY: a `prog_load` attr pointing at NOOP and the license, both alive.
            let prog = unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) }
                .with_context(|| format!("loading {} for {hook}", kind.label()))?;
            let name = CString::new(hook).expect("no NUL");
            let mut open = RawTpAttr {
                // tp_btf programs name their tracepoint by BTF id, at load.
                name: if btf.is_some() {
                    0
                } else {
                    name.as_ptr() as u64
                },
                prog_fd: prog.as_raw_fd() as u32,
                _pad: 0,
            };
            links.push(
                // SAFETY: a `raw_tracepoint` attr; `name` is alive (or null).
                unsafe { bpf_fd(BPF_RAW_TRACEPOINT_OPEN, &mut open) }
                    .with_context(|| format!("attaching {} to {hook}", kind.label()))?,
            );
            progs.push(prog);
        }
        Ok(Self {
            progs,
            _links: links,
        })
    }

    /// `(run_time_ns, run_cnt)` summed over both programs (needs
    /// `kernel.bpf_stats_enabled`).
    pub fn stats(&self) -> Result<(u64, u64)> {
        let (mut time, mut count) = (0, 0);
        for prog in &self.progs {
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", prog.as_raw_fd()))?;
            let field = |name: &str| -> u64 {
                info.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            time += field("run_time_ns:");
            count += field("run_cnt:");
        }
        Ok((time, count))
    }
}
