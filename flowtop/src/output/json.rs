//! JSON Lines: one object per process per interval, with exact byte counts.
//!
//! Keys, in order: `time` (RFC 3339, UTC, end of the interval), `interval` (1-based),
//! `pid`, `comm`, `rx_bytes`, `tx_bytes` (this interval), `rx_total_bytes`,
//! `tx_total_bytes`, `total_bytes` (since flowtop started).
use std::{io, time::SystemTime};

use serde::Serialize;

use super::Printer;
use crate::collect::diff::IntervalReport;

#[derive(Serialize)]
struct JsonRow<'a> {
    time: &'a str,
    interval: u64,
    pid: u32,
    comm: &'a str,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_total_bytes: u64,
    tx_total_bytes: u64,
    total_bytes: u64,
}

pub struct JsonPrinter<W> {
    out: W,
}

impl<W: io::Write> JsonPrinter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: io::Write> Printer for JsonPrinter<W> {
    fn interval(&mut self, report: &IntervalReport, at: SystemTime) -> io::Result<()> {
        let time = humantime::format_rfc3339_millis(at).to_string();
        for r in &report.rows {
            let row = JsonRow {
                time: &time,
                interval: report.index,
                pid: r.pid,
                comm: &r.comm,
                rx_bytes: r.interval.rx,
                tx_bytes: r.interval.tx,
                rx_total_bytes: r.total.rx,
                tx_total_bytes: r.total.tx,
                total_bytes: r.total.total(),
            };
            serde_json::to_writer(&mut self.out, &row)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn grouped(
        &mut self,
        report: &crate::collect::aggregate::Report,
        at: SystemTime,
    ) -> io::Result<()> {
        super::grouped::json(&mut self.out, report, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{diff::ProcRow, Bytes};

    #[test]
    fn one_object_per_row_with_the_documented_keys_in_order() {
        let report = IntervalReport {
            index: 3,
            rows: vec![ProcRow {
                pid: 9,
                comm: "a \"b\",c".into(),
                interval: Bytes { rx: 1, tx: 2 },
                total: Bytes { rx: 10, tx: 20 },
            }],
            unrecorded: Bytes::default(),
        };
        let mut out = Vec::new();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        JsonPrinter::new(&mut out).interval(&report, at).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["interval"], 3);
        assert_eq!(v["comm"], "a \"b\",c");
        assert_eq!(v["rx_bytes"], 1);
        assert_eq!(v["total_bytes"], 30);
        let keys = [
            "time",
            "interval",
            "pid",
            "comm",
            "rx_bytes",
            "tx_bytes",
            "rx_total_bytes",
            "tx_total_bytes",
            "total_bytes",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("no key {k}"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
