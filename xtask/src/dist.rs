//! `cargo xtask dist`: the release artefacts in `target/dist/`.
//!
//! - `flowtop-<version>-<target>`: a static (musl) binary per architecture, which
//!   runs on any Linux distribution because it loads no shared library; the eBPF
//!   object is embedded, so this one file is all a user needs.
//! - `flowtop_<version>_<arch>.deb` per architecture (see [`crate::deb`]).
//! - `SHA256SUMS` over all of them, in `sha256sum -c` format.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::deb;

/// One architecture flowtop is released for.
pub struct Target {
    /// Rust's target triple (musl: a static binary).
    pub triple: &'static str,
    /// Debian's name for the architecture.
    pub deb_arch: &'static str,
    /// A `strip` that understands the architecture's ELF files (binutils).
    strip: &'static str,
}

pub const TARGETS: [Target; 2] = [
    Target {
        triple: "x86_64-unknown-linux-musl",
        deb_arch: "amd64",
        strip: "strip",
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        deb_arch: "arm64",
        strip: "aarch64-linux-gnu-strip",
    },
];

#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Only these targets [default: x86_64-unknown-linux-musl and
    /// aarch64-unknown-linux-musl]
    #[arg(long, value_name = "TRIPLE")]
    target: Vec<String>,
    /// Binaries and SHA256SUMS only, no .deb
    #[arg(long)]
    no_deb: bool,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run(args: &DistArgs) -> Result<()> {
    let root = crate::docs::workspace_root();
    let dist = root.join("target/dist");
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let mut artefacts = Vec::new();
    for target in selected(&args.target)? {
        let binary = static_binary(&root, &dist, target)?;
        if !args.no_deb {
            artefacts.push(deb::build(&root, &dist, target, &binary)?);
        }
        artefacts.push(binary);
    }
    artefacts.sort();
    write_sums(&dist)?;
    for a in &artefacts {
        let size = fs::metadata(a)?.len();
        println!("{:>10} {}", size, a.display());
    }
    println!("{:>10} {}", "", dist.join("SHA256SUMS").display());
    Ok(())
}

fn selected(wanted: &[String]) -> Result<Vec<&'static Target>> {
    if wanted.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    wanted
        .iter()
        .map(|w| {
            TARGETS
                .iter()
                .find(|t| t.triple == w)
                .with_context(|| format!("unknown target {w}; known: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl"))
        })
        .collect()
}

/// Builds flowtop for `target`, strips it (the symbols are two thirds of its size)
/// and copies it to `dist/flowtop-<version>-<triple>`.
pub fn static_binary(root: &Path, dist: &Path, target: &Target) -> Result<PathBuf> {
    run_cmd(
        Command::new(env!("CARGO"))
            .current_dir(root)
            .args(["build", "--release", "-p", "flowtop", "--target"])
            .arg(target.triple),
    )?;
    let built = root.join(format!("target/{}/release/flowtop", target.triple));
    let out = dist.join(format!("flowtop-{VERSION}-{}", target.triple));
    run_cmd(Command::new(target.strip).arg("-o").arg(&out).arg(&built))?;
    Ok(out)
}

/// Rewrites `SHA256SUMS` over every artefact in `dist` (also those `cargo xtask
/// image` and `release-test` rebuilt since): the sums always match the files.
pub fn write_sums(dist: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(dist)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            p.is_file() && name.starts_with("flowtop")
        })
        .collect();
    files.sort();
    let mut sums = String::new();
    for f in &files {
        let bytes = fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let name = f.file_name().unwrap().to_string_lossy();
        sums.push_str(&format!("{:x}  {name}\n", Sha256::digest(&bytes)));
    }
    let path = dist.join("SHA256SUMS");
    fs::write(&path, sums).with_context(|| format!("writing {}", path.display()))
}

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
