//! The column model every printer shares.
//!
//! A [`Column`] knows its machine key (JSON key and CSV header), its table header
//! (which follows `--units` and `--rate`), its alignment and width in the table, how
//! it may be truncated when the terminal is narrow, and how to get its [`Value`] from
//! a row. Printers only walk a list of columns, so a new column (PROTO, LADDR:LPORT,
//! RADDR:RPORT, CGROUP for `--by`) is one enum variant plus one entry in
//! [`record_columns`]/[`table_columns`]; no printer changes.
use std::{borrow::Cow, time::SystemTime};

use super::{units::per_sec, OutputOptions, Stamp};
use crate::collect::{
    diff::{IntervalReport, ProcRow},
    Bytes,
};

/// One cell before formatting. The table formats bytes with `--units`; CSV and JSON
/// write exact integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(Cow<'a, str>),
    /// A plain count (PID, interval number, processes).
    Int(u64),
    /// An amount of bytes.
    Bytes(u64),
    /// Bytes per second.
    Rate(f64),
    /// Seconds (the interval's measured length).
    Seconds(f64),
    /// When the interval ended.
    Time(SystemTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// How a table cell may be shortened when the line would be wider than the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrink {
    /// Keep the beginning: `systemd-resolv…` (names).
    KeepStart,
    /// Keep the end: `…168.1.20:443` (addresses: the port matters most).
    KeepEnd,
}

/// A per-row column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Time,
    Interval,
    Pid,
    Comm,
    Rx,
    Tx,
    RxTotal,
    TxTotal,
    Total,
    /// Measured length of the interval in seconds (with `--rate`).
    Seconds,
    RxRate,
    TxRate,
}

/// What a column's value is computed from.
pub struct RowCtx<'a> {
    pub report: &'a IntervalReport,
    pub row: &'a ProcRow,
    pub stamp: &'a Stamp,
}

impl Column {
    /// JSON key and CSV header.
    pub fn key(self) -> &'static str {
        match self {
            Column::Time => "time",
            Column::Interval => "interval",
            Column::Pid => "pid",
            Column::Comm => "comm",
            Column::Rx => "rx_bytes",
            Column::Tx => "tx_bytes",
            Column::RxTotal => "rx_total_bytes",
            Column::TxTotal => "tx_total_bytes",
            Column::Total => "total_bytes",
            Column::Seconds => "seconds",
            Column::RxRate => "rx_bytes_per_sec",
            Column::TxRate => "tx_bytes_per_sec",
        }
    }

    /// Table header; amounts carry the unit (`RX_KB`, `RX_BYTES`, `RX`, `RX_KB/s`).
    pub fn header(self, opts: &OutputOptions) -> String {
        let unit = opts.units.header_suffix();
        match self {
            Column::Time => "TIME".into(),
            Column::Interval => "INTERVAL".into(),
            Column::Pid => "PID".into(),
            Column::Comm => "COMM".into(),
            Column::Rx => format!("RX{unit}"),
            Column::Tx => format!("TX{unit}"),
            Column::RxTotal => format!("RXSUM{unit}"),
            Column::TxTotal => format!("TXSUM{unit}"),
            Column::Total => format!("SUM{unit}"),
            Column::Seconds => "SECONDS".into(),
            Column::RxRate => format!("RX{unit}/s"),
            Column::TxRate => format!("TX{unit}/s"),
        }
    }

    pub fn align(self) -> Align {
        match self {
            Column::Time | Column::Pid | Column::Comm => Align::Left,
            _ => Align::Right,
        }
    }

    /// Table width when the values are short (values may widen it).
    pub fn width(self) -> usize {
        match self {
            Column::Time => 8,
            Column::Pid => 7,
            Column::Comm => 16,
            Column::Interval => 8,
            _ => 10,
        }
    }

    /// Whether, how and down to what width the table may shorten this column.
    pub fn shrink(self) -> Option<(Shrink, usize)> {
        match self {
            Column::Comm => Some((Shrink::KeepStart, 4)),
            _ => None,
        }
    }

    pub fn value<'a>(self, ctx: &RowCtx<'a>) -> Value<'a> {
        let secs = ctx.stamp.elapsed.as_secs_f64();
        let row = ctx.row;
        match self {
            Column::Time => Value::Time(ctx.stamp.at),
            Column::Interval => Value::Int(ctx.report.index),
            Column::Pid => Value::Int(row.pid.into()),
            Column::Comm => Value::Text(Cow::Borrowed(&row.comm)),
            Column::Rx => Value::Bytes(row.interval.rx),
            Column::Tx => Value::Bytes(row.interval.tx),
            Column::RxTotal => Value::Bytes(row.total.rx),
            Column::TxTotal => Value::Bytes(row.total.tx),
            Column::Total => Value::Bytes(row.total.total()),
            Column::Seconds => Value::Seconds(secs),
            Column::RxRate => Value::Rate(per_sec(row.interval.rx, secs)),
            Column::TxRate => Value::Rate(per_sec(row.interval.tx, secs)),
        }
    }
}

/// Keys of every JSON row and CSV line, in order. The first nine are the stable
/// contract; options only ever append.
pub fn record_columns(opts: &OutputOptions) -> Vec<Column> {
    use Column::*;
    let mut cols = vec![Time, Interval, Pid, Comm, Rx, Tx, RxTotal, TxTotal, Total];
    if opts.rate {
        cols.extend([Seconds, RxRate, TxRate]);
    }
    cols
}

/// The table's columns: `[TIME] PID COMM RX TX RXSUM TXSUM SUM`, RX/TX per second
/// with `--rate`.
pub fn table_columns(opts: &OutputOptions) -> Vec<Column> {
    use Column::*;
    let mut cols = Vec::new();
    if opts.timestamp {
        cols.push(Time);
    }
    cols.extend([Pid, Comm]);
    if opts.rate {
        cols.extend([RxRate, TxRate]);
    } else {
        cols.extend([Rx, Tx]);
    }
    cols.extend([RxTotal, TxTotal, Total]);
    cols
}

/// One interval across all processes: the table's summary line, the JSON summary
/// object, the CSV summary columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub processes: usize,
    /// Bytes of all listed processes this interval.
    pub all: Bytes,
    /// Bytes the kernel could not attribute to a process (map full).
    pub unrecorded: Bytes,
    pub seconds: f64,
}

impl Summary {
    pub fn of(report: &IntervalReport, stamp: &Stamp) -> Self {
        let all = report.rows.iter().fold(Bytes::default(), |acc, r| Bytes {
            rx: acc.rx + r.interval.rx,
            tx: acc.tx + r.interval.tx,
        });
        Self {
            processes: report.rows.len(),
            all,
            unrecorded: report.unrecorded,
            seconds: stamp.elapsed.as_secs_f64(),
        }
    }

    /// Names for the machine formats, in order (values from [`Summary::values`]).
    pub fn keys(rate: bool) -> Vec<&'static str> {
        let mut keys = vec![
            "processes",
            "all_rx_bytes",
            "all_tx_bytes",
            "unrecorded_rx_bytes",
            "unrecorded_tx_bytes",
            "unrecorded_bytes",
        ];
        if rate {
            keys.extend(["all_rx_bytes_per_sec", "all_tx_bytes_per_sec"]);
        }
        keys
    }

    pub fn values(&self, rate: bool) -> Vec<Value<'static>> {
        let mut values = vec![
            Value::Int(self.processes as u64),
            Value::Bytes(self.all.rx),
            Value::Bytes(self.all.tx),
            Value::Bytes(self.unrecorded.rx),
            Value::Bytes(self.unrecorded.tx),
            Value::Bytes(self.unrecorded.total()),
        ];
        if rate {
            values.extend([
                Value::Rate(per_sec(self.all.rx, self.seconds)),
                Value::Rate(per_sec(self.all.tx, self.seconds)),
            ]);
        }
        values
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::output::units::Units;

    pub fn row(pid: u32, comm: &str, rx: u64, tx: u64, rxt: u64, txt: u64) -> ProcRow {
        ProcRow {
            pid,
            comm: comm.into(),
            interval: Bytes { rx, tx },
            total: Bytes { rx: rxt, tx: txt },
        }
    }

    pub fn stamp(secs: u64) -> Stamp {
        Stamp {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            elapsed: Duration::from_secs(secs),
        }
    }

    #[test]
    fn record_keys_start_with_the_stable_contract_and_options_append() {
        let base = [
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
        let keys = |o: &OutputOptions| -> Vec<&str> {
            record_columns(o).into_iter().map(Column::key).collect()
        };
        let mut opts = OutputOptions::default();
        assert_eq!(keys(&opts), base);
        opts.rate = true;
        opts.timestamp = true;
        opts.units = Units::Human;
        let with_rate = keys(&opts);
        assert_eq!(with_rate[..9], base);
        assert_eq!(
            with_rate[9..],
            ["seconds", "rx_bytes_per_sec", "tx_bytes_per_sec"]
        );
    }

    #[test]
    fn table_headers_follow_units_rate_and_timestamp() {
        let headers = |o: &OutputOptions| -> Vec<String> {
            table_columns(o).into_iter().map(|c| c.header(o)).collect()
        };
        let mut opts = OutputOptions::default();
        assert_eq!(
            headers(&opts),
            ["PID", "COMM", "RX_KB", "TX_KB", "RXSUM_KB", "TXSUM_KB", "SUM_KB"]
        );
        opts.units = Units::Bytes;
        assert_eq!(
            headers(&opts),
            [
                "PID",
                "COMM",
                "RX_BYTES",
                "TX_BYTES",
                "RXSUM_BYTES",
                "TXSUM_BYTES",
                "SUM_BYTES"
            ]
        );
        opts.units = Units::Human;
        opts.rate = true;
        opts.timestamp = true;
        assert_eq!(
            headers(&opts),
            ["TIME", "PID", "COMM", "RX/s", "TX/s", "RXSUM", "TXSUM", "SUM"]
        );
    }

    #[test]
    fn values_come_from_the_row_and_rates_from_the_measured_interval() {
        let report = IntervalReport {
            index: 4,
            rows: vec![row(7, "curl", 3000, 1000, 9000, 2000)],
            unrecorded: Bytes::default(),
        };
        let st = stamp(2);
        let ctx = RowCtx {
            report: &report,
            row: &report.rows[0],
            stamp: &st,
        };
        assert_eq!(Column::Interval.value(&ctx), Value::Int(4));
        assert_eq!(Column::Pid.value(&ctx), Value::Int(7));
        assert_eq!(Column::Comm.value(&ctx), Value::Text("curl".into()));
        assert_eq!(Column::Total.value(&ctx), Value::Bytes(11000));
        assert_eq!(Column::RxRate.value(&ctx), Value::Rate(1500.0));
        assert_eq!(Column::TxRate.value(&ctx), Value::Rate(500.0));
        assert_eq!(Column::Seconds.value(&ctx), Value::Seconds(2.0));
    }

    #[test]
    fn summary_adds_up_the_interval() {
        let report = IntervalReport {
            index: 1,
            rows: vec![row(1, "a", 10, 20, 10, 20), row(2, "b", 1, 2, 5, 5)],
            unrecorded: Bytes { rx: 7, tx: 0 },
        };
        let s = Summary::of(&report, &stamp(1));
        assert_eq!(s.processes, 2);
        assert_eq!(s.all, Bytes { rx: 11, tx: 22 });
        assert_eq!(s.unrecorded, Bytes { rx: 7, tx: 0 });
        assert_eq!(Summary::keys(false).len(), s.values(false).len());
        assert_eq!(Summary::keys(true).len(), s.values(true).len());
    }
}
