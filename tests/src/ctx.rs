//! The binaries, probe family and sizes one run of the scenarios uses.
use std::{env, path::PathBuf, time::Duration};

use crate::{find_flowtop, find_trafficgen, require_root};

/// Binaries, probe family and sizes for one run of the scenarios.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub flowtop: PathBuf,
    pub trafficgen: PathBuf,
    /// `--probe` value: auto, tracepoint, fentry, kprobe.
    pub probe: String,
    /// Base payload per scenario (each adds an odd number so sizes are not round).
    pub bytes: u64,
    /// Limit for flowtop to become ready, for a generator to finish, for flowtop to
    /// exit after SIGINT.
    pub timeout: Duration,
    /// Steady scenario: seconds of traffic and bytes per second.
    pub steady_secs: f64,
    pub steady_rate: u64,
    /// Program kind flowtop must load (`FLOWTOP_PROGRAM_KIND`: tp_btf, raw_tp,
    /// tracepoint), for a test of one kind; None: flowtop's own choice.
    pub program_kind: Option<String>,
}

impl Ctx {
    /// For `cargo test` on the host: `FLOWTOP_PROBE` (default auto), root required.
    pub fn host(trafficgen_built: &str) -> Ctx {
        require_root();
        Ctx {
            flowtop: find_flowtop(),
            trafficgen: find_trafficgen(Some(trafficgen_built)),
            probe: env::var("FLOWTOP_PROBE").unwrap_or_else(|_| "auto".into()),
            bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            steady_secs: 4.5,
            steady_rate: 1 << 20,
            program_kind: None,
        }
    }
}
