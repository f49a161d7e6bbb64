//! Offsets of the kernel struct fields the programs read, taken from the running
//! kernel's BTF. aya cannot emit CO-RE relocations from Rust, so this is how a
//! flowtop built anywhere reads `struct sock` and `task_struct` correctly everywhere.
use anyhow::Result;
use flowtop_common::KernelOffsets;

use super::btf::KernelBtf;

/// Where the running kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The offsets the programs need ([`KernelOffsets`], part of the load-time
/// configuration), looked up in `btf`.
pub fn kernel_offsets(btf: &KernelBtf) -> Result<KernelOffsets> {
    let skc = |field: &str| btf.field_offset("sock", &["__sk_common", field]);
    Ok(KernelOffsets {
        sock_family: skc("skc_family")?,
        sock_protocol: btf.field_offset("sock", &["sk_protocol"])?,
        socket_sk: btf.field_offset("socket", &["sk"])?,
        task_group_leader: btf.field_offset("task_struct", &["group_leader"])?,
        task_comm: btf.field_offset("task_struct", &["comm"])?,
        skc_daddr: skc("skc_daddr")?,
        skc_rcv_saddr: skc("skc_rcv_saddr")?,
        skc_dport: skc("skc_dport")?,
        skc_num: skc("skc_num")?,
        inet_sport: btf.field_offset("inet_sock", &["inet_sport"])?,
        skc_v6_daddr: skc("skc_v6_daddr")?,
        skc_v6_rcv_saddr: skc("skc_v6_rcv_saddr")?,
        task_signal: btf.field_offset("task_struct", &["signal"])?,
        signal_live: btf.field_offset("signal_struct", &["live"])?,
    })
}

/// The same lookup done with the complete `btf-rs` library, to cross-check
/// [`KernelBtf`] in tests.
#[cfg(test)]
pub fn btf_rs_field_offset(btf: &btf_rs::Btf, name: &str, path: &[&str]) -> Result<u32> {
    use anyhow::{anyhow, Context as _};
    use btf_rs::{BtfType, Type};

    fn strip(btf: &btf_rs::Btf, mut ty: Type) -> Result<Type> {
        loop {
            ty = match &ty {
                Type::Typedef(t) => btf.resolve_chained_type(t)?,
                Type::Const(t) => btf.resolve_chained_type(t)?,
                Type::Volatile(t) => btf.resolve_chained_type(t)?,
                _ => return Ok(ty),
            };
        }
    }
    fn member(btf: &btf_rs::Btf, ty: &Type, want: &str) -> Result<Option<(u32, Type)>> {
        let members = match ty {
            Type::Struct(s) | Type::Union(s) => &s.members,
            _ => return Ok(None),
        };
        for m in members {
            let mty = strip(btf, btf.resolve_chained_type(m)?)?;
            let name = match m.get_name_offset() {
                Some(_) => btf.resolve_name(m)?,
                None => String::new(),
            };
            if name == want {
                return Ok(Some((m.bit_offset(), mty)));
            }
            if name.is_empty() {
                if let Some((off, t)) = member(btf, &mty, want)? {
                    return Ok(Some((m.bit_offset() + off, t)));
                }
            }
        }
        Ok(None)
    }
    let mut ty = btf
        .resolve_types_by_name(name)
        .context("no struct")?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        .ok_or_else(|| anyhow!("no struct {name}"))?;
    let mut bits = 0;
    for p in path {
        let (off, t) = member(btf, &ty, p)?.ok_or_else(|| anyhow!("no field {p}"))?;
        bits += off;
        ty = t;
    }
    Ok(bits / 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against this machine's own kernel BTF: the well-known layout of `struct sock`
    /// (`skc_family` follows the 16 bytes of addresses/hash in `sock_common`).
    #[test]
    fn finds_sock_and_task_fields_in_running_kernel() {
        let btf = KernelBtf::from_file(VMLINUX_BTF)
            .unwrap_or_else(|e| panic!("this test reads the kernel's own BTF: {e:#}"));
        let off = kernel_offsets(&btf).unwrap();
        assert_eq!(off.sock_family, 16);
        assert!(off.sock_protocol > off.sock_family);
        assert!(off.task_comm > 0 && off.task_group_leader > 0 && off.task_signal > 0);
        // `refcount_t sigcnt` opens `signal_struct`, then `live`, on every kernel of the matrix.
        assert_eq!(off.signal_live, 4);
        // `skc_addrpair` and `skc_portpair` open `sock_common` on every kernel.
        assert_eq!(
            (off.skc_daddr, off.skc_rcv_saddr, off.skc_dport, off.skc_num),
            (0, 4, 12, 14)
        );
        assert!(
            off.inet_sport > off.sock_protocol,
            "inet_sock extends struct sock"
        );
        assert!(off.skc_v6_daddr > 16 && off.skc_v6_rcv_saddr == off.skc_v6_daddr + 16);
        assert!(btf.field_offset("sock", &["no_such_field"]).is_err());
        assert!(btf.field_offset("no_such_struct_xyz", &["a"]).is_err());
    }
}
