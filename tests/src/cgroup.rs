//! cgroup v2 fixtures: cgroups made below this process's own, removed on drop even
//! when the test failed with processes still inside them.
use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

/// Where the cgroup2 file system is mounted, from /proc/self/mountinfo (most servers
/// have it at /sys/fs/cgroup, hybrid layouts at /sys/fs/cgroup/unified).
pub fn cgroup2_mount() -> Result<PathBuf, String> {
    // mountinfo: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ...`
    read("/proc/self/mountinfo")?
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or_else(|| "no cgroup2 file system mounted (none in /proc/self/mountinfo)".into())
}

/// This process's cgroup v2 path, as `/proc/self/cgroup` shows it.
pub fn own_cgroup() -> Result<String, String> {
    read("/proc/self/cgroup")?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .ok_or_else(|| "this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)".into())
}

fn read(p: &str) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"))
}

/// A cgroup directory `NAME-PID-N` below this process's own cgroup (N counts the
/// cgroups this process made, so that tests running in parallel each get their own),
/// with cgroups made below it on demand. On drop every process still in the tree is
/// killed (`cgroup.kill`) and the tree is removed leaf first, so that a failed or
/// panicking test leaves no directory behind.
pub struct CgroupTree {
    /// The cgroup2 mount.
    pub mount: PathBuf,
    /// The top of the tree, in the cgroup2 mount.
    pub dir: PathBuf,
    /// The top as `/proc/PID/cgroup` shows it.
    pub path: String,
}

impl CgroupTree {
    /// Err: why this machine cannot have it (no cgroup2 mount, this process in no v2
    /// cgroup, mkdir refused).
    pub fn create(name: &str) -> Result<CgroupTree, String> {
        let mount = cgroup2_mount()?;
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let path = format!(
            "{}/{name}-{}-{}",
            own_cgroup()?.trim_end_matches('/'),
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let dir = mount.join(path.trim_start_matches('/'));
        fs::create_dir(&dir).map_err(|e| format!("cannot make cgroup {}: {e}", dir.display()))?;
        Ok(CgroupTree { mount, dir, path })
    }

    /// [`CgroupTree::create`] for a test that needs cgroup v2: panics with what is
    /// missing instead of letting the test pass without running.
    pub fn required(name: &str) -> CgroupTree {
        Self::create(name).unwrap_or_else(|why| panic!("this test needs a cgroup v2: {why}"))
    }

    /// The cgroup `rel` below the top (and its parents), made if missing; its
    /// directory.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let dir = self.dir.join(rel);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot make cgroup {}: {e}", dir.display()));
        dir
    }

    /// `dir` (in this tree) as `/proc/PID/cgroup` shows it.
    pub fn path_of(&self, dir: &Path) -> String {
        let rel = dir
            .strip_prefix(&self.mount)
            .expect("a cgroup in the mount");
        format!("/{}", rel.display())
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        remove_tree(&self.dir);
    }
}

/// Kills whatever still runs in cgroup `dir` and below, then removes the
/// directories, deepest first. A cgroup whose last process was just killed or reaped
/// is busy for a moment: EBUSY is retried for a few seconds.
pub(crate) fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    // Linux 5.14+: one write kills every process of the subtree.
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    let mut dirs = Vec::new();
    collect_dirs(dir, &mut dirs);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let deadline = Instant::now() + Duration::from_secs(5);
    for d in dirs {
        loop {
            match fs::remove_dir(&d) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    eprintln!("warning: cannot remove cgroup {}: {e}", d.display());
                    break;
                }
                _ => break,
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// A cgroup v2 made below this process's own, with one cgroup below it; both removed
/// on drop (see [`CgroupTree`]).
pub struct ScenarioCgroup {
    tree: CgroupTree,
    /// Its directory in the cgroup2 mount.
    pub dir: PathBuf,
    /// The cgroup below it.
    pub below: PathBuf,
    /// As `/proc/PID/cgroup` shows it (what `flowtop --cgroup` takes).
    pub path: String,
}

impl ScenarioCgroup {
    /// `NAME-PID-N`; Err: why this machine cannot have it. The VM scenarios report
    /// that as a SKIP; host tests use [`ScenarioCgroup::required`].
    pub fn create(name: &str) -> Result<ScenarioCgroup, String> {
        let tree = CgroupTree::create(name)?;
        let below = tree.dir.join("below");
        fs::create_dir(&below)
            .map_err(|e| format!("cannot make cgroup {}: {e}", below.display()))?;
        Ok(ScenarioCgroup {
            dir: tree.dir.clone(),
            path: tree.path.clone(),
            below,
            tree,
        })
    }

    /// [`ScenarioCgroup::create`] for a test that needs cgroup v2: panics with what is
    /// missing instead of letting the test pass without running.
    pub fn required(name: &str) -> ScenarioCgroup {
        Self::create(name).unwrap_or_else(|why| panic!("this test needs a cgroup v2: {why}"))
    }

    /// `--cgroup DIR` for trafficgen: it joins this cgroup before moving a byte.
    pub fn join_arg(&self) -> Vec<String> {
        vec![
            "--cgroup".into(),
            self.tree.dir.to_string_lossy().into_owned(),
        ]
    }
}
