//! One row as the columns see it: [`RowData`] (what any row of any `--by` can
//! answer), [`RowCtx`] (a row in its interval) and [`Value`] (one cell before
//! formatting). Rows of the differ ([`ProcRow`]) and of the groupings ([`Row`]) are
//! read in place, without converting.
use std::{borrow::Cow, time::SystemTime};

use super::Stamp;
use crate::collect::{
    aggregate::{Conn, GroupBy, Row},
    diff::ProcRow,
    Bytes,
};

/// One cell before formatting. The table formats bytes with `--units`; CSV and JSON
/// write exact integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(Cow<'a, str>),
    /// A plain count (PID, interval number, processes, port).
    Int(u64),
    /// An amount of bytes.
    Bytes(u64),
    /// Bytes per second.
    Rate(f64),
    /// Seconds (the interval's measured length).
    Seconds(f64),
    /// When the interval ended.
    Time(SystemTime),
    /// Not known or not applicable: `-` in the table, empty in CSV, `null` in JSON.
    Null,
}

/// What the columns read from one row.
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
}

impl RowData for ProcRow {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }
    fn nspid(&self) -> Option<u32> {
        self.nspid
    }
    fn comm(&self) -> Option<&str> {
        Some(&self.comm)
    }
    fn interval(&self) -> Bytes {
        self.interval
    }
    fn total(&self) -> Bytes {
        self.total
    }
    fn conn(&self) -> Option<&Conn> {
        None
    }
    fn cgroup(&self) -> Option<&str> {
        None
    }
    fn processes(&self) -> u32 {
        1
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
        self.cgroup.as_deref()
    }
    fn processes(&self) -> u32 {
        self.processes
    }
}

/// What a column's value is computed from.
pub struct RowCtx<'a, R> {
    /// 1-based interval number.
    pub index: u64,
    pub by: GroupBy,
    pub row: &'a R,
    pub stamp: &'a Stamp,
    /// `stamp.elapsed` in seconds, for the rates: computed once per interval, not
    /// once per cell.
    pub seconds: f64,
}
