//! Groupings (`--by pid|conn|comm|cgroup|container`): rows of each interval, then `-s`/`-r`.
//!
//! Every grouping is a sum of exact per-key interval deltas: a group's interval bytes
//! are its keys' deltas this interval, its totals the running sum of those, so no
//! grouping can gain or lose a byte against the per-key counters.
use std::{collections::HashMap, sync::Arc};

pub use super::{conn::Conn, order::SortBy};
use super::{
    diff::{IntervalReport, ProcRow},
    flows::FlowDelta,
    order::order,
    row::RowData,
    Bytes,
};
use crate::container::Identity;

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

impl GroupBy {
    /// `--by`'s value, as the JSON key `by` carries it.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Pid => "pid",
            GroupBy::Conn => "conn",
            GroupBy::Comm => "comm",
            GroupBy::Cgroup => "cgroup",
            GroupBy::Container => "container",
        }
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

impl RowData for Row {
    fn pid(&self) -> Option<u32> {
        self.pid
    }
    fn nspid(&self) -> Option<u32> {
        self.nspid
    }
    fn comm(&self) -> Option<&str> {
        self.comm.as_deref()
    }
    fn interval(&self) -> Bytes {
        self.interval
    }
    fn total(&self) -> Bytes {
        self.total
    }
    fn conn(&self) -> Option<&Conn> {
        self.conn.as_ref()
    }
    fn cgroup(&self) -> Option<&str> {
        self.cgroup
            .as_deref()
            .or_else(|| self.container.as_ref()?.cgroup.as_deref())
    }
    fn processes(&self) -> u32 {
        self.processes
    }
    fn container(&self) -> Option<&Identity> {
        self.container.as_deref()
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
                    .map_or_else(|| f.comm.to_string(), |n| n.to_string()),
            ),
            conn: Some(Conn::from_key(&f.key)),
            ..Row::new(f.interval, f.total)
        })
        .collect()
}

/// `--by pid` as grouping rows, for `--show-container` (which adds each
/// process's container); plain `--by pid` prints the differ's rows as they are.
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
    // A process counts once per container: its flows are merged first.
    let mut per_proc: HashMap<(String, u32), (Bytes, Arc<Identity>)> = HashMap::new();
    for f in flows {
        let ident = who(f.key.cgroup, f.key.tgid);
        let e = per_proc
            .entry((ident.group_key(), f.key.tgid))
            .or_insert_with(|| (Bytes::default(), ident));
        e.0 = e.0 + f.interval;
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

/// Keeps the `limit` busiest rows, ordered by `sort` (see [`order`]); the report
/// still counts every row.
pub fn finish(
    index: u64,
    by: GroupBy,
    mut rows: Vec<Row>,
    sort: SortBy,
    limit: Option<usize>,
    unrecorded: Bytes,
) -> Report {
    let all_rows = rows.len();
    let all = rows.iter().fold(Bytes::default(), |a, r| a + r.interval);
    order(&mut rows, sort, limit);
    Report {
        index,
        by,
        rows,
        all_rows,
        all,
        unrecorded,
    }
}

/// [`finish`] for `--by pid`, on the differ's rows as they are (up to 100k rows are
/// not converted).
pub fn finish_procs(
    mut report: IntervalReport,
    sort: SortBy,
    limit: Option<usize>,
) -> IntervalReport {
    order(&mut report.rows, sort, limit);
    report
}

#[cfg(test)]
mod tests {
    use flowtop_common::FlowKey;

    use super::*;

    // The plain way to make `--by pid` rows and back, as an oracle for
    // `finish_procs`.
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
            comm: Default::default(),
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
