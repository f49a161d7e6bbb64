//! A minimal reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`), enough to find
//! types by name and struct member offsets.
//!
//! Why not a full BTF library: parsing the whole ~5 MB of vmlinux BTF into typed
//! objects took ~290 ms and ~40 MB peak here, which was most of flowtop's start-up
//! time and memory. This reader keeps the raw bytes plus one `u32` offset per type
//! (~0.5 MB) and decodes only what a lookup touches.
use std::fmt;

use anyhow::{anyhow, bail, ensure, Context as _, Result};

const MAGIC: u16 = 0xeb9f;

/// BTF type kinds flowtop looks at (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Struct = 4,
    Union = 5,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    TypeTag = 18,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Parsed index over raw BTF bytes.
pub struct KernelBtf {
    data: Vec<u8>,
    /// Byte offset of the type section and the string section in `data`.
    types_start: usize,
    strings: std::ops::Range<usize>,
    /// `type_offsets[id - 1]`: offset of type `id` inside the type section.
    type_offsets: Vec<u32>,
}

/// One decoded `struct btf_type` header.
#[derive(Debug, Clone, Copy)]
struct TypeHeader {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// Offset of the kind-specific data that follows the header.
    extra: usize,
}

impl KernelBtf {
    pub fn from_file(path: &str) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        Self::from_bytes(data)
    }

    pub fn from_bytes(data: Vec<u8>) -> Result<Self> {
        ensure!(data.len() >= 24, "BTF too short");
        ensure!(
            u16::from_le_bytes([data[0], data[1]]) == MAGIC,
            "not little-endian BTF (bad magic)"
        );
        let rd = |off: usize| u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes"));
        let hdr_len = rd(4) as usize;
        let (type_off, type_len) = (rd(8) as usize, rd(12) as usize);
        let (str_off, str_len) = (rd(16) as usize, rd(20) as usize);
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        ensure!(
            types_end <= data.len() && strings.end <= data.len(),
            "BTF sections out of bounds"
        );
        let mut btf = Self {
            data,
            types_start,
            strings,
            type_offsets: Vec::new(),
        };
        let mut off = 0usize;
        while off < type_len {
            btf.type_offsets.push(off as u32);
            let h = btf.header_at(types_start + off)?;
            off = h.extra - types_start + extra_len(h.kind, h.vlen)?;
        }
        ensure!(
            off == type_len,
            "BTF type section does not end on a type boundary"
        );
        Ok(btf)
    }

    fn u32_at(&self, off: usize) -> Result<u32> {
        let b = self
            .data
            .get(off..off + 4)
            .ok_or_else(|| anyhow!("BTF read out of bounds"))?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn header_at(&self, off: usize) -> Result<TypeHeader> {
        let info = self.u32_at(off + 4)?;
        Ok(TypeHeader {
            name_off: self.u32_at(off)?,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32_at(off + 8)?,
            extra: off + 12,
        })
    }

    fn header(&self, id: u32) -> Result<TypeHeader> {
        let idx = id
            .checked_sub(1)
            .ok_or_else(|| anyhow!("BTF type 0 is void"))?;
        let off = *self
            .type_offsets
            .get(idx as usize)
            .ok_or_else(|| anyhow!("BTF type id {id} out of range"))?;
        self.header_at(self.types_start + off as usize)
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let start = self.strings.start + name_off as usize;
        let tail = self.data.get(start..self.strings.end).unwrap_or(&[]);
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    /// Id of the first type of `kind` named `name`.
    pub fn find(&self, kind: Kind, name: &str) -> Option<u32> {
        (1..=self.type_offsets.len() as u32).find(|&id| {
            self.header(id)
                .is_ok_and(|h| h.kind == kind as u32 && self.name(h.name_off) == name.as_bytes())
        })
    }

    /// Byte offset of `path` (nested member names) inside `struct name`, looking
    /// through anonymous structs and unions (randomized layouts nest fields so).
    pub fn field_offset(&self, name: &str, path: &[&str]) -> Result<u32> {
        let mut id = (1..=self.type_offsets.len() as u32)
            .find(|&id| {
                self.header(id).is_ok_and(|h| {
                    h.kind == Kind::Struct as u32
                        && h.vlen > 0
                        && self.name(h.name_off) == name.as_bytes()
                })
            })
            .ok_or_else(|| anyhow!("kernel BTF has no struct {name}"))?;
        let mut bits = 0u32;
        for (i, member) in path.iter().enumerate() {
            let (off, member_ty) = self.find_member(id, member, 0)?.ok_or_else(|| {
                anyhow!(
                    "kernel BTF: struct {name} has no field {}",
                    path[..=i].join(".")
                )
            })?;
            bits = bits.saturating_add(off);
            id = member_ty;
        }
        if !bits.is_multiple_of(8) {
            bail!("kernel BTF: {name}.{} is a bitfield", path.join("."));
        }
        Ok(bits / 8)
    }

    /// `(bit offset, type id)` of member `want` of struct/union `id`.
    fn find_member(&self, id: u32, want: &str, depth: u32) -> Result<Option<(u32, u32)>> {
        ensure!(depth < 16, "BTF nesting too deep");
        let h = self.header(self.strip_qualifiers(id)?)?;
        if h.kind != Kind::Struct as u32 && h.kind != Kind::Union as u32 {
            return Ok(None);
        }
        for i in 0..h.vlen as usize {
            let m = h.extra + i * 12;
            let (name_off, ty, raw_off) =
                (self.u32_at(m)?, self.u32_at(m + 4)?, self.u32_at(m + 8)?);
            let bit_off = if h.kind_flag {
                raw_off & 0x00ff_ffff
            } else {
                raw_off
            };
            let name = self.name(name_off);
            if name == want.as_bytes() {
                return Ok(Some((bit_off, self.strip_qualifiers(ty)?)));
            }
            if name.is_empty() {
                if let Some((off, t)) = self.find_member(ty, want, depth + 1)? {
                    return Ok(Some((bit_off.saturating_add(off), t)));
                }
            }
        }
        Ok(None)
    }

    /// Follows typedef/const/volatile/restrict/type-tag to the type underneath.
    fn strip_qualifiers(&self, mut id: u32) -> Result<u32> {
        for _ in 0..32 {
            let h = self.header(id)?;
            let qualifier = [
                Kind::Typedef,
                Kind::Volatile,
                Kind::Const,
                Kind::Restrict,
                Kind::TypeTag,
            ]
            .iter()
            .any(|k| *k as u32 == h.kind);
            if !qualifier {
                return Ok(id);
            }
            id = h.size_or_type;
        }
        bail!("BTF qualifier chain too long")
    }
}

/// Bytes of kind-specific data after a type header (BTF format, kernel docs).
fn extra_len(kind: u32, vlen: u32) -> Result<usize> {
    let vlen = vlen as usize;
    Ok(match kind {
        1 => 4,                    // INT
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        3 => 12,                   // ARRAY
        4 | 5 => 12 * vlen,        // STRUCT, UNION: members
        6 => 8 * vlen,             // ENUM
        13 => 8 * vlen,            // FUNC_PROTO: params
        14 => 4,                   // VAR
        15 => 12 * vlen,           // DATASEC
        17 => 4,                   // DECL_TAG
        19 => 12 * vlen,           // ENUM64
        other => bail!("unknown BTF kind {other}"),
    })
}

/// Raw BTF (little-endian) in which each `(kind, name, id)` of `wanted` is a type of
/// that kind and name at exactly type id `id`; every other id up to the largest is a
/// nameless `void *` (12 bytes each). Only `Typedef` and `Func` may be wanted.
///
/// Why: aya's `BtfTracePoint::load`/`FExit::load` take a whole `aya::Btf` only to look
/// up one type id by name and kind. Parsing all of vmlinux BTF for that costs ~10 MB of
/// peak memory; this stand-in, built from ids this reader already found, has the same
/// ids for the names asked and costs about 12 bytes + one aya type per id.
pub fn sparse_btf(wanted: &[(Kind, &str, u32)]) -> Result<Vec<u8>> {
    let max_id = wanted.iter().map(|w| w.2).max().unwrap_or(0);
    ensure!(wanted.iter().all(|w| w.2 > 0), "type id 0 is void");
    let mut strings = vec![0u8];
    let mut by_id: Vec<(u32, u32, u32)> = Vec::with_capacity(wanted.len());
    for &(kind, name, id) in wanted {
        let info = match kind {
            Kind::Typedef => (Kind::Typedef as u32) << 24,
            // vlen of a FUNC is its linkage: 1 (global).
            Kind::Func => ((Kind::Func as u32) << 24) | 1,
            other => bail!("sparse BTF cannot hold a {other}"),
        };
        ensure!(
            !by_id.iter().any(|&(i, _, _)| i == id),
            "type id {id} wanted twice"
        );
        let name_off = strings.len() as u32;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        by_id.push((id, name_off, info));
    }
    const PTR: u32 = 2 << 24;
    let type_len = max_id as usize * 12;
    let mut out = Vec::with_capacity(24 + type_len + strings.len());
    let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    // Header: magic, version 1, flags 0 (as one u32), hdr_len, type_off/len, str_off/len.
    put(&mut out, u32::from(MAGIC) | (1 << 16));
    for v in [
        24,
        0,
        type_len as u32,
        type_len as u32,
        strings.len() as u32,
    ] {
        put(&mut out, v);
    }
    for id in 1..=max_id {
        let (name_off, info) = by_id
            .iter()
            .find(|w| w.0 == id)
            .map_or((0, PTR), |&(_, n, i)| (n, i));
        // name_off, info, size_or_type (void).
        for v in [name_off, info, 0] {
            put(&mut out, v);
        }
    }
    out.extend_from_slice(&strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::btf_offsets::VMLINUX_BTF;

    #[test]
    fn sparse_btf_puts_each_name_at_its_id() {
        let raw = sparse_btf(&[
            (Kind::Func, "inet_recvmsg", 9),
            (Kind::Typedef, "btf_trace_sock_send_length", 3),
        ])
        .unwrap();
        assert_eq!(raw.len(), 24 + 9 * 12 + 1 + 13 + 27);
        let btf = KernelBtf::from_bytes(raw.clone()).unwrap();
        assert_eq!(
            btf.find(Kind::Typedef, "btf_trace_sock_send_length"),
            Some(3)
        );
        assert_eq!(btf.find(Kind::Func, "inet_recvmsg"), Some(9));
        assert_eq!(btf.find(Kind::Func, "btf_trace_sock_send_length"), None);
        assert_eq!(btf.type_offsets.len(), 9);
        aya::Btf::parse(&raw, aya::Endianness::Little).expect("aya parses it");
        assert!(sparse_btf(&[(Kind::Struct, "sock", 1)]).is_err());
        assert!(sparse_btf(&[(Kind::Func, "a", 2), (Kind::Func, "b", 2)]).is_err());
        assert!(sparse_btf(&[(Kind::Func, "a", 0)]).is_err());
    }

    /// This machine's kernel BTF; a kernel without it fails the tests that read it
    /// (they would prove nothing), naming what is missing.
    fn kernel() -> KernelBtf {
        KernelBtf::from_file(VMLINUX_BTF)
            .unwrap_or_else(|e| panic!("these tests read the kernel's own BTF: {e:#}"))
    }

    /// Cross-check against an independent, complete BTF library on this kernel.
    #[test]
    fn offsets_agree_with_btf_rs() {
        let ours = kernel();
        let full = btf_rs::Btf::from_file(VMLINUX_BTF).unwrap();
        for (st, path) in [
            ("sock", &["__sk_common", "skc_family"][..]),
            ("sock", &["sk_protocol"]),
            ("socket", &["sk"]),
            ("task_struct", &["comm"]),
            ("task_struct", &["group_leader"]),
            ("sock", &["__sk_common", "skc_dport"]),
            ("sock", &["__sk_common", "skc_v6_daddr"]),
            ("inet_sock", &["inet_sport"]),
        ] {
            let a = ours.field_offset(st, path).unwrap();
            let b = crate::probe::btf_offsets::btf_rs_field_offset(&full, st, path).unwrap();
            assert_eq!(a, b, "{st}.{path:?}");
        }
    }

    #[test]
    fn finds_functions_and_tracepoint_typedefs() {
        let btf = kernel();
        assert!(btf.find(Kind::Func, "tcp_sendmsg").is_some());
        assert!(btf
            .find(Kind::Typedef, "btf_trace_sock_send_length")
            .is_some());
        assert!(btf.find(Kind::Func, "no_such_function_xyz").is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(KernelBtf::from_bytes(vec![0; 10]).is_err());
        assert!(KernelBtf::from_bytes(vec![0; 64]).is_err());
        let mut hdr = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        hdr.extend_from_slice(&[0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(
            KernelBtf::from_bytes(hdr).is_err(),
            "sections out of bounds"
        );
    }
}
