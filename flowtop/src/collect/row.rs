//! [`RowData`]: one read interface over the rows of every grouping, so the printers
//! and the ordering (`-s`, `-r`) handle the differ's per-process rows
//! ([`ProcRow`](super::diff::ProcRow), up to 100k per interval) and the groupings'
//! rows ([`Row`](super::aggregate::Row)) in place, without converting. Each row
//! type implements it where it is defined.
use super::{conn::Conn, Bytes};
use crate::container::Identity;

/// What any row of any `--by` answers: the columns print it, `-s` orders by it.
pub trait RowData {
    /// Host PID; None for groups of processes (`--by comm|cgroup`).
    fn pid(&self) -> Option<u32>;
    /// PID in the process's innermost PID namespace (`--show-nspid`); None: unknown.
    fn nspid(&self) -> Option<u32>;
    /// Process name; None for cgroups.
    fn comm(&self) -> Option<&str>;
    /// Bytes moved during this interval.
    fn interval(&self) -> Bytes;
    /// Bytes moved since flowtop started.
    fn total(&self) -> Bytes;
    /// `--by conn`: the connection.
    fn conn(&self) -> Option<&Conn>;
    /// `--by cgroup`: the cgroup path.
    fn cgroup(&self) -> Option<&str>;
    /// Processes that moved bytes in this row this interval.
    fn processes(&self) -> u32;
    /// `--by container`, `--show-container`: who the row's bytes belong to.
    fn container(&self) -> Option<&Identity>;
}
