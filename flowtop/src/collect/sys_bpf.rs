//! The `bpf(2)` commands flowtop needs that aya (0.16) does not expose publicly:
//! - `BPF_MAP_LOOKUP_AND_DELETE_ELEM`, which removes a key and returns its last value
//!   atomically, so reclaiming a dead process's key loses none of its bytes;
//! - `BPF_MAP_LOOKUP_BATCH` (aya#1124), which reads thousands of keys and their
//!   per-CPU values in one call instead of two syscalls per key.
//!
//! The attribute layouts are aya-obj's bindings generated from the kernel's
//! `union bpf_attr`; each call passes only its own member, as libbpf does.
use std::{io, os::fd::RawFd};

use aya_obj::generated::{
    bpf_attr__bindgen_ty_2 as MapElemAttr, bpf_attr__bindgen_ty_2__bindgen_ty_1 as ValueOrNextKey,
    bpf_attr__bindgen_ty_3 as BatchAttr, bpf_cmd,
};

const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long =
    bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_ELEM as libc::c_long;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = bpf_cmd::BPF_MAP_LOOKUP_BATCH as libc::c_long;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = bpf_cmd::BPF_MAP_GET_NEXT_KEY as libc::c_long;

/// The kernel's internal `ENOTSUPP` (not `EOPNOTSUPP`), which leaks to userspace
/// from map types without batch operations.
pub const ENOTSUPP: i32 = 524;

/// `bpf(cmd, attr, sizeof attr)`: the non-negative result (0, or a new file
/// descriptor for commands that create one), or the error.
///
/// # Safety
/// `attr` must be the `union bpf_attr` member `cmd` reads, with every pointer in it
/// set to memory of the size the kernel will read or write, alive for the call.
pub unsafe fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: the caller's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Deletes `key` and writes its value to `value` (for per-CPU maps: one 8-byte
/// aligned slot per possible CPU). Needs Linux 5.14+ for hash maps.
pub fn lookup_and_delete(fd: RawFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    // SAFETY: integers only; zeroed so the padding after `map_fd` is zero too.
    let mut attr: MapElemAttr = unsafe { std::mem::zeroed() };
    attr.map_fd = fd as u32;
    attr.key = key.as_ptr() as u64;
    attr.__bindgen_anon_1 = ValueOrNextKey {
        value: value.as_mut_ptr() as u64,
    };
    // SAFETY: a `map_elem` attr; `key` and `value` are the caller's buffers, which the
    // callers size for the map's key and (per-CPU) value.
    unsafe { sys_bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut attr) }.map(drop)
}

/// `BPF_MAP_GET_NEXT_KEY` with no key: the map's first key into `first` (at least
/// the map's key size). A read that changes nothing, so it tells whether this
/// process may use the map fd at all (capabilities; see `privileges`).
pub fn first_key(fd: RawFd, first: &mut [u8]) -> io::Result<()> {
    // SAFETY: integers only; zeroed, so `key` is NULL (the first key is wanted).
    let mut attr: MapElemAttr = unsafe { std::mem::zeroed() };
    attr.map_fd = fd as u32;
    attr.__bindgen_anon_1 = ValueOrNextKey {
        next_key: first.as_mut_ptr() as u64,
    };
    // SAFETY: a `map_elem` attr; the caller sizes `first` for the map's key.
    unsafe { sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) }.map(drop)
}

/// Size of one value slot in per-CPU buffers: the kernel rounds each CPU's value up
/// to 8 bytes.
pub const fn per_cpu_slot(value_size: usize) -> usize {
    value_size.div_ceil(8) * 8
}

/// Where a batched walk of a hash map stands. The kernel's token for hash maps is a
/// bucket index (`u32`); 8 bytes leave room for any map type's token.
#[derive(Debug, Default)]
pub struct BatchCursor {
    token: [u64; 1],
    started: bool,
    done: bool,
}

impl BatchCursor {
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` call: fills up to `capacity` keys into `keys`
/// (`capacity * key_size` bytes) and their values into `values` (for per-CPU maps
/// `capacity * possible_cpus * per_cpu_slot(value_size)` bytes). Returns how many
/// entries were written; `cursor.is_done()` once the walk reached the end.
///
/// Errors: `EINVAL`/`ENOTSUPP`/`EOPNOTSUPP` when the kernel or map type has no batch
/// operations (before Linux 5.6), `ENOSPC` when one hash bucket holds more keys than
/// `capacity` (retry with more room).
pub fn lookup_batch(
    fd: RawFd,
    cursor: &mut BatchCursor,
    keys: &mut [u8],
    values: &mut [u8],
    capacity: u32,
) -> io::Result<u32> {
    if cursor.done {
        return Ok(0);
    }
    let mut out = [0u64; 1];
    let mut attr = BatchAttr {
        in_batch: if cursor.started {
            cursor.token.as_ptr() as u64
        } else {
            0
        },
        out_batch: out.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: capacity,
        map_fd: fd as u32,
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: a `batch` attr whose buffers hold `capacity` keys and values.
    match unsafe { sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) } {
        Ok(_) => {
            cursor.token = out;
            cursor.started = true;
            Ok(attr.count)
        }
        // The end of the map: `count` entries were still written.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            cursor.done = true;
            Ok(attr.count)
        }
        Err(e) => Err(e),
    }
}

/// True for the errors that mean "this kernel or map type has no batch operations".
pub fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(ENOTSUPP) | Some(libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_slots_are_rounded_up_to_eight_bytes() {
        assert_eq!(per_cpu_slot(32), 32);
        assert_eq!(per_cpu_slot(12), 16);
        assert_eq!(per_cpu_slot(1), 8);
    }

    #[test]
    fn unsupported_errors_are_recognised() {
        assert!(is_unsupported(&io::Error::from_raw_os_error(libc::EINVAL)));
        assert!(is_unsupported(&io::Error::from_raw_os_error(ENOTSUPP)));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(libc::EPERM)));
    }
}
