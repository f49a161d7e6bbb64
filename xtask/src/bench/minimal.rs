//! Minimal programs on flowtop's hooks (`sock:sock_send_length` and
//! `sock:sock_recv_length`), written out instruction by instruction:
//!
//! - the floor, `r0 = 0; exit`, as tp_btf or raw_tp. No design that counts in a
//!   program on these tracepoints can cost less, so the benchmark measures it in the
//!   same run as flowtop: the difference is what flowtop's own work costs, and the
//!   floor's throughput ratio is the best any such monitor could reach on this machine;
//! - one program per map design, each doing only what that design needs per event
//!   (skip failed calls, key by thread-group id, find the key's counter, add the
//!   bytes): a per-CPU hash with plain adds (flowtop's design), one shared hash with
//!   atomic adds, and a per-CPU array with no key at all (the cost of a map update
//!   without any lookup). Side by side they price the map design alone, which
//!   flowtop's full programs cannot show.
//!
//! Loaded with `bpf(2)` directly: a few instructions need no ELF object or loader.
use std::{
    ffi::CString,
    fs, io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{Context as _, Result};
use flowtop::dev::{fdinfo_field, sys_bpf, KernelBtf, Kind};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;
/// The hooks, with the byte offset of the counter each adds to in the design
/// programs' `{ rx_bytes, tx_bytes }` value.
const HOOKS: [(&str, i16); 2] = [("sock_send_length", 8), ("sock_recv_length", 0)];

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// Map capacity of the design programs: room for every process on a test machine.
const DESIGN_MAX_ENTRIES: u32 = 16384;

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

/// The `map_create` member of `union bpf_attr`, up to `map_flags` (the kernel
/// zeroes the rest).
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
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

/// Which minimal program to attach to both hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minimal {
    /// `r0 = 0; exit` as tp_btf.
    FloorTpBtf,
    /// `r0 = 0; exit` as raw_tp.
    FloorRawTp,
    /// Per-CPU hash keyed by tgid, plain add into this CPU's slot (flowtop's design).
    PerCpuHash,
    /// One hash keyed by tgid shared by all CPUs, atomic add (`lock xadd`).
    SharedHashAtomic,
    /// Per-CPU array, slot 0 for everyone: a map update with no key to look up.
    PerCpuArray,
}

impl Minimal {
    pub fn label(self) -> &'static str {
        match self {
            Minimal::FloorTpBtf => "floor tp_btf",
            Minimal::FloorRawTp => "floor raw_tp",
            Minimal::PerCpuHash => "minimal tp_btf, per-CPU hash, plain add",
            Minimal::SharedHashAtomic => "minimal tp_btf, shared hash, atomic add",
            Minimal::PerCpuArray => "minimal tp_btf, per-CPU array (no key)",
        }
    }

    fn is_tp_btf(self) -> bool {
        self != Minimal::FloorRawTp
    }

    /// The design's map, or None for the floor.
    fn map_attr(self) -> Option<MapCreateAttr> {
        let (map_type, key_size, max_entries) = match self {
            Minimal::FloorTpBtf | Minimal::FloorRawTp => return None,
            Minimal::PerCpuHash => (BPF_MAP_TYPE_PERCPU_HASH, 4, DESIGN_MAX_ENTRIES),
            Minimal::SharedHashAtomic => (BPF_MAP_TYPE_HASH, 4, DESIGN_MAX_ENTRIES),
            Minimal::PerCpuArray => (BPF_MAP_TYPE_PERCPU_ARRAY, 4, 1),
        };
        Some(MapCreateAttr {
            map_type,
            key_size,
            // { rx_bytes: u64, tx_bytes: u64 }
            value_size: 16,
            max_entries,
            map_flags: 0,
        })
    }

    /// The program for one hook; `field` is the value's byte offset to add to
    /// (0: rx, 8: tx).
    fn program(self, map_fd: i32, field: i16) -> Vec<u64> {
        match self {
            Minimal::FloorTpBtf | Minimal::FloorRawTp => vec![mov_k(0, 0), exit()],
            Minimal::PerCpuHash | Minimal::SharedHashAtomic => {
                let atomic = self == Minimal::SharedHashAtomic;
                let mut p = ret_or_exit();
                let skip_at = p.len() - 1;
                p.extend([
                    call(HELPER_GET_CURRENT_PID_TGID),
                    insn(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32),
                    insn(BPF_STX | BPF_MEM | BPF_W, 10, 0, -4, 0),
                ]);
                p.extend(lookup(map_fd));
                let miss_at = p.len();
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                p.extend(add_r6(field, atomic));
                let done_at = p.len();
                p.push(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
                let insert = p.len();
                // A new key: { rx, tx } = 0 on the stack, this event's bytes in `field`.
                p.extend([
                    mov_k(1, 0),
                    insn(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -24, 0),
                    insn(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -16, 0),
                    insn(BPF_STX | BPF_MEM | BPF_DW, 10, 6, -24 + field, 0),
                ]);
                p.extend(ld_map_fd(1, map_fd));
                p.extend([
                    insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
                    insn(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
                    insn(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
                    insn(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -24),
                    mov_k(4, BPF_NOEXIST),
                    call(HELPER_MAP_UPDATE_ELEM),
                ]);
                let out = p.len();
                p.extend([mov_k(0, 0), exit()]);
                jump(&mut p, skip_at, out);
                jump(&mut p, miss_at, insert);
                jump(&mut p, done_at, out);
                p
            }
            Minimal::PerCpuArray => {
                let mut p = ret_or_exit();
                let skip_at = p.len() - 1;
                p.push(insn(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0));
                p.extend(lookup(map_fd));
                let miss_at = p.len();
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                p.extend(add_r6(field, false));
                let out = p.len();
                p.extend([mov_k(0, 0), exit()]);
                jump(&mut p, skip_at, out);
                jump(&mut p, miss_at, out);
                p
            }
        }
    }
}

// eBPF instruction encoding (include/uapi/linux/bpf.h, bpf_common.h).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU: u8 = 0x04;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_ATOMIC: u8 = 0xc0;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JA: u8 = 0x00;
const BPF_JEQ: u8 = 0x10;
const BPF_JSLE: u8 = 0xd0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_NOEXIST: i32 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_GET_CURRENT_PID_TGID: i32 = 14;

/// One instruction: opcode, dst and src registers, offset, immediate.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    code as u64
        | ((dst as u64 & 0xf) << 8)
        | ((src as u64 & 0xf) << 12)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}

const fn mov_k(dst: u8, imm: i32) -> u64 {
    insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

const fn call(helper: i32) -> u64 {
    insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
}

const fn exit() -> u64 {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// `dst = map` (a 16-byte `ld_imm64` the kernel resolves from the fd).
fn ld_map_fd(dst: u8, fd: i32) -> [u64; 2] {
    [
        insn(BPF_LD | BPF_IMM | BPF_DW, dst, BPF_PSEUDO_MAP_FD, 0, fd),
        0,
    ]
}

/// `r6 = ret` (the hooks' second argument, an `int`), and a jump (offset patched
/// later, it is the last instruction) when it is not positive, as flowtop skips
/// failed calls.
fn ret_or_exit() -> Vec<u64> {
    vec![
        insn(BPF_LDX | BPF_MEM | BPF_DW, 6, 1, 8, 0),
        insn(BPF_ALU | BPF_MOV | BPF_X, 6, 6, 0, 0),
        insn(BPF_JMP32 | BPF_JSLE | BPF_K, 6, 0, 0, 0),
    ]
}

/// `r0 = bpf_map_lookup_elem(map, r10 - 4)`.
fn lookup(map_fd: i32) -> Vec<u64> {
    let mut p = ld_map_fd(1, map_fd).to_vec();
    p.extend([
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        insn(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
        call(HELPER_MAP_LOOKUP_ELEM),
    ]);
    p
}

/// `*(u64 *)(r0 + field) += r6`, plainly or as one atomic instruction.
fn add_r6(field: i16, atomic: bool) -> Vec<u64> {
    if atomic {
        vec![insn(
            BPF_STX | BPF_ATOMIC | BPF_DW,
            0,
            6,
            field,
            BPF_ADD as i32,
        )]
    } else {
        vec![
            insn(BPF_LDX | BPF_MEM | BPF_DW, 1, 0, field, 0),
            insn(BPF_ALU64 | BPF_ADD | BPF_X, 1, 6, 0, 0),
            insn(BPF_STX | BPF_MEM | BPF_DW, 0, 1, field, 0),
        ]
    }
}

/// Points the jump at `at` to instruction `target`.
fn jump(p: &mut [u64], at: usize, target: usize) {
    let off = (target as i64 - at as i64 - 1) as i16;
    p[at] = (p[at] & !(0xffff << 16)) | ((off as u16 as u64) << 16);
}

/// A minimal program attached to both hooks; dropping it detaches them.
pub struct Attached {
    progs: Vec<OwnedFd>,
    _links: Vec<OwnedFd>,
}

impl Attached {
    pub fn attach(kind: Minimal) -> Result<Self> {
        let btf = if kind.is_tp_btf() {
            Some(KernelBtf::from_file("/sys/kernel/btf/vmlinux").context("reading kernel BTF")?)
        } else {
            None
        };
        // The programs hold their own reference: the fd can close after loading.
        let map = match kind.map_attr() {
            // SAFETY: a `map_create` attr without pointers.
            Some(mut attr) => Some(
                unsafe { bpf_fd(BPF_MAP_CREATE, &mut attr) }
                    .with_context(|| format!("creating the map of {}", kind.label()))?,
            ),
            None => None,
        };
        let map_fd = map.as_ref().map_or(-1, |m| m.as_raw_fd());
        let license = CString::new("GPL").expect("no NUL");
        let (mut progs, mut links) = (Vec::new(), Vec::new());
        for (hook, field) in HOOKS {
            let insns = kind.program(map_fd, field);
            let mut attr = ProgLoadAttr {
                insn_cnt: insns.len() as u32,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                ..Default::default()
            };
            attr.prog_name[..7].copy_from_slice(b"minimal");
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
            // SAFETY: a `prog_load` attr pointing at `insns` and the license, both alive.
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
            time += fdinfo_field(&info, "run_time_ns").unwrap_or(0);
            count += fdinfo_field(&info, "run_cnt").unwrap_or(0);
        }
        Ok((time, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        // `r0 = 0; exit`, the floor since the first benchmark.
        assert_eq!([mov_k(0, 0), exit()], [0xb7, 0x95]);
        // r6 = *(u64 *)(r1 + 8): opcode 0x79, dst 6, src 1, off 8.
        assert_eq!(ret_or_exit()[0], 0x0008_1679);
        // lock *(u64 *)(r0 + 8) += r6: opcode 0xdb, src 6, off 8, imm BPF_ADD.
        assert_eq!(add_r6(8, true)[0], 0x0008_60db);
    }

    #[test]
    fn jumps_land_on_the_exit_sequence() {
        for kind in [
            Minimal::PerCpuHash,
            Minimal::SharedHashAtomic,
            Minimal::PerCpuArray,
        ] {
            let p = kind.program(3, 8);
            assert_eq!(p[p.len() - 2..], [mov_k(0, 0), exit()], "{kind:?}");
            // The not-positive test jumps forward to `r0 = 0`.
            let off = (p[2] >> 16) as u16 as i16 as usize;
            assert_eq!(3 + off, p.len() - 2, "{kind:?}");
        }
    }
}
