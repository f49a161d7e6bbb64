//! Offsets of the kernel struct fields the programs read, taken from the running
//! kernel's BTF. aya cannot emit CO-RE relocations from Rust, so this is how a
//! flowtop built anywhere reads `struct sock` and `task_struct` correctly everywhere.
use anyhow::{anyhow, bail, Context as _, Result};
use btf_rs::{Btf, BtfType, Type};

/// Where the running kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Byte offsets handed to the programs as globals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelOffsets {
    pub sock_family: u32,
    pub sock_protocol: u32,
    pub socket_sk: u32,
    pub task_group_leader: u32,
    pub task_comm: u32,
    /// `struct sock_common` addresses and ports, as offsets inside `struct sock`
    /// (`--by conn`, `--port`, `-4`/`-6` on dual-stack sockets).
    pub skc_daddr: u32,
    pub skc_rcv_saddr: u32,
    /// `__be16`.
    pub skc_dport: u32,
    /// `__u16`, host order: the local port.
    pub skc_num: u32,
    pub skc_v6_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
}

impl KernelOffsets {
    pub fn from_btf(btf: &Btf) -> Result<Self> {
        let skc = |field: &str| field_offset(btf, "sock", &["__sk_common", field]);
        Ok(Self {
            sock_family: field_offset(btf, "sock", &["__sk_common", "skc_family"])?,
            sock_protocol: field_offset(btf, "sock", &["sk_protocol"])?,
            socket_sk: field_offset(btf, "socket", &["sk"])?,
            task_group_leader: field_offset(btf, "task_struct", &["group_leader"])?,
            task_comm: field_offset(btf, "task_struct", &["comm"])?,
            skc_daddr: skc("skc_daddr")?,
            skc_rcv_saddr: skc("skc_rcv_saddr")?,
            skc_dport: skc("skc_dport")?,
            skc_num: skc("skc_num")?,
            skc_v6_daddr: skc("skc_v6_daddr")?,
            skc_v6_rcv_saddr: skc("skc_v6_rcv_saddr")?,
        })
    }
}

/// Byte offset of `path` (nested member names) inside `struct name`, looking through
/// anonymous structs and unions (randomized `task_struct` layouts nest fields so).
pub fn field_offset(btf: &Btf, name: &str, path: &[&str]) -> Result<u32> {
    let mut ty = btf
        .resolve_types_by_name(name)
        .with_context(|| format!("kernel BTF has no struct {name}"))?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        .ok_or_else(|| anyhow!("kernel BTF has no struct {name}"))?;
    let mut bits = 0u32;
    for (i, member) in path.iter().enumerate() {
        let (off, member_ty) = find_member(btf, &ty, member)?.ok_or_else(|| {
            anyhow!(
                "kernel BTF: struct {name} has no field {}",
                path[..=i].join(".")
            )
        })?;
        bits += off;
        ty = member_ty;
    }
    if !bits.is_multiple_of(8) {
        bail!("kernel BTF: {name}.{} is a bitfield", path.join("."));
    }
    Ok(bits / 8)
}

/// `(bit offset, type)` of member `want` of the struct/union `ty`.
fn find_member(btf: &Btf, ty: &Type, want: &str) -> Result<Option<(u32, Type)>> {
    let members = match ty {
        Type::Struct(s) | Type::Union(s) => &s.members,
        _ => return Ok(None),
    };
    for m in members {
        let member_ty = strip_qualifiers(btf, btf.resolve_chained_type(m)?)?;
        let name = match m.get_name_offset() {
            Some(_) => btf.resolve_name(m)?,
            None => String::new(),
        };
        if name == want {
            return Ok(Some((m.bit_offset(), member_ty)));
        }
        if name.is_empty() {
            if let Some((off, t)) = find_member(btf, &member_ty, want)? {
                return Ok(Some((m.bit_offset() + off, t)));
            }
        }
    }
    Ok(None)
}

/// Follows typedef/const/volatile to the type underneath.
fn strip_qualifiers(btf: &Btf, mut ty: Type) -> Result<Type> {
    loop {
        ty = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t)?,
            Type::Const(t) => btf.resolve_chained_type(t)?,
            Type::Volatile(t) => btf.resolve_chained_type(t)?,
            _ => return Ok(ty),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against this machine's own kernel BTF: the well-known layout of `struct sock`
    /// (`skc_family` follows the 16 bytes of addresses/hash in `sock_common`).
    #[test]
    fn finds_sock_and_task_fields_in_running_kernel() {
        let Ok(btf) = Btf::from_file(VMLINUX_BTF) else {
            eprintln!("skipped: no {VMLINUX_BTF}");
            return;
        };
        let off = KernelOffsets::from_btf(&btf).unwrap();
        assert_eq!(off.sock_family, 16);
        assert!(off.sock_protocol > off.sock_family);
        assert!(off.task_comm > 0 && off.task_group_leader > 0);
        // `skc_addrpair` and `skc_portpair` open `sock_common` on every kernel.
        assert_eq!(
            (off.skc_daddr, off.skc_rcv_saddr, off.skc_dport, off.skc_num),
            (0, 4, 12, 14)
        );
        assert!(off.skc_v6_daddr > 16 && off.skc_v6_rcv_saddr == off.skc_v6_daddr + 16);
        assert!(field_offset(&btf, "sock", &["no_such_field"]).is_err());
        assert!(field_offset(&btf, "no_such_struct_xyz", &["a"]).is_err());
    }
}
