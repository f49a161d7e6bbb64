//! Builds the eBPF object (flowtop-ebpf) with nightly + bpf-linker via aya-build and
//! leaves it in OUT_DIR, where main.rs embeds it: flowtop ships as one binary.
//!
//! Also sets FLOWTOP_VERSION for `--version`: `0.1.0 (commit abc1234, x86_64-unknown-linux-musl)`
//! in a git checkout (or with FLOWTOP_COMMIT set, e.g. by a packager), else
//! `0.1.0 (x86_64-unknown-linux-musl)`: a bug report then says which release
//! artefact it is about.
use std::process::Command;

/// The nightly that builds the eBPF object (-Z build-std=core needs nightly), pinned
/// so every machine compiles the same kernel code; scripts/setup.sh installs it with
/// rust-src. Change both together.
const EBPF_NIGHTLY: &str = "nightly-2026-07-01";

fn main() -> anyhow::Result<()> {
    version();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../flowtop-ebpf");
    println!("cargo:rerun-if-changed={root}/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "flowtop-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(EBPF_NIGHTLY),
    )
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// A missing path would make cargo rerun this script on every build.
fn rerun_if_exists(path: String) {
    if std::path::Path::new(&path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn version() {
    println!("cargo:rerun-if-env-changed=FLOWTOP_COMMIT");
    let commit = std::env::var("FLOWTOP_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let commit = git(&["rev-parse", "--short", "HEAD"])?;
            // Rebuild when HEAD moves (a commit, a checkout); works in worktrees too.
            for (dir, file) in [("--git-dir", "HEAD"), ("--git-common-dir", "packed-refs")] {
                if let Some(d) = git(&["rev-parse", "--path-format=absolute", dir]) {
                    rerun_if_exists(format!("{d}/{file}"));
                }
            }
            if let (Some(d), Some(r)) = (
                git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
                git(&["symbolic-ref", "-q", "HEAD"]),
            ) {
                rerun_if_exists(format!("{d}/{r}"));
            }
            Some(commit)
        });
    let version = env!("CARGO_PKG_VERSION");
    let target = std::env::var("TARGET").unwrap_or_default();
    match commit {
        Some(c) => println!("cargo:rustc-env=FLOWTOP_VERSION={version} (commit {c}, {target})"),
        None => println!("cargo:rustc-env=FLOWTOP_VERSION={version} ({target})"),
    }
}
