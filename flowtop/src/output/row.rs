//! One row as the columns see it: [`RowCtx`] (a row of any `--by`, read through
//! [`RowData`], in its interval) and [`Value`] (one cell before formatting).
use std::{borrow::Cow, time::SystemTime};

use super::Stamp;
use crate::collect::aggregate::GroupBy;
pub use crate::collect::row::RowData;

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
