//! Reads the per-CPU maps into a [`Snapshot`].
use std::{
    collections::HashSet,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use anyhow::{anyhow, Context as _, Result};
use aya::{
    maps::{IterableMap, MapData, PerCpuArray, PerCpuHashMap},
    Ebpf,
};
use flowtop_common::{ProcCounters, Unrecorded, MAP_PROC_BYTES, MAP_PROC_INSERTS, MAP_UNRECORDED};

use super::{sys_bpf, Bytes, ProcSample, Snapshot};

/// Owns the maps; the programs keep writing to them while we read.
pub struct MapReader {
    procs: PerCpuHashMap<MapData, u32, ProcCounters>,
    unrecorded: PerCpuArray<MapData, Unrecorded>,
    inserts: PerCpuArray<MapData, u64>,
    capacity: u32,
    possible_cpus: usize,
    /// False once the kernel refused lookup-and-delete (before Linux 5.14).
    atomic_delete: bool,
    /// Keys flowtop deleted; with the kernel's insert count, the map's occupancy.
    deleted: u64,
    /// Final values of processes reclaimed by [`MapReader::sweep`] since the last read.
    pending: Vec<ProcSample>,
}

impl MapReader {
    pub fn new(ebpf: &mut Ebpf, capacity: u32) -> Result<Self> {
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| anyhow!("map {name} missing from the eBPF object"))
        };
        let procs = PerCpuHashMap::try_from(take(ebpf, MAP_PROC_BYTES)?)?;
        let unrecorded = PerCpuArray::try_from(take(ebpf, MAP_UNRECORDED)?)?;
        let inserts = PerCpuArray::try_from(take(ebpf, MAP_PROC_INSERTS)?)?;
        let possible_cpus =
            aya::util::nr_cpus().map_err(|(path, e)| anyhow!("reading {path}: {e}"))?;
        Ok(Self {
            procs,
            unrecorded,
            inserts,
            capacity,
            possible_cpus,
            atomic_delete: true,
            deleted: 0,
            pending: Vec::new(),
        })
    }

    /// Reads every key. Keys of processes that no longer exist are deleted in the same
    /// step that reads their final value, so their last bytes are in this snapshot,
    /// together with those reclaimed by [`MapReader::sweep`] since the last read.
    pub fn read(&mut self) -> Result<Snapshot> {
        let keys = self.keys()?;
        let live = LivePids::scan();
        let mut procs = std::mem::take(&mut self.pending);
        procs.reserve(keys.len());
        for pid in keys {
            if live.contains(pid) {
                let v = self.procs.get(&pid, 0).context("reading map value")?;
                procs.push(sum_cpus(pid, &v, false));
            } else if let Some(v) = self.take_final(pid)? {
                procs.push(sum_cpus(pid, &v, true));
            }
        }
        let unrecorded = self
            .unrecorded
            .get(&0, 0)
            .context("reading unrecorded bytes")?
            .iter()
            .fold(Bytes::default(), |acc, u| Bytes {
                rx: acc.rx + u.rx_bytes,
                tx: acc.tx + u.tx_bytes,
            });
        Ok(Snapshot { procs, unrecorded })
    }

    /// Between reports: when the map is more than a quarter full, reclaims the keys of
    /// processes that have exited and keeps their final values for the next report.
    /// Under heavy process churn this keeps room for new processes, so nothing goes
    /// unrecorded; otherwise it costs one array read.
    pub fn sweep(&mut self) -> Result<()> {
        if self.occupancy()? * 4 < u64::from(self.capacity) {
            return Ok(());
        }
        let live = LivePids::scan();
        let before = self.deleted;
        for pid in self.keys()? {
            if !live.contains(pid) {
                if let Some(v) = self.take_final(pid)? {
                    self.pending.push(sum_cpus(pid, &v, true));
                }
            }
        }
        log::debug!(
            "sweep reclaimed {} keys of exited processes",
            self.deleted - before
        );
        Ok(())
    }

    /// Keys in the map now (inserted by the programs minus deleted by flowtop).
    pub fn occupancy(&self) -> Result<u64> {
        let inserted: u64 = self
            .inserts
            .get(&0, 0)
            .context("reading the insert count")?
            .iter()
            .sum();
        Ok(inserted.saturating_sub(self.deleted))
    }

    /// Collect keys first: deleting while walking with get_next_key can restart the walk.
    fn keys(&self) -> Result<Vec<u32>> {
        self.procs
            .keys()
            .collect::<Result<_, _>>()
            .context("listing map keys")
    }

    /// Removes a dead process's key and returns its final per-CPU values.
    fn take_final(&mut self, pid: u32) -> Result<Option<Vec<ProcCounters>>> {
        if self.atomic_delete {
            let mut buf = vec![ProcCounters::default(); self.possible_cpus];
            let fd = self.procs.map().fd().as_fd().as_raw_fd();
            // SAFETY: ProcCounters is Pod and 8-byte aligned in size (32 bytes), so the
            // buffer is exactly possible_cpus slots of the map's value size.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(
                    buf.as_mut_ptr() as *mut u8,
                    std::mem::size_of_val(buf.as_slice()),
                )
            };
            match sys_bpf::lookup_and_delete(fd, &pid.to_ne_bytes(), bytes) {
                Ok(()) => {
                    self.deleted += 1;
                    return Ok(Some(buf));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                Err(e) => {
                    log::info!(
                        "lookup-and-delete unsupported ({e}); falling back to lookup, then delete"
                    );
                    self.atomic_delete = false;
                }
            }
        }
        // Older kernels: a write landing between these two calls would be lost, but
        // the process is gone, so nothing writes to its key any more.
        let v = self
            .procs
            .get(&pid, 0)
            .context("reading map value")?
            .to_vec();
        self.procs.remove(&pid).context("deleting map key")?;
        self.deleted += 1;
        Ok(Some(v))
    }
}

/// Processes alive now: one readdir of /proc instead of a stat per key. A PID not
/// in the listing is checked once more, for a process started after the listing.
struct LivePids(HashSet<u32>);

impl LivePids {
    fn scan() -> Self {
        let pids = std::fs::read_dir("/proc")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Self(pids)
    }

    fn contains(&self, pid: u32) -> bool {
        self.0.contains(&pid) || Path::new("/proc").join(pid.to_string()).exists()
    }
}

fn sum_cpus(pid: u32, per_cpu: &[ProcCounters], reclaimed: bool) -> ProcSample {
    let mut bytes = Bytes::default();
    let mut comm: &[u8] = &[];
    for c in per_cpu {
        bytes.rx += c.rx_bytes;
        bytes.tx += c.tx_bytes;
        if comm.is_empty() && c.comm[0] != 0 {
            comm = &c.comm;
        }
    }
    ProcSample {
        pid,
        comm: comm_to_string(comm),
        bytes,
        reclaimed,
    }
}

/// The NUL-padded kernel name as text (lossy: names are bytes, not UTF-8).
pub fn comm_to_string(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(rx: u64, tx: u64, comm: &str) -> ProcCounters {
        let mut c = ProcCounters {
            rx_bytes: rx,
            tx_bytes: tx,
            ..Default::default()
        };
        c.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        c
    }

    #[test]
    fn sums_every_cpu_and_takes_a_name_from_any_cpu_that_has_one() {
        let s = sum_cpus(
            7,
            &[
                counters(0, 0, ""),
                counters(5, 1, "curl"),
                counters(2, 3, "curl"),
            ],
            false,
        );
        assert_eq!(s.bytes, Bytes { rx: 7, tx: 4 });
        assert_eq!(s.comm, "curl");
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(comm_to_string(b"sshd\0\0\0garbage"), "sshd");
        assert_eq!(comm_to_string(b"0123456789abcdef"), "0123456789abcdef");
    }
}
