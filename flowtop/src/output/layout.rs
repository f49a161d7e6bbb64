//! The columns of each `--by`: every grouping is printed by the same printers and
//! column model as `--by pid`, so `--units`, `--rate`, `-T`, `--no-header`, the
//! summary and width fitting apply to all of them, in every format.
//!
//! Table layouts (amount names follow `--units`/`--rate`, `-T` adds TIME first):
//! - pid: `PID [NSPID] COMM RX_KB TX_KB RXSUM_KB TXSUM_KB SUM_KB`
//! - conn: `PID [NSPID] COMM PROTO LADDR:LPORT RADDR:RPORT RX_KB ... SUM_KB`
//! - comm: `PROCS COMM RX_KB ... SUM_KB` (PROCS: processes of that name that moved
//!   bytes this interval)
//! - cgroup: `RX_KB ... SUM_KB CGROUP` (the path last: it can be long)
//! - container: `CONTAINER RUNTIME [POD NAMESPACE] RX_KB ... SUM_KB` (POD and
//!   NAMESPACE once a row is from Kubernetes); `--show-container` adds CONTAINER
//!   after COMM on rows of processes
//!
//! When `-r` hid rows, a last line gives their number and the interval's bytes of
//! all rows. A narrow terminal shortens COMM (keeping its start), the addresses and
//! the cgroup path (keeping their end: the port, the leaf cgroup), then drops the
//! amount columns from the right.
//!
//! JSON rows and CSV lines have the core keys (`pid` and `comm` null/empty for
//! groups of processes), then (JSON only) `by`, then the grouping's fields: conn:
//! `proto`, `family`, `laddr`, `lport`, `raddr`, `rport` (both null when the remote
//! is not known); comm: `processes`; cgroup: `cgroup`, `processes`; container:
//! `container`, `container_id`, `runtime`, `pod`, `namespace`, `cgroup`,
//! `processes`. `--show-container` appends the container keys to rows of
//! processes.
use super::{columns::Column, Format, OutputOptions};
use crate::collect::aggregate::GroupBy;

/// The grouping's own fields in JSON and CSV, after the core keys.
pub fn record_fields(by: GroupBy) -> &'static [Column] {
    use Column::*;
    match by {
        GroupBy::Pid => &[],
        GroupBy::Conn => &[Proto, Family, Laddr, Lport, Raddr, Rport],
        GroupBy::Comm => &[Processes],
        GroupBy::Cgroup => &[Cgroup, Processes],
        GroupBy::Container => &[
            Container,
            ContainerId,
            Runtime,
            Pod,
            Namespace,
            Cgroup,
            Processes,
        ],
    }
}

/// `--show-container`'s keys, appended to JSON and CSV rows of processes.
pub const CONTAINER_FIELDS: [Column; 6] = [
    Column::Container,
    Column::ContainerId,
    Column::Runtime,
    Column::Pod,
    Column::Namespace,
    Column::Cgroup,
];

/// Table columns shown only once some row is from Kubernetes.
pub fn k8s_only(c: Column) -> bool {
    matches!(c, Column::Pod | Column::Namespace)
}

/// The table's columns before the amounts: what a row is. NSPID (`--show-nspid`)
/// follows PID where rows are processes.
pub fn table_lead(by: GroupBy, nspid: bool, container: bool) -> Vec<Column> {
    use Column::*;
    let process = |rest: &[Column]| {
        let mut cols = vec![Pid];
        if nspid {
            cols.push(Nspid);
        }
        cols.push(Comm);
        if container {
            cols.push(ContainerLabel);
        }
        cols.extend_from_slice(rest);
        cols
    };
    match by {
        GroupBy::Pid => process(&[]),
        GroupBy::Conn => process(&[Proto, Local, Remote]),
        GroupBy::Comm => vec![Processes, Comm],
        GroupBy::Cgroup => vec![],
        GroupBy::Container => vec![ContainerLabel, Runtime, Pod, Namespace],
    }
}

/// The table's columns after the amounts.
pub fn table_tail(by: GroupBy) -> &'static [Column] {
    match by {
        GroupBy::Cgroup => &[Column::Cgroup],
        _ => &[],
    }
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
mod tests {
    use flowtop_common::{net::*, FlowKey};

    use crate::{
        collect::{
            aggregate::{finish, Conn, Report, Row, SortBy},
            Bytes,
        },
        output::{
            fixtures::stamp, printer_with, table::width_of, Format, OutputOptions, Stamp, Units,
        },
    };

    use super::*;
    use crate::output::fixtures::CORE_KEYS;

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
            nspid: Some(7),
            comm: Some("srv".into()),
            processes: 1,
            conn: Some(conn),
            cgroup: None,
            container: None,
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

    fn cgroup_report() -> Report {
        let row = |path: &str, rx, processes| Row {
            pid: None,
            nspid: None,
            comm: None,
            processes,
            conn: None,
            cgroup: Some(path.into()),
            container: None,
            interval: Bytes { rx, tx: 0 },
            total: Bytes { rx, tx: 0 },
        };
        let rows = vec![
            row("/system.slice/very-long-service-name.service", 3000, 2),
            row("/", 1000, 1),
        ];
        finish(
            1,
            GroupBy::Cgroup,
            rows,
            SortBy::Total,
            None,
            Bytes::default(),
        )
    }

    fn render(opts: OutputOptions, report: &Report, st: &Stamp) -> String {
        let mut out = Vec::new();
        printer_with(&opts, &mut out).grouped(report, st).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn table(by: GroupBy) -> OutputOptions {
        OutputOptions {
            by,
            ..OutputOptions::default()
        }
    }

    fn words(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .map(|l| l.split_whitespace().collect())
            .collect()
    }

    #[test]
    fn conn_table_has_the_issue_layout_and_a_note_when_rows_are_cut() {
        let text = render(table(GroupBy::Conn), &conn_report(Some(1)), &stamp(1));
        let lines = words(&text);
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
        assert_eq!(
            text.lines().nth(2),
            Some("(1 more rows not shown; all 2 rows: RX 2.0 KB, TX 0.0 KB)"),
            "{text}"
        );
    }

    #[test]
    fn grouped_table_takes_units_rate_timestamp_nspid_and_summary() {
        let opts = OutputOptions {
            units: Units::Bytes,
            rate: true,
            timestamp: true,
            summary: true,
            nspid: true,
            ..table(GroupBy::Conn)
        };
        let text = render(opts, &conn_report(None), &stamp(2));
        let lines = words(&text);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with("interval 1: 2 connections, RX 1024 B/s, TX 2 B/s"),
            "{text}"
        );
        assert_eq!(lines[1][..4], ["TIME", "PID", "NSPID", "COMM"]);
        assert_eq!(lines[1][7..9], ["RX_BYTES/s", "TX_BYTES/s"]);
        assert_eq!(lines[2][1..4], ["42", "7", "srv"]);
        assert_eq!(lines[2][7..], ["1024", "1", "2048", "2", "2050"]);
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn cgroup_table_keeps_the_end_of_long_paths_in_a_narrow_terminal() {
        let wide = render(table(GroupBy::Cgroup), &cgroup_report(), &stamp(1));
        assert!(
            wide.lines()
                .nth(1)
                .unwrap()
                .ends_with("     2.9 /system.slice/very-long-service-name.service"),
            "{wide}"
        );
        let opts = OutputOptions {
            width: Some(60),
            header: false,
            ..table(GroupBy::Cgroup)
        };
        let narrow = render(opts, &cgroup_report(), &stamp(1));
        for line in narrow.lines() {
            assert!(width_of(line) <= 60, "{line:?}");
        }
        let first = narrow.lines().next().unwrap();
        let path = first.split_whitespace().last().unwrap();
        assert!(
            path.starts_with('…') && path.ends_with("-name.service"),
            "{narrow}"
        );
        assert!(first.starts_with("       2.9 "), "RX kept: {narrow}");
    }

    #[test]
    fn comm_table_counts_processes() {
        let mut r = cgroup_report();
        r.by = GroupBy::Comm;
        for (row, name) in r.rows.iter_mut().zip(["nginx", "curl"]) {
            (row.cgroup, row.comm) = (None, Some(name.into()));
        }
        let text = render(table(GroupBy::Comm), &r, &stamp(1));
        let lines = words(&text);
        assert_eq!(lines[0][..3], ["PROCS", "COMM", "RX_KB"]);
        assert_eq!(lines[1][..3], ["2", "nginx", "2.9"]);
    }

    #[test]
    fn conn_json_carries_the_grouping_fields() {
        let mut r = conn_report(Some(1));
        r.all_rows = 1;
        let opts = OutputOptions {
            format: Format::Json,
            ..table(GroupBy::Conn)
        };
        let text = render(opts, &r, &stamp(1));
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
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
        assert!(v.get("cgroup").is_none() && v.get("nspid").is_none());
        assert!(text.starts_with("{\"time\":"), "{text}");
        assert!(
            text.contains("\"total_bytes\":2050,\"by\":\"conn\",\"proto\":\"tcp\",\"family\""),
            "keys in the documented order: {text}"
        );
    }

    #[test]
    fn unknown_remote_is_star_in_the_table_null_in_json_and_empty_in_csv() {
        let mut r = conn_report(None);
        r.rows = vec![r.rows.pop().unwrap()];
        r.all_rows = 1;
        let text = render(table(GroupBy::Conn), &r, &stamp(1));
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("udp   127.0.0.1:53"), "{text}");
        assert_eq!(row.split_whitespace().nth(4), Some("*"));
        let json = OutputOptions {
            format: Format::Json,
            nspid: true,
            ..table(GroupBy::Conn)
        };
        let v: serde_json::Value =
            serde_json::from_str(render(json, &r, &stamp(1)).trim()).unwrap();
        assert!(v["raddr"].is_null() && v["rport"].is_null(), "{v}");
        assert_eq!(v["nspid"], 7);
        let csv = OutputOptions {
            format: Format::Csv,
            ..table(GroupBy::Conn)
        };
        let text = render(csv, &r, &stamp(1));
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        let rec = rdr.records().next().unwrap().unwrap();
        let field = |k: &str| &rec[header.iter().position(|h| h == k).unwrap()];
        assert_eq!((field("proto"), field("laddr")), ("udp", "127.0.0.1"));
        assert_eq!((field("raddr"), field("rport")), ("", ""));
        assert!(!header.iter().any(|h| h == "by"), "{header:?}");
    }

    #[test]
    fn cgroup_csv_has_empty_pid_and_comm_and_the_group_fields() {
        let opts = OutputOptions {
            format: Format::Csv,
            summary: true,
            ..table(GroupBy::Cgroup)
        };
        let text = render(opts, &cgroup_report(), &stamp(1));
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header[9..12], ["cgroup", "processes", "rows"]);
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!((&rec[2], &rec[3], &rec[4]), ("", "", "3000"));
        assert_eq!(
            (&rec[9], &rec[10], &rec[11]),
            ("/system.slice/very-long-service-name.service", "2", "2")
        );
    }

    fn container_report(k8s: bool) -> Report {
        use crate::container::{path::Runtime, Identity};
        let id = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";
        let row = |ident: Identity, rx| Row {
            pid: None,
            nspid: None,
            comm: None,
            processes: 1,
            conn: None,
            cgroup: ident.cgroup.clone(),
            container: Some(std::sync::Arc::new(ident)),
            interval: Bytes { rx, tx: 0 },
            total: Bytes { rx, tx: 0 },
        };
        let web = Identity {
            name: Some("web".into()),
            id: Some(id.into()),
            runtime: Some(Runtime::Podman),
            pod: None,
            namespace: None,
            cgroup: Some(format!("/libpod_parent/libpod-{id}")),
        };
        let unnamed = Identity {
            name: None,
            id: Some(id.replace('9', "8")),
            runtime: Some(Runtime::Docker),
            ..web.clone()
        };
        let mut rows = vec![row(web, 3000), row(unnamed, 2000)];
        if k8s {
            let nginx = Identity {
                name: Some("nginx".into()),
                id: Some("a".repeat(64)),
                runtime: Some(Runtime::Containerd),
                pod: Some("web-7d9f".into()),
                namespace: Some("shop".into()),
                cgroup: Some("/kubepods/podx/aaa".into()),
            };
            rows.push(row(nginx, 1000));
        }
        finish(
            1,
            GroupBy::Container,
            rows,
            SortBy::Total,
            None,
            Bytes::default(),
        )
    }

    #[test]
    fn container_table_names_rows_and_adds_pod_columns_for_kubernetes() {
        let text = render(
            table(GroupBy::Container),
            &container_report(false),
            &stamp(1),
        );
        let lines = words(&text);
        assert_eq!(lines[0][..3], ["CONTAINER", "RUNTIME", "RX_KB"]);
        assert_eq!(lines[1][..3], ["web", "podman", "2.9"]);
        // No name in the runtime's files: the id's first 12 digits.
        assert_eq!(lines[2][..2], ["816adfd5c3b1", "docker"]);
        let text = render(
            table(GroupBy::Container),
            &container_report(true),
            &stamp(1),
        );
        let lines = words(&text);
        assert_eq!(
            lines[0][..5],
            ["CONTAINER", "RUNTIME", "POD", "NAMESPACE", "RX_KB"]
        );
        assert_eq!(lines[3][..4], ["nginx", "containerd", "web-7d9f", "shop"]);
        assert_eq!(lines[1][..4], ["web", "podman", "-", "-"]);
    }

    #[test]
    fn container_json_and_csv_carry_every_identity_key() {
        let json = OutputOptions {
            format: Format::Json,
            ..table(GroupBy::Container)
        };
        let text = render(json, &container_report(true), &stamp(1));
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["by"], "container");
        assert_eq!(
            (rows[0]["container"].as_str(), rows[0]["runtime"].as_str()),
            (Some("web"), Some("podman"))
        );
        assert!(rows[0]["pod"].is_null() && rows[0]["namespace"].is_null());
        assert!(rows[1]["container"].is_null());
        assert_eq!(rows[1]["container_id"].as_str().unwrap().len(), 64);
        assert_eq!(
            (rows[2]["pod"].as_str(), rows[2]["namespace"].as_str()),
            (Some("web-7d9f"), Some("shop"))
        );
        assert_eq!(rows[2]["cgroup"], "/kubepods/podx/aaa");
        let csv = OutputOptions {
            format: Format::Csv,
            ..table(GroupBy::Container)
        };
        let text = render(csv, &container_report(false), &stamp(1));
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with("container,container_id,runtime,pod,namespace,cgroup,processes"),
            "{header}"
        );
    }

    #[test]
    fn show_container_appends_the_keys_to_process_rows() {
        let opts = OutputOptions {
            format: Format::Csv,
            container: true,
            ..table(GroupBy::Conn)
        };
        let text = render(opts, &conn_report(None), &stamp(1));
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with("rport,container,container_id,runtime,pod,namespace,cgroup"),
            "{header}"
        );
        let t = OutputOptions {
            container: true,
            ..table(GroupBy::Pid)
        };
        assert_eq!(
            table_columns(&t)[..3],
            [Column::Pid, Column::Comm, Column::ContainerLabel]
        );
    }
}
