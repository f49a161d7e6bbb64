//! `cargo xtask release-test` (root): the release artefacts checked the way a user
//! gets them.
//!
//! 1. The static binaries (this machine's architecture, and the others unless
//!    `--host-only`, built in one cargo run): no interpreter and no shared library
//!    (readelf), and `--version` names the version, the commit and the musl target
//!    (a foreign binary runs under qemu-user for that).
//! 2. This architecture's `.deb`: `dpkg -i` puts every file where it belongs, the
//!    installed unit passes `systemd-analyze verify` and is not enabled,
//!    `systemd-analyze security` scores it; `dpkg -r` leaves none of the files
//!    behind. Another architecture's `.deb`: its Architecture field and its files,
//!    unpacked.
//! 3. The image (`cargo xtask image`), run as the DaemonSet runs it (see
//!    [`container`]): a real Prometheus scrapes it and finds exact bytes for
//!    processes this task ran on the host.
//!
//! Part of `scripts/test.sh` (`FLOWTOP_SKIP_RELEASE=1` skips it); docs/packaging.md
//! has its cost, cold and warm. It installs and purges the package, so it refuses
//! to run when flowtop is installed.
mod container;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context as _, Result};

use crate::{
    deb, dist, image,
    release::{Target, TARGETS, VERSION},
};

#[derive(Debug, clap::Args)]
pub struct ReleaseTestArgs {
    /// Only this machine's architecture: no cross build (aarch64 on x86_64)
    #[arg(long)]
    host_only: bool,
    /// Skip the .deb checks
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
    let dist_dir = dist::dist_dir(&root)?;
    let host = host_target()?;
    let targets: Vec<&Target> = std::iter::once(host)
        .chain(
            TARGETS
                .iter()
                .filter(|t| !args.host_only && t.triple != host.triple),
        )
        .collect();
    let binaries = dist::static_binaries(&root, &dist_dir, &targets)?;
    for (target, binary) in targets.iter().zip(&binaries) {
        let native = target.triple == host.triple;
        check_static(binary)?;
        check_version(binary, target, native)?;
        if !args.no_deb {
            let deb = deb::build(&root, &dist_dir, target, binary)?;
            if native {
                check_deb(&deb, binary)?;
            } else {
                check_deb_contents(&deb, target, binary)?;
            }
        }
    }
    if !args.no_image {
        let tag = image::build(&root, &binaries[0], "localhost/flowtop")?;
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

/// No program interpreter and no shared library: the binary runs on any Linux
/// distribution, whatever its libc (readelf from binutils reads every architecture).
fn check_static(binary: &Path) -> Result<()> {
    let headers = output(Command::new("readelf").arg("-lW").arg(binary))?;
    ensure!(
        !headers.contains("INTERP"),
        "{} asks for a program interpreter",
        binary.display()
    );
    let dynamic = output(Command::new("readelf").arg("-dW").arg(binary))?;
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    ensure!(
        needed.is_empty(),
        "{} needs shared libraries: {needed:?}",
        binary.display()
    );
    println!(
        "release-test: {} is static (no interpreter, no shared library)",
        binary.display()
    );
    Ok(())
}

/// `--version` names the version, the commit and the target; a foreign binary runs
/// under qemu's user-mode emulator (which has no bpf(2), so only `--version`).
fn check_version(binary: &Path, target: &Target, native: bool) -> Result<()> {
    let mut cmd = match native {
        true => Command::new(binary),
        false => {
            let mut c = Command::new(target.qemu);
            c.arg(binary);
            c
        }
    };
    let version = output(cmd.arg("--version"))
        .with_context(|| format!("{} (Debian package qemu-user-static)", target.qemu))?;
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
    let how = if native { "" } else { " (under qemu-user)" };
    println!("release-test: {} --version{how}: {want}", binary.display());
    Ok(())
}

/// A .deb for another architecture cannot be installed here: its control fields
/// and its files, unpacked with `dpkg-deb -x`, are checked instead.
fn check_deb_contents(deb: &Path, target: &Target, binary: &Path) -> Result<()> {
    let arch = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg("Architecture"),
    )?;
    ensure!(
        arch.trim() == target.deb_arch,
        "{}: Architecture {arch:?}, not {}",
        deb.display(),
        target.deb_arch
    );
    let dir = std::env::temp_dir().join(format!(
        "flowtop-deb-{}-{}",
        target.deb_arch,
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir))?;
    let unpacked = |f: &str| dir.join(f.trim_start_matches('/'));
    let checked = (|| {
        for f in DEB_FILES {
            ensure!(unpacked(f).is_file(), "{} lacks {f}", deb.display());
        }
        ensure!(
            fs::read(unpacked("/usr/bin/flowtop"))? == fs::read(binary)?,
            "{}: /usr/bin/flowtop is not {}",
            deb.display(),
            binary.display()
        );
        Ok(())
    })();
    let _ = fs::remove_dir_all(&dir);
    checked?;
    println!(
        "release-test: {} holds every file, for {}",
        deb.display(),
        target.deb_arch
    );
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
