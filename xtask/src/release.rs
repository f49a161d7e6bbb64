//! What the release tasks (`dist`, `image`, `release-test`, the `.deb`) share: the
//! architectures flowtop is released for, its version, and running a build tool.
//! Its own module so that `dist` and `deb` depend on it rather than on each other.
use std::process::Command;

use anyhow::{bail, Context as _, Result};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One architecture flowtop is released for.
pub struct Target {
    /// Rust's target triple (musl: a static binary).
    pub triple: &'static str,
    /// Debian's name for the architecture.
    pub deb_arch: &'static str,
    /// A `strip` that understands the architecture's ELF files (binutils).
    pub strip: &'static str,
    /// qemu's user-mode emulator for the architecture (Debian's qemu-user-static):
    /// how release-test runs a foreign binary's `--version`.
    pub qemu: &'static str,
}

pub const TARGETS: [Target; 2] = [
    Target {
        triple: "x86_64-unknown-linux-musl",
        deb_arch: "amd64",
        strip: "strip",
        qemu: "qemu-x86_64-static",
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        deb_arch: "arm64",
        strip: "aarch64-linux-gnu-strip",
        qemu: "qemu-aarch64-static",
    },
];

/// Runs a build tool, failing with its command line when it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
