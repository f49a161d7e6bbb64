//! `--by conn`: the cgroup programs that name each datagram's peer on unconnected
//! UDP sockets (see `flowtop-ebpf/src/udp_peer.rs`), attached to the root of the
//! cgroup v2 hierarchy so they see every process.
//!
//! Optional: without cgroup v2, or on a kernel that refuses them, datagrams of
//! unconnected sockets show `*` as their remote, as before, and `-v` says why.
use std::fs::File;

use anyhow::{Context as _, Result};
use aya::{
    programs::{CgroupAttachMode, CgroupSockAddr},
    Ebpf,
};
use flowtop_common::programs;

use crate::identity;

/// Attaches the four programs, or none: a half-attached set would name the peers
/// of only one direction or family.
pub fn attach(ebpf: &mut Ebpf) -> Result<()> {
    let root = identity::cgroup2_mount().context("finding the cgroup v2 mount")?;
    let cgroup = File::open(&root).with_context(|| format!("opening {}", root.display()))?;
    let attached = (|| -> Result<()> {
        for name in programs::UDP_PEER {
            let prog = udp_program(ebpf, name)?;
            prog.load().with_context(|| format!("loading {name}"))?;
            // A BPF link (kernel 5.7+, what aya uses where it can) takes no flags and
            // always sits beside other programs on the cgroup, never replacing them.
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .with_context(|| format!("attaching {name} to {}", root.display()))?;
        }
        Ok(())
    })();
    if attached.is_err() {
        for name in programs::UDP_PEER {
            if let Ok(prog) = udp_program(ebpf, name) {
                // Detaches whatever this one had attached.
                let _ = prog.unload();
            }
        }
    }
    attached
}

fn udp_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut CgroupSockAddr> {
    Ok(ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing from the eBPF object"))?
        .try_into()?)
}
