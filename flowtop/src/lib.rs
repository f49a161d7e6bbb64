//! flowtop as a library: the binary (`main.rs`) is a thin wrapper, and developer
//! tasks (xtask benchmarks) reuse the same collection code.
pub mod cli;
pub mod collect;
pub mod config;
pub mod container;
pub mod filter;
pub mod identity;
pub mod nspid;
pub mod output;
pub mod privileges;
pub mod probe;
pub mod run;
pub mod serve;

/// `0.1.0 (commit abc1234)` from a git checkout, else the crate version (build.rs).
pub const VERSION: &str = env!("FLOWTOP_VERSION");
