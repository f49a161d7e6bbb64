//! `cargo xtask release-test` (root): the release artefacts of this machine's
//! architecture, checked the way a user gets them.
//!
//! 1. `cargo xtask dist` for this architecture: the static binary's `--version`
//!    names the version, the commit and the musl target.
//! 2. The `.deb`: `dpkg -i` puts every file where it belongs, the installed unit
//!    passes `systemd-analyze verify` and is not enabled, `systemd-analyze security`
//!    scores it; `dpkg -r` leaves none of the files behind.
//! 3. The image (`cargo xtask image`), run as the DaemonSet runs it (see
//!    [`container`]): a real Prometheus scrapes it and finds exact bytes for
//!    processes this task ran on the host.
//!
//! Part of `scripts/test.sh` (`FLOWTOP_SKIP_RELEASE=1` skips it): about 2 minutes
//! with a warm target/, 10-15 cold (the musl build has its own eBPF build). It
//! installs and purges the package, so it refuses to run when flowtop is installed.
mod container;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context as _, Result};

use crate::{
    deb,
    dist::{self, Target, TARGETS, VERSION},
    image,
};

#[derive(Debug, clap::Args)]
pub struct ReleaseTestArgs {
    /// Skip the .deb install/remove check
    #[arg(long)]
    no_deb: bool,
    /// Skip the container + Prometheus check
    #[arg(long)]
    no_image: bool,
}

pub fn run(args: &ReleaseTestArgs) -> Result<()> {
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "release-test installs a package and loads eBPF programs: run it as root"
    );
    let root = crate::docs::workspace_root();
    let dist_dir = root.join("target/dist");
    fs::create_dir_all(&dist_dir)?;
    let target = host_target()?;
    let binary = dist::static_binary(&root, &dist_dir, target)?;
    check_version(&binary, target)?;
    if !args.no_deb {
        let deb = deb::build(&root, &dist_dir, target, &binary)?;
        check_deb(&deb, &binary)?;
    }
    if !args.no_image {
        let tag = image::build(&root, &binary, "localhost/flowtop")?;
        container::check(&root, &tag)?;
    }
    dist::write_sums(&dist_dir)?;
    println!("release-test: all checks passed");
    Ok(())
}

pub fn host_target() -> Result<&'static Target> {
    TARGETS
        .iter()
        .find(|t| t.triple.starts_with(std::env::consts::ARCH))
        .context("no release target for this machine's architecture")
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_version(binary: &Path, target: &Target) -> Result<()> {
    let version = output(Command::new(binary).arg("--version"))?;
    let commit = output(Command::new("git").args(["rev-parse", "--short", "HEAD"]))?;
    let want = format!(
        "flowtop {VERSION} (commit {}, {})",
        commit.trim(),
        target.triple
    );
    ensure!(
        version.trim() == want,
        "--version says {version:?}, not {want:?}"
    );
    println!("release-test: {} --version: {want}", binary.display());
    Ok(())
}

/// Where the .deb must put each file.
const DEB_FILES: [&str; 8] = [
    "/usr/bin/flowtop",
    "/usr/share/man/man1/flowtop.1.gz",
    "/usr/share/bash-completion/completions/flowtop",
    "/usr/share/zsh/site-functions/_flowtop",
    "/usr/share/fish/vendor_completions.d/flowtop.fish",
    "/usr/share/doc/flowtop/copyright",
    "/usr/share/doc/flowtop/README.md",
    "/usr/lib/systemd/system/flowtop-exporter.service",
];
const UNIT: &str = "/usr/lib/systemd/system/flowtop-exporter.service";

fn check_deb(deb: &Path, binary: &Path) -> Result<()> {
    if package_status()? != "not-installed" {
        bail!("the flowtop package is already installed: `dpkg -r flowtop` first");
    }
    output(Command::new("dpkg").arg("-i").arg(deb))?;
    let checked = check_installed(binary);
    // Removed whatever the checks said, so that a failure leaves the machine clean.
    let removed = output(Command::new("dpkg").args(["-r", "flowtop"]));
    if checked.is_err() {
        let _ = output(Command::new("dpkg").args(["--purge", "flowtop"]));
    }
    checked?;
    removed?;
    // A package with a postrm stays known to dpkg ("config-files") until purged,
    // even without conffiles; none of its files may be left.
    let status = package_status()?;
    ensure!(
        status == "config-files" || status == "not-installed",
        "after dpkg -r flowtop is {status:?}"
    );
    let left: Vec<&str> = DEB_FILES
        .iter()
        .copied()
        .filter(|f| Path::new(f).exists())
        .collect();
    ensure!(left.is_empty(), "dpkg -r left {left:?}");
    output(Command::new("dpkg").args(["--purge", "flowtop"]))?;
    ensure!(
        package_status()? == "not-installed",
        "dpkg --purge left flowtop known"
    );
    println!(
        "release-test: {} installs, removes and purges cleanly",
        deb.display()
    );
    Ok(())
}

/// dpkg's state of the package: installed, config-files, not-installed, ...
fn package_status() -> Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", "flowtop"])
        .output()?;
    Ok(if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        "not-installed".to_string()
    })
}

fn check_installed(binary: &Path) -> Result<()> {
    let listed = output(Command::new("dpkg").args(["-L", "flowtop"]))?;
    for f in DEB_FILES {
        ensure!(Path::new(f).is_file(), "{f} missing after dpkg -i");
        ensure!(listed.lines().any(|l| l == f), "dpkg -L does not list {f}");
    }
    ensure!(
        fs::read("/usr/bin/flowtop")? == fs::read(binary)?,
        "/usr/bin/flowtop is not the static binary"
    );
    let verify = Command::new("systemd-analyze")
        .args(["verify", UNIT])
        .output()?;
    let complaints = String::from_utf8_lossy(&verify.stderr);
    ensure!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify {UNIT}: {}\n{complaints}",
        verify.status
    );
    let wants =
        PathBuf::from("/etc/systemd/system/multi-user.target.wants/flowtop-exporter.service");
    ensure!(!wants.exists(), "the package enabled the unit");
    let security =
        output(Command::new("systemd-analyze").args(["security", "--offline=yes", UNIT]))?;
    let score = security
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .context("no exposure level from systemd-analyze security")?;
    println!(
        "release-test: systemd-analyze verify: clean; security: {}",
        score.trim()
    );
    Ok(())
}
