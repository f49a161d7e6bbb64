//! Filters and groupings as the kernel programs see them: load-time globals (the
//! verifier prunes unused branches, so an unset filter costs nothing) and two small
//! maps (`-p` with several PIDs, `--cgroup`).
use std::{fs::File, os::fd::AsRawFd as _, path::PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{CgroupArray, HashMap},
    Ebpf, EbpfLoader,
};
use flowtop_common::{
    flow_mode, globals,
    net::{AF_INET, AF_INET6},
    proto_filter, COMM_LEN, MAP_FILTER_CGROUP, MAP_FILTER_PIDS, MAX_FILTER_CGROUPS,
    MAX_FILTER_PIDS,
};

use crate::{
    cli::Cli,
    collect::aggregate::GroupBy,
    container::{self, filter::Wanted},
    identity,
};

/// What the programs are told to count and how to key it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFilters {
    /// `-p`: one PID goes in the `FILTER_TGID` global, several in `FILTER_PIDS`.
    pub pids: Vec<u32>,
    /// `-c`: NUL-padded, at most 15 bytes (the kernel's `TASK_COMM_LEN` - 1).
    pub comm: [u8; COMM_LEN],
    /// `--cgroup`: the cgroup v2 directory.
    pub cgroup_dir: Option<PathBuf>,
    /// `--container`, `--pod`: what to match and the cgroups matching now (the
    /// slots are filled by [`crate::container::filter::CgroupFilter`]).
    pub containers: Option<(Wanted, Vec<PathBuf>)>,
    /// `-4`/`-6`: `AF_INET`/`AF_INET6` or 0.
    pub family: u16,
    /// `--tcp`/`--udp`: a `proto_filter` value.
    pub proto: u32,
    /// `--port`, or 0.
    pub port: u16,
    /// `flow_mode` bits for `--by conn`/`--by cgroup`.
    pub flow_mode: u32,
    // Derived globals (u32 flags, since globals are read as-is).
    pid_map: u32,
    cgroup_on: u32,
    read_addrs: u32,
}

impl KernelFilters {
    /// `have_offsets`: the kernel's BTF gave the `struct sock` offsets. Without them
    /// (only the classic tracepoint then works) addresses and ports cannot be read.
    pub fn from_cli(cli: &Cli, have_offsets: bool) -> Result<Self> {
        let mut f = KernelFilters {
            pids: cli.pid.clone(),
            ..Default::default()
        };
        if f.pids.len() > MAX_FILTER_PIDS as usize {
            bail!("-p: at most {MAX_FILTER_PIDS} PIDs");
        }
        f.pid_map = u32::from(f.pids.len() > 1);
        if let Some(name) = &cli.comm {
            f.comm = comm_filter(name)?;
        }
        if let Some(path) = &cli.cgroup {
            let mount = identity::cgroup2_mount().context("--cgroup needs cgroup v2")?;
            f.cgroup_dir = Some(identity::cgroup_dir(&mount, path)?);
            f.cgroup_on = 1;
        }
        if let Some(wanted) = Wanted::new(cli.container.clone(), cli.pod.clone()) {
            let dirs = container::filter::initial(&wanted, &cli.host_root, cli.wait)
                .map_err(|e| anyhow!(e))?;
            f.containers = Some((wanted, dirs));
            f.cgroup_on = MAX_FILTER_CGROUPS;
        }
        f.family = match (cli.ipv4, cli.ipv6) {
            (true, _) => AF_INET,
            (_, true) => AF_INET6,
            _ => 0,
        };
        f.proto = match (cli.tcp, cli.udp) {
            (true, _) => proto_filter::TCP,
            (_, true) => proto_filter::UDP,
            _ => proto_filter::ANY,
        };
        f.port = cli.port.unwrap_or(0);
        f.flow_mode = match cli.by {
            // The exporter's counters are labelled by process and cgroup.
            _ if cli.serve.is_some() => flow_mode::CGROUP,
            // --show-container names a connection by its flows' cgroups.
            GroupBy::Conn if cli.show_container => flow_mode::CONN | flow_mode::CGROUP,
            GroupBy::Conn => flow_mode::CONN,
            GroupBy::Cgroup | GroupBy::Container => flow_mode::CGROUP,
            GroupBy::Pid if cli.show_container => flow_mode::CGROUP,
            GroupBy::Pid | GroupBy::Comm => 0,
        };
        let needs_addrs = f.flow_mode & flow_mode::CONN != 0 || f.port != 0;
        if needs_addrs && !have_offsets {
            bail!(
                "{} needs the kernel's BTF ({}) to read addresses and ports from struct \
                 sock; without BTF only the classic tracepoint works, and its record \
                 carries family and protocol but no addresses or ports",
                if f.port != 0 { "--port" } else { "--by conn" },
                crate::probe::btf_offsets::VMLINUX_BTF
            );
        }
        // -4/-6 also use the addresses when they can: a dual-stack IPv6 socket
        // talking to an IPv4-mapped address is IPv4 traffic.
        f.read_addrs = u32::from(have_offsets && (needs_addrs || f.family != 0));
        Ok(f)
    }

    /// Whether the programs read addresses and ports (`--by conn`, `--port`, `-4`/`-6`
    /// with BTF): then the peer of each datagram of an unconnected UDP socket matters
    /// too (its remote, its remote port, and its family on a dual-stack socket).
    pub fn reads_addresses(&self) -> bool {
        self.read_addrs != 0
    }

    /// The single PID for the `FILTER_TGID` global (0: none or several).
    pub fn single_tgid(&self) -> u32 {
        match self.pids[..] {
            [pid] => pid,
            _ => 0,
        }
    }

    /// Sets every filter global except `FILTER_TGID` (see [`Self::single_tgid`]).
    pub fn set_globals<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        loader
            .override_global(globals::FILTER_PID_MAP, &self.pid_map, true)
            .override_global(globals::FILTER_COMM, &self.comm, true)
            .override_global(globals::FILTER_CGROUP_ON, &self.cgroup_on, true)
            .override_global(globals::FILTER_FAMILY, &self.family, true)
            .override_global(globals::FILTER_PROTO, &self.proto, true)
            .override_global(globals::FILTER_PORT, &self.port, true)
            .override_global(globals::FLOW_MODE, &self.flow_mode, true)
            .override_global(globals::READ_ADDRS, &self.read_addrs, true);
    }

    /// Fills the filter maps. Until this runs, a program with the PID-list or cgroup
    /// filter on counts nothing (empty map: no match), never too much.
    pub fn fill_maps(&self, ebpf: &mut Ebpf) -> Result<()> {
        if self.pid_map != 0 {
            let mut pids: HashMap<_, u32, u8> = HashMap::try_from(
                ebpf.map_mut(MAP_FILTER_PIDS)
                    .ok_or_else(|| anyhow!("map {MAP_FILTER_PIDS} missing"))?,
            )?;
            for pid in &self.pids {
                pids.insert(pid, 1, 0).context("filling the PID filter")?;
            }
        }
        if let Some(dir) = &self.cgroup_dir {
            let mut cg = CgroupArray::try_from(
                ebpf.map_mut(MAP_FILTER_CGROUP)
                    .ok_or_else(|| anyhow!("map {MAP_FILTER_CGROUP} missing"))?,
            )?;
            let fd = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
            cg.set(0, fd.as_raw_fd(), 0)
                .context("setting the cgroup filter")?;
        }
        Ok(())
    }
}

/// `-c NAME` as the kernel stores names: at most 15 bytes, NUL-padded.
pub fn comm_filter(name: &str) -> Result<[u8; COMM_LEN]> {
    let b = name.as_bytes();
    if b.is_empty() || b.contains(&0) {
        bail!("-c: a process name is 1 to 15 bytes without NUL");
    }
    let mut comm = [0; COMM_LEN];
    let n = b.len().min(COMM_LEN - 1);
    comm[..n].copy_from_slice(&b[..n]);
    Ok(comm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn filters(args: &[&str], btf: bool) -> Result<KernelFilters> {
        let cli =
            Cli::try_parse_from(std::iter::once("flowtop").chain(args.iter().copied())).unwrap();
        KernelFilters::from_cli(&cli, btf)
    }

    #[test]
    fn comm_is_truncated_like_the_kernel_does() {
        assert_eq!(&comm_filter("curl").unwrap()[..5], b"curl\0");
        let long = comm_filter("a-very-long-process-name").unwrap();
        assert_eq!(&long[..15], b"a-very-long-pro");
        assert_eq!(long[15], 0);
        assert!(comm_filter("").is_err());
    }

    #[test]
    fn one_pid_uses_the_global_several_use_the_map() {
        let f = filters(&["-p", "42"], true).unwrap();
        assert_eq!((f.single_tgid(), f.pid_map), (42, 0));
        let f = filters(&["-p", "42,43"], true).unwrap();
        assert_eq!((f.single_tgid(), f.pid_map), (0, 1));
        assert_eq!(f.pids, [42, 43]);
    }

    #[test]
    fn pid_mode_reads_no_addresses_and_leaves_flows_alone() {
        let f = filters(&[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (0, 0));
        let f = filters(&["--by", "conn"], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CONN, 1));
        let f = filters(&["--by", "cgroup"], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CGROUP, 0));
        let f = filters(&["-6", "--udp", "--port", "53"], true).unwrap();
        assert_eq!(
            (f.family, f.proto, f.port, f.read_addrs),
            (AF_INET6, proto_filter::UDP, 53, 1)
        );
    }

    #[test]
    fn addresses_without_btf_are_refused_clearly() {
        let e = filters(&["--by", "conn"], false).unwrap_err().to_string();
        assert!(e.contains("--by conn needs the kernel's BTF"), "{e}");
        let e = filters(&["--port", "80"], false).unwrap_err().to_string();
        assert!(e.starts_with("--port needs"), "{e}");
        // -4/-6 still work without BTF, on the socket's own family.
        let f = filters(&["-4"], false).unwrap();
        assert_eq!((f.family, f.read_addrs), (AF_INET, 0));
    }
}
