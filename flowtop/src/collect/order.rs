//! `-s` and `-r`: one order for the rows of every grouping.
use std::cmp::Ordering;

use super::row::RowData;

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

/// Keeps the `limit` busiest rows (by this interval's RX+TX), then orders them by
/// `sort`, ties broken busiest first. Rows already in busiest-first order (the
/// differ's) make the first sort a check.
pub fn order<R: RowData>(rows: &mut Vec<R>, sort: SortBy, limit: Option<usize>) {
    rows.sort_by(busiest);
    if let Some(n) = limit {
        rows.truncate(n);
    }
    if sort != SortBy::Total {
        rows.sort_by(|a, b| sorted_by(sort, a, b).then_with(|| busiest(a, b)));
    }
}

/// How `-s` alone orders two rows.
fn sorted_by<R: RowData>(sort: SortBy, a: &R, b: &R) -> Ordering {
    match sort {
        SortBy::Total => Ordering::Equal,
        SortBy::Rx => b.interval().rx.cmp(&a.interval().rx),
        SortBy::Tx => b.interval().tx.cmp(&a.interval().tx),
        SortBy::Pid => a.pid().cmp(&b.pid()),
        SortBy::Comm => a.comm().cmp(&b.comm()),
    }
}

/// Largest interval RX+TX first; ties in a stable order (pid, name, cgroup,
/// container, ports).
fn busiest<R: RowData>(a: &R, b: &R) -> Ordering {
    b.interval()
        .total()
        .cmp(&a.interval().total())
        .then(a.pid().cmp(&b.pid()))
        .then_with(|| a.comm().cmp(&b.comm()))
        .then_with(|| a.cgroup().cmp(&b.cgroup()))
        .then_with(|| {
            let (a, b) = (a.container(), b.container());
            a.map(|c| (&c.name, &c.id))
                .cmp(&b.map(|c| (&c.name, &c.id)))
        })
        .then_with(|| {
            let ports = |r: &R| r.conn().map(|c| (c.lport, c.local(), c.remote()));
            ports(a).cmp(&ports(b))
        })
}
