//! The human table: `PID COMM RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB`.
use std::{io, time::SystemTime};

use super::Printer;
use crate::collect::diff::IntervalReport;

pub const HEADER: [&str; 7] = [
    "PID", "COMM", "RX_KB", "TX_KB", "RXSUM_KB", "TXSUM_KB", "SUM_KB",
];

pub struct TablePrinter<W> {
    out: W,
}

impl<W: io::Write> TablePrinter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// Bytes as KB (1024) with one decimal, rounded to nearest: 300 bytes is "0.3".
pub fn kb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

impl<W: io::Write> Printer for TablePrinter<W> {
    fn interval(&mut self, report: &IntervalReport, _at: SystemTime) -> io::Result<()> {
        if report.index > 1 {
            writeln!(self.out)?;
        }
        let [pid, comm, rx, tx, rxs, txs, sum] = HEADER;
        writeln!(
            self.out,
            "{pid:<7} {comm:<16} {rx:>10} {tx:>10} {rxs:>10} {txs:>10} {sum:>10}"
        )?;
        for r in &report.rows {
            writeln!(
                self.out,
                "{:<7} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10}",
                r.pid,
                r.comm,
                kb(r.interval.rx),
                kb(r.interval.tx),
                kb(r.total.rx),
                kb(r.total.tx),
                kb(r.total.total()),
            )?;
        }
        Ok(())
    }

    fn grouped(
        &mut self,
        report: &crate::collect::aggregate::Report,
        _at: SystemTime,
    ) -> io::Result<()> {
        super::grouped::table(&mut self.out, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{diff::ProcRow, Bytes};

    #[test]
    fn kb_keeps_small_counts_visible() {
        assert_eq!(kb(300), "0.3");
        assert_eq!(kb(0), "0.0");
        assert_eq!(kb(1024), "1.0");
        assert_eq!(kb(1536), "1.5");
        assert_eq!(kb(3_012_345), "2941.7");
    }

    #[test]
    fn prints_header_and_one_row_per_process() {
        let report = IntervalReport {
            index: 1,
            rows: vec![ProcRow {
                pid: 42,
                comm: "nginx".into(),
                interval: Bytes { rx: 2048, tx: 512 },
                total: Bytes { rx: 4096, tx: 1024 },
            }],
            unrecorded: Bytes::default(),
        };
        let mut out = Vec::new();
        TablePrinter::new(&mut out)
            .interval(&report, SystemTime::now())
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[1], ["42", "nginx", "2.0", "0.5", "4.0", "1.0", "5.0"]);
    }
}
