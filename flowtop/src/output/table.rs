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
    Kb(bytes).to_string()
}

/// [`kb`] without allocating or formatting floats (100k rows per interval are 500k
/// numbers): integer tenths, rounded half to even exactly as `{:.1}` rounds the
/// (exactly representable) quotient `bytes / 1024.0`.
struct Kb(u64);

impl std::fmt::Display for Kb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scaled = self.0 as u128 * 10;
        let (mut tenths, rem) = (scaled / 1024, scaled % 1024);
        if rem > 512 || (rem == 512 && tenths % 2 == 1) {
            tenths += 1;
        }
        let mut buf = [0u8; 48];
        let mut at = buf.len();
        let digits = |mut v: u128, buf: &mut [u8; 48], at: &mut usize| loop {
            *at -= 1;
            buf[*at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        };
        digits(tenths % 10, &mut buf, &mut at);
        at -= 1;
        buf[at] = b'.';
        digits(tenths / 10, &mut buf, &mut at);
        // ASCII digits and a dot: always UTF-8.
        f.pad(std::str::from_utf8(&buf[at..]).unwrap_or("?"))
    }
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
                Kb(r.interval.rx),
                Kb(r.interval.tx),
                Kb(r.total.rx),
                Kb(r.total.tx),
                Kb(r.total.total()),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{diff::ProcRow, Bytes};

    #[test]
    fn kb_matches_float_formatting_including_ties() {
        let float = |b: u64| format!("{:.1}", b as f64 / 1024.0);
        for b in (0..300_000).chain([1 << 40, (1 << 40) + 256, (1 << 40) + 768, (1 << 52) + 512]) {
            assert_eq!(kb(b), float(b), "{b} bytes");
        }
        assert_eq!(format!("{:>8}|{:<6}|", Kb(1536), Kb(0)), "     1.5|0.0   |");
    }

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
