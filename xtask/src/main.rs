//! Developer tasks: `cargo xtask <task>` (the alias is in .cargo/config.toml), one
//! module per task.
mod soak;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "flowtop developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Churn test: many short-lived processes, each moving known bytes, while flowtop
    /// runs with a small map; checks totals are exact and map use and memory stay flat
    Soak(soak::SoakArgs),
    /// Boot Debian kernels (6.1, 6.12) in QEMU and run flowtop's exactness scenarios
    /// for every probe family each supports; prints a kernel x family table
    VmTest(vm::Options),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Soak(args) => soak::run(&args),
        Task::VmTest(opts) => vm::run(&opts),
    }
}
