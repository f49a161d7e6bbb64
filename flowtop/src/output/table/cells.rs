//! One cell's text: values formatted with `--units`, names made safe for a
//! terminal, widths counted without formatting where that is cheaper, and the cells
//! formatted in the width pass kept for the line pass.
use std::time::SystemTime;

use super::{fit::width_of, local_hms};
use crate::output::{
    columns::{Align, Column},
    row::Value,
    units::Units,
};

/// How this interval's cells are written: `--units`, and the TIME text made once
/// (every row of an interval has the same).
pub(super) struct Cells {
    units: Units,
    at: SystemTime,
    hms: String,
}

impl Cells {
    pub(super) fn new(units: Units, at: SystemTime) -> Self {
        Self {
            units,
            at,
            hms: local_hms(at),
        }
    }

    /// Whether the width pass only counts this column's cells, to format them in the
    /// line pass; the others' text costs a formatting, done once and kept. Either
    /// way the text is the same.
    pub(super) fn counted(&self, column: Column) -> bool {
        use Column::*;
        match column {
            Rx | Tx | RxTotal | TxTotal | Total => self.units != Units::Human,
            Time | Interval | Pid | Nspid | Comm | Cgroup | Processes | Lport | Rport | By
            | Family | Container | ContainerLabel | ContainerId | Runtime | Pod | Namespace => true,
            Seconds | RxRate | TxRate | Proto | Laddr | Raddr | Local | Remote => false,
        }
    }

    /// One cell's text appended to `out`: control characters in names shown as `?`.
    /// Returns its display width (every value but text is ASCII).
    pub(super) fn push(&self, out: &mut String, value: Value<'_>) -> usize {
        use std::fmt::Write as _;
        let start = out.len();
        match value {
            // Names are nearly always printable ASCII: copied as they are.
            Value::Text(s) if s.bytes().all(|b| (b' '..=b'~').contains(&b)) => out.push_str(&s),
            Value::Text(s) => {
                out.extend(s.chars().map(|c| if c.is_control() { '?' } else { c }));
                return width_of(&out[start..]);
            }
            Value::Int(n) => crate::output::units::push_u64(out, n),
            Value::Bytes(b) => self.units.push_amount(out, b),
            Value::Rate(r) => out.push_str(&self.units.rate(r)),
            Value::Seconds(s) => {
                let _ = write!(out, "{s:.3}");
            }
            Value::Time(t) if t == self.at => out.push_str(&self.hms),
            Value::Time(t) => out.push_str(&local_hms(t)),
            Value::Null => out.push('-'),
        }
        out.len() - start
    }

    /// An integer, or an amount in KB or bytes, padded to `width` as the line does,
    /// in one piece (the PID and the amounts are most of a row, and every separate
    /// small copy is a call); false, having written nothing, for other values.
    pub(super) fn push_padded_number(
        &self,
        out: &mut String,
        value: &Value<'_>,
        width: usize,
        align: Align,
    ) -> bool {
        use crate::output::units::{digits, kb_width, push_ascii, put_kb, put_u64, Units};
        const MAX: usize = 48;
        let (n, kb) = match (value, self.units) {
            (Value::Int(n), _) | (Value::Bytes(n), Units::Bytes) => (*n, false),
            (Value::Bytes(n), Units::Kb) => (*n, true),
            _ => return false,
        };
        let len = if kb { kb_width(n) } else { digits(n) };
        if width > MAX || len > width {
            return false;
        }
        let mut buf = [b' '; MAX];
        let end = match align {
            Align::Left => len,
            Align::Right => width,
        };
        if kb {
            put_kb(&mut buf, end, n);
        } else {
            put_u64(&mut buf, end, n);
        }
        push_ascii(out, &buf[..width]);
        true
    }

    /// The display width of [`push`](Self::push)'s text for `value`; counted
    /// without formatting for names, integers and amounts in KB or bytes (`scratch`
    /// is for the rest).
    pub(super) fn width(&self, value: Value<'_>, scratch: &mut String) -> usize {
        use crate::output::units::{digits, kb_width, Units};
        match (value, self.units) {
            // A control character becomes one `?`: the same count of chars.
            (Value::Text(s), _) => width_of(&s),
            (Value::Int(n), _) | (Value::Bytes(n), Units::Bytes) => digits(n),
            (Value::Bytes(b), Units::Kb) => kb_width(b),
            (Value::Null, _) => 1,
            (value, _) => {
                scratch.clear();
                self.push(scratch, value)
            }
        }
    }
}

/// Cells formatted in the width pass, in row order, for the line pass.
#[derive(Default)]
pub(super) struct Kept {
    text: String,
    ends: Vec<usize>,
}

impl Kept {
    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Formats and keeps one cell; returns its width.
    pub(super) fn push(&mut self, cells: &Cells, value: Value<'_>) -> usize {
        let width = cells.push(&mut self.text, value);
        self.ends.push(self.text.len());
        width
    }

    /// The `k`th cell kept.
    pub(super) fn cell(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.text[start..self.ends[k]]
    }
}
