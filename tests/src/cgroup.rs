//! cgroup v2 fixtures: a cgroup made below this process's own, removed on drop.
use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::Duration,
};

/// A cgroup v2 made below this process's own, with one cgroup below it; both removed
/// on drop (after the processes in them exited).
pub struct ScenarioCgroup {
    /// Its directory in the cgroup2 mount.
    pub dir: PathBuf,
    /// The cgroup below it.
    pub below: PathBuf,
    /// As `/proc/PID/cgroup` shows it (what `flowtop --cgroup` takes).
    pub path: String,
}

impl ScenarioCgroup {
    /// `NAME-PID-N` (N counts the cgroups this process made, so that tests running in
    /// parallel each get their own); Err: why this machine cannot have it (no cgroup2
    /// mount, this process in no v2 cgroup, mkdir refused). The VM scenarios report
    /// that as a SKIP; host tests use [`ScenarioCgroup::required`].
    pub fn create(name: &str) -> std::result::Result<ScenarioCgroup, String> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
        // mountinfo: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ...`
        let mount = read("/proc/self/mountinfo")?
            .lines()
            .find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                (right.split_whitespace().next()? == "cgroup2")
                    .then(|| left.split_whitespace().nth(4).map(str::to_string))?
            })
            .ok_or("no cgroup2 file system mounted (none in /proc/self/mountinfo)")?;
        let own = read("/proc/self/cgroup")?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .ok_or("this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")?;
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let path = format!(
            "{}/{name}-{}-{}",
            own.trim_end_matches('/'),
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let dir = PathBuf::from(format!("{mount}{path}"));
        let mkdir = |d: &Path| {
            std::fs::create_dir(d).map_err(|e| format!("cannot make cgroup {}: {e}", d.display()))
        };
        mkdir(&dir)?;
        let below = dir.join("below");
        let cg = ScenarioCgroup { dir, below, path };
        mkdir(&cg.below)?;
        Ok(cg)
    }
}

impl ScenarioCgroup {
    /// [`ScenarioCgroup::create`] for a test that needs cgroup v2: panics with what is
    /// missing instead of letting the test pass without running.
    pub fn required(name: &str) -> ScenarioCgroup {
        Self::create(name).unwrap_or_else(|why| panic!("this test needs a cgroup v2: {why}"))
    }

    /// `--cgroup DIR` for trafficgen: it joins this cgroup before moving a byte.
    pub fn join_arg(&self) -> Vec<String> {
        vec!["--cgroup".into(), self.dir.to_string_lossy().into_owned()]
    }
}

impl Drop for ScenarioCgroup {
    fn drop(&mut self) {
        // A cgroup whose last process was just reaped can be busy for a moment.
        for d in [&self.below, &self.dir] {
            for _ in 0..100 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
        }
    }
}
