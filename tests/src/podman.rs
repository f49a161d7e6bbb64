//! Real podman containers that run trafficgen: an image built offline (no registry
//! is reachable) and containers removed on drop, whatever the test did.
//!
//! podman is Debian's, with runc and the cgroupfs driver (crun refuses hybrid
//! cgroup layouts); `scripts/setup.sh test` installs both, and a missing one fails
//! the test. trafficgen runs from the host's file: it and the C library it links are
//! mounted read-only at the same paths inside the container.
use std::{path::PathBuf, process::Command};

use anyhow::{ensure, Context as _, Result};

use crate::{require_tool, Ctx, Gen};

/// podman's options for the runtime and cgroup driver that work on this kind of host.
const GLOBAL: [&str; 4] = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

/// podman (and runc) on PATH, or a panic naming the package.
fn podman_path() -> String {
    require_tool("runc", "runc");
    require_tool("podman", "podman")
        .to_string_lossy()
        .into_owned()
}

/// `podman GLOBAL...`
fn podman() -> Command {
    let mut cmd = Command::new(podman_path());
    cmd.args(GLOBAL);
    cmd
}

/// Runs `podman ARGS`; its stdout, or an error with its stderr.
fn podman_ok(args: &[&str]) -> Result<String> {
    let out = podman()
        .args(args)
        .output()
        .with_context(|| format!("running podman {args:?}"))?;
    ensure!(
        out.status.success(),
        "podman {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An image imported from a tar of a busybox-static root file system (Debian's
/// `busybox-static`: `/bin/busybox` and `sh`), with empty `/usr/lib` and
/// `/usr/lib64` for the host's libraries; removed (`podman rmi`) on drop.
pub struct Image {
    /// `localhost/flowtop-test-PID-NAME:latest`, unique to this test process.
    pub name: String,
}

impl Image {
    pub fn build(name: &str) -> Result<Image> {
        let root = tempfile::tempdir().context("temporary image root")?;
        let r = root.path();
        for d in ["bin", "usr/lib", "usr/lib64", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(r.join(d))?;
        }
        std::fs::copy("/bin/busybox", r.join("bin/busybox")).context(
            "copying /bin/busybox: install the Debian package busybox-static \
             (`scripts/setup.sh test` does)",
        )?;
        std::os::unix::fs::symlink("busybox", r.join("bin/sh"))?;
        std::os::unix::fs::symlink("usr/lib", r.join("lib"))?;
        std::os::unix::fs::symlink("usr/lib64", r.join("lib64"))?;
        let tar = tempfile::NamedTempFile::new().context("temporary tar")?;
        let status = Command::new(require_tool("tar", "tar"))
            .arg("-C")
            .arg(r)
            .arg("-cf")
            .arg(tar.path())
            .arg(".")
            .status()
            .context("running tar")?;
        ensure!(status.success(), "tar of the image root: {status}");
        let image = Image {
            name: format!(
                "localhost/flowtop-test-{}-{name}:latest",
                std::process::id()
            ),
        };
        podman_ok(&["import", &tar.path().to_string_lossy(), &image.name])?;
        Ok(image)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // Containers made from it are removed first (their guards are dropped
        // before the image's when declared after it); -f covers a leftover.
        if let Err(e) = podman_ok(&["rmi", "-f", &self.name]) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// A container named NAME running trafficgen (`podman run -i --rm`), removed
/// (`podman rm -f`) on drop if it still exists.
pub struct Container {
    pub name: String,
    cidfile: tempfile::TempDir,
}

/// The network a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's (`--network host`).
    Host,
    /// Its own namespace with only a loopback (`--network none`).
    Own,
}

impl Container {
    /// `podman run -i --rm --name NAME` of trafficgen with `args` in `image`: the
    /// container and its trafficgen (driven through podman's stdin and stdout, see
    /// [`Gen`]; its ready line's `pid=` is the PID in the container).
    pub fn run<S: AsRef<str>>(
        ctx: &Ctx,
        image: &Image,
        name: &str,
        net: Network,
        args: &[S],
    ) -> Result<(Container, Gen)> {
        let container = Container {
            name: name.to_string(),
            cidfile: tempfile::tempdir().context("temporary cidfile directory")?,
        };
        let tg = ctx.trafficgen.to_string_lossy();
        let mount = |p: &str| format!("{p}:{p}:ro");
        let mut wrapper = vec![podman_path()];
        wrapper.extend(GLOBAL.map(String::from));
        wrapper.extend(
            [
                "run",
                "-i",
                "--rm",
                "--name",
                name,
                "--network",
                match net {
                    Network::Host => "host",
                    Network::Own => "none",
                },
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                "--cidfile",
                &container.cidfile_path().to_string_lossy(),
                "-v",
                &mount("/usr/lib"),
                "-v",
                &mount("/usr/lib64"),
                "-v",
                &mount(&tg),
                &image.name,
            ]
            .map(String::from),
        );
        let gen = Gen::spawn_in(ctx, &wrapper, args)?;
        Ok((container, gen))
    }

    fn cidfile_path(&self) -> PathBuf {
        self.cidfile.path().join("cid")
    }

    /// The container's full id (podman writes it when it creates the container).
    pub fn id(&self) -> Result<String> {
        let p = self.cidfile_path();
        let id = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(id.trim().to_string())
    }

    /// Whether `podman container exists NAME` (the `--rm` removed it otherwise).
    pub fn exists(&self) -> bool {
        podman()
            .args(["container", "exists", &self.name])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.exists() {
            if let Err(e) = podman_ok(&["rm", "-f", "-t", "0", &self.name]) {
                eprintln!("warning: {e:#}");
            }
        }
    }
}
