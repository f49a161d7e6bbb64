//! The human table: an optional summary line, then the columns of the grouping
//! (`PID COMM RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB` for `--by pid`, see
//! [`super::layout`] for the others; names follow `--units`/`--rate`, `-T` adds
//! TIME first), and a note when `-r` left rows out.
//!
//! No line is wider than `OutputOptions::width`: first the shrinkable columns (COMM
//! keeps its start, addresses and cgroup paths their end) give up space down to
//! their minimum, the widest first, then whole columns are dropped from the right
//! (a cut number would be misleading; the columns that say what a row is stay), and
//! only a terminal narrower than those cuts lines.
mod cells;
mod fit;

use std::io;

use super::{
    columns::{Align, Column, Fit},
    frame::{row_noun, Frame, Loss, Summary},
    layout::{k8s_only, table_columns},
    row::RowData,
    term::local_hms,
    FramePrinter, OutputOptions, Stamp,
};
use crate::collect::Bytes;
use cells::{Cells, Kept};
use fit::{cut, push_aligned, push_spaces, ELLIPSIS};
pub use fit::{width_of, Layout};

/// Home the cursor and clear the screen (`-C`).
pub const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";
const BOLD: &str = "\x1b[1m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";
/// The interval's text goes to the writer in pieces of about this size, so a 100k-row
/// table needs no buffer of its own size (stdout gets one `write` per piece).
const CHUNK: usize = 64 * 1024;

pub struct TablePrinter<W> {
    out: W,
    opts: OutputOptions,
    columns: Vec<Column>,
    fits: Vec<Fit>,
    /// Natural widths, grown as longer values appear so columns don't jump back.
    widths: Vec<usize>,
    /// The widest header or value seen per column (natural widths without padding).
    content: Vec<usize>,
    printed: u64,
    /// Reused between intervals: text not yet written.
    text: String,
    /// Reused between intervals: the cells kept from the width pass.
    kept: Kept,
    /// `--by container`: POD and NAMESPACE are left out until a row is from
    /// Kubernetes (then kept, so columns do not come and go).
    k8s_pending: bool,
}

impl<W: io::Write> TablePrinter<W> {
    pub fn new(out: W, opts: OutputOptions) -> Self {
        let mut columns = table_columns(&opts);
        let k8s_pending = columns.iter().any(|c| k8s_only(*c));
        columns.retain(|c| !k8s_only(*c));
        let mut t = Self {
            out,
            opts,
            columns: Vec::new(),
            fits: Vec::new(),
            widths: Vec::new(),
            content: Vec::new(),
            printed: 0,
            text: String::new(),
            kept: Kept::default(),
            k8s_pending,
        };
        t.set_columns(columns);
        t
    }

    /// Starts over with `columns` at their header widths.
    fn set_columns(&mut self, columns: Vec<Column>) {
        let opts = &self.opts;
        self.content = columns.iter().map(|c| width_of(&c.header(opts))).collect();
        self.widths = columns
            .iter()
            .zip(&self.content)
            .map(|(c, w)| c.width().max(*w))
            .collect();
        self.fits = columns.iter().map(|c| c.fit()).collect();
        self.columns = columns;
    }

    /// Adds POD and NAMESPACE once a row is from Kubernetes, keeping the widths
    /// the other columns reached.
    fn show_k8s_columns_if_needed<R: RowData>(&mut self, rows: &[R]) {
        let from_k8s = |r: &R| r.container().is_some_and(|c| c.pod.is_some());
        if !self.k8s_pending || !rows.iter().any(from_k8s) {
            return;
        }
        self.k8s_pending = false;
        let old: Vec<(Column, usize, usize)> = self
            .columns
            .iter()
            .zip(self.widths.iter().zip(&self.content))
            .map(|(c, (w, n))| (*c, *w, *n))
            .collect();
        self.set_columns(table_columns(&self.opts));
        for (i, c) in self.columns.iter().enumerate() {
            if let Some((_, w, n)) = old.iter().find(|(o, _, _)| o == c) {
                (self.widths[i], self.content[i]) = (*w, *n);
            }
        }
    }

    /// `RX 1.5 KB, TX 0.3 KB` (per second with `--rate`).
    fn rx_tx(&self, bytes: Bytes, seconds: f64) -> String {
        let u = self.opts.units;
        let (rx, tx) = if self.opts.rate {
            (
                u.rate_with_unit(super::units::per_sec(bytes.rx, seconds)),
                u.rate_with_unit(super::units::per_sec(bytes.tx, seconds)),
            )
        } else {
            (u.amount_with_unit(bytes.rx), u.amount_with_unit(bytes.tx))
        };
        format!("RX {rx}, TX {tx}")
    }

    fn summary_line<R>(&self, frame: &Frame<'_, R>, stamp: &Stamp) -> String {
        let s = Summary::of(frame, stamp);
        let mut line = format!(
            "{} interval {}: {} {}, {}",
            local_hms(stamp.at),
            frame.index,
            s.rows,
            row_noun(self.opts.by, s.rows),
            self.rx_tx(s.all, s.seconds),
        );
        for part in self.loss_parts(&s.loss) {
            line.push_str(", ");
            line.push_str(&part);
        }
        line
    }

    /// Without the summary line: a line of its own when the interval lost something.
    fn loss_line(&self, loss: &Loss, frame_index: u64, stamp: &Stamp) -> Option<String> {
        let parts = self.loss_parts(loss);
        (!parts.is_empty()).then(|| {
            format!(
                "{} interval {frame_index}: {}",
                local_hms(stamp.at),
                parts.join(", ")
            )
        })
    }

    /// What the interval could not count, as the summary line says it.
    fn loss_parts(&self, loss: &Loss) -> Vec<String> {
        let u = self.opts.units;
        let mut parts = Vec::new();
        if loss.unrecorded.total() > 0 {
            parts.push(format!(
                "UNRECORDED RX {} TX {} (map full: raise --max-entries)",
                u.amount_with_unit(loss.unrecorded.rx),
                u.amount_with_unit(loss.unrecorded.tx),
            ));
        }
        if loss.skipped > 0 {
            parts.push(format!(
                "SKIPPED {} socket calls (the kernel did not run flowtop's programs for them)",
                loss.skipped
            ));
        }
        parts
    }

    /// After the rows, when `-r` left some out.
    fn hidden_line<R>(&self, frame: &Frame<'_, R>, stamp: &Stamp) -> String {
        format!(
            "({} more rows not shown; all {} rows: {})",
            frame.hidden(),
            frame.all_rows,
            self.rx_tx(frame.all, stamp.elapsed.as_secs_f64()),
        )
    }
}

impl<W: io::Write> FramePrinter for TablePrinter<W> {
    fn frame<R: RowData>(&mut self, frame: &Frame<'_, R>, stamp: &Stamp) -> io::Result<()> {
        self.show_k8s_columns_if_needed(frame.rows);
        if self.opts.follow_tty {
            if let Some((columns, rows)) = super::term::stdout_window_size() {
                self.opts.width = Some(columns);
                self.opts.height = Some(rows);
            }
        }
        let opts = &self.opts;
        // Two passes over the rows: the widths first, then each line formatted once
        // and written in pieces. Most cells are only counted in the first pass (no
        // buffer grows with the rows); those that cost a formatting (rates, human
        // units, addresses) are formatted there once and kept for the second.
        let ncols = self.columns.len();
        let nrows = frame.rows.len();
        let cells = Cells::new(opts.units, stamp.at);
        let counted: Vec<bool> = self.columns.iter().map(|c| cells.counted(*c)).collect();
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        let mut scratch = String::new();
        for ctx in frame.contexts(opts.by, stamp) {
            for (i, c) in self.columns.iter().enumerate() {
                // The value is made in each branch, right where it is passed: made
                // once before the branch, it went through the stack (~5 ms a 100k rows).
                let w = if counted[i] {
                    cells.width(c.value(&ctx), &mut scratch)
                } else {
                    kept.push(&cells, c.value(&ctx))
                };
                self.content[i] = self.content[i].max(w);
            }
        }
        for (w, c) in self.widths.iter_mut().zip(&self.content) {
            *w = (*w).max(*c);
        }
        let layout = Layout::fit(&self.widths, &self.content, &self.fits, opts.width);

        let mut text = std::mem::take(&mut self.text);
        text.clear();
        if opts.clear {
            text.push_str(CLEAR_SCREEN);
        } else if self.printed > 0 {
            text.push('\n');
        }
        let mut used_lines = 0;
        let first = if opts.summary {
            Some(self.summary_line(frame, stamp))
        } else {
            self.loss_line(&Loss::of(frame, stamp), frame.index, stamp)
        };
        if let Some(line) = first {
            let line = cut(&line, opts.width);
            let loss_at = ["UNRECORDED", "SKIPPED"]
                .iter()
                .filter_map(|m| line.find(m))
                .min();
            match loss_at {
                Some(i) if opts.color => {
                    text.push_str(&format!("{}{YELLOW}{}{RESET}\n", &line[..i], &line[i..]))
                }
                _ => text.push_str(&format!("{line}\n")),
            }
            used_lines += 1;
        }
        if opts.header {
            let headers: Vec<String> = self.columns.iter().map(|c| c.header(opts)).collect();
            let line = layout.line(&headers, opts.width);
            if opts.color {
                text.push_str(&format!("{BOLD}{line}{RESET}\n"));
            } else {
                text.push_str(&format!("{line}\n"));
            }
            used_lines += 1;
        }
        let hidden = (frame.hidden() > 0).then(|| cut(&self.hidden_line(frame, stamp), opts.width));
        used_lines += usize::from(hidden.is_some());
        // On a redrawn screen, rows that do not fit would scroll the header away.
        let room = match (opts.clear, opts.height) {
            (true, Some(h)) => h.saturating_sub(used_lines + 1),
            _ => usize::MAX,
        };
        let shown = if nrows > room {
            room.saturating_sub(1)
        } else {
            nrows
        };
        // Nothing shrunk or dropped (the natural widths hold every cell, and the line
        // fits the limit): cells go straight into the line, with no truncation to
        // check.
        let fits = layout.visible.iter().all(|&v| v)
            && layout.widths == self.widths
            && opts.width.is_none_or(|l| layout.total() <= l);
        let mut ends = vec![0; ncols];
        let mut next_kept = 0;
        for ctx in frame.contexts(opts.by, stamp).take(shown) {
            if fits {
                let start = text.len();
                for (i, c) in self.columns.iter().enumerate() {
                    if i > 0 {
                        text.push(' ');
                    }
                    let (w, align) = (layout.widths[i], self.fits[i].align);
                    if !counted[i] {
                        let cell = kept.cell(next_kept);
                        next_kept += 1;
                        push_aligned(&mut text, cell, width_of(cell), w, align);
                        continue;
                    }
                    let value = c.value(&ctx);
                    if cells.push_padded_number(&mut text, &value, w, align) {
                        continue;
                    }
                    if align == Align::Left {
                        let width = cells.push(&mut text, value);
                        push_spaces(&mut text, w.saturating_sub(width));
                    } else {
                        scratch.clear();
                        let width = cells.push(&mut scratch, value);
                        push_aligned(&mut text, &scratch, width, w, align);
                    }
                }
                let kept = text[start..].trim_end().len();
                text.truncate(start + kept);
            } else {
                scratch.clear();
                for (i, (c, end)) in self.columns.iter().zip(ends.iter_mut()).enumerate() {
                    if counted[i] {
                        cells.push(&mut scratch, c.value(&ctx));
                    } else {
                        scratch.push_str(kept.cell(next_kept));
                        next_kept += 1;
                    }
                    *end = scratch.len();
                }
                let cell = |i: usize| &scratch[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
                layout.line_with(&mut text, ncols, cell, opts.width);
            }
            text.push('\n');
            if text.len() >= CHUNK {
                self.out.write_all(text.as_bytes())?;
                text.clear();
            }
        }
        if shown < nrows && room > 0 {
            let left = nrows - shown;
            let more = format!("{ELLIPSIS} {left} more {}", row_noun(opts.by, left));
            text.push_str(&cut(&more, opts.width));
            text.push('\n');
        }
        if let Some(line) = hidden {
            text.push_str(&line);
            text.push('\n');
        }
        self.printed += 1;
        let written = self.out.write_all(text.as_bytes());
        self.text = text;
        self.kept = kept;
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        collect::diff::IntervalReport,
        output::{
            fixtures::{row, stamp},
            units::Units,
            Printer as _,
        },
    };

    fn report(index: u64, rows: Vec<crate::collect::diff::ProcRow>) -> IntervalReport {
        IntervalReport {
            index,
            rows,
            unrecorded: Bytes::default(),
        }
    }

    fn render(opts: OutputOptions, reports: &[IntervalReport]) -> String {
        let mut out = Vec::new();
        let mut p = TablePrinter::new(&mut out, opts);
        for r in reports {
            p.interval(r, &stamp(1)).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn default_table_is_the_seed_layout() {
        let text = render(
            OutputOptions::default(),
            &[report(1, vec![row(42, "nginx", 2048, 512, 4096, 1024)])],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            words(lines[0]),
            ["PID", "COMM", "RX_KB", "TX_KB", "RXSUM_KB", "TXSUM_KB", "SUM_KB"]
        );
        assert_eq!(
            words(lines[1]),
            ["42", "nginx", "2.0", "0.5", "4.0", "1.0", "5.0"]
        );
        assert_eq!(lines[0].len(), 79, "{:?}", lines[0]);
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn bytes_units_rate_and_timestamp() {
        let opts = OutputOptions {
            units: Units::Bytes,
            rate: true,
            timestamp: true,
            ..OutputOptions::default()
        };
        let mut out = Vec::new();
        let r = report(1, vec![row(7, "curl", 3000, 1001, 3000, 1001)]);
        TablePrinter::new(&mut out, opts)
            .interval(&r, &stamp(2))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            words(lines[0]),
            [
                "TIME",
                "PID",
                "COMM",
                "RX_BYTES/s",
                "TX_BYTES/s",
                "RXSUM_BYTES",
                "TXSUM_BYTES",
                "SUM_BYTES"
            ]
        );
        let w = words(lines[1]);
        assert_eq!(w[0].len(), 8);
        assert_eq!(w[1..], ["7", "curl", "1500", "500", "3000", "1001", "4001"]);
    }

    #[test]
    fn human_units_per_value() {
        let opts = OutputOptions {
            units: Units::Human,
            header: false,
            ..OutputOptions::default()
        };
        let text = render(
            opts,
            &[report(1, vec![row(1, "x", 5 << 20, 100, 3 << 30, 2048)])],
        );
        assert_eq!(
            words(text.lines().next().unwrap()),
            ["1", "x", "5.0MiB", "100B", "3.0GiB", "2.0KiB", "3.0GiB"]
        );
    }

    #[test]
    fn summary_line_counts_processes_and_shows_unrecorded_only_when_nonzero() {
        let opts = OutputOptions {
            summary: true,
            ..OutputOptions::default()
        };
        let mut r = report(
            3,
            vec![
                row(1, "a", 1024, 0, 1024, 0),
                row(2, "b", 1024, 2048, 1024, 2048),
            ],
        );
        let text = render(opts.clone(), std::slice::from_ref(&r));
        let first = text.lines().next().unwrap();
        assert!(
            first.ends_with("interval 3: 2 processes, RX 2.0 KB, TX 2.0 KB"),
            "{first}"
        );
        assert!(!first.contains("UNRECORDED"));
        r.unrecorded = Bytes { rx: 512, tx: 0 };
        r.rows.truncate(1);
        let text = render(opts, &[r]);
        let first = text.lines().next().unwrap();
        assert!(
            first.contains("1 process, RX 1.0 KB, TX 0.0 KB, UNRECORDED RX 0.5 KB TX 0.0 KB"),
            "{first}"
        );
    }

    #[test]
    fn without_summary_a_loss_still_gets_a_line_and_skipped_calls_are_named() {
        let opts = OutputOptions {
            summary: false,
            ..OutputOptions::default()
        };
        let mut r = report(2, vec![row(1, "a", 1024, 0, 1024, 0)]);
        let text = render(opts.clone(), std::slice::from_ref(&r));
        assert!(text.lines().next().unwrap().starts_with("PID"), "{text}");
        r.unrecorded = Bytes { rx: 2048, tx: 0 };
        let mut out = Vec::new();
        let skipped = Stamp {
            skipped: 7,
            ..stamp(1)
        };
        TablePrinter::new(&mut out, opts)
            .interval(&r, &skipped)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.ends_with(
                "interval 2: UNRECORDED RX 2.0 KB TX 0.0 KB (map full: raise --max-entries), \
                 SKIPPED 7 socket calls (the kernel did not run flowtop's programs for them)"
            ),
            "{first}"
        );
        assert!(text.lines().nth(1).unwrap().starts_with("PID"), "{text}");
    }

    #[test]
    fn summary_in_rate_mode_is_per_second() {
        let opts = OutputOptions {
            summary: true,
            rate: true,
            units: Units::Bytes,
            ..OutputOptions::default()
        };
        let mut out = Vec::new();
        let r = report(1, vec![row(1, "a", 4000, 1000, 4000, 1000)]);
        TablePrinter::new(&mut out, opts)
            .interval(&r, &stamp(4))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with("RX 1000 B/s, TX 250 B/s"),
            "{text}"
        );
    }

    #[test]
    fn intervals_are_separated_by_a_blank_line_and_no_header_drops_it() {
        let opts = OutputOptions {
            header: false,
            ..OutputOptions::default()
        };
        let r = report(1, vec![row(1, "a", 1, 1, 1, 1)]);
        let text = render(opts, &[r.clone(), r]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "");
        assert!(lines[0].starts_with("1 "));
    }

    #[test]
    fn colour_only_when_asked_and_clear_redraws() {
        let r = report(1, vec![row(1, "a", 1, 1, 1, 1)]);
        let plain = render(OutputOptions::default(), std::slice::from_ref(&r));
        assert!(!plain.contains('\x1b'));
        let opts = OutputOptions {
            color: true,
            clear: true,
            ..OutputOptions::default()
        };
        let text = render(opts, &[r.clone(), r]);
        assert_eq!(text.matches(CLEAR_SCREEN).count(), 2);
        assert!(text.starts_with(CLEAR_SCREEN));
        assert!(text.contains(&format!("{BOLD}PID ")));
        assert!(!text.contains("\n\n"), "no blank separator when redrawing");
    }

    #[test]
    fn clear_mode_keeps_rows_within_the_screen() {
        let opts = OutputOptions {
            clear: true,
            summary: true,
            height: Some(6),
            ..OutputOptions::default()
        };
        let rows = (1..=10).map(|p| row(p, "p", 1, 1, 1, 1)).collect();
        let text = render(opts, &[report(1, rows)]);
        let body = text.strip_prefix(CLEAR_SCREEN).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        // summary, header, 2 rows, "… 8 more", and the cursor's line left free.
        assert_eq!(lines.len(), 5, "{body}");
        assert_eq!(lines[4], "… 8 more processes");
    }

    #[test]
    fn no_line_is_wider_than_columns() {
        let long = "a-very-long-process-name-with, commas";
        let rows = vec![
            row(4_000_000, long, u64::MAX / 4, 1, u64::MAX / 4, 1),
            row(1, "sh", 1, 1, 1, 1),
        ];
        for units in [Units::Kb, Units::Bytes, Units::Human] {
            for width in [200, 100, 79, 60, 40, 20, 12, 5, 1] {
                let opts = OutputOptions {
                    units,
                    summary: true,
                    timestamp: true,
                    width: Some(width),
                    ..OutputOptions::default()
                };
                let text = render(opts, &[report(1, rows.clone()), report(2, rows.clone())]);
                for line in text.lines() {
                    assert!(width_of(line) <= width, "{width} {units:?}: {line:?}");
                }
            }
        }
        let opts = OutputOptions {
            width: Some(60),
            header: false,
            ..OutputOptions::default()
        };
        let text = render(
            opts,
            &[report(1, vec![row(9, "systemd-resolved", 1, 1, 1, 1)])],
        );
        assert!(text.starts_with("9       systemd… "), "{text}");
    }

    /// What the general line writer makes of `frame`'s rows: every cell formatted,
    /// natural widths fitted to `opts.width`, [`Layout::line`].
    fn general_lines<R: RowData>(frame: &Frame<'_, R>, opts: &OutputOptions, st: &Stamp) -> String {
        let columns = table_columns(opts);
        let fmt = Cells::new(opts.units, st.at);
        let cells: Vec<Vec<String>> = frame
            .contexts(opts.by, st)
            .map(|ctx| {
                let cell = |c: &Column| {
                    let mut s = String::new();
                    fmt.push(&mut s, c.value(&ctx));
                    s
                };
                columns.iter().map(cell).collect()
            })
            .collect();
        let content: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cell = cells.iter().map(|r| width_of(&r[i])).max().unwrap();
                cell.max(width_of(&c.header(opts)))
            })
            .collect();
        let natural: Vec<usize> = columns
            .iter()
            .zip(&content)
            .map(|(c, w)| c.width().max(*w))
            .collect();
        let fits: Vec<Fit> = columns.iter().map(|c| c.fit()).collect();
        let layout = Layout::fit(&natural, &content, &fits, opts.width);
        cells
            .iter()
            .map(|c| layout.line(c, opts.width) + "\n")
            .collect()
    }

    #[test]
    fn rows_written_directly_match_the_general_line_writer() {
        use crate::collect::aggregate::{Conn, GroupBy, Report, Row};
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut procs = vec![
            row(
                4_000_000,
                "a-very-long-process-name-with, commas",
                u64::MAX,
                1,
                u64::MAX / 3,
                0,
            ),
            row(1, "evil\nname\x1b", 1023, 1024, 1 << 53, (1 << 53) + 1),
            row(77, "名前 ", 0, 512, 5 << 20, 3 << 30),
            row(9, "", 1_000_000_007, 99, 100_000, 10),
        ];
        procs[1].nspid = Some(4_000_001);
        procs[2].nspid = Some(1);
        let procs = report(1, procs);
        let conn = |pid, laddr, remote, rx| Row {
            pid: Some(pid),
            nspid: None,
            comm: Some("srv".into()),
            processes: 1,
            conn: Some(Conn {
                family: 2,
                protocol: 6,
                laddr,
                lport: 443,
                remote,
            }),
            cgroup: None,
            container: None,
            interval: Bytes { rx, tx: rx / 3 },
            total: Bytes { rx, tx: u64::MAX },
        };
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4));
        let rows = vec![
            conn(
                3,
                v6,
                Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 65535)),
                1 << 40,
            ),
            conn(12345, IpAddr::V4(Ipv4Addr::UNSPECIFIED), None, 0),
        ];
        let conns = Report {
            index: 2,
            by: GroupBy::Conn,
            all_rows: rows.len(),
            all: Bytes::default(),
            unrecorded: Bytes::default(),
            rows,
        };
        let st = stamp(3);
        for units in [Units::Kb, Units::Bytes, Units::Human] {
            for (rate, timestamp) in [(false, false), (true, false), (false, true)] {
                for (by, width) in [GroupBy::Pid, GroupBy::Conn]
                    .into_iter()
                    .flat_map(|by| [None, Some(90), Some(50)].map(|w| (by, w)))
                {
                    let opts = OutputOptions {
                        by,
                        nspid: true,
                        units,
                        rate,
                        timestamp,
                        header: false,
                        width,
                        ..OutputOptions::default()
                    };
                    let mut out = Vec::new();
                    let mut p = TablePrinter::new(&mut out, opts.clone());
                    let want = if by == GroupBy::Pid {
                        p.interval(&procs, &st).unwrap();
                        general_lines(&Frame::from(&procs), &opts, &st)
                    } else {
                        p.grouped(&conns, &st).unwrap();
                        general_lines(&Frame::from(&conns), &opts, &st)
                    };
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        want,
                        "{by:?} {width:?} {units:?} {rate} {timestamp}"
                    );
                }
            }
        }
    }

    #[test]
    fn control_characters_in_comm_cannot_break_lines() {
        let text = render(
            OutputOptions {
                header: false,
                ..OutputOptions::default()
            },
            &[report(1, vec![row(1, "evil\nname\x1b", 1, 1, 1, 1)])],
        );
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("evil?name?"));
    }
}
