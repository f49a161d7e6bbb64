//! CSV: a header line (unless `--no-header`), then one line per row per interval,
//! with the same keys, order and exact values as the JSON rows (for `--by
//! conn|comm|cgroup` without `by`: a CSV file holds one grouping). Fields are
//! quoted when needed (a COMM may contain commas, quotes or spaces); unknown values
//! (`pid` of a group, `raddr` of an unconnected socket) are empty.
//!
//! A CSV file is one rectangular table, so `--summary` does not add lines of another
//! shape: it appends the interval's summary as extra columns repeated on every row
//! (`processes`, or `rows` for groupings, `all_rx_bytes`, `all_tx_bytes`,
//! `unrecorded_rx_bytes`, `unrecorded_tx_bytes`, `unrecorded_bytes`). Summing a
//! column still counts each byte once (`skipped_calls` is the last column). An
//! interval in which nothing moved has no lines; use `--format json --summary` for a
//! line per interval.
//!
//! Without `--summary`, an interval that lost something (bytes a full map could not
//! store, socket calls the kernel skipped flowtop's programs for) ends with one
//! comment line, so no loss is silent and readers that skip `#` lines (pandas'
//! `comment='#'`, `grep -v '^#'`) still see a rectangular table:
//!
//! ```text
//! # interval 3 loss: unrecorded_rx_bytes=300 unrecorded_tx_bytes=0 unrecorded_bytes=300 skipped_calls=0
//! ```
use std::io;

use super::{
    columns::Column,
    frame::{Frame, Loss, Summary},
    layout::record_columns,
    row::{RowData, Value},
    FramePrinter, OutputOptions, Stamp,
};

pub struct CsvPrinter<W: io::Write> {
    out: csv::Writer<W>,
    opts: OutputOptions,
    columns: Vec<Column>,
    header_due: bool,
}

impl<W: io::Write> CsvPrinter<W> {
    pub fn new(out: W, opts: OutputOptions) -> Self {
        let columns = record_columns(&opts);
        Self {
            // Flexible: the loss comment is one field on a line of its own.
            out: csv::WriterBuilder::new().flexible(true).from_writer(out),
            header_due: opts.header,
            opts,
            columns,
        }
    }

    /// The header line: the JSON keys, then the summary columns.
    pub fn header(opts: &OutputOptions) -> Vec<&'static str> {
        let mut keys: Vec<&str> = record_columns(opts).into_iter().map(Column::key).collect();
        if opts.summary {
            keys.extend(Summary::keys(opts.by, opts.rate));
        }
        keys
    }
}

fn field(value: &Value<'_>) -> String {
    match value {
        Value::Text(s) => s.to_string(),
        Value::Int(n) | Value::Bytes(n) => n.to_string(),
        Value::Rate(f) | Value::Seconds(f) => f.to_string(),
        Value::Time(t) => humantime::format_rfc3339_millis(*t).to_string(),
        Value::Null => String::new(),
    }
}

fn to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl<W: io::Write> FramePrinter for CsvPrinter<W> {
    fn frame<R: RowData>(&mut self, frame: &Frame<'_, R>, stamp: &Stamp) -> io::Result<()> {
        if self.header_due {
            self.out
                .write_record(Self::header(&self.opts))
                .map_err(to_io)?;
            self.header_due = false;
        }
        let summary: Vec<String> = if self.opts.summary {
            let s = Summary::of(frame, stamp);
            s.values(self.opts.rate).iter().map(field).collect()
        } else {
            Vec::new()
        };
        for ctx in frame.contexts(self.opts.by, stamp) {
            let fields = self
                .columns
                .iter()
                .map(|c| field(&c.value(&ctx)))
                .chain(summary.iter().cloned());
            self.out.write_record(fields).map_err(to_io)?;
        }
        let loss = Loss::of(frame, stamp);
        if !self.opts.summary && !loss.is_none() {
            let pairs: Vec<String> = Loss::KEYS
                .iter()
                .zip(loss.values())
                .map(|(k, v)| format!("{k}={}", field(&v)))
                .collect();
            let line = format!("# interval {} loss: {}", frame.index, pairs.join(" "));
            self.out.write_record([line]).map_err(to_io)?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        collect::{diff::IntervalReport, Bytes},
        output::{
            fixtures::{row, stamp, CORE_KEYS},
            Printer as _,
        },
    };

    fn render(opts: OutputOptions, reports: &[IntervalReport]) -> String {
        let mut out = Vec::new();
        let mut p = CsvPrinter::new(&mut out, opts);
        for r in reports {
            p.interval(r, &stamp(2)).unwrap();
        }
        drop(p);
        String::from_utf8(out).unwrap()
    }

    fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header = rdr.headers().unwrap().iter().map(String::from).collect();
        let rows = rdr
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    fn two_intervals() -> Vec<IntervalReport> {
        vec![
            IntervalReport {
                index: 1,
                rows: vec![row(10, "web, \"front\"", 100, 50, 100, 50)],
                unrecorded: Bytes::default(),
            },
            IntervalReport {
                index: 2,
                rows: vec![
                    row(10, "web, \"front\"", 1, 2, 101, 52),
                    row(11, "db", 3, 4, 3, 4),
                ],
                unrecorded: Bytes { rx: 9, tx: 0 },
            },
        ]
    }

    #[test]
    fn one_header_then_rows_with_the_json_keys_and_proper_quoting() {
        let text = render(OutputOptions::default(), &two_intervals());
        // The header, three rows, and the second interval's loss comment.
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("\"web, \"\"front\"\"\""), "{text}");
        let rows_only: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let (header, rows) = parse(&rows_only);
        assert_eq!(header, CORE_KEYS);
        assert_eq!(
            rows[0],
            [
                "2023-11-14T22:13:20.000Z",
                "1",
                "10",
                "web, \"front\"",
                "100",
                "50",
                "100",
                "50",
                "150"
            ]
        );
        assert_eq!(rows[2][1..], ["2", "11", "db", "3", "4", "3", "4", "7"]);
    }

    #[test]
    fn no_header_and_rate_columns() {
        let opts = OutputOptions {
            header: false,
            rate: true,
            ..OutputOptions::default()
        };
        let text = render(opts, &two_intervals()[..1]);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let rec: Vec<String> = rdr
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(rec.len(), 12);
        assert_eq!(rec[9..], ["2", "50", "25"]);
    }

    #[test]
    fn summary_is_extra_columns_repeated_on_each_row() {
        let opts = OutputOptions {
            summary: true,
            ..OutputOptions::default()
        };
        let text = render(opts.clone(), &two_intervals());
        let (header, rows) = parse(&text);
        assert_eq!(header, CsvPrinter::<Vec<u8>>::header(&opts));
        assert_eq!(
            header[9..],
            [
                "processes",
                "all_rx_bytes",
                "all_tx_bytes",
                "unrecorded_rx_bytes",
                "unrecorded_tx_bytes",
                "unrecorded_bytes",
                "skipped_calls"
            ]
        );
        assert_eq!(rows[0][9..], ["1", "100", "50", "0", "0", "0", "0"]);
        assert_eq!(rows[1][9..], ["2", "4", "6", "9", "0", "9", "0"]);
        assert_eq!(rows[1][9..], rows[2][9..]);
        assert!(
            !text.contains('#'),
            "the summary columns carry the loss: {text}"
        );
    }

    #[test]
    fn without_summary_a_loss_is_a_comment_line_after_its_interval() {
        let mut out = Vec::new();
        let mut p = CsvPrinter::new(&mut out, OutputOptions::default());
        let reports = two_intervals();
        p.interval(&reports[0], &stamp(1)).unwrap();
        let skipped = Stamp {
            skipped: 4,
            ..stamp(1)
        };
        p.interval(&reports[1], &skipped).unwrap();
        drop(p);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Nothing lost in interval 1: no comment after its row.
        assert!(!lines[1].starts_with('#'), "{text}");
        assert_eq!(
            lines[4],
            "# interval 2 loss: unrecorded_rx_bytes=9 unrecorded_tx_bytes=0 \
             unrecorded_bytes=9 skipped_calls=4"
        );
        // A reader that skips comments sees one rectangular table.
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        assert_eq!(rdr.records().count(), 3);
    }
}
