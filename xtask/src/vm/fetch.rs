//! Debian kernels for the VM matrix, fetched through a private apt state.
//!
//! Each kernel series comes from its own Debian suite (bullseye, bookworm, sid), which
//! the machine's apt sources need not list. So each series gets its own apt state
//! under `target/vm/apt/<label>/` (a sources list, package lists and caches of its
//! own, passed with `-o Dir::...`); the system's sources and caches are never touched,
//! and a fresh CI machine repeats exactly this with nothing but network access
//! to deb.debian.org.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result};

use super::{output, run_cmd, KernelSpec};

/// Lists younger than this are reused (a matrix run then needs no network once its
/// kernels are cached); older ones are refreshed, since Debian removes superseded
/// packages from its pools.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The archive keyring every Debian suite is signed with (package
/// `debian-archive-keyring`, present on every Debian system).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One series' private apt state.
struct AptState {
    dir: PathBuf,
    arch: &'static str,
}

impl AptState {
    fn new(spec: &KernelSpec, vm_dir: &Path) -> Result<Self> {
        let dir = vm_dir.join("apt").join(spec.label);
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let sources: String = spec
            .sources
            .iter()
            .map(|s| format!("deb [arch={} signed-by={KEYRING}] {s} main\n", spec.arch))
            .collect();
        fs::write(dir.join("sources.list"), sources)?;
        Ok(AptState {
            dir,
            arch: spec.arch,
        })
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
    let apt = AptState::new(spec, vm_dir)?;
    if !apt.lists_fresh() {
        eprintln!(
            "xtask: apt-get update ({} state: {})",
            spec.label,
            spec.sources.join(", ")
        );
        apt.update()?;
    }
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
                "no {}N{} package in {}",
                spec.prefix,
                spec.suffix,
                spec.sources.join(", ")
            )
        })?;
    let debs = vm_dir.join("debs");
    let find_deb = || -> Result<Option<PathBuf>> {
        for entry in fs::read_dir(&debs)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let deb = match find_deb()? {
        Some(deb) => deb,
        None => {
            eprintln!("xtask: apt-get download {package}");
            run_cmd(
                apt.command("apt-get")
                    .args(["download", "-q", &package])
                    .current_dir(&debs),
            )?;
            find_deb()?.with_context(|| format!("apt-get download left no {package} .deb"))?
        }
    };
    let image = vm_dir.join("kernels").join(&package).join("vmlinuz");
    if !image.exists() {
        fs::create_dir_all(image.parent().expect("has parent"))?;
        let (deb_s, out, glob) = (deb.display(), image.display(), spec.image_glob);
        let script = format!(
            "dpkg-deb --fsys-tarfile '{deb_s}' | tar -xO --wildcards '{glob}' \
             > '{out}.part' && test -s '{out}.part' && mv '{out}.part' '{out}'"
        );
        run_cmd(Command::new("sh").args(["-c", &script]))
            .with_context(|| format!("extracting {glob} from {}", deb.display()))?;
    }
    Ok((package, image))
}
