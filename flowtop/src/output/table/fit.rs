//! Fitting a table into the terminal's width: which columns stay, how wide each is,
//! and how a cell is shortened (keeping its start or its end).
use crate::output::columns::{Align, Fit, Shrink, Stage};

pub(super) const ELLIPSIS: char = '…';

/// Column widths that fit the terminal, and which columns are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub widths: Vec<usize>,
    /// False for the columns dropped to fit.
    pub visible: Vec<bool>,
    fits: Vec<Fit>,
}

impl Layout {
    /// `natural` widths (values padded for alignment), narrowed to fit `limit` (one
    /// space between columns). `content`: each column's widest header or value.
    /// Padding goes first, then each [`Stage`] in turn: names are shortened, the
    /// totals dropped, addresses and paths shortened, the other amounts dropped.
    pub fn fit(natural: &[usize], content: &[usize], fits: &[Fit], limit: Option<usize>) -> Self {
        let mut layout = Self {
            widths: natural.to_vec(),
            visible: vec![true; natural.len()],
            fits: fits.to_vec(),
        };
        let Some(limit) = limit else {
            return layout;
        };
        let min = |i: usize| {
            fits[i]
                .shrink
                .map_or(natural[i], |(_, m)| m.min(natural[i]))
        };
        let text = |i: usize| content[i].clamp(min(i), natural[i]);
        layout.shrink_to(text, limit);
        for stage in [Stage::Names, Stage::Totals, Stage::Places, Stage::Amounts] {
            let at = |i: usize| fits[i].stage == Some(stage);
            layout.shrink_to(|i| if at(i) { min(i) } else { usize::MAX }, limit);
            while layout.total() > limit {
                let droppable = (0..natural.len())
                    .rev()
                    .find(|&i| layout.visible[i] && at(i) && fits[i].shrink.is_none());
                let Some(i) = droppable else { break };
                layout.visible[i] = false;
            }
        }
        // Dropping a column may have freed more than needed: give it back, to the
        // cut text first.
        layout.grow_to(text, limit);
        layout.grow_to(|i| natural[i], limit);
        layout
    }

    /// Narrows shrinkable columns towards `floor` until the line fits, one column at
    /// a time from the one with the most to spare: COMM and two addresses end up
    /// shortened alike.
    pub(super) fn shrink_to(&mut self, floor: impl Fn(usize) -> usize, limit: usize) {
        while self.total() > limit {
            let Some(i) = self.widest(|i| self.widths[i].saturating_sub(floor(i))) else {
                break;
            };
            self.widths[i] -= 1;
        }
    }

    /// Widens shrinkable columns towards `ceiling` while the line has room.
    pub(super) fn grow_to(&mut self, ceiling: impl Fn(usize) -> usize, limit: usize) {
        while self.total() < limit {
            let Some(i) = self.widest(|i| ceiling(i).saturating_sub(self.widths[i])) else {
                break;
            };
            self.widths[i] += 1;
        }
    }

    /// How many columns are shown.
    #[cfg(test)]
    pub fn shown(&self) -> usize {
        self.visible.iter().filter(|v| **v).count()
    }

    /// Width of a line: the visible columns and a space between each two.
    pub(super) fn total(&self) -> usize {
        let cols = self.widths.iter().zip(&self.visible).filter(|(_, v)| **v);
        cols.clone().map(|(w, _)| w).sum::<usize>() + cols.count().saturating_sub(1)
    }

    /// The visible shrinkable column with the largest positive `amount` (leftmost on
    /// ties).
    pub(super) fn widest(&self, amount: impl Fn(usize) -> usize) -> Option<usize> {
        (0..self.widths.len())
            .filter(|&i| self.visible[i] && self.fits[i].shrink.is_some() && amount(i) > 0)
            .max_by_key(|&i| (amount(i), std::cmp::Reverse(i)))
    }

    /// One line: cells padded or truncated to their width, trailing blanks trimmed,
    /// and never longer than `limit`.
    pub fn line(&self, cells: &[String], limit: Option<usize>) -> String {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let mut line = String::new();
        self.line_into(&mut line, &cells, limit);
        line
    }

    /// [`line`](Self::line) appended to `out`, without a newline.
    pub fn line_into(&self, out: &mut String, cells: &[&str], limit: Option<usize>) {
        self.line_with(out, cells.len(), |i| cells[i], limit)
    }

    /// [`line_into`](Self::line_into) with `n` cells, cell `i` from `cell(i)`.
    pub(super) fn line_with<'c>(
        &self,
        out: &mut String,
        n: usize,
        cell: impl Fn(usize) -> &'c str,
        limit: Option<usize>,
    ) {
        let start = out.len();
        let shown = (0..n).filter(|&i| self.visible[i]);
        for (k, i) in shown.enumerate() {
            if k > 0 {
                out.push(' ');
            }
            let w = self.widths[i];
            let how = self.fits[i].shrink.map_or(Shrink::KeepStart, |(s, _)| s);
            let cell = truncate_cow(cell(i), w, how);
            push_aligned(out, &cell, width_of(&cell), w, self.fits[i].align);
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        if let Some(l) = limit {
            if width_of(&out[start..]) > l {
                let cut = truncate(&out[start..], l, Shrink::KeepStart);
                out.truncate(start);
                out.push_str(&cut);
            }
        }
    }
}

/// `cell` (`width` columns) padded to `w` on the side `align` says.
pub(super) fn push_aligned(out: &mut String, cell: &str, width: usize, w: usize, align: Align) {
    match align {
        Align::Left => {
            out.push_str(cell);
            push_spaces(out, w.saturating_sub(width));
        }
        Align::Right => {
            push_spaces(out, w.saturating_sub(width));
            out.push_str(cell);
        }
    }
}

pub(super) fn push_spaces(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        left -= k;
    }
}

/// Display width; flowtop's cells are one column per char (COMM is at most 15 bytes).
pub fn width_of(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// `s` in at most `width` columns, marking a cut with `…` on the side that was cut.
pub fn truncate(s: &str, width: usize, how: Shrink) -> String {
    truncate_cow(s, width, how).into_owned()
}

/// [`truncate`], borrowing `s` when it fits (nearly always).
pub(super) fn truncate_cow(s: &str, width: usize, how: Shrink) -> std::borrow::Cow<'_, str> {
    let n = width_of(s);
    if n <= width {
        return s.into();
    }
    if width == 0 {
        return String::new().into();
    }
    let keep = width - 1;
    let cut: String = match how {
        Shrink::KeepStart => s.chars().take(keep).chain([ELLIPSIS]).collect(),
        Shrink::KeepEnd => std::iter::once(ELLIPSIS)
            .chain(s.chars().skip(n - keep))
            .collect(),
    };
    cut.into()
}

/// Last resort for lines that must not exceed `limit`.
pub(super) fn cut(s: &str, limit: Option<usize>) -> String {
    match limit {
        Some(l) => truncate(s, l, Shrink::KeepStart),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::columns::Column;

    #[test]
    fn truncate_marks_the_cut_side() {
        assert_eq!(
            truncate("systemd-resolved", 8, Shrink::KeepStart),
            "systemd…"
        );
        assert_eq!(
            truncate("192.168.100.20:443", 8, Shrink::KeepEnd),
            "….20:443"
        );
        assert_eq!(truncate("short", 8, Shrink::KeepEnd), "short");
        assert_eq!(truncate("exactly8", 8, Shrink::KeepStart), "exactly8");
        assert_eq!(truncate("abc", 1, Shrink::KeepStart), "…");
        assert_eq!(truncate("abc", 0, Shrink::KeepStart), "");
    }

    #[test]
    fn layout_shrinks_comm_first_then_drops_columns_from_the_right() {
        let natural = [7, 16, 10, 10, 10, 10, 10];
        let fits: Vec<Fit> = [
            Column::Pid,
            Column::Comm,
            Column::Rx,
            Column::Tx,
            Column::RxTotal,
            Column::TxTotal,
            Column::Total,
        ]
        .map(Column::fit)
        .to_vec();
        assert_eq!(Layout::fit(&natural, &natural, &fits, None).widths, natural);
        assert_eq!(
            Layout::fit(&natural, &natural, &fits, Some(79)).widths,
            natural
        );
        let l = Layout::fit(&natural, &natural, &fits, Some(70));
        assert_eq!((l.widths[1], l.shown()), (7, 7));
        let l = Layout::fit(&natural, &natural, &fits, Some(60));
        assert_eq!(
            (l.widths[1], l.shown()),
            (8, 6),
            "SUM dropped, COMM gets the room back"
        );
        let l = Layout::fit(&natural, &natural, &fits, Some(51));
        assert_eq!((l.widths[1], l.shown()), (10, 5));
        let l = Layout::fit(&natural, &natural, &fits, Some(5));
        assert_eq!(l.shown(), 2);
    }

    #[test]
    fn layout_keeps_addresses_over_totals_and_cgroup_paths_last() {
        use Column::*;
        let cols = [
            Pid, Comm, Proto, Local, Remote, Rx, Tx, RxTotal, TxTotal, Total,
        ];
        let natural: Vec<usize> = cols.iter().map(|c| c.width()).collect();
        let fits: Vec<Fit> = cols.iter().map(|c| c.fit()).collect();
        // 129 columns wide: COMM is shortened, SUM dropped, COMM gets room back.
        let l = Layout::fit(&natural, &natural, &fits, Some(109));
        assert_eq!(
            (l.widths[1..5].to_vec(), l.shown()),
            (vec![7, 5, 21, 21], 9)
        );
        // All totals go before the addresses are shortened, both alike.
        let l = Layout::fit(&natural, &natural, &fits, Some(70));
        assert_eq!(
            (l.widths[1..5].to_vec(), l.shown()),
            (vec![4, 5, 14, 14], 7)
        );
        // Then RX and TX; never what says which connection it is.
        let l = Layout::fit(&natural, &natural, &fits, Some(20));
        assert_eq!(
            l.visible,
            [true, true, true, true, true, false, false, false, false, false]
        );
        // Padding goes before text: addresses of 15 characters in 21 columns.
        let content = [5, 7, 5, 15, 15, 5, 5, 8, 8, 6];
        let l = Layout::fit(&natural, &content, &fits, Some(108));
        assert_eq!(
            (l.widths[1..5].to_vec(), l.shown()),
            (vec![7, 5, 15, 15], 10)
        );
        let l = Layout::fit(&natural, &content, &fits, Some(80));
        assert_eq!(l.shown(), 7);
        assert!(
            l.widths[1] >= 7 && l.widths[3] >= 15 && l.widths[4] >= 15,
            "{l:?}"
        );
        // A cgroup path is last but stays; the totals before it go first.
        let cols = [Rx, Tx, RxTotal, TxTotal, Total, Cgroup];
        let fits: Vec<Fit> = cols.iter().map(|c| c.fit()).collect();
        let natural = [10, 10, 10, 10, 10, 40];
        let l = Layout::fit(&natural, &natural, &fits, Some(50));
        assert_eq!(l.visible, [true, true, false, false, false, true]);
        assert_eq!(l.widths[5], 28);
    }
}
