//! Developer tasks: `cargo xtask <task>` (see `.cargo/config.toml`). One module per task.
mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "flowtop developer tasks")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Measure flowtop's cost against bare runs in the same session (needs root)
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Xtask::parse().task {
        Task::Bench(args) => bench::run(&args),
    }
}
