//! Turning the kernel's cumulative counters into per-interval rows.
//!
//! `read` takes a snapshot of the maps (cumulative bytes since each key was created)
//! and reclaims keys of processes that are gone, taking their final value in the same
//! step; `diff` (pure) turns successive snapshots into interval and total rows.
pub mod aggregate;
pub mod collector;
pub mod comm;
pub mod diff;
pub mod exporter;
pub mod flows;
pub mod read;
pub mod sys_bpf;

pub use comm::Comm;

/// Bytes received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub rx: u64,
    pub tx: u64,
}

impl Bytes {
    pub fn total(&self) -> u64 {
        self.rx + self.tx
    }
}

/// One process's cumulative counters as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSample {
    pub pid: u32,
    pub comm: Comm,
    pub bytes: Bytes,
    /// The process is gone and its key was deleted with this final value.
    pub reclaimed: bool,
}

/// Everything one read of the maps returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub procs: Vec<ProcSample>,
    /// Cumulative bytes the programs could not store (map full).
    pub unrecorded: Bytes,
}
