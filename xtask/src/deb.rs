//! The `.deb` of `cargo xtask dist`, built with `dpkg-deb` (part of every Debian,
//! so no packaging tool to install): the static binary, the man page and shell
//! completions from `cargo xtask docs`, the licences and README, and the exporter's
//! systemd unit, installed but not enabled (an administrator opts in to a daemon).
use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};
use flate2::{write::GzEncoder, Compression};

use crate::{
    docs::{self, Layout},
    release::{run_cmd, Target, VERSION},
};

/// Builds `dist/flowtop_<version>_<arch>.deb` around `binary`.
pub fn build(root: &Path, dist: &Path, target: &Target, binary: &Path) -> Result<PathBuf> {
    let stage = dist.join(format!("deb-{}", target.deb_arch));
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    let usr = stage.join("usr");
    install(binary, &usr.join("bin/flowtop"), 0o755)?;

    // Completions where Debian's shells look; the man page gzipped, as policy wants.
    let layout = Layout::prefix(&usr);
    docs::generate(&layout)?;
    let man = fs::read(&layout.man)?;
    fs::remove_file(&layout.man)?;
    write(&layout.man.with_extension("1.gz"), &gzip(&man)?, 0o644)?;

    let doc = usr.join("share/doc/flowtop");
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    write(&doc.join("copyright"), copyright(root)?.as_bytes(), 0o644)?;
    install(
        &root.join("packaging/flowtop-exporter.service"),
        &usr.join("lib/systemd/system/flowtop-exporter.service"),
        0o644,
    )?;

    let debian = stage.join("DEBIAN");
    write(
        &debian.join("control"),
        control(target, dir_size_kib(&usr)?).as_bytes(),
        0o644,
    )?;
    for script in ["postinst", "postrm"] {
        write(&debian.join(script), RELOAD_SYSTEMD.as_bytes(), 0o755)?;
    }

    let deb = dist.join(format!("flowtop_{VERSION}_{}.deb", target.deb_arch));
    run_cmd(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    fs::remove_dir_all(&stage)?;
    Ok(deb)
}

fn control(target: &Target, installed_kib: u64) -> String {
    format!(
        "Package: flowtop\n\
         Version: {VERSION}\n\
         Architecture: {}\n\
         Maintainer: The flowtop authors <flowtop@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Section: net\n\
         Priority: optional\n\
         Description: per-process network bytes, counted exactly in the kernel with eBPF\n \
         flowtop shows which processes, connections and cgroups move how many bytes\n \
         over TCP and UDP (IPv4 and IPv6), like tcptop and nethogs, with exact counts.\n \
         It is one static binary with its eBPF programs embedded. The package also\n \
         ships a Prometheus exporter unit, flowtop-exporter.service (not enabled).\n",
        target.deb_arch
    )
}

/// Tells a running systemd about the unit that came or went; nothing is enabled or
/// started. Without systemd (a container, a chroot) there is nothing to do.
const RELOAD_SYSTEMD: &str = "#!/bin/sh\nset -e\n\
if [ -d /run/systemd/system ]; then\n    systemctl daemon-reload || true\nfi\n";

/// Debian's machine-readable copyright file: the dual licence, with the MIT text
/// in full and Apache-2.0 by reference to /usr/share/common-licenses, as policy asks.
fn copyright(root: &Path) -> Result<String> {
    let mit = fs::read_to_string(root.join("LICENSE-MIT"))?;
    let mit: String = mit
        .lines()
        .skip_while(|l| !l.starts_with("Permission"))
        .map(|l| {
            if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: flowtop\n\n\
         Files: *\n\
         Copyright: 2026 The flowtop authors\n\
         License: MIT or Apache-2.0\n\n\
         License: MIT\n{mit}\n\
         License: Apache-2.0\n \
         On Debian systems the full text of the Apache License 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n"
    ))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    // No file name or time stamp in the header: the same input, the same .deb.
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, &bytes, mode)
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `Installed-Size`, in KiB, as dpkg shows it.
fn dir_size_kib(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        bytes += if meta.is_dir() {
            dir_size_kib(&entry.path())? * 1024
        } else {
            meta.len()
        };
    }
    Ok(bytes.div_ceil(1024))
}
