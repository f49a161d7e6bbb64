//! Names for what the kernel records as numbers: cgroup v2 ids -> cgroup paths.
//!
//! A cgroup's id (`bpf_get_current_cgroup_id`) is the inode number of its directory
//! in the cgroup2 file system, so walking the cgroup2 mount maps ids to paths. The
//! mount is found in /proc/self/mountinfo: `/sys/fs/cgroup` on unified systems,
//! `/sys/fs/cgroup/unified` on hybrid ones.
use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _, Result};

/// Mount point of the cgroup2 file system, from /proc/self/mountinfo.
pub fn cgroup2_mount() -> Result<PathBuf> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    cgroup2_mount_in(&info).ok_or_else(|| anyhow!("no cgroup2 file system is mounted"))
}

/// Pure part of [`cgroup2_mount`]: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE ...`.
pub fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace()
            .nth(4)
            .map(|m| PathBuf::from(unescape(m)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        // `\ooo` above `\377` is not a byte: kept as it is.
        let byte = octal.and_then(|d| {
            u8::try_from(
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0'),
            )
            .ok()
        });
        match (b[i], byte) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of `--cgroup PATH`: a path inside the cgroup2 mount
/// (`/sys/fs/cgroup/unified/system.slice`) or a cgroup path as /proc/PID/cgroup shows
/// it (`/system.slice`).
pub fn cgroup_dir(mount: &Path, arg: &str) -> Result<PathBuf> {
    let given = Path::new(arg);
    if given
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!("--cgroup {arg}: a cgroup path cannot contain '..'");
    }
    let dir = if given.starts_with(mount) {
        given.to_path_buf()
    } else {
        mount.join(arg.trim_start_matches('/'))
    };
    if !dir.is_dir() {
        bail!(
            "--cgroup {arg}: no cgroup {} (cgroup v2 is mounted at {})",
            dir.display(),
            mount.display()
        );
    }
    Ok(dir)
}

/// Resolves cgroup ids to paths relative to the cgroup2 root (`/` is the root).
pub struct CgroupNames {
    mount: PathBuf,
    by_id: HashMap<u64, String>,
}

impl CgroupNames {
    pub fn new(mount: PathBuf) -> Self {
        Self {
            mount,
            by_id: HashMap::new(),
        }
    }

    /// The path of cgroup `id`; walks the hierarchy again when `id` is new. A cgroup
    /// removed before it could be seen is shown as `cgroup:<id>`.
    pub fn path(&mut self, id: u64) -> String {
        if !self.by_id.contains_key(&id) {
            self.by_id.clear();
            walk(&self.mount, "", &mut self.by_id);
        }
        self.by_id
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("cgroup:{id}"))
    }
}

/// Every cgroup under `dir`: its id (the directory's inode) -> path below the mount.
pub fn walk(dir: &Path, rel: &str, out: &mut HashMap<u64, String>) {
    let Ok(meta) = fs::metadata(dir) else { return };
    out.insert(
        meta.ino(),
        if rel.is_empty() {
            "/".into()
        } else {
            rel.into()
        },
    );
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let name = e.file_name();
            walk(&e.path(), &format!("{rel}/{}", name.to_string_lossy()), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_mountinfo() {
        let hybrid = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some("/sys/fs/cgroup/unified".into())
        );
        let unified = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount_in(unified), Some("/sys/fs/cgroup".into()));
        let escaped = "30 1 0:26 / /mnt/a\\040b rw - cgroup2 none rw";
        assert_eq!(cgroup2_mount_in(escaped), Some("/mnt/a b".into()));
        assert_eq!(cgroup2_mount_in("1 0 0:1 / / rw - ext4 /dev/vda rw"), None);
    }

    #[test]
    fn root_cgroup_is_slash_and_unknown_ids_are_named_by_number() {
        let Ok(mount) = cgroup2_mount() else { return };
        let root_ino = fs::metadata(&mount).unwrap().ino();
        let mut names = CgroupNames::new(mount);
        assert_eq!(names.path(root_ino), "/");
        assert_eq!(names.path(u64::MAX), format!("cgroup:{}", u64::MAX));
    }
}
