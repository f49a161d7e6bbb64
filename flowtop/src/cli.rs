//! Command line: clap types, validation, and the one conversion into a plain
//! [`Config`] ([`Cli::into_config`]). Nothing below `main` sees this module.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{error::ErrorKind, CommandFactory as _, Parser};
use flowtop_common::{
    net::{AF_INET, AF_INET6},
    proto_filter, DEFAULT_MAX_ENTRIES,
};

use crate::{
    collect::aggregate::{GroupBy, SortBy},
    config::{
        Config, FilterRequest, InteractiveConfig, Mode, ReportConfig, RowsConfig, ServeConfig,
    },
    container::{filter::Wanted, ContainerArg, PodArg},
    output::{Format, OutputRequest, Units},
    probe::select::ProbeRequest,
};

const EXAMPLES: &str = "\
Examples:
  flowtop               # every process, a report every second until Ctrl-C
  flowtop 5 3           # three reports, five seconds apart
  flowtop -p 1234       # only PID 1234 (filtered in the kernel)
  flowtop -C --units human     # redraw the screen each second, like top
  flowtop -i                   # interactive: sort, group, filter, look into a process
  flowtop -T --rate 5          # per-second rates over 5 s, with a TIME column
  flowtop --format csv 10 6 > talkers.csv   # a minute of data for a spreadsheet
  flowtop --by conn --tcp --port 443   # per connection, only TCP to/from port 443
  flowtop --by cgroup -r 5             # the five busiest cgroups (containers, services)
  flowtop --by container               # per container, pod or service, by name
  flowtop --container web --by conn    # only the container named web
  flowtop --by comm -c nginx           # all nginx processes as one row
  flowtop --by conn --show-nspid       # with each process's PID in its container
  flowtop --format json | jq 'select(.tx_bytes > 1000000)'
  flowtop --serve 9464   # Prometheus exporter on http://127.0.0.1:9464/metrics
  flowtop --probe tracepoint -v   # force a probe family, log what was attached";

/// Line-output options that mean nothing to the screen of `-i`.
const INTERACTIVE_CONFLICTS: [&str; 7] = [
    "serve",
    "format",
    "timestamp",
    "no_header",
    "summary",
    "no_summary",
    "clear",
];

/// Report-printing options that mean nothing to `--serve`.
const SERVE_CONFLICTS: [&str; 15] = [
    "interval",
    "count",
    "by",
    "rows",
    "sort",
    "format",
    "units",
    "rate",
    "timestamp",
    "no_header",
    "summary",
    "no_summary",
    "clear",
    "show_nspid",
    "show_container",
];

use crate::VERSION;

/// Per-process network traffic (TCP and UDP, IPv4 and IPv6), counted exactly in the
/// kernel with eBPF.
#[derive(Debug, Parser)]
#[command(name = "flowtop", version = VERSION, about, after_help = EXAMPLES)]
#[command(group(clap::ArgGroup::new("container_or_pod").args(["container", "pod"]).multiple(true)))]
pub struct Cli {
    /// Seconds between reports
    #[arg(value_name = "INTERVAL", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,

    /// Number of reports, then exit [default: until interrupted]
    #[arg(value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Only count these processes (thread-group ids, comma-separated); in the kernel
    #[arg(short, long, value_name = "PID[,PID...]", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Vec<u32>,

    /// Only count processes with this name (first 15 bytes, as the kernel keeps it)
    #[arg(short, long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Only count tasks in this cgroup (v2) or below it: a path in the cgroup2
    /// mount or as /proc/PID/cgroup shows it (/system.slice/nginx.service)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["container", "pod"])]
    pub cgroup: Option<String>,

    /// Only count the container with this name, or whose id starts with these hex
    /// digits (12 or more); in the kernel. Replicas with one name are all counted
    #[arg(long, value_name = "NAME|ID", value_parser = ContainerArg::parse)]
    pub container: Option<ContainerArg>,

    /// Only count this Kubernetes pod's containers (named in the kubelet's logs under
    /// --host-root); in the kernel
    #[arg(long, value_name = "[NAMESPACE/]NAME", value_parser = PodArg::parse)]
    pub pod: Option<PodArg>,

    /// With --container/--pod: when nothing matches yet, count it from when it
    /// appears instead of failing
    #[arg(long, requires = "container_or_pod")]
    pub wait: bool,

    /// Where the host's files that name containers are (docker's, podman's, the
    /// kubelet's logs): `/host` when flowtop runs in a container with the host's /
    /// mounted there
    #[arg(
        long,
        value_name = "DIR",
        env = "FLOWTOP_HOST_ROOT",
        default_value = "/"
    )]
    pub host_root: PathBuf,

    /// Only IPv4 (including IPv4-mapped addresses on IPv6 sockets)
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Only IPv6
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Only TCP (and MPTCP)
    #[arg(long, conflicts_with = "udp")]
    pub tcp: bool,

    /// Only UDP (and UDP-Lite)
    #[arg(long)]
    pub udp: bool,

    /// Only sockets with this local or remote port
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// What one row is: a process, a connection, a process name, a cgroup
    #[arg(long, value_enum, default_value_t = GroupBy::Pid)]
    pub by: GroupBy,

    /// Show only the N busiest rows per interval
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub rows: Option<u64>,

    /// Order of the rows shown
    #[arg(short, long, value_enum, default_value_t = SortBy::Total)]
    pub sort: SortBy,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Sizes in the table: kb (1024 bytes, one decimal), bytes (exact) or human
    /// (B/KiB/MiB/GiB per value); column names follow [default: kb]. csv and json
    /// always carry exact bytes
    #[arg(long, value_enum, value_name = "UNIT")]
    pub units: Option<Units>,

    /// Per-second rates instead of per-interval amounts (table: RX and TX columns;
    /// csv/json: adds seconds, rx_bytes_per_sec, tx_bytes_per_sec)
    #[arg(long)]
    pub rate: bool,

    /// Table: add a TIME column (local time); csv and json always have `time`
    #[arg(short = 'T', long)]
    pub timestamp: bool,

    /// Don't print the header line (table, csv)
    #[arg(long)]
    pub no_header: bool,

    /// Summarise each interval (all processes' bytes, how many, bytes not recorded):
    /// on by default in the table; json adds a summary object, csv summary columns
    #[arg(long, overrides_with = "no_summary")]
    pub summary: bool,

    /// No summary line per interval
    #[arg(short = 'S', long, overrides_with = "summary")]
    pub no_summary: bool,

    /// Add the PID each process has inside its innermost PID namespace (as seen in
    /// its container): an NSPID column after PID, csv/json key nspid; read once per
    /// process from /proc/PID/status, - (json: null) when unknown. --by pid and conn
    #[arg(long)]
    pub show_nspid: bool,

    /// Add the container, pod or systemd service of each process (a CONTAINER
    /// column; csv/json keys container, container_id, runtime, pod, namespace,
    /// cgroup). --by pid and conn
    #[arg(long)]
    pub show_container: bool,

    /// Redraw the screen each interval, like top (table on a terminal only)
    #[arg(short = 'C', long)]
    pub clear: bool,

    /// Full-screen interactive view (keys: sort, group, filter, pause, look into a
    /// process; `?` lists them); needs a terminal on stdin and stdout
    #[arg(short, long, conflicts_with_all = INTERACTIVE_CONFLICTS)]
    pub interactive: bool,

    /// Kernel hooks to count with: auto picks the best this kernel supports
    #[arg(long, value_enum, default_value_t = ProbeRequest::Auto)]
    pub probe: ProbeRequest,

    /// Capacity of the per-process map (processes that moved bytes and are alive)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = clap::value_parser!(u32).range(1..=(1 << 24)))]
    pub max_entries: u32,

    /// Run as a Prometheus exporter instead of printing reports: serve /metrics
    /// (byte counters by process name and cgroup) on PORT of 127.0.0.1, or on
    /// ADDR:PORT. The page shows process names and cgroup paths
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = crate::serve::parse_addr,
          conflicts_with_all = SERVE_CONFLICTS)]
    pub serve: Option<SocketAddr>,

    /// Allow --serve on an address other than loopback: anyone who can reach it
    /// sees this machine's process names and cgroup paths
    #[arg(long, requires = "serve")]
    pub serve_public: bool,

    /// --serve: label the counters with the PID too (a new series per process: only
    /// where processes are few and long-lived)
    #[arg(long, requires = "serve")]
    pub metrics_pid_label: bool,

    /// --serve: label the counters with the cgroup path too (paths with container
    /// ids: a new series per container)
    #[arg(long, requires = "serve")]
    pub metrics_cgroup_label: bool,

    /// --serve: drop a series that moved no bytes for this long (10m, 1h, 30s), so
    /// memory stays flat where pods come and go
    #[arg(long, value_name = "DURATION", default_value = "10m",
          value_parser = parse_ttl)]
    pub series_ttl: Duration,

    /// Log what was loaded and attached and why other probes were skipped (-vv: more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The cgroups `--container`/`--pod` matched in [`Self::validate`].
    #[arg(skip)]
    matched_cgroups: Vec<std::path::PathBuf>,
}

/// `--series-ttl`: a humantime duration of at least one second.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 10m, 1h, 30s)"))?;
    if d < Duration::from_secs(1) {
        return Err("at least 1s".into());
    }
    Ok(d)
}

impl Cli {
    /// The request as plain values (call [`Self::validate`] first).
    pub fn into_config(self) -> Config {
        let filters = FilterRequest {
            pids: self.pid,
            comm: self.comm,
            cgroup: self.cgroup,
            containers: Wanted::new(self.container, self.pod)
                .map(|wanted| (wanted, self.matched_cgroups)),
            family: match (self.ipv4, self.ipv6) {
                (true, _) => AF_INET,
                (_, true) => AF_INET6,
                _ => 0,
            },
            proto: match (self.tcp, self.udp) {
                (true, _) => proto_filter::TCP,
                (_, true) => proto_filter::UDP,
                _ => proto_filter::ANY,
            },
            port: self.port,
        };
        let rows = RowsConfig {
            by: self.by,
            sort: self.sort,
            limit: self.rows,
            nspid: self.show_nspid,
            container: self.show_container,
        };
        let mode = match self.serve {
            Some(addr) => Mode::Serve(ServeConfig {
                addr,
                pid_label: self.metrics_pid_label,
                cgroup_label: self.metrics_cgroup_label,
                series_ttl: self.series_ttl,
            }),
            None if self.interactive => Mode::Interactive(InteractiveConfig {
                interval: Duration::from_secs(self.interval),
                count: self.count,
                rows,
                units: self.units.unwrap_or_default(),
                rate: self.rate,
            }),
            None => Mode::Report(ReportConfig {
                interval: Duration::from_secs(self.interval),
                count: self.count,
                rows,
                output: OutputRequest {
                    format: self.format,
                    units: self.units,
                    rate: self.rate,
                    timestamp: self.timestamp,
                    header: !self.no_header,
                    // The two flags override each other: at most one is set.
                    summary: match (self.summary, self.no_summary) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                    clear: self.clear,
                },
            }),
        };
        Config {
            probe: self.probe,
            max_entries: self.max_entries,
            filters,
            host_root: self.host_root,
            mode,
        }
    }

    /// Checks that involve several arguments; clap's error (exit 2) on failure.
    pub fn validate(&mut self) -> Result<(), clap::Error> {
        if self.units.is_some() && self.format != Format::Table {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--units applies to --format table; csv and json always carry exact \
                 bytes (keys ending in _bytes)",
            ));
        }
        // -i's `g` reaches the rows of processes whatever --by it starts with.
        let processes = self.interactive || matches!(self.by, GroupBy::Pid | GroupBy::Conn);
        if self.show_nspid && !processes {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--show-nspid needs rows that are processes: --by pid or --by conn",
            ));
        }
        if self.show_container && !processes {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--show-container needs rows that are processes: --by pid or --by conn \
                 (--by container groups by container)",
            ));
        }
        if !self.host_root.is_dir() {
            return Err(Cli::command().error(
                ErrorKind::InvalidValue,
                format!(
                    "--host-root {}: no such directory",
                    self.host_root.display()
                ),
            ));
        }
        if let Some(wanted) = Wanted::new(self.container.clone(), self.pod.clone()) {
            // Here, so that nothing matching is a command-line error (exit 2); the
            // matches go on to the kernel filter, not looked up a second time.
            match crate::container::filter::initial(&wanted, &self.host_root, self.wait) {
                Ok(dirs) => self.matched_cgroups = dirs,
                Err(e) => return Err(Cli::command().error(ErrorKind::InvalidValue, e)),
            }
        }
        if let Some(addr) = self.serve {
            if !addr.ip().is_loopback() && !self.serve_public {
                return Err(Cli::command().error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--serve {addr} is not a loopback address: the metrics show this \
                         machine's process names and cgroup paths to anyone who can \
                         connect; add --serve-public to serve them there anyway"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flowtop").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_tcptop() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.interval, c.count, c.pid), (1, None, vec![]));
        assert_eq!((c.by, c.sort, c.rows), (GroupBy::Pid, SortBy::Total, None));
        assert_eq!(c.format, Format::Table);
        assert_eq!(c.probe, ProbeRequest::Auto);
    }

    #[test]
    fn positional_interval_and_count_with_pid() {
        let c = parse(&["-p", "1234", "1", "10"]).unwrap();
        assert_eq!((c.interval, c.count, c.pid), (1, Some(10), vec![1234]));
    }

    #[test]
    fn grouping_filters_and_limits() {
        let c = parse(&[
            "--by",
            "conn",
            "-p",
            "1,2",
            "-c",
            "nginx",
            "-6",
            "--udp",
            "--port",
            "53",
            "-r",
            "3",
            "-s",
            "rx",
            "--cgroup",
            "/system.slice",
        ])
        .unwrap();
        assert_eq!((c.by, c.sort, c.rows), (GroupBy::Conn, SortBy::Rx, Some(3)));
        assert_eq!(c.pid, [1, 2]);
        assert_eq!(c.comm.as_deref(), Some("nginx"));
        assert!(c.ipv6 && !c.ipv4 && c.udp && !c.tcp);
        assert_eq!(
            (c.port, c.cgroup.as_deref()),
            (Some(53), Some("/system.slice"))
        );
    }

    #[test]
    fn rejects_zero_negative_and_garbage() {
        for bad in [
            &["0"][..],
            &["1", "0"],
            &["-1"],
            &["x"],
            &["-p", "0"],
            &["-p", "abc"],
            &["--format", "xml"],
            &["--probe", "uprobe"],
            &["1", "2", "3"],
            &["--max-entries", "0"],
            &["-4", "-6"],
            &["--tcp", "--udp"],
            &["--port", "0"],
            &["--port", "65536"],
            &["-r", "0"],
            &["-s", "size"],
            &["--by", "host"],
            &["-p", "1,x"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn help_ends_with_examples() {
        let help = Cli::command_help();
        assert!(help.trim_end().ends_with("log what was attached"), "{help}");
        for flag in ["--units", "--rate", "--timestamp", "--no-header", "--clear"] {
            let at = help.find(flag).unwrap_or_else(|| panic!("{flag} missing"));
            assert!(
                at < help.find("Examples:").unwrap(),
                "{flag} after examples"
            );
        }
    }

    #[test]
    fn output_flags_parse() {
        let c = parse(&[
            "-T",
            "-C",
            "-S",
            "--rate",
            "--no-header",
            "--units",
            "bytes",
        ])
        .unwrap();
        assert!(c.timestamp && c.clear && c.no_summary && c.rate && c.no_header);
        assert_eq!(c.units, Some(Units::Bytes));
        assert_eq!(parse(&["--format", "csv"]).unwrap().format, Format::Csv);
        assert_eq!(parse(&["--units", "furlongs"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn units_only_with_the_table() {
        assert!(parse(&["--units", "human"]).unwrap().validate().is_ok());
        assert!(parse(&["--format", "csv"]).unwrap().validate().is_ok());
        for by in ["conn", "comm", "cgroup"] {
            let mut c = parse(&["--format", "csv", "--by", by]).unwrap();
            assert!(c.validate().is_ok(), "csv --by {by}");
        }
        let err = parse(&["--format", "json", "--units", "kb"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("exact bytes"), "{err}");
    }

    #[test]
    fn show_nspid_only_where_rows_have_a_pid() {
        for ok in [&["--show-nspid"][..], &["--show-nspid", "--by", "conn"]] {
            let mut c = parse(ok).unwrap();
            assert!(c.show_nspid && c.validate().is_ok(), "{ok:?}");
        }
        assert!(!parse(&[]).unwrap().show_nspid);
        for by in ["comm", "cgroup"] {
            let err = parse(&["--show-nspid", "--by", by])
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("--by pid or --by conn"), "{err}");
        }
        let err = parse(&["--serve", "9464", "--show-nspid"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn serve_is_loopback_unless_public_and_excludes_report_options() {
        let mut c = parse(&["--serve", "9464"]).unwrap();
        assert_eq!(c.serve, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(c.validate().is_ok());
        assert!(parse(&[
            "--serve",
            "[::1]:1",
            "-c",
            "x",
            "-p",
            "1",
            "--metrics-pid-label"
        ])
        .unwrap()
        .validate()
        .is_ok());
        let err = parse(&["--serve", "0.0.0.0:9464"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--serve-public"), "{err}");
        let mut c = parse(&["--serve", "0.0.0.0:9464", "--serve-public"]).unwrap();
        assert!(c.validate().is_ok());
        for bad in [
            &["--serve", "9464", "5"][..],
            &["--serve", "9464", "--format", "json"],
            &["--serve", "9464", "--by", "cgroup"],
            &["--serve", "9464", "-r", "3"],
            &["--serve-public"],
            &["--metrics-pid-label"],
            &["--serve", "nowhere"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    fn report(args: &[&str]) -> ReportConfig {
        match parse(args).unwrap().into_config().mode {
            Mode::Report(r) => r,
            other => panic!("{args:?} is report mode, not {other:?}"),
        }
    }

    #[test]
    fn filters_become_kernel_values() {
        let f = parse(&["-6", "--udp", "--port", "53", "-p", "7,8"])
            .unwrap()
            .into_config()
            .filters;
        assert_eq!(
            (f.family, f.proto, f.port, f.pids),
            (AF_INET6, proto_filter::UDP, Some(53), vec![7, 8])
        );
        let f = parse(&["-4", "--tcp"]).unwrap().into_config().filters;
        assert_eq!((f.family, f.proto), (AF_INET, proto_filter::TCP));
        let f = parse(&[]).unwrap().into_config().filters;
        assert_eq!((f.family, f.proto, f.port), (0, proto_filter::ANY, None));
    }

    #[test]
    fn summary_default_and_last_flag_wins() {
        assert_eq!(report(&[]).output.summary, None);
        assert_eq!(report(&["-S"]).output.summary, Some(false));
        assert_eq!(report(&["--summary"]).output.summary, Some(true));
        assert_eq!(
            report(&["--summary", "--no-summary"]).output.summary,
            Some(false)
        );
        assert_eq!(
            report(&["--no-summary", "--summary"]).output.summary,
            Some(true)
        );
    }

    #[test]
    fn report_flags_land_in_the_config() {
        let r = report(&["--units", "human", "--rate", "-T", "--no-header", "5", "3"]);
        assert_eq!(r.output.units, Some(Units::Human));
        assert!(r.output.rate && r.output.timestamp && !r.output.header);
        assert_eq!((r.interval, r.count), (Duration::from_secs(5), Some(3)));
        let r = report(&["--by", "conn", "--show-nspid", "-r", "4", "-s", "tx"]);
        assert_eq!(
            r.rows,
            RowsConfig {
                by: GroupBy::Conn,
                sort: SortBy::Tx,
                limit: Some(4),
                nspid: true,
                container: false,
            }
        );
    }

    #[test]
    fn serve_is_its_own_mode_and_groups_by_cgroup_in_the_kernel() {
        let c = parse(&[
            "--serve",
            "9464",
            "--metrics-pid-label",
            "--series-ttl",
            "1h",
        ])
        .unwrap()
        .into_config();
        assert_eq!(c.group_by(), GroupBy::Cgroup);
        assert_eq!(
            c.mode,
            Mode::Serve(ServeConfig {
                addr: "127.0.0.1:9464".parse().unwrap(),
                pid_label: true,
                cgroup_label: false,
                series_ttl: Duration::from_secs(3600),
            })
        );
    }

    #[test]
    fn interactive_is_its_own_mode_and_refuses_line_output_flags() {
        let c = parse(&["-i", "--by", "comm", "--units", "bytes", "--rate", "2", "5"])
            .unwrap()
            .into_config();
        let Mode::Interactive(i) = &c.mode else {
            panic!("{:?}", c.mode)
        };
        assert_eq!((i.interval, i.count), (Duration::from_secs(2), Some(5)));
        assert_eq!(
            (i.rows.by, i.units, i.rate),
            (GroupBy::Comm, Units::Bytes, true)
        );
        assert_eq!(c.group_by(), GroupBy::Comm);
        assert_eq!(c.switchable_groupings(), GroupBy::all());
        let kb = parse(&["-i"]).unwrap().into_config();
        assert!(matches!(
            kb.mode,
            Mode::Interactive(InteractiveConfig {
                units: Units::Kb,
                ..
            })
        ));
        for bad in [
            &["-i", "--serve", "9464"][..],
            &["-i", "--format", "json"],
            &["-i", "-C"],
            &["-i", "-T"],
            &["-i", "--no-header"],
            &["-i", "-S"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert!(report(&[]).rows.by == GroupBy::Pid);
        assert!(parse(&[])
            .unwrap()
            .into_config()
            .switchable_groupings()
            .is_empty());
    }

    #[test]
    fn version_names_the_crate_version() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
    }

    impl Cli {
        fn command_help() -> String {
            use clap::CommandFactory;
            Cli::command().render_long_help().to_string()
        }
    }
}
