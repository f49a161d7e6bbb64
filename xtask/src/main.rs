//! Developer tasks: `cargo xtask <task>` (alias in .cargo/config.toml).
mod docs;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "flowtop developer tasks")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Generate the man page and bash/zsh/fish completions from flowtop's clap definition
    Docs(docs::DocsArgs),
}

fn main() -> anyhow::Result<()> {
    match Xtask::parse().task {
        Task::Docs(args) => docs::run(&args),
    }
}
