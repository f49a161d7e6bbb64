//! Filters and groupings as the kernel programs see them: fields of the load-time
//! [`KernelConfig`] (the verifier prunes unused branches, so an unset filter costs
//! nothing) and two small maps (`-p` with several PIDs; `--cgroup`, `--container`,
//! `--pod`).
use std::{fs::File, os::fd::AsRawFd as _, path::PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{CgroupArray, HashMap},
    Ebpf,
};
use flowtop_common::{
    flow_mode, KernelConfig, COMM_LEN, MAP_FILTER_CGROUP, MAP_FILTER_PIDS, MAX_FILTER_CGROUPS,
    MAX_FILTER_PIDS,
};

use crate::{collect::aggregate::GroupBy, container::filter::Wanted, identity};

/// The filters as asked for (`-p`, `-c`, `--cgroup`, `--container`/`--pod`,
/// `-4`/`-6`, `--tcp`/`--udp`, `--port`), before they are checked against this
/// machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterRequest {
    pub pids: Vec<u32>,
    pub comm: Option<String>,
    /// As `/proc/PID/cgroup` shows it, or a directory in the cgroup2 mount.
    pub cgroup: Option<String>,
    /// `--container`, `--pod`: what to match and the cgroups matching at start,
    /// resolved once, in `Cli::validate` (where nothing matching is exit 2).
    pub containers: Option<(Wanted, Vec<PathBuf>)>,
    /// `AF_INET`, `AF_INET6`, or 0 for both.
    pub family: u16,
    /// A `proto_filter` value.
    pub proto: u32,
    pub port: Option<u16>,
}

/// What the programs are told to count and how to key it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFilters {
    /// `-p`: one PID goes in [`KernelConfig::filter_tgid`], several in `FILTER_PIDS`.
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
    /// `flow_mode` bits for `--by conn`/`--by cgroup` (and `-i`'s other groupings).
    pub flow_mode: u32,
    // Derived flags (u32, as the kernel reads them).
    pid_map: u32,
    cgroup_on: u32,
    read_addrs: u32,
}

impl KernelFilters {
    /// `have_offsets`: the kernel's BTF gave the `struct sock` offsets. Without them
    /// (only the classic tracepoint then works) addresses and ports cannot be read.
    /// `by`: what rows are made of, `show_container` whether they carry their
    /// container, `switchable` the groupings the rows may switch to later (`-i`):
    /// together they decide what the kernel keys flows by.
    pub fn new(
        req: &FilterRequest,
        by: GroupBy,
        show_container: bool,
        switchable: &[GroupBy],
        have_offsets: bool,
    ) -> Result<Self> {
        let mut f = KernelFilters {
            pids: req.pids.clone(),
            ..Default::default()
        };
        if f.pids.len() > MAX_FILTER_PIDS as usize {
            bail!("-p: at most {MAX_FILTER_PIDS} PIDs");
        }
        f.pid_map = u32::from(f.pids.len() > 1);
        if let Some(name) = &req.comm {
            f.comm = comm_filter(name)?;
        }
        if let Some(path) = &req.cgroup {
            let mount = identity::cgroup2_mount().context("--cgroup needs cgroup v2")?;
            f.cgroup_dir = Some(identity::cgroup_dir(&mount, path)?);
            f.cgroup_on = 1;
        }
        if req.containers.is_some() {
            f.containers = req.containers.clone();
            f.cgroup_on = MAX_FILTER_CGROUPS;
        }
        f.family = req.family;
        f.proto = req.proto;
        f.port = req.port.unwrap_or(0);
        f.flow_mode = by.flow_mode();
        // --show-container names a process or a connection by its flows' cgroups.
        if show_container && matches!(by, GroupBy::Pid | GroupBy::Conn) {
            f.flow_mode |= flow_mode::CGROUP;
        }
        // Groupings switched to later are keyed too, those needing addresses only
        // where they can be read.
        for other in switchable {
            let mode = other.flow_mode();
            if mode & flow_mode::CONN == 0 || have_offsets {
                f.flow_mode |= mode;
            }
        }
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

    /// The single PID for [`KernelConfig::filter_tgid`] (0: none or several).
    fn single_tgid(&self) -> u32 {
        match self.pids[..] {
            [pid] => pid,
            _ => 0,
        }
    }

    /// Writes the filters and the flow mode into the programs' configuration.
    pub fn configure(&self, config: &mut KernelConfig) {
        config.filter_tgid = self.single_tgid();
        config.filter_pid_map = self.pid_map;
        config.filter_comm = self.comm;
        config.filter_cgroup_on = self.cgroup_on;
        config.filter_family = self.family;
        config.filter_proto = self.proto;
        config.filter_port = self.port;
        config.flow_mode = self.flow_mode;
        config.read_addrs = self.read_addrs;
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
                pids.insert(pid, &1, 0).context("filling the PID filter")?;
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
    use flowtop_common::{
        net::{AF_INET, AF_INET6},
        proto_filter,
    };

    use super::*;

    fn pids(pids: &[u32]) -> FilterRequest {
        FilterRequest {
            pids: pids.to_vec(),
            ..Default::default()
        }
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
        let f = KernelFilters::new(&pids(&[42]), GroupBy::Pid, false, &[], true).unwrap();
        assert_eq!((f.single_tgid(), f.pid_map), (42, 0));
        let f = KernelFilters::new(&pids(&[42, 43]), GroupBy::Pid, false, &[], true).unwrap();
        assert_eq!((f.single_tgid(), f.pid_map), (0, 1));
        assert_eq!(f.pids, [42, 43]);
        let many: Vec<u32> = (1..=MAX_FILTER_PIDS + 1).collect();
        assert!(KernelFilters::new(&pids(&many), GroupBy::Pid, false, &[], true).is_err());
    }

    #[test]
    fn pid_mode_reads_no_addresses_and_leaves_flows_alone() {
        let none = FilterRequest::default();
        let f = KernelFilters::new(&none, GroupBy::Pid, false, &[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (0, 0));
        let f = KernelFilters::new(&none, GroupBy::Conn, false, &[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CONN, 1));
        let f = KernelFilters::new(&none, GroupBy::Cgroup, false, &[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CGROUP, 0));
        let f = KernelFilters::new(&none, GroupBy::Container, false, &[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CGROUP, 0));
        // --show-container: rows of processes learn their cgroup from the flows.
        let f = KernelFilters::new(&none, GroupBy::Pid, true, &[], true).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CGROUP, 0));
        let f = KernelFilters::new(&none, GroupBy::Conn, true, &[], true).unwrap();
        assert_eq!(f.flow_mode, flow_mode::CONN | flow_mode::CGROUP);
        let dns = FilterRequest {
            family: AF_INET6,
            proto: proto_filter::UDP,
            port: Some(53),
            ..Default::default()
        };
        let f = KernelFilters::new(&dns, GroupBy::Pid, false, &[], true).unwrap();
        assert_eq!(
            (f.family, f.proto, f.port, f.read_addrs),
            (AF_INET6, proto_filter::UDP, 53, 1)
        );
    }

    #[test]
    fn switchable_groupings_key_flows_for_all_that_this_kernel_can_read() {
        let none = FilterRequest::default();
        let all = GroupBy::all();
        let f = KernelFilters::new(&none, GroupBy::Pid, false, all, true).unwrap();
        assert_eq!(f.flow_mode, flow_mode::CONN | flow_mode::CGROUP);
        assert!(f.reads_addresses());
        // Without BTF: no connections, but the cgroups still.
        let f = KernelFilters::new(&none, GroupBy::Comm, false, all, false).unwrap();
        assert_eq!((f.flow_mode, f.read_addrs), (flow_mode::CGROUP, 0));
        // The grouping asked for first still needs what it needs.
        assert!(KernelFilters::new(&none, GroupBy::Conn, false, all, false).is_err());
    }

    #[test]
    fn addresses_without_btf_are_refused_clearly() {
        let none = FilterRequest::default();
        let e = KernelFilters::new(&none, GroupBy::Conn, false, &[], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--by conn needs the kernel's BTF"), "{e}");
        let port = FilterRequest {
            port: Some(80),
            ..Default::default()
        };
        let e = KernelFilters::new(&port, GroupBy::Pid, false, &[], false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--port needs"), "{e}");
        // -4/-6 still work without BTF, on the socket's own family.
        let v4 = FilterRequest {
            family: AF_INET,
            ..Default::default()
        };
        let f = KernelFilters::new(&v4, GroupBy::Pid, false, &[], false).unwrap();
        assert_eq!((f.family, f.read_addrs), (AF_INET, 0));
    }
}
