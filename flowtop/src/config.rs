//! What flowtop was asked to do, as plain values: the command line resolved once at
//! the edge (`cli::Cli::into_config`), the way ripgrep turns its low-level arguments
//! into high-level ones. Everything below `main`/`run` takes these types and never
//! sees clap's, so loading, filtering, collecting and printing can be driven (and
//! tested) without a command line.
//!
//! Each part is owned by the module that acts on it ([`FilterRequest`] by the kernel
//! filters, [`OutputRequest`] by the printers, [`ProbeRequest`] by probe selection);
//! this module only puts them together.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use crate::{
    collect::aggregate::{GroupBy, SortBy},
    filter::FilterRequest,
    output::OutputRequest,
    probe::select::ProbeRequest,
};

/// The whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--probe`.
    pub probe: ProbeRequest,
    /// `--max-entries`: capacity of the per-process map.
    pub max_entries: u32,
    /// What the kernel programs count.
    pub filters: FilterRequest,
    /// `--host-root`: where the host's files that name containers are.
    pub host_root: PathBuf,
    /// Print reports, or serve metrics.
    pub mode: Mode,
}

/// What flowtop does once it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Reports on stdout every interval (the default).
    Report(ReportConfig),
    /// A Prometheus exporter (`--serve`).
    Serve(ServeConfig),
}

/// Report mode: which rows, how often, printed how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    /// Time between reports.
    pub interval: Duration,
    /// Reports before exiting; None: until interrupted.
    pub count: Option<u64>,
    /// Collection: what a row is, their order, how many are shown.
    pub rows: RowsConfig,
    pub output: OutputRequest,
}

/// What the collector makes rows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsConfig {
    /// `--by`.
    pub by: GroupBy,
    /// `-s`.
    pub sort: SortBy,
    /// `-r`: only the N busiest rows.
    pub limit: Option<u64>,
    /// `--show-nspid`: look up each process's PID in its own namespace.
    pub nspid: bool,
    /// `--show-container`: name each process's (or connection's) container.
    pub container: bool,
}

/// `--serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// `--metrics-pid-label`.
    pub pid_label: bool,
    /// `--metrics-cgroup-label`.
    pub cgroup_label: bool,
    /// `--series-ttl`: a series idle this long is dropped.
    pub series_ttl: Duration,
}

impl Config {
    /// What the kernel groups flows by: the exporter labels its counters by
    /// process and cgroup, whatever `--by` says.
    pub fn group_by(&self) -> GroupBy {
        match &self.mode {
            Mode::Report(r) => r.rows.by,
            Mode::Serve(_) => GroupBy::Cgroup,
        }
    }

    /// `--show-container`: rows of processes carry their container, so the kernel
    /// keys flows by cgroup too.
    pub fn show_container(&self) -> bool {
        match &self.mode {
            Mode::Report(r) => r.rows.container,
            Mode::Serve(_) => false,
        }
    }
}
