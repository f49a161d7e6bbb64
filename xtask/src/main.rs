//! Developer tasks: `cargo xtask <task>`, one module per task.
use clap::{Parser, Subcommand};

mod vm;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "flowtop developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Boot Debian kernels in QEMU and run flowtop's exactness scenarios for every
    /// probe family each kernel supports; prints a kernel x family table.
    VmTest(vm::Options),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::VmTest(opts) => vm::run(&opts),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
