//! Developer tasks: `cargo xtask <task>` (the alias is in .cargo/config.toml). One
//! module per task.
mod bench;
mod deb;
mod dist;
mod docs;
mod image;
mod release;
mod release_test;
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
    /// Release artefacts in target/dist: static musl binaries for x86_64 and aarch64,
    /// a .deb for each, SHA256SUMS
    Dist(dist::DistArgs),
    /// OCI image FROM scratch with the static x86_64 binary, built offline with podman
    Image(image::ImageArgs),
    /// Generate the man page and bash/zsh/fish completions from flowtop's clap definition
    Docs(docs::DocsArgs),
    /// Checks this architecture's release artefacts as a user gets them (root): the
    /// static binary's --version, the .deb installed and removed, the image run as
    /// the DaemonSet runs it and scraped by a real Prometheus
    ReleaseTest(release_test::ReleaseTestArgs),
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
        Task::Dist(args) => dist::run(&args),
        Task::Docs(args) => docs::run(&args),
        Task::Image(args) => image::run(&args),
        Task::ReleaseTest(args) => release_test::run(&args),
        Task::Soak(args) => soak::run(&args),
        Task::VmTest(opts) => vm::run(&opts),
    }
}
