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

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::{
    deb,
    release::{run_cmd, Target, TARGETS, VERSION},
};

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

pub fn run(args: &DistArgs) -> Result<()> {
    let root = crate::docs::workspace_root();
    let dist = dist_dir(&root)?;
    let targets = selected(&args.target)?;
    let mut artefacts = Vec::new();
    for (target, binary) in targets.iter().zip(static_binaries(&root, &dist, &targets)?) {
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

/// cargo's target directory: `CARGO_TARGET_DIR` (as cargo reads it), else
/// `<workspace>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// `<target dir>/dist`, created if missing: where every release artefact goes.
pub fn dist_dir(root: &Path) -> Result<PathBuf> {
    let dist = target_dir(root).join("dist");
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    Ok(dist)
}

pub fn selected(wanted: &[String]) -> Result<Vec<&'static Target>> {
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

/// Builds flowtop for every target in one cargo run (the host's build scripts and
/// proc macros compiled once, both builds sharing the cores), strips each binary
/// (the symbols are two thirds of its size) and copies it to
/// `dist/flowtop-<version>-<triple>`; the copies, in the order of `targets`.
pub fn static_binaries(root: &Path, dist: &Path, targets: &[&Target]) -> Result<Vec<PathBuf>> {
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(root)
        .args(["build", "--release", "-p", "flowtop"]);
    for target in targets {
        build.args(["--target", target.triple]);
    }
    run_cmd(&mut build)?;
    targets
        .iter()
        .map(|target| {
            let built = target_dir(root).join(format!("{}/release/flowtop", target.triple));
            let out = dist.join(format!("flowtop-{VERSION}-{}", target.triple));
            run_cmd(Command::new(target.strip).arg("-o").arg(&out).arg(&built))?;
            Ok(out)
        })
        .collect()
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
