//! Groupings (`--by pid|conn|comm|cgroup`), sorting (`-s`) and row limits (`-r`).
//!
//! Every grouping is a sum of exact per-key interval deltas: a group's interval bytes
//! are its keys' deltas this interval, its totals the running sum of those, so no
//! grouping can gain or lose a byte against the per-key counters.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use flowtop_common::{
    net::{AF_INET, AF_INET6, IPPROTO_MPTCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE},
    FlowKey,
};

use crate::container::Identity;

use super::{
    diff::{IntervalReport, ProcRow},
    flows::FlowDelta,
    Bytes,
};

/// `--by`: what one row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One row per process (thread group)
    Pid,
    /// One row per connection or flow of a process (protocol, addresses, ports)
    Conn,
    /// Processes with the same name summed
    Comm,
    /// One row per cgroup (v2) path: a container, a systemd service
    Cgroup,
    /// One row per container (docker, podman, Kubernetes) or systemd service, by
    /// name; other processes are one `host` row
    Container,
}

/// `-s`: the order of the rows shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// This interval's RX+TX, largest first
    Total,
    /// This interval's RX, largest first
    Rx,
    /// This interval's TX, largest first
    Tx,
    /// PID, smallest first
    Pid,
    /// Process name, alphabetical
    Comm,
}

/// A connection's identity as shown (`--by conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub family: u16,
    pub protocol: u16,
    pub laddr: IpAddr,
    pub lport: u16,
    /// None: not connected (unconnected UDP): the hooks do not see each datagram's peer.
    pub remote: Option<(IpAddr, u16)>,
}

impl Conn {
    pub fn from_key(k: &FlowKey) -> Self {
        let addr = |b: &[u8; 16]| -> IpAddr {
            if k.family == AF_INET {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            } else {
                unmap(IpAddr::V6(Ipv6Addr::from(*b)))
            }
        };
        let raddr = addr(&k.raddr);
        Self {
            family: k.family,
            protocol: k.protocol,
            laddr: addr(&k.laddr),
            lport: k.lport,
            remote: (!raddr.is_unspecified() || k.rport != 0).then_some((raddr, k.rport)),
        }
    }

    /// `tcp`, `udp`, `mptcp`, `udplite`.
    pub fn proto(&self) -> String {
        match self.protocol {
            IPPROTO_TCP => "tcp".into(),
            IPPROTO_UDP => "udp".into(),
            IPPROTO_MPTCP => "mptcp".into(),
            IPPROTO_UDPLITE => "udplite".into(),
            p => format!("proto{p}"),
        }
    }

    /// `ipv4` or `ipv6`, after IPv4-mapped addresses were shown as IPv4.
    pub fn family_name(&self) -> &'static str {
        match (self.family, self.laddr) {
            (AF_INET6, IpAddr::V6(_)) => "ipv6",
            _ => "ipv4",
        }
    }

    pub fn local(&self) -> String {
        endpoint(self.laddr, self.lport)
    }

    /// `*` when the remote is not known.
    pub fn remote(&self) -> String {
        self.remote
            .map_or_else(|| "*".to_string(), |(a, p)| endpoint(a, p))
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// `1.2.3.4:80`, `[::1]:8080`.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match unmap(addr) {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// One row of any grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Host PID (pid, conn); None for groups of processes.
    pub pid: Option<u32>,
    /// PID in the process's innermost PID namespace (`--show-nspid`, rows with a
    /// PID); None when unknown.
    pub nspid: Option<u32>,
    /// Process name (None for cgroups).
    pub comm: Option<String>,
    /// Processes that moved bytes in this row this interval.
    pub processes: u32,
    pub conn: Option<Conn>,
    /// cgroup v2 path (`--by cgroup`).
    pub cgroup: Option<String>,
    /// The container, pod or unit (`--by container`, `--show-container`).
    pub container: Option<Arc<Identity>>,
    pub interval: Bytes,
    pub total: Bytes,
}

impl Row {
    fn new(interval: Bytes, total: Bytes) -> Self {
        Self {
            pid: None,
            nspid: None,
            comm: None,
            processes: 1,
            conn: None,
            cgroup: None,
            container: None,
            interval,
            total,
        }
    }
}

/// One interval of any grouping, after `-s` and `-r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub index: u64,
    pub by: GroupBy,
    /// The rows shown: at most `-r`, in `-s` order.
    pub rows: Vec<Row>,
    /// Every row of the interval, shown or not: how many and their bytes.
    pub all_rows: usize,
    pub all: Bytes,
    /// Bytes the kernel could not attribute this interval (map full).
    pub unrecorded: Bytes,
}

impl Report {
    /// The per-process report the existing printers take (`--by pid`).
    pub fn to_interval_report(&self) -> IntervalReport {
        IntervalReport {
            index: self.index,
            rows: self
                .rows
                .iter()
                .map(|r| ProcRow {
                    pid: r.pid.unwrap_or(0),
                    nspid: r.nspid,
                    comm: r.comm.as_deref().unwrap_or_default().into(),
                    interval: r.interval,
                    total: r.total,
                })
                .collect(),
            unrecorded: self.unrecorded,
        }
    }
}

/// `--by pid`.
pub fn by_pid(procs: &[ProcRow]) -> Vec<Row> {
    procs
        .iter()
        .map(|p| Row {
            pid: Some(p.pid),
            comm: Some(p.comm.to_string()),
            ..Row::new(p.interval, p.total)
        })
        .collect()
}

/// `--by conn`: flows as they are (each flow key belongs to one process), named as
/// their process is in `procs`: the kernel renames only the per-process key when a
/// process renames itself (exec), and every flow's bytes also reach that key.
pub fn by_conn(flows: &[FlowDelta], procs: &[ProcRow]) -> Vec<Row> {
    let names: HashMap<u32, &str> = procs.iter().map(|p| (p.pid, p.comm.as_str())).collect();
    flows
        .iter()
        .map(|f| Row {
            pid: Some(f.key.tgid),
            comm: Some(
                names
                    .get(&f.key.tgid)
                    .map_or_else(|| f.comm.clone(), |n| n.to_string()),
            ),
            conn: Some(Conn::from_key(&f.key)),
            ..Row::new(f.interval, f.total)
        })
        .collect()
}

/// Running totals of groups of keys (`--by comm`, `--by cgroup`).
#[derive(Debug, Default)]
pub struct Groups<G> {
    totals: HashMap<G, Bytes>,
}

impl<G: std::hash::Hash + Eq + Clone> Groups<G> {
    /// Sums this interval's `(group, delta)` pairs into one row per group.
    pub fn rows(
        &mut self,
        deltas: impl IntoIterator<Item = (G, Bytes)>,
        mut label: impl FnMut(&G, &mut Row),
    ) -> Vec<Row> {
        let mut now: HashMap<G, (Bytes, u32)> = HashMap::new();
        for (g, d) in deltas {
            let e = now.entry(g).or_default();
            e.0.rx += d.rx;
            e.0.tx += d.tx;
            e.1 += 1;
        }
        now.into_iter()
            .map(|(g, (d, n))| {
                let total = self.totals.entry(g.clone()).or_default();
                total.rx += d.rx;
                total.tx += d.tx;
                let mut row = Row {
                    processes: n,
                    ..Row::new(d, *total)
                };
                label(&g, &mut row);
                row
            })
            .collect()
    }
}

/// `--by comm` from the per-process rows.
pub fn by_comm(groups: &mut Groups<String>, procs: &[ProcRow]) -> Vec<Row> {
    groups.rows(
        procs.iter().map(|p| (p.comm.to_string(), p.interval)),
        |g, r| r.comm = Some(g.clone()),
    )
}

/// `--by cgroup` from flows keyed by (process, cgroup); `name` resolves an id.
pub fn by_cgroup(
    groups: &mut Groups<u64>,
    flows: &[FlowDelta],
    mut name: impl FnMut(u64) -> String,
) -> Vec<Row> {
    // A process counts once per cgroup: flows of one process are merged first.
    let mut per_proc: HashMap<(u64, u32), Bytes> = HashMap::new();
    for f in flows {
        let e = per_proc.entry((f.key.cgroup, f.key.tgid)).or_default();
        e.rx += f.interval.rx;
        e.tx += f.interval.tx;
    }
    groups.rows(per_proc.into_iter().map(|((cg, _), d)| (cg, d)), |g, r| {
        r.cgroup = Some(name(*g))
    })
}

/// `--by container` from flows keyed by (process, cgroup); `who` names a flow's
/// cgroup (and process, for the v1 fallback). Rows are keyed by
/// [`Identity::group_key`]: a container's monitor and sub-cgroups join its row.
pub fn by_container(
    groups: &mut Groups<String>,
    flows: &[FlowDelta],
    mut who: impl FnMut(u64, u32) -> Arc<Identity>,
) -> Vec<Row> {
    let mut per_proc: HashMap<(String, u32), (Bytes, Arc<Identity>)> = HashMap::new();
    for f in flows {
        let ident = who(f.key.cgroup, f.key.tgid);
        let e = per_proc
            .entry((ident.group_key(), f.key.tgid))
            .or_insert_with(|| (Bytes::default(), ident));
        e.0.rx += f.interval.rx;
        e.0.tx += f.interval.tx;
    }
    let mut idents: HashMap<String, Arc<Identity>> = HashMap::new();
    let deltas: Vec<(String, Bytes)> = per_proc
        .into_iter()
        .map(|((key, _), (d, ident))| {
            idents.entry(key.clone()).or_insert(ident);
            (key, d)
        })
        .collect();
    groups.rows(deltas, |g, r| {
        r.container = idents.get(g).cloned();
        r.cgroup = r.container.as_ref().and_then(|c| c.cgroup.clone());
    })
}

/// Keeps the `limit` busiest rows (by this interval's RX+TX), then orders them by
/// `sort`; the report still counts every row.
pub fn finish(
    index: u64,
    by: GroupBy,
    mut rows: Vec<Row>,
    sort: SortBy,
    limit: Option<usize>,
    unrecorded: Bytes,
) -> Report {
    let all_rows = rows.len();
    let all = rows.iter().fold(Bytes::default(), |a, r| Bytes {
        rx: a.rx + r.interval.rx,
        tx: a.tx + r.interval.tx,
    });
    rows.sort_by(busiest);
    if let Some(n) = limit {
        rows.truncate(n);
    }
    fn key(r: &Row) -> SortKey<'_> {
        (r.interval, r.pid, r.comm.as_deref())
    }
    rows.sort_by(|a, b| sorted_by(sort, key(a), key(b)).then_with(|| busiest(a, b)));
    Report {
        index,
        by,
        rows,
        all_rows,
        all,
        unrecorded,
    }
}

/// [`finish`] for `--by pid`, on the differ's rows as they are: the same rows in the
/// same order as `finish(by_pid(rows))` and back through
/// [`Report::to_interval_report`], without converting up to 100k rows twice. The
/// differ already ordered them busiest first, so the first sort only checks that
/// (or orders the names of one PID).
pub fn finish_procs(
    mut report: IntervalReport,
    sort: SortBy,
    limit: Option<usize>,
) -> IntervalReport {
    let busiest = |a: &ProcRow, b: &ProcRow| {
        b.interval
            .total()
            .cmp(&a.interval.total())
            .then(a.pid.cmp(&b.pid))
            .then_with(|| a.comm.cmp(&b.comm))
    };
    let rows = &mut report.rows;
    rows.sort_by(busiest);
    if let Some(n) = limit {
        rows.truncate(n);
    }
    if sort != SortBy::Total {
        fn key(r: &ProcRow) -> SortKey<'_> {
            (r.interval, Some(r.pid), Some(&r.comm))
        }
        rows.sort_by(|a, b| sorted_by(sort, key(a), key(b)).then_with(|| busiest(a, b)));
    }
    report
}

/// What `-s` looks at in a row: this interval's bytes, the PID, the name.
type SortKey<'a> = (Bytes, Option<u32>, Option<&'a str>);

/// How `-s` alone orders two rows.
fn sorted_by(sort: SortBy, a: SortKey<'_>, b: SortKey<'_>) -> std::cmp::Ordering {
    match sort {
        SortBy::Total => std::cmp::Ordering::Equal,
        SortBy::Rx => b.0.rx.cmp(&a.0.rx),
        SortBy::Tx => b.0.tx.cmp(&a.0.tx),
        SortBy::Pid => a.1.cmp(&b.1),
        SortBy::Comm => a.2.cmp(&b.2),
    }
}

/// Largest interval RX+TX first; ties in a stable order (pid, name, cgroup, ports).
fn busiest(a: &Row, b: &Row) -> std::cmp::Ordering {
    b.interval
        .total()
        .cmp(&a.interval.total())
        .then(a.pid.cmp(&b.pid))
        .then_with(|| a.comm.cmp(&b.comm))
        .then_with(|| a.cgroup.cmp(&b.cgroup))
        .then_with(|| {
            let name = |r: &Row| r.container.as_ref().map(|c| (c.name.clone(), c.id.clone()));
            name(a).cmp(&name(b))
        })
        .then_with(|| {
            let ports = |r: &Row| r.conn.as_ref().map(|c| (c.lport, c.local(), c.remote()));
            ports(a).cmp(&ports(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(family: u16, laddr: [u8; 16], lport: u16, raddr: [u8; 16], rport: u16) -> FlowKey {
        FlowKey {
            tgid: 1,
            family,
            protocol: IPPROTO_TCP,
            lport,
            rport,
            laddr,
            raddr,
            ..Default::default()
        }
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    #[test]
    fn formats_v4_v6_mapped_and_unknown_remotes() {
        let c = Conn::from_key(&key(
            AF_INET,
            v4([127, 0, 0, 1]),
            8080,
            v4([10, 1, 2, 3]),
            443,
        ));
        assert_eq!(
            (c.local(), c.remote()),
            ("127.0.0.1:8080".into(), "10.1.2.3:443".into())
        );
        assert_eq!((c.proto(), c.family_name()), ("tcp".into(), "ipv4"));
        let lo6 = Ipv6Addr::LOCALHOST.octets();
        let c = Conn::from_key(&key(AF_INET6, lo6, 8080, lo6, 51000));
        assert_eq!(
            (c.local(), c.remote()),
            ("[::1]:8080".into(), "[::1]:51000".into())
        );
        assert_eq!(c.family_name(), "ipv6");
        let doc = "2001:db8::a:0:0:1".parse::<Ipv6Addr>().unwrap().octets();
        let c = Conn::from_key(&key(AF_INET6, doc, 1, [0; 16], 0));
        assert_eq!(
            (c.local(), c.remote()),
            ("[2001:db8::a:0:0:1]:1".into(), "*".into())
        );
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().octets();
        let c = Conn::from_key(&key(AF_INET6, mapped, 53, mapped, 5353));
        assert_eq!(
            (c.local(), c.remote()),
            ("192.0.2.7:53".into(), "192.0.2.7:5353".into())
        );
        assert_eq!(c.family_name(), "ipv4");
        let c = Conn::from_key(&key(AF_INET, [0; 16], 5353, [0; 16], 0));
        assert_eq!((c.local(), c.remote()), ("0.0.0.0:5353".into(), "*".into()));
    }

    #[test]
    fn pid_rows_finish_as_the_converted_rows_do() {
        let procs = vec![
            proc_row(3, "b", 1, 9),
            proc_row(1, "c", 5, 0),
            proc_row(2, "a", 2, 2),
            proc_row(4, "z", 2, 2),
            proc_row(4, "y", 2, 2),
            proc_row(6, "a", 0, 4),
            proc_row(5, "a", 3, 1),
        ];
        for sort in [
            SortBy::Total,
            SortBy::Rx,
            SortBy::Tx,
            SortBy::Pid,
            SortBy::Comm,
        ] {
            for limit in [None, Some(0), Some(2), Some(5), Some(100)] {
                let report = IntervalReport {
                    index: 3,
                    rows: procs.clone(),
                    unrecorded: Bytes { rx: 1, tx: 2 },
                };
                let rows = by_pid(&report.rows);
                let want = finish(3, GroupBy::Pid, rows, sort, limit, report.unrecorded)
                    .to_interval_report();
                assert_eq!(
                    finish_procs(report, sort, limit),
                    want,
                    "{sort:?} {limit:?}"
                );
            }
        }
    }

    fn proc_row(pid: u32, comm: &str, rx: u64, tx: u64) -> ProcRow {
        ProcRow {
            pid,
            nspid: None,
            comm: comm.into(),
            interval: Bytes { rx, tx },
            total: Bytes { rx, tx },
        }
    }

    #[test]
    fn comm_groups_sum_processes_and_keep_running_totals() {
        let mut g = Groups::default();
        let rows = by_comm(
            &mut g,
            &[
                proc_row(1, "nginx", 10, 1),
                proc_row(2, "nginx", 5, 2),
                proc_row(3, "curl", 1, 0),
            ],
        );
        let r = finish(
            1,
            GroupBy::Comm,
            rows,
            SortBy::Total,
            None,
            Bytes::default(),
        );
        assert_eq!(r.rows[0].comm.as_deref(), Some("nginx"));
        assert_eq!(
            (r.rows[0].interval, r.rows[0].processes),
            (Bytes { rx: 15, tx: 3 }, 2)
        );
        let rows = by_comm(&mut g, &[proc_row(4, "nginx", 1, 1)]);
        assert_eq!(rows[0].interval, Bytes { rx: 1, tx: 1 });
        assert_eq!(rows[0].total, Bytes { rx: 16, tx: 4 });
    }

    #[test]
    fn cgroup_groups_merge_flows_and_name_ids() {
        let flow = |tgid, cgroup, rx| FlowDelta {
            key: FlowKey {
                tgid,
                cgroup,
                ..Default::default()
            },
            comm: String::new(),
            interval: Bytes { rx, tx: 0 },
            total: Bytes { rx, tx: 0 },
        };
        let mut g = Groups::default();
        let rows = by_cgroup(
            &mut g,
            &[flow(1, 7, 3), flow(2, 7, 4), flow(1, 9, 1)],
            |id| format!("/cg{id}"),
        );
        let r = finish(
            1,
            GroupBy::Cgroup,
            rows,
            SortBy::Total,
            None,
            Bytes::default(),
        );
        assert_eq!(r.rows[0].cgroup.as_deref(), Some("/cg7"));
        assert_eq!((r.rows[0].interval.rx, r.rows[0].processes), (7, 2));
        assert_eq!(r.rows[1].cgroup.as_deref(), Some("/cg9"));
    }

    #[test]
    fn rows_limit_keeps_the_busiest_and_the_report_counts_all() {
        let procs = [
            proc_row(1, "a", 1, 0),
            proc_row(2, "b", 0, 50),
            proc_row(3, "c", 30, 0),
            proc_row(4, "d", 20, 20),
        ];
        let r = finish(
            1,
            GroupBy::Pid,
            by_pid(&procs),
            SortBy::Total,
            Some(2),
            Bytes::default(),
        );
        let pids: Vec<_> = r.rows.iter().map(|r| r.pid.unwrap()).collect();
        assert_eq!(pids, [2, 4]);
        assert_eq!((r.all_rows, r.all), (4, Bytes { rx: 51, tx: 70 }));
        // -r picks the busiest, -s orders what is shown.
        let r = finish(
            1,
            GroupBy::Pid,
            by_pid(&procs),
            SortBy::Rx,
            Some(3),
            Bytes::default(),
        );
        let pids: Vec<_> = r.rows.iter().map(|r| r.pid.unwrap()).collect();
        assert_eq!(pids, [3, 4, 2]);
    }

    #[test]
    fn sorts_by_each_key() {
        let procs = [
            proc_row(3, "b", 1, 9),
            proc_row(1, "c", 5, 0),
            proc_row(2, "a", 2, 2),
        ];
        let order = |s| -> Vec<u32> {
            finish(1, GroupBy::Pid, by_pid(&procs), s, None, Bytes::default())
                .rows
                .iter()
                .map(|r| r.pid.unwrap())
                .collect()
        };
        assert_eq!(order(SortBy::Total), [3, 1, 2]);
        assert_eq!(order(SortBy::Rx), [1, 2, 3]);
        assert_eq!(order(SortBy::Tx), [3, 2, 1]);
        assert_eq!(order(SortBy::Pid), [1, 2, 3]);
        assert_eq!(order(SortBy::Comm), [2, 3, 1]);
    }

    #[test]
    fn pid_report_converts_back_for_the_per_process_printers() {
        let r = finish(
            2,
            GroupBy::Pid,
            by_pid(&[proc_row(9, "x", 1, 2)]),
            SortBy::Total,
            None,
            Bytes::default(),
        );
        let ir = r.to_interval_report();
        assert_eq!(ir.index, 2);
        assert_eq!(ir.rows, vec![proc_row(9, "x", 1, 2)]);
    }
}
