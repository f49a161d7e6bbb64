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
//!   flowtop's full programs cannot show;
//! - designs that avoid the hash lookup on the common path (issue 18): a
//!   direct-mapped array indexed by `tgid & (slots - 1)` in front of the per-CPU hash,
//!   each slot tagged with the tgid that owns it (claimed with `cmpxchg`, the hash
//!   taking over on a collision), shared with atomic adds or per-CPU; and task local
//!   storage, one counter pair per thread created on first use, which userspace
//!   would aggregate by tgid when it reads.
//!
//! Loaded with `bpf(2)` directly: a few instructions need no ELF object or loader.
use std::{
    ffi::CString,
    fs, io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{bail, Context as _, Result};
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

const BPF_BTF_LOAD: libc::c_long = 18;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;
const BPF_F_NO_PREALLOC: u32 = 1;
/// Userspace can `mmap` the array and read counters with plain loads, no syscall.
const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Map capacity of the design programs: room for every process on a test machine.
const DESIGN_MAX_ENTRIES: u32 = 16384;
/// Slots of the direct-mapped arrays (a power of two: slot = tgid & (slots - 1)).
pub const DIRECT_SLOTS: u32 = 16384;
/// A direct-mapped slot: `{ tag: u32 (owner tgid, 0 = free), pad: u32, rx: u64, tx: u64 }`.
pub const DIRECT_VALUE_SIZE: u32 = 24;
/// Offset of `rx` in a direct-mapped slot (the hooks' `field` is added to it).
const DIRECT_COUNTERS: i16 = 8;

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

/// The `map_create` member of `union bpf_attr`, up to `btf_value_type_id` (the
/// kernel zeroes the rest).
#[repr(C)]
#[derive(Default)]
pub(super) struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
}

/// The `BPF_BTF_LOAD` member of `union bpf_attr`.
#[repr(C)]
struct BtfLoadAttr {
    btf: u64,
    log_buf: u64,
    size: u32,
    log_size: u32,
    log_level: u32,
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
pub(super) unsafe fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
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
    /// [`Minimal::PerCpuArray`] after a `bpf_get_current_pid_tgid` call whose result
    /// it ignores: the price of finding the tgid, which every keyed design pays.
    PerCpuArrayTgid,
    /// One mmapable array shared by all CPUs, slot `tgid & (slots - 1)` tagged with
    /// its owner, atomic add; the per-CPU hash on a collision.
    DirectShared,
    /// As [`Minimal::DirectShared`], with the tgid read from the current task
    /// (`bpf_get_current_task_btf`, a BTF-checked load of `task_struct.tgid`)
    /// instead of `bpf_get_current_pid_tgid`.
    DirectSharedTask,
    /// The same slots per CPU, plain add (claims still by `cmpxchg`).
    DirectPerCpu,
    /// The same slots per CPU, atomic add: what the per-CPU design costs if its
    /// programs could be preempted by others on the same CPU.
    DirectPerCpuAtomic,
    /// Task local storage, one `{ rx, tx }` per thread created on first use.
    TaskStorage,
}

impl Minimal {
    pub fn label(self) -> &'static str {
        match self {
            Minimal::FloorTpBtf => "floor tp_btf",
            Minimal::FloorRawTp => "floor raw_tp",
            Minimal::PerCpuHash => "minimal tp_btf, per-CPU hash, plain add",
            Minimal::SharedHashAtomic => "minimal tp_btf, shared hash, atomic add",
            Minimal::PerCpuArray => "minimal tp_btf, per-CPU array (no key)",
            Minimal::PerCpuArrayTgid => "minimal tp_btf, per-CPU array (no key), tgid read",
            Minimal::DirectShared => "minimal tp_btf, direct-mapped shared array, atomic add",
            Minimal::DirectSharedTask => {
                "minimal tp_btf, direct-mapped shared array, atomic add, tgid from task"
            }
            Minimal::DirectPerCpu => "minimal tp_btf, direct-mapped per-CPU array, plain add",
            Minimal::DirectPerCpuAtomic => {
                "minimal tp_btf, direct-mapped per-CPU array, atomic add"
            }
            Minimal::TaskStorage => "minimal tp_btf, task storage, plain add",
        }
    }

    fn is_tp_btf(self) -> bool {
        self != Minimal::FloorRawTp
    }

    /// The design's maps (none for the floor); `btf_fd` is the counters' BTF,
    /// which only task storage needs.
    fn maps(self, btf_fd: u32) -> Vec<MapCreateAttr> {
        // { rx_bytes: u64, tx_bytes: u64 } by tgid.
        let hash = |map_type| MapCreateAttr {
            map_type,
            key_size: 4,
            value_size: 16,
            max_entries: DESIGN_MAX_ENTRIES,
            ..Default::default()
        };
        let direct = |map_type, map_flags| MapCreateAttr {
            map_type,
            key_size: 4,
            value_size: DIRECT_VALUE_SIZE,
            max_entries: DIRECT_SLOTS,
            map_flags,
            ..Default::default()
        };
        match self {
            Minimal::FloorTpBtf | Minimal::FloorRawTp => vec![],
            Minimal::PerCpuHash => vec![hash(BPF_MAP_TYPE_PERCPU_HASH)],
            Minimal::SharedHashAtomic => vec![hash(BPF_MAP_TYPE_HASH)],
            Minimal::PerCpuArray | Minimal::PerCpuArrayTgid => vec![MapCreateAttr {
                max_entries: 1,
                ..hash(BPF_MAP_TYPE_PERCPU_ARRAY)
            }],
            Minimal::DirectShared | Minimal::DirectSharedTask => vec![
                direct(BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE),
                hash(BPF_MAP_TYPE_PERCPU_HASH),
            ],
            Minimal::DirectPerCpu | Minimal::DirectPerCpuAtomic => vec![
                direct(BPF_MAP_TYPE_PERCPU_ARRAY, 0),
                hash(BPF_MAP_TYPE_PERCPU_HASH),
            ],
            Minimal::TaskStorage => vec![MapCreateAttr {
                max_entries: 0,
                map_flags: BPF_F_NO_PREALLOC,
                btf_fd,
                btf_key_type_id: BTF_KEY_TYPE,
                btf_value_type_id: BTF_VALUE_TYPE,
                ..hash(BPF_MAP_TYPE_TASK_STORAGE)
            }],
        }
    }

    /// The program for one hook, with the fds of [`Minimal::maps`]; `field` is the
    /// counters' byte offset to add to (0: rx, 8: tx), `task_tgid` the offset of
    /// `tgid` in the kernel's `task_struct`.
    fn program(self, maps: &[i32], field: i16, task_tgid: i16) -> Vec<u64> {
        if matches!(self, Minimal::FloorTpBtf | Minimal::FloorRawTp) {
            return vec![mov_k(0, 0), exit()];
        }
        let mut p = ret_or_exit();
        let skip_at = p.len() - 1;
        let mut exits = vec![skip_at];
        match self {
            Minimal::FloorTpBtf | Minimal::FloorRawTp => unreachable!("returned above"),
            Minimal::PerCpuHash | Minimal::SharedHashAtomic => {
                p.extend(store_tgid());
                p.extend(hash_add(maps[0], field, self == Minimal::SharedHashAtomic));
                let out = p.len() - 2;
                jump(&mut p, skip_at, out);
                return p;
            }
            Minimal::PerCpuArray | Minimal::PerCpuArrayTgid => {
                if self == Minimal::PerCpuArrayTgid {
                    p.extend(store_tgid());
                }
                p.push(insn(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0));
                p.extend(lookup(maps[0], -4));
                exits.push(p.len());
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                p.extend(add_r6(0, field, false));
            }
            Minimal::DirectShared
            | Minimal::DirectSharedTask
            | Minimal::DirectPerCpu
            | Minimal::DirectPerCpuAtomic => {
                if self == Minimal::DirectSharedTask {
                    p.extend([
                        call(HELPER_GET_CURRENT_TASK_BTF),
                        insn(BPF_LDX | BPF_MEM | BPF_W, 0, 0, task_tgid, 0),
                        insn(BPF_STX | BPF_MEM | BPF_W, 10, 0, -4, 0),
                    ]);
                } else {
                    p.extend(store_tgid());
                }
                // r7 = tgid; *(u32 *)(r10 - 8) = tgid & (slots - 1).
                p.extend([
                    insn(BPF_ALU64 | BPF_MOV | BPF_X, 7, 0, 0, 0),
                    insn(
                        BPF_ALU64 | BPF_AND | BPF_K,
                        0,
                        0,
                        0,
                        DIRECT_SLOTS as i32 - 1,
                    ),
                    insn(BPF_STX | BPF_MEM | BPF_W, 10, 0, -8, 0),
                ]);
                p.extend(lookup(maps[0], -8));
                exits.push(p.len());
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                // r8 = slot; owned by this tgid: add; free: claim it; else the hash.
                p.extend([
                    insn(BPF_ALU64 | BPF_MOV | BPF_X, 8, 0, 0, 0),
                    insn(BPF_LDX | BPF_MEM | BPF_W, 1, 8, 0, 0),
                ]);
                let mut to_add = vec![p.len()];
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_X, 1, 7, 0, 0));
                let mut to_hash = vec![p.len()];
                p.push(insn(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0));
                // r0 = cmpxchg(&slot.tag, 0, tgid): 0 if we claimed it, else the owner.
                p.extend([
                    mov_k(0, 0),
                    insn(BPF_STX | BPF_ATOMIC | BPF_W, 8, 7, 0, BPF_CMPXCHG),
                ]);
                to_add.push(p.len());
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                to_hash.push(p.len());
                p.push(insn(BPF_JMP | BPF_JNE | BPF_X, 0, 7, 0, 0));
                let add = p.len();
                p.extend(add_r6(
                    8,
                    DIRECT_COUNTERS + field,
                    self != Minimal::DirectPerCpu,
                ));
                exits.push(p.len());
                p.push(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
                let hash = p.len();
                p.extend(hash_add(maps[1], field, false));
                for at in to_add {
                    jump(&mut p, at, add);
                }
                for at in to_hash {
                    jump(&mut p, at, hash);
                }
            }
            Minimal::TaskStorage => {
                // r0 = bpf_task_storage_get(map, current, NULL, F_CREATE).
                p.push(call(HELPER_GET_CURRENT_TASK_BTF));
                p.extend(ld_map_fd(1, maps[0]));
                p.extend([
                    insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 0, 0, 0),
                    mov_k(3, 0),
                    mov_k(4, BPF_LOCAL_STORAGE_GET_F_CREATE),
                    call(HELPER_TASK_STORAGE_GET),
                ]);
                exits.push(p.len());
                p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
                p.extend(add_r6(0, field, false));
            }
        }
        let out = p.len();
        p.extend([mov_k(0, 0), exit()]);
        for at in exits {
            jump(&mut p, at, out);
        }
        p
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
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JA: u8 = 0x00;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_JSLE: u8 = 0xd0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_NOEXIST: i32 = 1;
/// `BPF_CMPXCHG`: `r0 = *(dst + off); if r0 == old r0, *(dst + off) = src`.
const BPF_CMPXCHG: i32 = 0xf1;
const BPF_LOCAL_STORAGE_GET_F_CREATE: i32 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_GET_CURRENT_PID_TGID: i32 = 14;
const HELPER_TASK_STORAGE_GET: i32 = 156;
const HELPER_GET_CURRENT_TASK_BTF: i32 = 158;

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

/// `r0 = bpf_map_lookup_elem(map, r10 + key)`.
fn lookup(map_fd: i32, key: i32) -> Vec<u64> {
    let mut p = ld_map_fd(1, map_fd).to_vec();
    p.extend([
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        insn(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, key),
        call(HELPER_MAP_LOOKUP_ELEM),
    ]);
    p
}

/// `r0 = tgid; *(u32 *)(r10 - 4) = tgid` (the hash key).
fn store_tgid() -> [u64; 3] {
    [
        call(HELPER_GET_CURRENT_PID_TGID),
        insn(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32),
        insn(BPF_STX | BPF_MEM | BPF_W, 10, 0, -4, 0),
    ]
}

/// The hash design's work, self-contained and ending in `r0 = 0; exit`: find the
/// counters of the key at `r10 - 4`, add `r6` at `field`, insert the key on a miss.
fn hash_add(map_fd: i32, field: i16, atomic: bool) -> Vec<u64> {
    let mut p = lookup(map_fd, -4);
    let miss_at = p.len();
    p.push(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0));
    p.extend(add_r6(0, field, atomic));
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
    jump(&mut p, miss_at, insert);
    jump(&mut p, done_at, out);
    p
}

/// `*(u64 *)(base + off) += r6`, plainly or as one atomic instruction.
fn add_r6(base: u8, off: i16, atomic: bool) -> Vec<u64> {
    if atomic {
        vec![insn(
            BPF_STX | BPF_ATOMIC | BPF_DW,
            base,
            6,
            off,
            BPF_ADD as i32,
        )]
    } else {
        vec![
            insn(BPF_LDX | BPF_MEM | BPF_DW, 1, base, off, 0),
            insn(BPF_ALU64 | BPF_ADD | BPF_X, 1, 6, 0, 0),
            insn(BPF_STX | BPF_MEM | BPF_DW, base, 1, off, 0),
        ]
    }
}

/// BTF type ids in [`counters_btf`]: the key (`int`) and the value (`u64[2]`).
const BTF_KEY_TYPE: u32 = 1;
const BTF_VALUE_TYPE: u32 = 3;

/// The smallest BTF that describes task storage's key and value, which the kernel
/// requires for local-storage maps: `[1] int`, `[2] u64`, `[3] u64[2]`.
fn counters_btf() -> Vec<u8> {
    const KIND_INT: u32 = 1;
    const KIND_ARRAY: u32 = 3;
    const INT_SIGNED: u32 = 1 << 24;
    let strings = b"\0int\0u64\0";
    let types: [u32; 14] = [
        // [1] int: name "int", INT, size 4, signed, 32 bits.
        1,
        KIND_INT << 24,
        4,
        INT_SIGNED | 32,
        // [2] u64: name "u64", INT, size 8, 64 bits.
        5,
        KIND_INT << 24,
        8,
        64,
        // [3] u64[2]: ARRAY of type 2 indexed by type 1, 2 elements.
        0,
        KIND_ARRAY << 24,
        0,
        2,
        1,
        2,
    ];
    let type_len = (types.len() * 4) as u32;
    let mut btf = Vec::new();
    btf.extend(0xeb9f_u16.to_ne_bytes());
    btf.extend([1, 0]); // version, flags
    for word in [24, 0, type_len, type_len, strings.len() as u32] {
        btf.extend(word.to_ne_bytes()); // hdr_len, type_off, type_len, str_off, str_len
    }
    for word in types {
        btf.extend(word.to_ne_bytes());
    }
    btf.extend(strings);
    btf
}

/// Loads [`counters_btf`] into the kernel.
fn load_counters_btf() -> Result<OwnedFd> {
    let btf = counters_btf();
    let mut log = vec![0u8; 4096];
    let mut attr = BtfLoadAttr {
        btf: btf.as_ptr() as u64,
        log_buf: log.as_mut_ptr() as u64,
        size: btf.len() as u32,
        log_size: log.len() as u32,
        log_level: 1,
    };
    // SAFETY: a `BPF_BTF_LOAD` attr pointing at `btf` and `log`, both alive.
    unsafe { bpf_fd(BPF_BTF_LOAD, &mut attr) }.with_context(|| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        format!(
            "loading the counters' BTF: {}",
            String::from_utf8_lossy(&log[..end])
        )
    })
}

/// Points the jump at `at` to instruction `target`.
fn jump(p: &mut [u64], at: usize, target: usize) {
    let off = (target as i64 - at as i64 - 1) as i16;
    p[at] = (p[at] & !(0xffff << 16)) | ((off as u16 as u64) << 16);
}

/// The direct-mapped array of `kind` (a `Direct*` design), empty and without
/// programs: what [`super::slot_read`] times reading.
pub(super) fn create_direct(kind: Minimal) -> Result<OwnedFd> {
    let mut attr = kind
        .maps(0)
        .into_iter()
        .next()
        .filter(|a| a.value_size == DIRECT_VALUE_SIZE)
        .with_context(|| format!("{} has no direct-mapped array", kind.label()))?;
    // SAFETY: a `map_create` attr without pointers.
    unsafe { bpf_fd(BPF_MAP_CREATE, &mut attr) }
        .with_context(|| format!("creating the array of {}", kind.label()))
}

/// The verifier's reasons for refusing `attr`'s program (loads it again with a log).
fn verifier_log(attr: &mut ProgLoadAttr) -> String {
    let mut log = vec![0u8; 1 << 16];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as the first load, plus a log buffer that outlives the call.
    let _ = unsafe { bpf_fd(BPF_PROG_LOAD, attr) };
    attr.log_buf = 0;
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
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
        // The programs hold their own references: these fds can close after loading.
        let counters_btf = if kind == Minimal::TaskStorage {
            Some(load_counters_btf()?)
        } else {
            None
        };
        let btf_fd = counters_btf.as_ref().map_or(0, |b| b.as_raw_fd() as u32);
        let maps = kind
            .maps(btf_fd)
            .into_iter()
            .map(|mut attr| {
                // SAFETY: a `map_create` attr without pointers.
                unsafe { bpf_fd(BPF_MAP_CREATE, &mut attr) }
                    .with_context(|| format!("creating the maps of {}", kind.label()))
            })
            .collect::<Result<Vec<_>>>()?;
        let map_fds: Vec<i32> = maps.iter().map(|m| m.as_raw_fd()).collect();
        let task_tgid = match &btf {
            Some(btf) if kind == Minimal::DirectSharedTask => {
                btf.field_offset("task_struct", &["tgid"])? as i16
            }
            _ => 0,
        };
        let license = CString::new("GPL").expect("no NUL");
        let (mut progs, mut links) = (Vec::new(), Vec::new());
        for (hook, field) in HOOKS {
            let insns = kind.program(&map_fds, field, task_tgid);
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
            let prog = match unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) } {
                Ok(prog) => prog,
                Err(e) => bail!(
                    "loading {} for {hook}: {e}\n{}",
                    kind.label(),
                    verifier_log(&mut attr)
                ),
            };
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
        assert_eq!(add_r6(0, 8, true)[0], 0x0008_60db);
        // lock cmpxchg *(u32 *)(r8 + 0), r7: opcode 0xc3, dst 8, src 7, imm 0xf1.
        assert_eq!(
            insn(BPF_STX | BPF_ATOMIC | BPF_W, 8, 7, 0, BPF_CMPXCHG),
            0xf1_0000_78c3
        );
    }

    #[test]
    fn counters_btf_has_a_header_and_three_types() {
        let btf = counters_btf();
        assert_eq!(btf[..2], 0xeb9f_u16.to_ne_bytes());
        // 24-byte header, 14 type words, "\0int\0u64\0".
        assert_eq!(btf.len(), 24 + 14 * 4 + 9);
    }

    #[test]
    fn jumps_land_on_the_exit_sequence() {
        for kind in [
            Minimal::PerCpuHash,
            Minimal::SharedHashAtomic,
            Minimal::PerCpuArray,
            Minimal::PerCpuArrayTgid,
            Minimal::DirectShared,
            Minimal::DirectSharedTask,
            Minimal::DirectPerCpu,
            Minimal::DirectPerCpuAtomic,
            Minimal::TaskStorage,
        ] {
            let p = kind.program(&[3, 4], 8, 2000);
            assert_eq!(p[p.len() - 2..], [mov_k(0, 0), exit()], "{kind:?}");
            // The not-positive test jumps forward to `r0 = 0`.
            let off = (p[2] >> 16) as u16 as i16 as usize;
            assert_eq!(3 + off, p.len() - 2, "{kind:?}");
        }
    }
}
