//! The screen: a header (time, interval, probe family, rows, RX/TX, warnings), the
//! rows with the table's columns fitted to the width by the table's own [`Layout`],
//! a status line, and the help overlay. Drawing reads the view and the board only.
use ratatui::{
    layout::Rect,
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Borders, Clear, Paragraph},
    Frame,
};

use super::{
    board::Board,
    keys::HELP,
    state::{opened_process, Shown, View},
};
use crate::{
    collect::Bytes,
    output::{
        columns::{Column, Shrink},
        frame::row_noun,
        layout::table_columns,
        row::RowCtx,
        table::{truncate, width_of, Cells, Layout},
        OutputOptions, Stamp,
    },
};

/// What the header says besides the board.
#[derive(Debug, Clone)]
pub struct Info {
    /// `HH:MM:SS` of the last read.
    pub time: String,
    pub interval_secs: u64,
    /// Probe family and program kind.
    pub probe: String,
    /// When the last read was and how long its interval was (rates).
    pub stamp: Stamp,
}

/// Draws everything; returns the rows a page holds (for PgUp/PgDn).
pub fn draw(f: &mut Frame<'_>, view: &View, board: &Board, rows: &[Shown], info: &Info) -> usize {
    let area = f.area();
    let width = usize::from(area.width);
    let mut lines = header(view, board, rows, info);
    let cols = columns(view);
    let opts = options(view);
    let headers: Vec<String> = cols.iter().map(|c| c.header(&opts)).collect();
    let cells = cells(&cols, view, board, rows, &info.stamp);
    let layout = fit(&cols, &headers, &cells, width);
    lines.push(Line::styled(
        pad(layout.line(&headers, Some(width)), width),
        Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
    ));
    let room = usize::from(area.height).saturating_sub(lines.len() + 1);
    let first = (view.selected + 1).saturating_sub(room);
    for (i, (shown, row)) in rows.iter().zip(&cells).enumerate().skip(first).take(room) {
        let mut style = Style::new();
        if shown.gone {
            style = style.add_modifier(Modifier::DIM);
        }
        if i == view.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::styled(
            pad(layout.line(row, Some(width)), width),
            style,
        ));
    }
    if rows.is_empty() {
        lines.push(Line::raw(match view.filter.is_empty() {
            true => "  (nothing has moved a byte yet)".to_string(),
            false => format!("  (no row matches '{}')", view.filter),
        }));
    }
    let body = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    f.render_widget(Paragraph::new(lines), body);
    let status = Rect {
        y: area.y + area.height.saturating_sub(1),
        height: area.height.min(1),
        ..area
    };
    f.render_widget(
        Paragraph::new(status_line(view, width))
            .style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );
    if view.help {
        help(f, area);
    }
    room
}

fn options(view: &View) -> OutputOptions {
    OutputOptions {
        by: view.shown_by(),
        units: view.units,
        rate: view.rate,
        nspid: view.nspid,
        container: view.container,
        ..OutputOptions::default()
    }
}

/// The table's columns for what is on screen.
fn columns(view: &View) -> Vec<Column> {
    table_columns(&options(view))
}

/// Every row's cells (all rows: the widths must not jump while scrolling).
fn cells(
    cols: &[Column],
    view: &View,
    board: &Board,
    rows: &[Shown],
    stamp: &Stamp,
) -> Vec<Vec<String>> {
    let by = view.shown_by();
    let seconds = stamp.elapsed.as_secs_f64();
    let text = Cells::new(view.units, stamp.at);
    rows.iter()
        .map(|s| {
            let ctx = RowCtx {
                index: board.index,
                by,
                row: &s.row,
                stamp,
                seconds,
            };
            cols.iter()
                .map(|c| {
                    let mut cell = String::new();
                    text.push(&mut cell, c.value(&ctx));
                    cell
                })
                .collect()
        })
        .collect()
}

/// The table's fitting: names shortened, totals dropped, addresses shortened...
fn fit(cols: &[Column], headers: &[String], cells: &[Vec<String>], width: usize) -> Layout {
    let mut content: Vec<usize> = headers.iter().map(|h| width_of(h)).collect();
    for row in cells {
        for (c, cell) in content.iter_mut().zip(row) {
            *c = (*c).max(width_of(cell));
        }
    }
    let natural: Vec<usize> = cols
        .iter()
        .zip(&content)
        .map(|(col, c)| col.width().max(*c))
        .collect();
    let fits: Vec<_> = cols.iter().map(|c| c.fit()).collect();
    Layout::fit(&natural, &content, &fits, Some(width))
}

/// `line` padded with blanks to `width`, so a reversed line spans the screen.
fn pad(mut line: String, width: usize) -> String {
    let w = width_of(&line);
    line.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    line
}

/// `RX 1.5 KB, TX 300 B` in the view's unit (per second with `t`).
fn rx_tx(view: &View, b: Bytes, seconds: f64) -> String {
    view.units.rx_tx(b, view.rate, seconds)
}

fn header(view: &View, board: &Board, rows: &[Shown], info: &Info) -> Vec<Line<'static>> {
    let seconds = info.stamp.elapsed.as_secs_f64();
    let mut first = format!(
        "flowtop {}  every {}s  probe {}  {} {}",
        info.time,
        info.interval_secs,
        info.probe,
        rows.len(),
        row_noun(view.shown_by(), rows.len()),
    );
    if view.paused {
        first.insert_str(0, "PAUSED  ");
    }
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::styled(first, bold),
        Line::raw(format!(
            "all: {} this interval; since start {}",
            rx_tx(view, board.interval, seconds),
            view.units.rx_tx(board.since_start, false, seconds),
        )),
    ];
    let mut warnings = Vec::new();
    let unrecorded = board.unrecorded(view.shown_by());
    if unrecorded.total() > 0 {
        warnings.push(format!(
            "UNRECORDED RX {} TX {} this interval (map full: raise --max-entries)",
            view.units.amount_with_unit(unrecorded.rx),
            view.units.amount_with_unit(unrecorded.tx),
        ));
    }
    if board.missed > 0 {
        warnings.push(format!(
            "the kernel skipped flowtop's programs for {} socket calls: their bytes are not counted",
            board.missed
        ));
    }
    if !warnings.is_empty() {
        lines.push(Line::styled(
            format!("! {}", warnings.join("; ")),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if let Some((pid, _)) = view.opened {
        let text = match opened_process(view, board) {
            Some(p) => format!(
                "PID {pid} {}: this interval {}; since start {}",
                p.comm.as_deref().unwrap_or("?"),
                rx_tx(view, p.interval, seconds),
                view.units.rx_tx(p.total, false, seconds),
            ),
            None => format!("PID {pid}: exited"),
        };
        lines.push(Line::styled(
            text,
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    lines
}

fn status_line(view: &View, width: usize) -> String {
    use clap::ValueEnum as _;
    let line = if let Some(typed) = &view.typing {
        format!(" filter: {typed}_   Enter apply  Esc clear")
    } else if let Some(note) = &view.note {
        format!(" {note}")
    } else {
        let by = match view.opened {
            Some((pid, _)) => format!("conn of PID {pid} (Esc back)"),
            None => view.by.name().to_string(),
        };
        let filter = match view.filter.as_str() {
            "" => String::new(),
            f => format!("  filter: {f}"),
        };
        format!(
            " sort: {}{}  by: {by}{filter}   ? help  q quit  g group  s/S sort  / filter  u unit  t rate  p pause  Enter open",
            view.sort.to_possible_value().map_or(String::new(), |v| v.get_name().to_string()),
            if view.reverse { " (reversed)" } else { "" },
        )
    };
    pad(truncate(&line, width, Shrink::KeepStart), width)
}

fn help(f: &mut Frame<'_>, area: Rect) {
    let key_w = HELP.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| Line::raw(format!(" {k:key_w$}  {what} ")))
        .collect();
    let w = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 2;
    let h = lines.len() as u16 + 2;
    let rect = Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    };
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use ratatui::{backend::TestBackend, Terminal};

    use super::*;
    use crate::{
        collect::aggregate::GroupBy,
        interactive::{
            board::tests::{board_of, proc_row, sample},
            keys::Action,
            state::tests::config,
        },
        output::Units,
    };

    fn screen(view: &View, board: &Board, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        let rows = view.rows(board);
        let info = Info {
            time: "12:00:00".into(),
            interval_secs: 1,
            probe: "tracepoint".into(),
            stamp: Stamp {
                at: SystemTime::UNIX_EPOCH,
                elapsed: Duration::from_secs(2),
                skipped: 0,
            },
        };
        t.draw(|f| {
            draw(f, view, board, &rows, &info);
        })
        .unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn board() -> Board {
        let rows = vec![
            proc_row(4242, "a-very-long-process-name", 123_456, 223_456),
            proc_row(7, "sshd", 2048, 2048),
        ];
        let mut s = sample(1, &[(GroupBy::Pid, rows)], &[]);
        s.groupings[0].unrecorded = Bytes { rx: 5, tx: 0 };
        board_of(&s)
    }

    fn view(units: Units) -> View {
        View::new(&config(GroupBy::Pid, units), GroupBy::all().to_vec())
    }

    #[test]
    fn header_rows_and_status_line() {
        let lines = screen(&view(Units::Bytes), &board(), 120, 10);
        let all = format!("{lines:#?}");
        assert!(lines[0].ends_with("probe tracepoint  2 processes"), "{all}");
        assert!(
            lines[1].contains("RX 125504 B, TX 0 B this interval"),
            "{all}"
        );
        assert!(lines[1].contains("since start RX 125504 B"), "{all}");
        assert!(lines[2].contains("UNRECORDED RX 5 B"), "{all}");
        assert!(lines[3].starts_with("PID") && lines[3].contains("RX_BYTES"));
        assert!(lines[4].contains("4242") && lines[4].contains("123456"));
        assert!(lines[4].contains("223456"));
        assert!(lines[9].contains("sort: total") && lines[9].contains("by: pid"));
    }

    #[test]
    fn narrow_screens_drop_totals_first_and_rates_change_headers() {
        let wide = screen(&view(Units::Kb), &board(), 120, 8);
        assert!(wide[3].contains("SUM_KB"), "{wide:#?}");
        let narrow = screen(&view(Units::Kb), &board(), 40, 8);
        assert!(narrow.iter().all(|l| l.chars().count() <= 40));
        let cols: Vec<&str> = narrow[3].split_whitespace().collect();
        assert!(
            !cols.contains(&"SUM_KB") && cols.contains(&"RX_KB"),
            "{narrow:#?}"
        );
        let mut v = view(Units::Bytes);
        v.apply(Action::ToggleRate, &[]);
        let rate = screen(&v, &board(), 120, 8);
        assert!(rate[3].contains("RX_BYTES/s"), "{rate:#?}");
        // 123456 bytes over a 2 s interval.
        assert!(rate[4].contains("61728"), "{rate:#?}");
    }

    #[test]
    fn help_overlay_lists_every_key() {
        let mut v = view(Units::Kb);
        v.apply(Action::ToggleHelp, &[]);
        let text = screen(&v, &board(), 100, 24).join("\n");
        for (k, _) in HELP {
            assert!(text.contains(k.trim()), "{k} missing:\n{text}");
        }
    }

    #[test]
    fn selection_scrolls_into_view() {
        let rows = (1..=50)
            .map(|pid| proc_row(pid, "p", 1000 - u64::from(pid), 1000))
            .collect();
        let b = board_of(&sample(1, &[(GroupBy::Pid, rows)], &[]));
        let mut v = view(Units::Kb);
        let rows = v.rows(&b);
        v.apply(Action::End, &rows);
        let lines = screen(&v, &b, 80, 10);
        assert!(lines[8].starts_with("50 "), "{lines:#?}");
        assert!(lines[2].starts_with("PID") && !lines[3].starts_with("1 "));
    }
}
