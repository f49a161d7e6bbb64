//! Which processes are alive, for reclaiming the keys of those that are not.
use std::io;

/// Processes (thread-group ids) alive at one moment: one listing of `/proc` per
/// interval instead of one `stat` per key. A bitmap indexed by PID, as every key of
/// the map is checked against it: at most 512 KiB, as PIDs are below
/// `PID_MAX_LIMIT` (2^22), and 13 KiB when they are below 100k.
#[derive(Debug, Clone, Default)]
pub struct LivePids {
    bits: Vec<u64>,
    len: usize,
}

impl LivePids {
    /// Lists the numeric entries of `/proc` (thread-group ids only: threads are not
    /// listed there, and map keys are thread-group ids).
    pub fn scan() -> io::Result<Self> {
        let mut pids = Vec::with_capacity(1024);
        for entry in std::fs::read_dir("/proc")? {
            if let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
                pids.push(pid);
            }
        }
        Ok(Self::from_iter(pids))
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.bits
            .get(pid as usize / 64)
            .is_some_and(|w| w >> (pid % 64) & 1 == 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromIterator<u32> for LivePids {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut live = Self::default();
        for pid in iter {
            let word = pid as usize / 64;
            if word >= live.bits.len() {
                live.bits.resize(word + 1, 0);
            }
            let bit = 1 << (pid % 64);
            if live.bits[word] & bit == 0 {
                live.bits[word] |= bit;
                live.len += 1;
            }
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_pids_answer_membership_in_any_order() {
        let live: LivePids = [30, 1, 7, 7, 4_000_000].into_iter().collect();
        assert_eq!(live.len(), 4);
        assert!(live.contains(1) && live.contains(7) && live.contains(4_000_000));
        assert!(!live.contains(0) && !live.contains(8));
        assert!(!live.contains(4_000_001) && !live.contains(u32::MAX));
        assert!(LivePids::default().is_empty() && !LivePids::default().contains(0));
    }

    #[test]
    fn scanning_proc_finds_this_process_and_init() {
        let live = LivePids::scan().unwrap();
        assert!(live.contains(std::process::id()));
        assert!(live.contains(1));
    }
}
