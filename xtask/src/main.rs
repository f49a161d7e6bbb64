//! Developer tasks: `cargo xtask <task>` (the alias is in .cargo/config.toml). One
//! module per task.
mod bench;
mod docs;
mod soak;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "flowtop developer tasks")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Measure flowtop's cost against bare runs in the same session (needs root)
    Bench(bench::BenchArgs),
    /// Generate the man page and bash/zsh/fish completions from flowtop's clap definition
    Docs(docs::DocsArgs),
    /// Churn test: many short-lived processes, each moving known bytes, while flowtop
    /// runs with a small map; checks totals are exact and map use and memory stay flat
    Soak(soak::SoakArgs),
    /// Boot Debian kernels (6.1, 6.12) in QEMU and run flowtop's exactness scenarios
    /// for every probe family each supports; prints a kernel x family table
    VmTest(vm::Options),
}

fn main() -> anyhow::Result<()> {
    match Xtask::parse().task {
        Task::Bench(args) => bench::run(&args),
        Task::Docs(args) => docs::run(&args),
        Task::Soak(args) => soak::run(&args),
        Task::VmTest(opts) => vm::run(&opts),
    }
}
