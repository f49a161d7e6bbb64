//! `cargo xtask image`: the OCI image of flowtop, `FROM scratch` with the static
//! binary alone (packaging/Containerfile), built with podman without any registry,
//! tagged `flowtop:<version>` and saved as an OCI archive in target/dist/ so that it
//! can be loaded where no registry is reachable either.
use std::{fs, path::Path, process::Command};

use anyhow::Result;

use crate::{
    dist,
    release::{run_cmd, VERSION},
};

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Image name; tagged <NAME>:<version> and <NAME>:latest
    #[arg(long, default_value = "localhost/flowtop")]
    name: String,
}

pub fn run(args: &ImageArgs) -> Result<()> {
    let root = crate::docs::workspace_root();
    let dist_dir = dist::dist_dir(&root)?;
    let target = crate::release_test::host_target()?;
    let binary = dist::static_binaries(&root, &dist_dir, &[target])?.remove(0);
    let tag = build(&root, &binary, &args.name)?;
    let archive = dist_dir.join(format!("flowtop_{VERSION}_{}.oci.tar", target.deb_arch));
    let _ = fs::remove_file(&archive);
    run_cmd(
        podman()
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg(&tag),
    )?;
    dist::write_sums(&dist_dir)?;
    println!(
        "built {tag}; saved {} ({} bytes)",
        archive.display(),
        fs::metadata(&archive)?.len()
    );
    Ok(())
}

/// Builds the image around `binary` (a static build for this machine's
/// architecture); returns its `<name>:<version>` tag.
pub fn build(root: &Path, binary: &Path, name: &str) -> Result<String> {
    let context = dist::target_dir(root).join("image");
    fs::create_dir_all(&context)?;
    fs::copy(binary, context.join("flowtop"))?;
    fs::copy(
        root.join("packaging/Containerfile"),
        context.join("Containerfile"),
    )?;
    let tag = format!("{name}:{VERSION}");
    run_cmd(
        podman()
            .args(["build", "--pull=never", "--file"])
            .arg(context.join("Containerfile"))
            .arg("--build-arg")
            .arg(format!("VERSION={VERSION}"))
            .arg("--build-arg")
            .arg(format!("REVISION={}", revision()))
            .args(["--tag", &tag, "--tag", &format!("{name}:latest")])
            .arg(&context),
    )?;
    Ok(tag)
}

/// podman as it runs on this kind of machine: runc (crun refuses a hybrid cgroup
/// layout) and cgroupfs (no systemd as PID 1 in CI containers).
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    c
}

fn revision() -> String {
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
