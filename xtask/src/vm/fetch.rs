//! Debian kernels and busybox for the VM matrix, fetched through a private apt state.
//!
//! Each kernel series comes from its own Debian suite (bullseye, bookworm, sid) and
//! architecture, which the machine's apt sources need not list. So each series gets
//! its own apt state under `target/vm/apt/<label>/` (a sources list, package lists and
//! caches of its own, passed with `-o Dir::...`), and so does each architecture's
//! busybox (`target/vm/apt/busybox-<arch>/`); the system's sources and caches are
//! never touched, and a fresh CI machine repeats exactly this with nothing but
//! network access to deb.debian.org.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result};

use super::{output, run_cmd, KernelSpec, BOOKWORM};

/// Lists younger than this are reused (a matrix run then needs no network once its
/// kernels are cached); older ones are refreshed, since Debian removes superseded
/// packages from its pools.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The archive keyring every Debian suite is signed with (package
/// `debian-archive-keyring`, present on every Debian system).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One private apt state: a name (its directory), its suites and architecture.
struct AptState {
    dir: PathBuf,
    sources: &'static [&'static str],
    arch: &'static str,
}

impl AptState {
    /// The state under `target/vm/apt/<name>/`, its lists refreshed if stale.
    fn open(
        name: &str,
        sources: &'static [&'static str],
        arch: &'static str,
        vm_dir: &Path,
    ) -> Result<Self> {
        let dir = vm_dir.join("apt").join(name);
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let list: String = sources
            .iter()
            .map(|s| format!("deb [arch={arch} signed-by={KEYRING}] {s} main\n"))
            .collect();
        fs::write(dir.join("sources.list"), list)?;
        let apt = AptState { dir, sources, arch };
        if !apt.lists_fresh() {
            eprintln!(
                "xtask: apt-get update ({name} state: {}, {arch})",
                sources.join(", ")
            );
            apt.update()?;
        }
        Ok(apt)
    }

    /// `apt-get`/`apt-cache` with this state's options.
    fn command(&self, program: &str) -> Command {
        let d = self.dir.display();
        let mut cmd = Command::new(program);
        for opt in [
            format!("Dir::Etc::sourcelist={d}/sources.list"),
            "Dir::Etc::sourceparts=/dev/null".to_string(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            // Downloads land in target/, which apt's `_apt` user may not write.
            "APT::Sandbox::User=root".to_string(),
            // Only the Packages indices: no translations, Contents or DEP-11.
            "Acquire::IndexTargets::deb::Translations::DefaultEnabled=false".to_string(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_string(),
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".to_string(),
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".to_string(),
            "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false".to_string(),
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd
    }

    /// Whether the last `update` is younger than [`LISTS_MAX_AGE`], by a stamp file
    /// (apt gives the lists the archive's dates, not the download's).
    fn lists_fresh(&self) -> bool {
        fs::metadata(self.dir.join("updated"))
            .and_then(|m| m.modified())
            .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < LISTS_MAX_AGE)
    }

    fn update(&self) -> Result<()> {
        run_cmd(self.command("apt-get").args(["update", "-q"]))?;
        fs::write(self.dir.join("updated"), b"")?;
        Ok(())
    }

    /// The package's `.deb` in target/vm/debs, downloaded unless already there.
    fn download(&self, package: &str, vm_dir: &Path) -> Result<PathBuf> {
        let debs = vm_dir.join("debs");
        fs::create_dir_all(&debs)?;
        // `<package>_<version>_<arch>.deb`: one architecture's file is not another's.
        let find_deb = || -> Result<Option<PathBuf>> {
            for entry in fs::read_dir(&debs)? {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if name.starts_with(&format!("{package}_"))
                    && name.ends_with(&format!("_{}.deb", self.arch))
                {
                    return Ok(Some(path));
                }
            }
            Ok(None)
        };
        if let Some(deb) = find_deb()? {
            return Ok(deb);
        }
        eprintln!("xtask: apt-get download {package} ({})", self.arch);
        run_cmd(
            self.command("apt-get")
                .args(["download", "-q", package])
                .current_dir(&debs),
        )
        .with_context(|| format!("from {}", self.sources.join(", ")))?;
        find_deb()?.with_context(|| format!("apt-get download left no {package} .deb"))
    }

    fn package_names(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(
            output(self.command("apt-cache").args(["pkgnames", prefix]))?
                .lines()
                .map(str::to_string)
                .collect(),
        )
    }
}

/// The newest package of the series (by its number between prefix and suffix),
/// downloaded once into target/vm/debs, and its kernel image extracted next to it.
pub fn fetch_kernel(spec: &KernelSpec, vm_dir: &Path) -> Result<(String, PathBuf)> {
    let apt = AptState::open(spec.label, spec.sources, spec.arch.deb, vm_dir)?;
    let names = apt.package_names(spec.prefix)?;
    let package = names
        .iter()
        .filter_map(|n| {
            let num = n.strip_prefix(spec.prefix)?.strip_suffix(spec.suffix)?;
            Some((num.parse::<u32>().ok()?, n))
        })
        .max()
        .map(|(_, n)| n.clone())
        .with_context(|| {
            format!(
                "no {}N{} package in {} ({})",
                spec.prefix,
                spec.suffix,
                spec.sources.join(", "),
                spec.arch.deb
            )
        })?;
    let image = vm_dir.join("kernels").join(&package).join("vmlinuz");
    extract(&apt.download(&package, vm_dir)?, spec.image_glob, &image)?;
    Ok((package, image))
}

/// A static busybox for the guests of one architecture (bookworm's
/// `busybox-static`), extracted to `target/vm/busybox/<arch>/busybox`.
pub fn fetch_busybox(arch: &'static str, vm_dir: &Path) -> Result<PathBuf> {
    let apt = AptState::open(&format!("busybox-{arch}"), BOOKWORM, arch, vm_dir)?;
    let busybox = vm_dir.join("busybox").join(arch).join("busybox");
    extract(
        &apt.download("busybox-static", vm_dir)?,
        "./bin/busybox",
        &busybox,
    )?;
    Ok(busybox)
}

/// The package's file matching `glob` (a `tar --wildcards` pattern), extracted to
/// `out` unless already there.
fn extract(deb: &Path, glob: &str, out: &Path) -> Result<()> {
    if out.exists() {
        return Ok(());
    }
    fs::create_dir_all(out.parent().expect("has parent"))?;
    let (deb_s, out_s) = (deb.display(), out.display());
    let script = format!(
        "dpkg-deb --fsys-tarfile '{deb_s}' | tar -xO --wildcards '{glob}' \
         > '{out_s}.part' && test -s '{out_s}.part' && mv '{out_s}.part' '{out_s}'"
    );
    run_cmd(Command::new("sh").args(["-c", &script]))
        .with_context(|| format!("extracting {glob} from {}", deb.display()))
}
