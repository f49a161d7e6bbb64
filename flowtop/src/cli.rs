//! Command line: clap types and validation only. Decisions are made in `main`/`run`.
use clap::Parser;
use flowtop_common::DEFAULT_MAX_ENTRIES;

use crate::{output::Format, probe::select::ProbeRequest};

const EXAMPLES: &str = "\
Examples:
  flowtop               # every process, a report every second until Ctrl-C
  flowtop 5 3           # three reports, five seconds apart
  flowtop -p 1234       # only PID 1234 (filtered in the kernel)
  flowtop --format json | jq 'select(.tx_bytes > 1000000)'
  flowtop --probe tracepoint -v   # force a probe family, log what was attached";

/// Per-process network traffic (TCP and UDP, IPv4 and IPv6), counted exactly in the
/// kernel with eBPF.
#[derive(Debug, Parser)]
#[command(name = "flowtop", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Seconds between reports
    #[arg(value_name = "INTERVAL", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,

    /// Number of reports, then exit [default: until interrupted]
    #[arg(value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Only count this process (thread-group id); the filter runs in the kernel
    #[arg(short, long, value_name = "PID",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Kernel hooks to count with: auto picks the best this kernel supports
    #[arg(long, value_enum, default_value_t = ProbeRequest::Auto)]
    pub probe: ProbeRequest,

    /// Capacity of the per-process map (processes that moved bytes and are alive)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = clap::value_parser!(u32).range(1..=(1 << 24)))]
    pub max_entries: u32,

    /// Log what was loaded and attached and why other probes were skipped (-vv: more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
        assert_eq!((c.interval, c.count, c.pid), (1, None, None));
        assert_eq!(c.format, Format::Table);
        assert_eq!(c.probe, ProbeRequest::Auto);
    }

    #[test]
    fn positional_interval_and_count_with_pid() {
        let c = parse(&["-p", "1234", "1", "10"]).unwrap();
        assert_eq!((c.interval, c.count, c.pid), (1, Some(10), Some(1234)));
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
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn help_ends_with_examples() {
        let help = Cli::command_help();
        assert!(help.trim_end().ends_with("log what was attached"), "{help}");
    }

    impl Cli {
        fn command_help() -> String {
            use clap::CommandFactory;
            Cli::command().render_long_help().to_string()
        }
    }
}
