//! flowtop: which processes move how many bytes over the network, counted in the
//! kernel with eBPF.
//!
//! Exit status: 0 success (also when the reader of stdout went away, or on
//! SIGINT/SIGTERM), 1 flowtop could not run here (privileges, kernel, probes) or failed
//! while running, 2 bad command line.
use std::{io, process::ExitCode};

use clap::Parser as _;
use flowtop::{cli, run};

fn main() -> ExitCode {
    let mut cli = cli::Cli::parse(); // exits 2 with clap's message on bad arguments
    if let Err(e) = cli.validate() {
        e.exit();
    }
    let verbose = cli.verbose;
    let config = cli.into_config();
    if let Some(missing) = run::terminal_missing(&config) {
        eprintln!("flowtop: {missing}");
        return ExitCode::from(2);
    }
    init_logging(verbose);
    match run::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowtop: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `-v` turns on info (what was attached, what was skipped), `-vv` flowtop's debug
/// messages, `-vvv` also aya's; RUST_LOG overrides all. Logs go to stderr: stdout
/// carries only data.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "info,flowtop=debug",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(|buf, record| {
            use std::io::Write as _;
            writeln!(
                buf,
                "flowtop: {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            )
        })
        .init();
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
