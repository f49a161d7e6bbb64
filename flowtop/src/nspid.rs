//! `--show-nspid`: the PID a process has inside its innermost PID namespace (what
//! `ps` shows inside its container), next to the host PID the kernel records.
//!
//! The kernel lists a process's PID in every namespace from the host's down on the
//! `NSpid:` line of `/proc/PID/status`; the last field is the innermost. It never
//! changes while the process lives, so it is read once per PID and kept until the
//! collector sees the process exit (its key reclaimed), never once per interval. A
//! process that is gone before it was first read stays unknown (None).
use std::{collections::HashMap, fs, path::PathBuf};

/// PID -> namespace PID, read on first sight and cached while the process lives.
#[derive(Debug)]
pub struct NsPids {
    /// `/proc`, or a fake tree in tests.
    proc: PathBuf,
    /// None: read and not known (process gone, or a kernel without `NSpid:`).
    cache: HashMap<u32, Option<u32>>,
}

impl Default for NsPids {
    fn default() -> Self {
        Self::with_proc("/proc")
    }
}

impl NsPids {
    pub fn with_proc(proc: impl Into<PathBuf>) -> Self {
        Self {
            proc: proc.into(),
            cache: HashMap::new(),
        }
    }

    /// `pid`'s namespace PID: from the cache, else read once from its status file.
    pub fn get(&mut self, pid: u32) -> Option<u32> {
        let proc = &self.proc;
        *self.cache.entry(pid).or_insert_with(|| {
            let status = fs::read_to_string(proc.join(pid.to_string()).join("status")).ok()?;
            innermost(&status)
        })
    }

    /// Forgets processes that exited: their PIDs may be reused by others.
    pub fn forget(&mut self, exited: impl IntoIterator<Item = u32>) {
        for pid in exited {
            self.cache.remove(&pid);
        }
    }

    /// PIDs remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

/// The last field of the `NSpid:` line of a `/proc/PID/status` text.
pub fn innermost(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_is_the_last_nspid_field() {
        let status = "Name:\tsh\nTgid:\t4242\nPid:\t4242\nNSpid:\t4242\t17\t1\nUid:\t0\n";
        assert_eq!(innermost(status), Some(1));
        assert_eq!(
            innermost("NSpid:\t4242\n"),
            Some(4242),
            "host namespace only"
        );
        assert_eq!(innermost("Pid:\t3\n"), None, "kernels before 4.1");
        assert_eq!(innermost("NSpid:\t\n"), None);
        assert_eq!(innermost("NSpid:\tx\n"), None);
    }

    #[test]
    fn read_once_and_cached_until_forgotten() {
        let dir = std::env::temp_dir().join(format!("flowtop-nspid-{}", std::process::id()));
        let status = dir.join("42").join("status");
        fs::create_dir_all(status.parent().unwrap()).unwrap();
        fs::write(&status, "NSpid:\t42\t7\n").unwrap();
        let mut ns = NsPids::with_proc(&dir);
        assert_eq!(ns.get(42), Some(7));
        // Not read again while cached: a changed file does not matter.
        fs::write(&status, "NSpid:\t42\t8\n").unwrap();
        assert_eq!(ns.get(42), Some(7));
        assert_eq!(ns.get(43), None, "no such process");
        assert_eq!(ns.len(), 2);
        ns.forget([42, 43]);
        assert!(ns.is_empty());
        // A new process with the same PID is read afresh.
        assert_eq!(ns.get(42), Some(8));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_process_is_in_some_namespace() {
        let mut ns = NsPids::default();
        assert!(ns.get(std::process::id()).is_some());
    }
}
