//! Output of `--by conn|comm|cgroup` (and of any [`Report`]), for the table and JSON
//! printers. `--by pid` keeps the per-process printers' exact layout.
//!
//! Table layouts:
//! - conn: `PID COMM PROTO LADDR:LPORT RADDR:RPORT RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB`
//! - comm: `PROCS COMM RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB` (PROCS: processes of that
//!   name that moved bytes this interval)
//! - cgroup: `RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB CGROUP` (the path last: it can be long)
//!
//! When `-r` hid rows, a last line gives their number and the interval's bytes of all rows.
//!
//! JSON rows have the core keys (`pid` and `comm` are null for groups of processes),
//! then `by`, then the grouping's fields: conn: `proto`, `family`, `laddr`, `lport`,
//! `raddr`, `rport` (both null when the remote is not known); comm: `processes`;
//! cgroup: `cgroup`, `processes`.
use std::{io, time::SystemTime};

use serde::Serialize;

/// KB with one decimal, as the per-process table prints them.
fn kb(bytes: u64) -> String {
    super::units::kb(bytes as f64)
}
use crate::collect::aggregate::{GroupBy, Report, Row};

const SUMS: [&str; 5] = ["RX_KB", "TX_KB", "RXSUM_KB", "TXSUM_KB", "SUM_KB"];

fn sums(r: &Row) -> String {
    format!(
        "{:>10} {:>10} {:>10} {:>10} {:>10}",
        kb(r.interval.rx),
        kb(r.interval.tx),
        kb(r.total.rx),
        kb(r.total.tx),
        kb(r.total.total())
    )
}

pub fn table(out: &mut impl io::Write, report: &Report) -> io::Result<()> {
    if report.index > 1 {
        writeln!(out)?;
    }
    let [rx, tx, rxs, txs, sum] = SUMS;
    let sums_header = format!("{rx:>10} {tx:>10} {rxs:>10} {txs:>10} {sum:>10}");
    match report.by {
        GroupBy::Conn => {
            let ends: Vec<(String, String, String)> = report
                .rows
                .iter()
                .map(|r| {
                    r.conn
                        .as_ref()
                        .map(|c| (c.proto(), c.local(), c.remote()))
                        .unwrap_or_default()
                })
                .collect();
            let lw = ends.iter().map(|e| e.1.len()).max().unwrap_or(0).max(21);
            let rw = ends.iter().map(|e| e.2.len()).max().unwrap_or(0).max(21);
            writeln!(
                out,
                "{:<7} {:<16} {:<5} {:<lw$} {:<rw$} {sums_header}",
                "PID", "COMM", "PROTO", "LADDR:LPORT", "RADDR:RPORT"
            )?;
            for (r, (proto, l, rem)) in report.rows.iter().zip(&ends) {
                writeln!(
                    out,
                    "{:<7} {:<16} {proto:<5} {l:<lw$} {rem:<rw$} {}",
                    r.pid.unwrap_or(0),
                    r.comm.as_deref().unwrap_or(""),
                    sums(r)
                )?;
            }
        }
        GroupBy::Comm => {
            writeln!(out, "{:<5} {:<16} {sums_header}", "PROCS", "COMM")?;
            for r in &report.rows {
                let comm = r.comm.as_deref().unwrap_or("");
                writeln!(out, "{:<5} {comm:<16} {}", r.processes, sums(r))?;
            }
        }
        GroupBy::Cgroup => {
            writeln!(out, "{sums_header} CGROUP")?;
            for r in &report.rows {
                writeln!(out, "{} {}", sums(r), r.cgroup.as_deref().unwrap_or(""))?;
            }
        }
        GroupBy::Pid => {
            writeln!(out, "{:<7} {:<16} {sums_header}", "PID", "COMM")?;
            for r in &report.rows {
                let comm = r.comm.as_deref().unwrap_or("");
                writeln!(out, "{:<7} {comm:<16} {}", r.pid.unwrap_or(0), sums(r))?;
            }
        }
    }
    if report.all_rows > report.rows.len() {
        writeln!(
            out,
            "({} more rows not shown; all {} rows: RX_KB {} TX_KB {})",
            report.all_rows - report.rows.len(),
            report.all_rows,
            kb(report.all.rx),
            kb(report.all.tx)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonRow<'a> {
    time: &'a str,
    interval: u64,
    pid: Option<u32>,
    comm: Option<&'a str>,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_total_bytes: u64,
    tx_total_bytes: u64,
    total_bytes: u64,
    by: &'static str,
    #[serde(flatten)]
    conn: Option<JsonConn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<u32>,
}

#[derive(Serialize)]
struct JsonConn {
    proto: String,
    family: &'static str,
    laddr: String,
    lport: u16,
    raddr: Option<String>,
    rport: Option<u16>,
}

pub fn json(out: &mut impl io::Write, report: &Report, at: SystemTime) -> io::Result<()> {
    let time = humantime::format_rfc3339_millis(at).to_string();
    let by = match report.by {
        GroupBy::Pid => "pid",
        GroupBy::Conn => "conn",
        GroupBy::Comm => "comm",
        GroupBy::Cgroup => "cgroup",
    };
    for r in &report.rows {
        let row = JsonRow {
            time: &time,
            interval: report.index,
            pid: r.pid,
            comm: r.comm.as_deref(),
            rx_bytes: r.interval.rx,
            tx_bytes: r.interval.tx,
            rx_total_bytes: r.total.rx,
            tx_total_bytes: r.total.tx,
            total_bytes: r.total.total(),
            by,
            conn: r.conn.as_ref().map(|c| JsonConn {
                proto: c.proto(),
                family: c.family_name(),
                laddr: unmapped(c.laddr).to_string(),
                lport: c.lport,
                raddr: c.remote.map(|(a, _)| unmapped(a).to_string()),
                rport: c.remote.map(|(_, p)| p),
            }),
            cgroup: r.cgroup.as_deref(),
            processes: matches!(report.by, GroupBy::Comm | GroupBy::Cgroup).then_some(r.processes),
        };
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn unmapped(a: std::net::IpAddr) -> std::net::IpAddr {
    match a {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, std::net::IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{
        aggregate::{finish, Conn, SortBy},
        Bytes,
    };
    use flowtop_common::{net::*, FlowKey};

    fn conn_report(limit: Option<usize>) -> Report {
        let mut k = FlowKey {
            tgid: 42,
            family: AF_INET6,
            protocol: IPPROTO_TCP,
            lport: 8080,
            rport: 50000,
            ..Default::default()
        };
        k.laddr = std::net::Ipv6Addr::LOCALHOST.octets();
        k.raddr = k.laddr;
        let row = |conn: Conn, rx| Row {
            pid: Some(42),
            comm: Some("srv".into()),
            processes: 1,
            conn: Some(conn),
            cgroup: None,
            interval: Bytes { rx, tx: 2 },
            total: Bytes { rx, tx: 2 },
        };
        let mut udp = FlowKey {
            tgid: 42,
            family: AF_INET,
            protocol: IPPROTO_UDP,
            lport: 53,
            ..Default::default()
        };
        udp.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let rows = vec![row(Conn::from_key(&k), 2048), row(Conn::from_key(&udp), 1)];
        finish(
            1,
            GroupBy::Conn,
            rows,
            SortBy::Total,
            limit,
            Bytes::default(),
        )
    }

    #[test]
    fn conn_table_has_the_issue_layout_and_a_summary_when_rows_are_cut() {
        let mut out = Vec::new();
        table(&mut out, &conn_report(Some(1))).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            [
                "PID",
                "COMM",
                "PROTO",
                "LADDR:LPORT",
                "RADDR:RPORT",
                "RX_KB",
                "TX_KB",
                "RXSUM_KB",
                "TXSUM_KB",
                "SUM_KB"
            ]
        );
        assert_eq!(
            lines[1],
            [
                "42",
                "srv",
                "tcp",
                "[::1]:8080",
                "[::1]:50000",
                "2.0",
                "0.0",
                "2.0",
                "0.0",
                "2.0"
            ]
        );
        assert!(
            lines[2]
                .join(" ")
                .starts_with("(1 more rows not shown; all 2 rows"),
            "{text}"
        );
    }

    #[test]
    fn conn_json_carries_the_grouping_fields() {
        let mut r = conn_report(Some(1));
        r.all_rows = 1;
        let mut out = Vec::new();
        json(&mut out, &r, SystemTime::UNIX_EPOCH).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["pid"], 42);
        assert_eq!(v["rx_bytes"], 2048);
        assert_eq!(v["by"], "conn");
        assert_eq!(
            (v["proto"].as_str(), v["family"].as_str()),
            (Some("tcp"), Some("ipv6"))
        );
        assert_eq!(
            (v["laddr"].as_str(), v["lport"].as_u64()),
            (Some("::1"), Some(8080))
        );
        assert_eq!(
            (v["raddr"].as_str(), v["rport"].as_u64()),
            (Some("::1"), Some(50000))
        );
        assert!(v.get("cgroup").is_none());
    }

    #[test]
    fn unknown_remote_is_star_in_the_table_and_null_in_json() {
        let mut r = conn_report(None);
        r.rows = vec![r.rows.pop().unwrap()];
        r.all_rows = 1;
        let mut out = Vec::new();
        table(&mut out, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().nth(1).unwrap().contains("udp   127.0.0.1:53"),
            "{text}"
        );
        assert_eq!(
            text.lines().nth(1).unwrap().split_whitespace().nth(4),
            Some("*")
        );
        let mut out = Vec::new();
        json(&mut out, &r, SystemTime::UNIX_EPOCH).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["raddr"].is_null() && v["rport"].is_null(), "{v}");
    }
}
