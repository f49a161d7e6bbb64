//! Output formats. Each printer writes one interval to any `io::Write`, so tests
//! write into a `Vec<u8>`; the caller flushes after every interval (pipes see each
//! interval as soon as it ends).
//!
//! Two stages, as in ripgrep: what was asked ([`OutputRequest`], from the command
//! line) and the terminal ([`term::Term`]) are resolved once into [`OutputOptions`] (is colour on? how wide
//! may a line be?), and printers only follow those decisions. All printers share
//! one column model ([`columns`], [`row`]) and print every `--by` ([`frame`],
//! [`layout`]).
pub mod columns;
pub mod csv;
#[cfg(test)]
mod fixtures;
pub mod frame;
pub mod json;
pub mod layout;
pub mod row;
pub mod table;
pub mod term;
pub mod units;

use std::{
    io,
    time::{Duration, SystemTime},
};

pub use units::Units;

use crate::collect::{
    aggregate::{GroupBy, Report},
    diff::IntervalReport,
};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people; sizes follow --units
    #[default]
    Table,
    /// Comma-separated values: a header line, then one line per row per interval,
    /// exact byte counts, the same keys as json
    Csv,
    /// JSON Lines: one object per row per interval, exact byte counts
    Json,
}

/// The output options as asked for, before the terminal is known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputRequest {
    pub format: Format,
    /// `--units`; None: the default (KB). Only the table has units.
    pub units: Option<Units>,
    pub rate: bool,
    pub timestamp: bool,
    /// Print the header line (`--no-header` turns it off).
    pub header: bool,
    /// `--summary` / `--no-summary`, the last one given; None: on for the table only.
    pub summary: Option<bool>,
    /// `-C`.
    pub clear: bool,
}

/// Every output decision, made once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputOptions {
    pub format: Format,
    /// What a row is (`--by`): decides the columns.
    pub by: GroupBy,
    /// `--show-nspid`: an NSPID column (key `nspid`).
    pub nspid: bool,
    /// `--show-container`: a CONTAINER column (keys `container`, `container_id`,
    /// `runtime`, `pod`, `namespace`, `cgroup`).
    pub container: bool,
    /// Table only: machine formats always carry exact bytes.
    pub units: Units,
    /// Per-second rates instead of per-interval amounts.
    pub rate: bool,
    /// Table: a TIME column. (CSV and JSON always have `time`.)
    pub timestamp: bool,
    /// Table and CSV: print the header line.
    pub header: bool,
    /// A summary per interval: a line in the table, an object in JSON, extra columns
    /// in CSV. Default: on for the table only.
    pub summary: bool,
    /// Redraw the screen each interval (table on a terminal only).
    pub clear: bool,
    /// ANSI bold/colour (table on a terminal, NO_COLOR unset).
    pub color: bool,
    /// No table line is wider than this (COLUMNS, else the terminal's width).
    pub width: Option<usize>,
    /// Screen rows available in clear mode (LINES, else the terminal's height).
    pub height: Option<usize>,
    /// width/height come from the terminal (not COLUMNS/LINES): re-read them every
    /// interval, so a resized terminal is followed.
    pub follow_tty: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        Self {
            format: Format::Table,
            by: GroupBy::Pid,
            nspid: false,
            container: false,
            units: Units::Kb,
            rate: false,
            timestamp: false,
            header: true,
            summary: false,
            clear: false,
            color: false,
            width: None,
            height: None,
            follow_tty: false,
        }
    }
}

impl OutputOptions {
    /// Pure: what was asked, what a row is (`by`, `nspid`, `container`: they
    /// decide the columns), and what stdout is connected to.
    pub fn resolve(
        req: &OutputRequest,
        by: GroupBy,
        nspid: bool,
        container: bool,
        term: &term::Term,
    ) -> Self {
        let table = req.format == Format::Table;
        Self {
            format: req.format,
            by,
            nspid,
            container,
            units: req.units.unwrap_or_default(),
            rate: req.rate,
            timestamp: req.timestamp,
            header: req.header,
            summary: req.summary.unwrap_or(table),
            clear: req.clear && table && term.stdout_is_tty,
            color: table && term.stdout_is_tty && !term.no_color,
            width: term.env_columns.or(term.tty_size.map(|(c, _)| c)),
            height: term.env_lines.or(term.tty_size.map(|(_, r)| r)),
            follow_tty: table
                && term.stdout_is_tty
                && term.env_columns.is_none()
                && term.env_lines.is_none(),
        }
    }
}

/// When an interval ended and how long it really lasted (the last one, cut short by
/// Ctrl-C, is shorter; rates use this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at: SystemTime,
    pub elapsed: Duration,
    /// Socket calls the kernel skipped flowtop's programs for this interval
    /// (recursion misses: their bytes are not counted, but the loss is shown).
    pub skipped: u64,
}

/// Writes intervals in one format.
pub trait Printer {
    /// Per-process rows (`--by pid`).
    fn interval(&mut self, report: &IntervalReport, stamp: &Stamp) -> io::Result<()>;
    /// Rows of any grouping (`--by conn|comm|cgroup`, see [`layout`]).
    fn grouped(&mut self, report: &Report, stamp: &Stamp) -> io::Result<()>;
}

/// A printer's one method, for rows of any type. [`Printer`], which must stay
/// usable as a trait object (no generic methods), is implemented for every
/// `FramePrinter`.
pub trait FramePrinter {
    fn frame<R: row::RowData>(
        &mut self,
        frame: &frame::Frame<'_, R>,
        stamp: &Stamp,
    ) -> io::Result<()>;
}

impl<T: FramePrinter> Printer for T {
    fn interval(&mut self, report: &IntervalReport, stamp: &Stamp) -> io::Result<()> {
        self.frame(&frame::Frame::from(report), stamp)
    }

    fn grouped(&mut self, report: &Report, stamp: &Stamp) -> io::Result<()> {
        self.frame(&frame::Frame::from(report), stamp)
    }
}

/// The printer for `opts.format`.
pub fn printer_with<'a, W: io::Write + 'a>(opts: &OutputOptions, out: W) -> Box<dyn Printer + 'a> {
    match opts.format {
        Format::Table => Box::new(table::TablePrinter::new(out, opts.clone())),
        Format::Csv => Box::new(csv::CsvPrinter::new(out, opts.clone())),
        Format::Json => Box::new(json::JsonPrinter::new(out, opts.clone())),
    }
}

/// The printer for `format` with default options (no terminal).
pub fn printer<'a, W: io::Write + 'a>(format: Format, out: W) -> Box<dyn Printer + 'a> {
    printer_with(
        &OutputOptions {
            format,
            summary: format == Format::Table,
            ..OutputOptions::default()
        },
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::{term::Term, *};

    fn req(format: Format, clear: bool) -> OutputRequest {
        OutputRequest {
            format,
            clear,
            header: true,
            ..OutputRequest::default()
        }
    }

    fn resolve(req: &OutputRequest, term: &Term) -> OutputOptions {
        OutputOptions::resolve(req, GroupBy::Pid, false, false, term)
    }

    fn tty() -> Term {
        Term {
            stdout_is_tty: true,
            tty_size: Some((120, 40)),
            ..Term::default()
        }
    }

    #[test]
    fn clear_and_colour_only_on_a_terminal() {
        let piped = resolve(&req(Format::Table, true), &Term::default());
        assert!(!piped.clear && !piped.color);
        let t = resolve(&req(Format::Table, true), &tty());
        assert!(t.clear && t.color);
        assert_eq!((t.width, t.height), (Some(120), Some(40)));
        let json = resolve(&req(Format::Json, true), &tty());
        assert!(
            !json.clear && !json.color,
            "machine formats never get escapes"
        );
    }

    #[test]
    fn no_color_is_respected() {
        let term = Term {
            no_color: true,
            ..tty()
        };
        assert!(!resolve(&req(Format::Table, false), &term).color);
    }

    #[test]
    fn columns_env_wins_even_without_a_terminal() {
        let table = req(Format::Table, false);
        let term = Term {
            env_columns: Some(60),
            ..Term::default()
        };
        assert_eq!(resolve(&table, &term).width, Some(60));
        let term = Term {
            env_columns: Some(70),
            ..tty()
        };
        let o = resolve(&table, &term);
        assert_eq!(o.width, Some(70));
        assert!(!o.follow_tty, "COLUMNS fixes the width");
        assert_eq!(resolve(&table, &Term::default()).width, None);
        assert!(resolve(&table, &tty()).follow_tty);
    }

    #[test]
    fn summary_defaults_on_for_the_table_only() {
        let t = Term::default();
        assert!(resolve(&req(Format::Table, false), &t).summary);
        assert!(!resolve(&req(Format::Json, false), &t).summary);
        assert!(!resolve(&req(Format::Csv, false), &t).summary);
        let off = OutputRequest {
            summary: Some(false),
            ..req(Format::Table, false)
        };
        assert!(!resolve(&off, &t).summary);
        let on = OutputRequest {
            summary: Some(true),
            ..req(Format::Csv, false)
        };
        assert!(resolve(&on, &t).summary);
    }

    #[test]
    fn rows_decide_the_columns_and_units_default_to_kb() {
        let d = resolve(&req(Format::Table, false), &Term::default());
        assert_eq!((d.units, d.by, d.nspid), (Units::Kb, GroupBy::Pid, false));
        let o = OutputOptions::resolve(
            &req(Format::Table, false),
            GroupBy::Conn,
            true,
            false,
            &Term::default(),
        );
        assert_eq!((o.by, o.nspid), (GroupBy::Conn, true));
    }
}
