//! The column model every printer shares.
//!
//! A [`Column`] knows its machine key (JSON key and CSV header), its table header
//! (which follows `--units` and `--rate`), how the table fits it into a narrow
//! terminal ([`Fit`], [`Stage`]), and how to get its [`Value`] from any row
//! ([`RowData`]). Printers only walk a list of columns (which ones, per `--by` and
//! option, is [`super::layout`]'s job), so every `--by` gets units, rates, `-T`,
//! width fitting and every format from the same code.
use std::borrow::Cow;

use super::{
    row::{RowCtx, RowData, Value},
    units::per_sec,
    OutputOptions,
};
use crate::collect::aggregate::Conn;

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
            Column::By => Value::Text(Cow::Borrowed(ctx.by.name())),
            Column::Cgroup => text(row.cgroup()),
            Column::Processes => Value::Int(row.processes().into()),
            Column::Container => text(row.container().and_then(|c| c.name.as_deref())),
            Column::ContainerLabel => text(row.container().and_then(|c| c.label())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        collect::aggregate::GroupBy,
        output::fixtures::{row, stamp},
    };

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
