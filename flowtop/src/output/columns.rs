//! The column model every printer shares.
//!
//! A [`Column`] knows its machine key (JSON key and CSV header), its table header
//! (which follows `--units` and `--rate`), how the table fits it into a narrow
//! terminal ([`Fit`], [`Stage`]), and how to get its [`Value`] from any row ([`RowData`]).
//! Printers only walk a list of columns ([`record_columns`], [`table_columns`]; the
//! groupings' own columns are in [`super::grouped`]), so every `--by` gets units,
//! rates, `-T`, width fitting and every format from the same code.
use std::{borrow::Cow, time::SystemTime};

use super::{
    frame::RowData,
    grouped::{by_name, record_fields, table_lead, table_tail, CONTAINER_FIELDS},
    units::per_sec,
    Format, OutputOptions, Stamp,
};
use crate::collect::aggregate::{Conn, GroupBy};

/// One cell before formatting. The table formats bytes with `--units`; CSV and JSON
/// write exact integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(Cow<'a, str>),
    /// A plain count (PID, interval number, processes, port).
    Int(u64),
    /// An amount of bytes.
    Bytes(u64),
    /// Bytes per second.
    Rate(f64),
    /// Seconds (the interval's measured length).
    Seconds(f64),
    /// When the interval ended.
    Time(SystemTime),
    /// Not known or not applicable: `-` in the table, empty in CSV, `null` in JSON.
    Null,
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
    /// Keep the end: `…168.1.20:443` (addresses: the port matters most; cgroup
    /// paths: the leaf names the service or container).
    KeepEnd,
}

/// When a column gives up room in a narrow terminal, earliest first. Padding of
/// the shrinkable columns goes before all of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Names (COMM) are shortened to their minimum.
    Names,
    /// The since-start totals are dropped, from the right.
    Totals,
    /// Addresses and cgroup paths are shortened: they say which row it is.
    Places,
    /// The interval's amounts (and NSPID) are dropped, from the right.
    Amounts,
}

/// How the table places a column and fits it into a narrow terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub align: Align,
    /// Whether, how and down to what width the column may be shortened; a
    /// shrinkable column is never dropped.
    pub shrink: Option<(Shrink, usize)>,
    /// When it is shortened or dropped; None: never (PID, TIME, PROTO, PROCS).
    pub stage: Option<Stage>,
}

/// A per-row column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Time,
    Interval,
    Pid,
    /// The PID inside the process's innermost PID namespace (`--show-nspid`).
    Nspid,
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
    /// JSON: what a row is (`--by`).
    By,
    Proto,
    Family,
    Laddr,
    Lport,
    /// Null when the remote is not known (unconnected UDP).
    Raddr,
    Rport,
    /// Table: `LADDR:LPORT`.
    Local,
    /// Table: `RADDR:RPORT`, `*` when not known.
    Remote,
    Cgroup,
    /// Processes in a group that moved bytes this interval (table: PROCS).
    Processes,
    /// The container's name (or the unit's, or `host`); null when not known.
    Container,
    /// Table: CONTAINER, the name, else the id's first 12 digits, else the cgroup.
    ContainerLabel,
    ContainerId,
    Runtime,
    Pod,
    Namespace,
}

/// What a column's value is computed from.
pub struct RowCtx<'a, R> {
    /// 1-based interval number.
    pub index: u64,
    pub by: GroupBy,
    pub row: &'a R,
    pub stamp: &'a Stamp,
    /// `stamp.elapsed` in seconds, for the rates: computed once per interval, not
    /// once per cell.
    pub seconds: f64,
}

impl Column {
    /// JSON key and CSV header.
    pub fn key(self) -> &'static str {
        match self {
            Column::Time => "time",
            Column::Interval => "interval",
            Column::Pid => "pid",
            Column::Nspid => "nspid",
            Column::Comm => "comm",
            Column::Rx => "rx_bytes",
            Column::Tx => "tx_bytes",
            Column::RxTotal => "rx_total_bytes",
            Column::TxTotal => "tx_total_bytes",
            Column::Total => "total_bytes",
            Column::Seconds => "seconds",
            Column::RxRate => "rx_bytes_per_sec",
            Column::TxRate => "tx_bytes_per_sec",
            Column::By => "by",
            Column::Proto => "proto",
            Column::Family => "family",
            Column::Laddr => "laddr",
            Column::Lport => "lport",
            Column::Raddr => "raddr",
            Column::Rport => "rport",
            Column::Local => "local",
            Column::Remote => "remote",
            Column::Cgroup => "cgroup",
            Column::Processes => "processes",
            Column::Container | Column::ContainerLabel => "container",
            Column::ContainerId => "container_id",
            Column::Runtime => "runtime",
            Column::Pod => "pod",
            Column::Namespace => "namespace",
        }
    }

    /// Table header; amounts carry the unit (`RX_KB`, `RX_BYTES`, `RX`, `RX_KB/s`).
    pub fn header(self, opts: &OutputOptions) -> String {
        let unit = opts.units.header_suffix();
        match self {
            Column::Rx => format!("RX{unit}"),
            Column::Tx => format!("TX{unit}"),
            Column::RxTotal => format!("RXSUM{unit}"),
            Column::TxTotal => format!("TXSUM{unit}"),
            Column::Total => format!("SUM{unit}"),
            Column::RxRate => format!("RX{unit}/s"),
            Column::TxRate => format!("TX{unit}/s"),
            Column::Local => "LADDR:LPORT".into(),
            Column::Remote => "RADDR:RPORT".into(),
            Column::Processes => "PROCS".into(),
            other => other.key().to_ascii_uppercase(),
        }
    }

    /// Table width when the values are short (values may widen it).
    pub fn width(self) -> usize {
        match self {
            Column::Time | Column::Interval => 8,
            Column::Pid | Column::Nspid => 7,
            Column::Comm => 16,
            Column::Proto | Column::Processes => 5,
            // `255.255.255.255:65535`
            Column::Local | Column::Remote => 21,
            Column::Cgroup | Column::Pod => 6,
            Column::ContainerLabel | Column::Namespace => 9,
            Column::Runtime => 7,
            _ => 10,
        }
    }

    pub fn fit(self) -> Fit {
        use Column::*;
        let align = match self {
            Time | Pid | Nspid | Comm | Proto | Local | Remote | Cgroup | Processes | Container
            | ContainerLabel | ContainerId | Runtime | Pod | Namespace => Align::Left,
            _ => Align::Right,
        };
        let (shrink, stage) = match self {
            Comm | ContainerLabel | Pod | Namespace => {
                (Some((Shrink::KeepStart, 4)), Some(Stage::Names))
            }
            RxTotal | TxTotal | Total => (None, Some(Stage::Totals)),
            Local | Remote => (Some((Shrink::KeepEnd, 10)), Some(Stage::Places)),
            Cgroup => (Some((Shrink::KeepEnd, 12)), Some(Stage::Places)),
            Rx | Tx | RxRate | TxRate | Nspid => (None, Some(Stage::Amounts)),
            _ => (None, None),
        };
        Fit {
            align,
            shrink,
            stage,
        }
    }

    pub fn value<'a, R: RowData>(self, ctx: &RowCtx<'a, R>) -> Value<'a> {
        let secs = ctx.seconds;
        let row = ctx.row;
        let int = |n: Option<u32>| n.map_or(Value::Null, |n| Value::Int(n.into()));
        match self {
            Column::Time => Value::Time(ctx.stamp.at),
            Column::Interval => Value::Int(ctx.index),
            Column::Pid => int(row.pid()),
            Column::Nspid => int(row.nspid()),
            Column::Comm => text(row.comm()),
            Column::Rx => Value::Bytes(row.interval().rx),
            Column::Tx => Value::Bytes(row.interval().tx),
            Column::RxTotal => Value::Bytes(row.total().rx),
            Column::TxTotal => Value::Bytes(row.total().tx),
            Column::Total => Value::Bytes(row.total().total()),
            Column::Seconds => Value::Seconds(secs),
            Column::RxRate => Value::Rate(per_sec(row.interval().rx, secs)),
            Column::TxRate => Value::Rate(per_sec(row.interval().tx, secs)),
            Column::By => Value::Text(Cow::Borrowed(by_name(ctx.by))),
            Column::Cgroup => text(row.cgroup()),
            Column::Processes => Value::Int(row.processes().into()),
            Column::Container => text(row.container().and_then(|c| c.name.as_deref())),
            Column::ContainerLabel => {
                row.container()
                    .map_or(Value::Null, |c| match (&c.name, &c.id, &c.cgroup) {
                        (Some(n), _, _) => Value::Text(Cow::Borrowed(n)),
                        (None, Some(id), _) => Value::Text(Cow::Borrowed(&id[..id.len().min(12)])),
                        (None, None, Some(cg)) => Value::Text(Cow::Borrowed(cg)),
                        (None, None, None) => Value::Null,
                    })
            }
            Column::ContainerId => text(row.container().and_then(|c| c.id.as_deref())),
            Column::Runtime => text(row.container().and_then(|c| c.runtime.map(|r| r.name()))),
            Column::Pod => text(row.container().and_then(|c| c.pod.as_deref())),
            Column::Namespace => text(row.container().and_then(|c| c.namespace.as_deref())),
            _ => row.conn().map_or(Value::Null, |c| self.conn_value(c)),
        }
    }

    /// The connection columns (`--by conn`).
    fn conn_value(self, c: &Conn) -> Value<'static> {
        let owned = |s: String| Value::Text(Cow::Owned(s));
        match self {
            Column::Proto => owned(c.proto()),
            Column::Family => Value::Text(Cow::Borrowed(c.family_name())),
            Column::Laddr => owned(c.laddr.to_string()),
            Column::Lport => Value::Int(c.lport.into()),
            Column::Raddr => c.remote.map_or(Value::Null, |(a, _)| owned(a.to_string())),
            Column::Rport => c.remote.map_or(Value::Null, |(_, p)| Value::Int(p.into())),
            Column::Local => owned(c.local()),
            Column::Remote => owned(c.remote()),
            _ => Value::Null,
        }
    }
}

fn text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, |s| Value::Text(Cow::Borrowed(s)))
}

/// Keys of every JSON row and CSV line, in order. The first nine are the stable
/// contract; then, for groupings, `by` (JSON only: a CSV file holds one grouping)
/// and the grouping's fields; options only ever append (`--rate`, `--show-nspid`).
pub fn record_columns(opts: &OutputOptions) -> Vec<Column> {
    use Column::*;
    let mut cols = vec![Time, Interval, Pid, Comm, Rx, Tx, RxTotal, TxTotal, Total];
    if opts.by != GroupBy::Pid && opts.format == Format::Json {
        cols.push(By);
    }
    cols.extend(record_fields(opts.by));
    if opts.rate {
        cols.extend([Seconds, RxRate, TxRate]);
    }
    if opts.nspid {
        cols.push(Nspid);
    }
    if opts.container && opts.by != GroupBy::Container {
        cols.extend(CONTAINER_FIELDS);
    }
    cols
}

/// The table's columns: `[TIME]`, what a row is (`PID [NSPID] COMM` for processes,
/// see [`table_lead`]), `RX TX` (per second with `--rate`), `RXSUM TXSUM SUM`, and
/// for cgroups the path last.
pub fn table_columns(opts: &OutputOptions) -> Vec<Column> {
    use Column::*;
    let mut cols = Vec::new();
    if opts.timestamp {
        cols.push(Time);
    }
    cols.extend(table_lead(opts.by, opts.nspid, opts.container));
    if opts.rate {
        cols.extend([RxRate, TxRate]);
    } else {
        cols.extend([Rx, Tx]);
    }
    cols.extend([RxTotal, TxTotal, Total]);
    cols.extend(table_tail(opts.by));
    cols
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        collect::{diff::ProcRow, Bytes},
        output::units::Units,
    };

    pub fn row(pid: u32, comm: &str, rx: u64, tx: u64, rxt: u64, txt: u64) -> ProcRow {
        ProcRow {
            pid,
            nspid: None,
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

    /// The stable contract: the first keys of every JSON row and CSV line.
    pub const CORE_KEYS: [&str; 9] = [
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

    fn keys(o: &OutputOptions) -> Vec<&'static str> {
        record_columns(o).into_iter().map(Column::key).collect()
    }

    fn headers(o: &OutputOptions) -> Vec<String> {
        table_columns(o).into_iter().map(|c| c.header(o)).collect()
    }

    #[test]
    fn record_keys_start_with_the_stable_contract_and_options_append() {
        let mut opts = OutputOptions::default();
        assert_eq!(keys(&opts), CORE_KEYS);
        opts.rate = true;
        opts.timestamp = true;
        opts.units = Units::Human;
        let with_rate = keys(&opts);
        assert_eq!(with_rate[..9], CORE_KEYS);
        assert_eq!(
            with_rate[9..],
            ["seconds", "rx_bytes_per_sec", "tx_bytes_per_sec"]
        );
        opts.nspid = true;
        assert_eq!(
            keys(&opts)[9..],
            ["seconds", "rx_bytes_per_sec", "tx_bytes_per_sec", "nspid"]
        );
    }

    #[test]
    fn groupings_add_their_fields_after_the_core_keys_and_by_only_in_json() {
        let opts = |by, format| OutputOptions {
            by,
            format,
            ..OutputOptions::default()
        };
        let conn = keys(&opts(GroupBy::Conn, Format::Csv));
        assert_eq!(conn[..9], CORE_KEYS);
        assert_eq!(
            conn[9..],
            ["proto", "family", "laddr", "lport", "raddr", "rport"]
        );
        let json = keys(&opts(GroupBy::Conn, Format::Json));
        assert_eq!(json[9], "by");
        assert_eq!(json[10..], conn[9..]);
        assert_eq!(keys(&opts(GroupBy::Comm, Format::Csv))[9..], ["processes"]);
        assert_eq!(
            keys(&opts(GroupBy::Cgroup, Format::Json))[9..],
            ["by", "cgroup", "processes"]
        );
        let mut o = opts(GroupBy::Conn, Format::Csv);
        (o.rate, o.nspid) = (true, true);
        assert_eq!(
            keys(&o)[15..],
            ["seconds", "rx_bytes_per_sec", "tx_bytes_per_sec", "nspid"]
        );
    }

    #[test]
    fn table_headers_follow_units_rate_and_timestamp() {
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
    fn grouped_table_layouts_with_units_rate_and_nspid() {
        let mut opts = OutputOptions {
            by: GroupBy::Conn,
            nspid: true,
            ..OutputOptions::default()
        };
        let conn = headers(&opts);
        assert_eq!(
            conn[..6],
            [
                "PID",
                "NSPID",
                "COMM",
                "PROTO",
                "LADDR:LPORT",
                "RADDR:RPORT"
            ]
        );
        assert_eq!(conn[6..], headers(&OutputOptions::default())[2..]);
        opts.by = GroupBy::Comm;
        opts.units = Units::Bytes;
        assert_eq!(headers(&opts)[..3], ["PROCS", "COMM", "RX_BYTES"]);
        opts.by = GroupBy::Cgroup;
        opts.rate = true;
        opts.timestamp = true;
        assert_eq!(
            headers(&opts),
            [
                "TIME",
                "RX_BYTES/s",
                "TX_BYTES/s",
                "RXSUM_BYTES",
                "TXSUM_BYTES",
                "SUM_BYTES",
                "CGROUP"
            ]
        );
    }

    #[test]
    fn values_come_from_the_row_and_rates_from_the_measured_interval() {
        let mut r = row(7, "curl", 3000, 1000, 9000, 2000);
        let st = stamp(2);
        let ctx = RowCtx {
            index: 4,
            by: GroupBy::Pid,
            row: &r,
            stamp: &st,
            seconds: st.elapsed.as_secs_f64(),
        };
        assert_eq!(Column::Interval.value(&ctx), Value::Int(4));
        assert_eq!(Column::Pid.value(&ctx), Value::Int(7));
        assert_eq!(Column::Comm.value(&ctx), Value::Text("curl".into()));
        assert_eq!(Column::Total.value(&ctx), Value::Bytes(11000));
        assert_eq!(Column::RxRate.value(&ctx), Value::Rate(1500.0));
        assert_eq!(Column::TxRate.value(&ctx), Value::Rate(500.0));
        assert_eq!(Column::Seconds.value(&ctx), Value::Seconds(2.0));
        assert_eq!(Column::Nspid.value(&ctx), Value::Null);
        assert_eq!(Column::Proto.value(&ctx), Value::Null, "no connection");
        let (index, by) = (ctx.index, ctx.by);
        r.nspid = Some(3);
        let ctx = RowCtx {
            index,
            by,
            row: &r,
            stamp: &st,
            seconds: st.elapsed.as_secs_f64(),
        };
        assert_eq!(Column::Nspid.value(&ctx), Value::Int(3));
    }
}
