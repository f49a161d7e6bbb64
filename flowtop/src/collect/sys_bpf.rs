//! The one `bpf(2)` command flowtop needs that aya 0.14 does not expose:
//! `BPF_MAP_LOOKUP_AND_DELETE_ELEM`, which removes a key and returns its last value
//! atomically, so reclaiming a dead process's key loses none of its bytes.
use std::{io, os::fd::RawFd};

const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;

/// The `map_elem` member of `union bpf_attr`.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Deletes `key` and writes its value to `value` (for per-CPU maps: one 8-byte
/// aligned slot per possible CPU). Needs Linux 5.14+ for hash maps.
pub fn lookup_and_delete(fd: RawFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let attr = MapElemAttr {
        map_fd: fd as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: attr points at valid key/value buffers of the map's sizes, which the
    // caller guarantees; the kernel reads `size_of::<MapElemAttr>()` bytes of attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            &attr as *const MapElemAttr,
            std::mem::size_of::<MapElemAttr>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
