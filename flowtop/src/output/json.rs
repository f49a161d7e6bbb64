//! JSON Lines: one object per row per interval, with exact byte counts.
//!
//! Keys, in order: `time` (RFC 3339, UTC, end of the interval), `interval` (1-based),
//! `pid`, `comm`, `rx_bytes`, `tx_bytes` (this interval), `rx_total_bytes`,
//! `tx_total_bytes`, `total_bytes` (since flowtop started); for `--by
//! conn|comm|cgroup` then `by` and the grouping's fields ([`super::layout`]).
//! `--rate` appends `seconds` (the interval's measured length), `rx_bytes_per_sec`,
//! `tx_bytes_per_sec`; `--show-nspid` appends `nspid` (null when unknown).
//!
//! With `--summary`, each interval also ends with one summary object, even when
//! nothing moved (its count is `processes` for `--by pid`, `rows` otherwise). It has
//! no `pid` and none of the row keys, only `time`, `interval` and a nested `summary`
//! object, so a consumer of rows that sums `.rx_bytes` or selects on `.pid` is not
//! misled by it:
//!
//! ```text
//! {"time":"2025-01-01T10:00:01.000Z","interval":1,"summary":{"processes":2,"all_rx_bytes":300,"all_tx_bytes":300,"unrecorded_rx_bytes":0,"unrecorded_tx_bytes":0,"unrecorded_bytes":0,"skipped_calls":0}}
//! ```
//!
//! Without `--summary`, an interval that lost something (bytes a full map could not
//! store, socket calls the kernel skipped flowtop's programs for) still ends with
//! an object of the same shape, under `loss`, so no loss is ever silent:
//!
//! ```text
//! {"time":"2025-01-01T10:00:01.000Z","interval":1,"loss":{"unrecorded_rx_bytes":300,"unrecorded_tx_bytes":0,"unrecorded_bytes":300,"skipped_calls":0}}
//! ```
use std::io;

use super::{
    columns::Column,
    frame::{Frame, Loss, Summary},
    layout::record_columns,
    row::{RowData, Value},
    FramePrinter, OutputOptions, Stamp,
};

pub struct JsonPrinter<W> {
    out: W,
    opts: OutputOptions,
    columns: Vec<Column>,
}

impl<W: io::Write> JsonPrinter<W> {
    pub fn new(out: W, opts: OutputOptions) -> Self {
        let columns = record_columns(&opts);
        Self { out, opts, columns }
    }
}

/// Writes `"key":value` pairs in the given order (serde_json's map would sort them).
fn write_object<'a, W: io::Write>(
    out: &mut W,
    pairs: impl IntoIterator<Item = (&'a str, Value<'a>)>,
) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        write_value(out, &value)?;
    }
    out.write_all(b"}")
}

fn write_value<W: io::Write>(out: &mut W, value: &Value<'_>) -> io::Result<()> {
    match value {
        Value::Text(s) => serde_json::to_writer(&mut *out, s.as_ref())?,
        Value::Int(n) | Value::Bytes(n) => write!(out, "{n}")?,
        Value::Rate(f) | Value::Seconds(f) => serde_json::to_writer(&mut *out, f)?,
        Value::Time(t) => {
            serde_json::to_writer(&mut *out, &humantime::format_rfc3339_millis(*t).to_string())?
        }
        Value::Null => out.write_all(b"null")?,
    }
    Ok(())
}

impl<W: io::Write> JsonPrinter<W> {
    /// `{"time":..,"interval":N,"<name>":{pairs}}`: a line about the interval, not a
    /// row (no `pid`, no row keys).
    fn interval_object<'a>(
        &mut self,
        index: u64,
        stamp: &Stamp,
        name: &str,
        pairs: impl IntoIterator<Item = (&'a str, Value<'a>)>,
    ) -> io::Result<()> {
        self.out.write_all(b"{\"time\":")?;
        write_value(&mut self.out, &Value::Time(stamp.at))?;
        write!(self.out, ",\"interval\":{index},\"{name}\":")?;
        write_object(&mut self.out, pairs)?;
        self.out.write_all(b"}\n")
    }
}

impl<W: io::Write> FramePrinter for JsonPrinter<W> {
    fn frame<R: RowData>(&mut self, frame: &Frame<'_, R>, stamp: &Stamp) -> io::Result<()> {
        for ctx in frame.contexts(self.opts.by, stamp) {
            let pairs = self.columns.iter().map(|c| (c.key(), c.value(&ctx)));
            write_object(&mut self.out, pairs)?;
            self.out.write_all(b"\n")?;
        }
        let loss = Loss::of(frame, stamp);
        if self.opts.summary {
            let s = Summary::of(frame, stamp);
            let keys = Summary::keys(self.opts.by, self.opts.rate);
            let values = s.values(self.opts.rate);
            self.interval_object(frame.index, stamp, "summary", keys.into_iter().zip(values))?;
        } else if !loss.is_none() {
            let pairs = Loss::KEYS.into_iter().zip(loss.values());
            self.interval_object(frame.index, stamp, "loss", pairs)?;
        }
        Ok(())
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

    fn render(opts: OutputOptions, report: &IntervalReport, secs: u64) -> String {
        let mut out = Vec::new();
        JsonPrinter::new(&mut out, opts)
            .interval(report, &stamp(secs))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Keys of one JSON object in the order they appear in the text.
    fn keys_in_order(line: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort_by_key(|k| line.find(&format!("\"{k}\":")).unwrap());
        keys
    }

    #[test]
    fn one_object_per_row_with_the_documented_keys_in_order() {
        let report = IntervalReport {
            index: 3,
            rows: vec![row(9, "a \"b\",c", 1, 2, 10, 20)],
            unrecorded: Bytes::default(),
        };
        let text = render(OutputOptions::default(), &report, 1);
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["interval"], 3);
        assert_eq!(v["pid"], 9);
        assert_eq!(v["comm"], "a \"b\",c");
        assert_eq!(v["rx_bytes"], 1);
        assert_eq!(v["tx_bytes"], 2);
        assert_eq!(v["rx_total_bytes"], 10);
        assert_eq!(v["tx_total_bytes"], 20);
        assert_eq!(v["total_bytes"], 30);
        assert_eq!(keys_in_order(text.trim()), CORE_KEYS);
    }

    #[test]
    fn units_do_not_touch_exact_bytes_and_rate_appends_keys() {
        let report = IntervalReport {
            index: 1,
            rows: vec![row(1, "x", 1 << 60, 3, 1 << 60, 3)],
            unrecorded: Bytes::default(),
        };
        let opts = OutputOptions {
            format: super::super::Format::Json,
            units: crate::output::Units::Human,
            rate: true,
            ..OutputOptions::default()
        };
        let text = render(opts, &report, 2);
        let line = text.trim();
        assert!(
            line.contains(&format!("\"rx_bytes\":{}", 1u64 << 60)),
            "{line}"
        );
        let keys = keys_in_order(line);
        assert_eq!(keys[..9], CORE_KEYS);
        assert_eq!(
            keys[9..],
            ["seconds", "rx_bytes_per_sec", "tx_bytes_per_sec"]
        );
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seconds"], 2.0);
        assert_eq!(v["tx_bytes_per_sec"], 1.5);
    }

    #[test]
    fn summary_is_a_separate_object_without_row_keys() {
        let report = IntervalReport {
            index: 2,
            rows: vec![row(1, "a", 100, 1, 100, 1), row(2, "b", 200, 2, 200, 2)],
            unrecorded: Bytes { rx: 5, tx: 6 },
        };
        let opts = OutputOptions {
            summary: true,
            ..OutputOptions::default()
        };
        let text = render(opts.clone(), &report, 1);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let s: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(keys_in_order(lines[2]), ["time", "interval", "summary"]);
        assert_eq!(s["interval"], 2);
        assert_eq!(s["summary"]["processes"], 2);
        assert_eq!(s["summary"]["all_rx_bytes"], 300);
        assert_eq!(s["summary"]["all_tx_bytes"], 3);
        assert_eq!(s["summary"]["unrecorded_rx_bytes"], 5);
        assert_eq!(s["summary"]["unrecorded_tx_bytes"], 6);
        assert_eq!(s["summary"]["unrecorded_bytes"], 11);
        assert!(s.get("pid").is_none() && s.get("rx_bytes").is_none());
        // An interval where nothing moved still says so.
        let empty = IntervalReport {
            index: 3,
            ..IntervalReport::default()
        };
        let text = render(opts, &empty, 1);
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"processes\":0"));
    }

    #[test]
    fn without_summary_only_an_interval_that_lost_something_gets_a_loss_object() {
        let mut report = IntervalReport {
            index: 4,
            rows: vec![row(1, "a", 100, 1, 100, 1)],
            unrecorded: Bytes::default(),
        };
        let text = render(OutputOptions::default(), &report, 1);
        assert_eq!(text.lines().count(), 1, "nothing lost, rows only: {text}");
        report.unrecorded = Bytes { rx: 5, tx: 6 };
        let mut out = Vec::new();
        let skipped = Stamp {
            skipped: 3,
            ..stamp(1)
        };
        JsonPrinter::new(&mut out, OutputOptions::default())
            .interval(&report, &skipped)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(keys_in_order(lines[1]), ["time", "interval", "loss"]);
        let l: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(l["interval"], 4);
        assert_eq!(
            (
                &l["loss"]["unrecorded_rx_bytes"],
                &l["loss"]["unrecorded_tx_bytes"],
                &l["loss"]["unrecorded_bytes"],
                &l["loss"]["skipped_calls"]
            ),
            (&5.into(), &6.into(), &11.into(), &3.into())
        );
        // Row consumers tell it apart: no pid, no row keys.
        assert!(l.get("pid").is_none() && l.get("rx_bytes").is_none());
    }
}
