//! flowtop as a library. The binary (`main.rs`) is a thin wrapper around [`cli`]
//! and [`run`]. Developer tasks (xtask: benchmarks, the man page) and the parser
//! fuzz test reach the internals they measure or feed only through [`dev`], a
//! short list of named items, so the modules behind it can change shape without
//! breaking them, and nothing else outside the crate depends on their layout.
pub mod cli;
pub mod run;

mod collect;
mod config;
mod container;
mod filter;
mod identity;
mod nspid;
mod output;
mod privileges;
mod probe;
mod serve;

/// `0.1.0 (commit abc1234)` from a git checkout, else the crate version (build.rs).
pub const VERSION: &str = env!("FLOWTOP_VERSION");

/// What developer tasks use of flowtop's internals, and nothing more.
pub mod dev {
    /// `xtask bench`: one polling interval exactly as flowtop runs it (map reader,
    /// differ, table printer), on maps the bench fills itself.
    pub use crate::collect::{
        diff::ProcDiffer,
        live::LivePids,
        maps::KernelMaps,
        sys_bpf::{lookup_batch, sys_bpf, BatchCursor},
    };
    pub use crate::output::{printer, Format, Stamp};
    /// `xtask bench`: the kernel's own per-program run counters, and BTF ids for
    /// the minimal programs it loads as a baseline.
    pub use crate::probe::{
        btf::{KernelBtf, Kind},
        detect::ensure_tracefs,
        misses::fdinfo_field,
    };
    /// The parser fuzz test: every parser of text from the kernel or the user.
    pub use crate::{
        collect::Comm,
        identity::{cgroup2_mount_in, cgroup_dir},
        privileges::parse_cap_eff,
    };
}
