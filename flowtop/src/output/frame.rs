//! What a printer prints: one interval of rows of any `--by`, and its summary.
//!
//! `--by pid` rows come straight from the differ ([`ProcRow`], up to 100k per
//! interval), the other groupings' from [`aggregate`](crate::collect::aggregate)
//! ([`Row`]). Columns read both through [`RowData`](super::row::RowData), so one column model and one
//! printer per format serve every grouping without converting rows.
use super::{
    row::{RowCtx, Value},
    units::per_sec,
    Stamp,
};
use crate::collect::{
    aggregate::{GroupBy, Report, Row},
    diff::{IntervalReport, ProcRow},
    Bytes,
};

/// One interval: the rows shown, and what the summary and the `-r` note need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a, R> {
    /// 1-based interval number.
    pub index: u64,
    /// The rows shown, in order.
    pub rows: &'a [R],
    /// Rows of the interval, shown or not (`-r` shows fewer).
    pub all_rows: usize,
    /// Bytes of all those rows this interval.
    pub all: Bytes,
    /// Bytes the kernel could not attribute this interval (map full).
    pub unrecorded: Bytes,
}

impl<'a, R> Frame<'a, R> {
    /// Rows `-r` left out.
    pub fn hidden(&self) -> usize {
        self.all_rows.saturating_sub(self.rows.len())
    }

    /// What the columns read, row by row.
    pub fn contexts<'s>(
        &'s self,
        by: GroupBy,
        stamp: &'s Stamp,
    ) -> impl Iterator<Item = RowCtx<'s, R>> + 's {
        let seconds = stamp.elapsed.as_secs_f64();
        self.rows.iter().map(move |row| RowCtx {
            index: self.index,
            by,
            row,
            stamp,
            seconds,
        })
    }
}

impl<'a> From<&'a IntervalReport> for Frame<'a, ProcRow> {
    /// Per-process rows are all shown (`--by pid` applies `-r` before converting).
    fn from(report: &'a IntervalReport) -> Self {
        let all = report.rows.iter().fold(Bytes::default(), |acc, r| Bytes {
            rx: acc.rx + r.interval.rx,
            tx: acc.tx + r.interval.tx,
        });
        Self {
            index: report.index,
            rows: &report.rows,
            all_rows: report.rows.len(),
            all,
            unrecorded: report.unrecorded,
        }
    }
}

impl<'a> From<&'a Report> for Frame<'a, Row> {
    fn from(report: &'a Report) -> Self {
        Self {
            index: report.index,
            rows: &report.rows,
            all_rows: report.all_rows,
            all: report.all,
            unrecorded: report.unrecorded,
        }
    }
}

/// What an interval could not count: bytes a full map had no room for, and socket
/// calls the kernel skipped flowtop's programs for. Every format shows it in the
/// interval it happened, with or without `--summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loss {
    pub unrecorded: Bytes,
    pub skipped: u64,
}

impl Loss {
    pub fn of<R>(frame: &Frame<'_, R>, stamp: &Stamp) -> Self {
        Self {
            unrecorded: frame.unrecorded,
            skipped: stamp.skipped,
        }
    }

    pub fn is_none(&self) -> bool {
        self.unrecorded.total() == 0 && self.skipped == 0
    }

    /// Names for the machine formats, in order (values from [`Loss::values`]).
    pub const KEYS: [&'static str; 4] = [
        "unrecorded_rx_bytes",
        "unrecorded_tx_bytes",
        "unrecorded_bytes",
        "skipped_calls",
    ];

    pub fn values(&self) -> [Value<'static>; 4] {
        [
            Value::Bytes(self.unrecorded.rx),
            Value::Bytes(self.unrecorded.tx),
            Value::Bytes(self.unrecorded.total()),
            Value::Int(self.skipped),
        ]
    }
}

/// One interval across all rows: the table's summary line, the JSON summary object,
/// the CSV summary columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Rows of the interval (processes for `--by pid`).
    pub rows: usize,
    /// Bytes of all those rows this interval.
    pub all: Bytes,
    pub loss: Loss,
    pub seconds: f64,
}

impl Summary {
    pub fn of<R>(frame: &Frame<'_, R>, stamp: &Stamp) -> Self {
        Self {
            rows: frame.all_rows,
            all: frame.all,
            loss: Loss::of(frame, stamp),
            seconds: stamp.elapsed.as_secs_f64(),
        }
    }

    /// Names for the machine formats, in order (values from [`Summary::values`]).
    /// The count is `processes` for `--by pid` and `rows` otherwise: a group's own
    /// `processes` column must not collide with it in CSV. Keys are only ever
    /// appended (`skipped_calls` came last), so CSV columns keep their places.
    pub fn keys(by: GroupBy, rate: bool) -> Vec<&'static str> {
        let count = match by {
            GroupBy::Pid => "processes",
            _ => "rows",
        };
        let [unrecorded_rx, unrecorded_tx, unrecorded, skipped] = Loss::KEYS;
        let mut keys = vec![
            count,
            "all_rx_bytes",
            "all_tx_bytes",
            unrecorded_rx,
            unrecorded_tx,
            unrecorded,
        ];
        if rate {
            keys.extend(["all_rx_bytes_per_sec", "all_tx_bytes_per_sec"]);
        }
        keys.push(skipped);
        keys
    }

    pub fn values(&self, rate: bool) -> Vec<Value<'static>> {
        let [unrecorded_rx, unrecorded_tx, unrecorded, skipped] = self.loss.values();
        let mut values = vec![
            Value::Int(self.rows as u64),
            Value::Bytes(self.all.rx),
            Value::Bytes(self.all.tx),
            unrecorded_rx,
            unrecorded_tx,
            unrecorded,
        ];
        if rate {
            values.extend([
                Value::Rate(per_sec(self.all.rx, self.seconds)),
                Value::Rate(per_sec(self.all.tx, self.seconds)),
            ]);
        }
        values.push(skipped);
        values
    }
}

/// What one row of `by` is, for prose (`3 connections`, `… 5 more processes`).
pub fn row_noun(by: GroupBy, n: usize) -> &'static str {
    let (one, many) = match by {
        GroupBy::Pid => ("process", "processes"),
        GroupBy::Conn => ("connection", "connections"),
        GroupBy::Comm => ("name", "names"),
        GroupBy::Cgroup => ("cgroup", "cgroups"),
        GroupBy::Container => ("container", "containers"),
    };
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::{row, stamp};

    #[test]
    fn summary_adds_up_the_interval() {
        let report = IntervalReport {
            index: 1,
            rows: vec![row(1, "a", 10, 20, 10, 20), row(2, "b", 1, 2, 5, 5)],
            unrecorded: Bytes { rx: 7, tx: 0 },
        };
        let s = Summary::of(&Frame::from(&report), &stamp(1));
        assert_eq!(s.rows, 2);
        assert_eq!(s.all, Bytes { rx: 11, tx: 22 });
        assert_eq!(s.loss.unrecorded, Bytes { rx: 7, tx: 0 });
        assert_eq!(
            Summary::keys(GroupBy::Pid, false).len(),
            s.values(false).len()
        );
        assert_eq!(
            Summary::keys(GroupBy::Pid, true).len(),
            s.values(true).len()
        );
        assert_eq!(Summary::keys(GroupBy::Pid, false)[0], "processes");
        assert_eq!(Summary::keys(GroupBy::Comm, false)[0], "rows");
    }

    #[test]
    fn a_grouped_frame_counts_the_rows_r_hid() {
        let report = Report {
            index: 2,
            by: GroupBy::Comm,
            rows: vec![],
            all_rows: 3,
            all: Bytes { rx: 5, tx: 6 },
            unrecorded: Bytes::default(),
        };
        let f = Frame::from(&report);
        assert_eq!((f.hidden(), f.all_rows, f.all), (3, 3, report.all));
        assert_eq!(Summary::of(&f, &stamp(1)).rows, 3);
    }

    #[test]
    fn nouns_follow_the_grouping_and_the_count() {
        assert_eq!(row_noun(GroupBy::Pid, 1), "process");
        assert_eq!(row_noun(GroupBy::Pid, 0), "processes");
        assert_eq!(row_noun(GroupBy::Conn, 2), "connections");
        assert_eq!(row_noun(GroupBy::Cgroup, 1), "cgroup");
    }
}
