//! Output formats. Each printer writes one interval to any `io::Write`, so tests
//! write into a `Vec<u8>`; the caller flushes after every interval (pipes see each
//! interval as soon as it ends).
pub mod grouped;
pub mod json;
pub mod table;

use std::{io, time::SystemTime};

use crate::collect::{aggregate::Report, diff::IntervalReport};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, sizes in KB (1024 bytes) with one decimal.
    Table,
    /// JSON Lines: one object per row per interval, exact byte counts.
    Json,
}

/// Writes intervals in one format.
pub trait Printer {
    fn interval(&mut self, report: &IntervalReport, at: SystemTime) -> io::Result<()>;
    /// `--by conn|comm|cgroup` (see [`grouped`]).
    fn grouped(&mut self, report: &Report, at: SystemTime) -> io::Result<()>;
}

pub fn printer<'a, W: io::Write + 'a>(format: Format, out: W) -> Box<dyn Printer + 'a> {
    match format {
        Format::Table => Box::new(table::TablePrinter::new(out)),
        Format::Json => Box::new(json::JsonPrinter::new(out)),
    }
}
