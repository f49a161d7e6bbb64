//! flowtop as a library: the binary (`main.rs`) is a thin wrapper, and developer
//! tasks (xtask benchmarks) reuse the same collection code.
pub mod cli;
pub mod collect;
pub mod container;
pub mod filter;
pub mod identity;
pub mod nspid;
pub mod output;
pub mod privileges;
pub mod probe;
pub mod run;
pub mod serve;
