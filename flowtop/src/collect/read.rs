//! Reads the per-CPU maps into a [`Snapshot`].
//!
//! One interval's read is: the whole per-process map in batches of thousands of keys
//! (`BPF_MAP_LOOKUP_BATCH`, falling back to get_next_key + lookup on kernels without
//! it), then one listing of `/proc` to learn which processes are alive, then an
//! atomic lookup-and-delete of each dead process's key, which returns its final value.
use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
};

use anyhow::{anyhow, Context as _, Result};
use aya::{
    maps::{IterableMap, MapData, PerCpuArray, PerCpuHashMap},
    Ebpf,
};
use flowtop_common::{ProcCounters, Unrecorded, MAP_PROC_BYTES, MAP_PROC_INSERTS, MAP_UNRECORDED};

use super::{sys_bpf, Bytes, Comm, ProcSample, Snapshot};

// Batched and lookup-and-delete reads put one value per CPU at 8-byte aligned slots;
// `ProcCounters` fills its slot exactly, so a `Vec<ProcCounters>` is such a buffer.
const _: () = assert!(
    sys_bpf::per_cpu_slot(std::mem::size_of::<ProcCounters>())
        == std::mem::size_of::<ProcCounters>()
);

/// Bytes of per-CPU values one batch may hold: bounds flowtop's memory on machines
/// with many CPUs, while 2-CPU machines still read 4096 keys per call.
const BATCH_VALUE_BYTES: usize = 256 * 1024;
const MAX_BATCH_KEYS: usize = 4096;
const MIN_BATCH_KEYS: usize = 64;

/// Whether the kernel offers `BPF_MAP_LOOKUP_BATCH` for the per-process map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// Not tried yet: the first read probes it.
    Unknown,
    Supported,
    Unsupported,
}

/// Owns the maps; the programs keep writing to them while we read.
pub struct MapReader {
    procs: PerCpuHashMap<MapData, u32, ProcCounters>,
    unrecorded: PerCpuArray<MapData, Unrecorded>,
    /// Keys ever inserted by the programs (None for maps made by benchmarks).
    inserts: Option<PerCpuArray<MapData, u64>>,
    capacity: u32,
    possible_cpus: usize,
    /// False once the kernel refused lookup-and-delete (before Linux 5.14).
    atomic_delete: bool,
    /// Keys flowtop deleted; with the kernel's insert count, the map's occupancy.
    deleted: u64,
    /// Final values of processes reclaimed by [`MapReader::sweep`] since the last read.
    pending: Vec<ProcSample>,
    batch: Batch,
    /// Reused between intervals: keys and `keys x possible_cpus` values of one batch.
    batch_keys: Vec<u32>,
    batch_values: Vec<ProcCounters>,
    /// Keys read last time: the next snapshot's capacity, so it is allocated once.
    last_read: usize,
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
        let mut reader = Self::from_maps(procs, unrecorded)?;
        reader.inserts = Some(inserts);
        reader.capacity = capacity;
        Ok(reader)
    }

    /// A reader over maps of flowtop's layout created elsewhere (benchmarks).
    pub fn from_maps(
        procs: PerCpuHashMap<MapData, u32, ProcCounters>,
        unrecorded: PerCpuArray<MapData, Unrecorded>,
    ) -> Result<Self> {
        let possible_cpus = aya::util::nr_cpus()
            .map_err(|(path, e)| anyhow!("reading {path}: {e}"))?
            .get() as usize;
        Ok(Self {
            procs,
            unrecorded,
            inserts: None,
            capacity: u32::MAX,
            possible_cpus,
            atomic_delete: true,
            deleted: 0,
            pending: Vec::new(),
            batch: Batch::Unknown,
            batch_keys: Vec::new(),
            batch_values: Vec::new(),
            last_read: 0,
        })
    }

    /// Whether reads use `BPF_MAP_LOOKUP_BATCH` (`None`: not probed yet).
    pub fn batched(&self) -> Option<bool> {
        match self.batch {
            Batch::Unknown => None,
            Batch::Supported => Some(true),
            Batch::Unsupported => Some(false),
        }
    }

    /// Reads key by key as on kernels without batch operations (for benchmarks).
    #[doc(hidden)]
    pub fn force_key_by_key(&mut self) {
        self.batch = Batch::Unsupported;
    }

    /// Reads every key. Keys of processes that no longer exist are deleted in the same
    /// step that reads their final value, so their last bytes are in this snapshot,
    /// together with those reclaimed by [`MapReader::sweep`] since the last read.
    pub fn read(&mut self) -> Result<Snapshot> {
        self.read_with(LivePids::scan)
    }

    /// [`read`](Self::read) with the set of live processes taken from `live`, which is
    /// called after the map was read: a key whose process is missing from that later
    /// listing is certainly dead (a process that appears only after the listing
    /// cannot have a key in the earlier read).
    pub fn read_with(&mut self, live: impl FnOnce() -> io::Result<LivePids>) -> Result<Snapshot> {
        let mut procs = std::mem::take(&mut self.pending);
        let first = procs.len();
        procs.reserve(self.last_read + self.last_read / 8);
        self.read_procs(&mut procs)?;
        self.last_read = procs.len() - first;
        let live = live().context("listing processes in /proc")?;
        // In place, in the order read: a dead process's sample becomes its final value
        // (or goes, when its key was already gone).
        let mut kept = first;
        for i in first..procs.len() {
            let pid = procs[i].pid;
            if live.contains(pid) {
                procs.swap(kept, i);
                kept += 1;
            } else if let Some(v) = self.take_final(pid)? {
                procs[kept] = sum_cpus(pid, &v, true);
                kept += 1;
            }
        }
        procs.truncate(kept);
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
        let mut samples = Vec::new();
        self.read_procs(&mut samples)?;
        let live = LivePids::scan().context("listing processes in /proc")?;
        let before = self.deleted;
        for sample in samples {
            if !live.contains(sample.pid) {
                if let Some(v) = self.take_final(sample.pid)? {
                    self.pending.push(sum_cpus(sample.pid, &v, true));
                }
            }
        }
        log::debug!(
            "sweep reclaimed {} keys of exited processes",
            self.deleted - before
        );
        Ok(())
    }

    /// Keys in the map now (inserted by the programs minus deleted by flowtop); 0 for
    /// maps without an insert counter.
    pub fn occupancy(&self) -> Result<u64> {
        let Some(inserts) = &self.inserts else {
            return Ok(0);
        };
        let inserted: u64 = inserts
            .get(&0, 0)
            .context("reading the insert count")?
            .iter()
            .sum();
        Ok(inserted.saturating_sub(self.deleted))
    }

    fn fd(&self) -> RawFd {
        self.procs.map().fd().as_fd().as_raw_fd()
    }

    /// Every key with its per-CPU values summed, batched when the kernel can.
    fn read_procs(&mut self, out: &mut Vec<ProcSample>) -> Result<()> {
        let start = out.len();
        if self.batch != Batch::Unsupported {
            match self.read_batched(out) {
                Ok(()) => {
                    self.batch = Batch::Supported;
                    return Ok(());
                }
                Err(e) if self.batch == Batch::Unknown && sys_bpf::is_unsupported(&e) => {
                    log::info!("batched map reads unsupported ({e}); reading key by key");
                    self.batch = Batch::Unsupported;
                    out.truncate(start);
                }
                Err(e) => return Err(e).context("reading the map in batches"),
            }
        }
        // Collect keys first: deleting while walking with get_next_key can restart the walk.
        let keys: Vec<u32> = self
            .procs
            .keys()
            .collect::<Result<_, _>>()
            .context("listing map keys")?;
        out.reserve(keys.len());
        for pid in keys {
            match self.procs.get(&pid, 0) {
                Ok(v) => out.push(sum_cpus(pid, &v, false)),
                // Only flowtop deletes keys, and only after this listing.
                Err(e) => return Err(e).context("reading map value"),
            }
        }
        Ok(())
    }

    fn read_batched(&mut self, out: &mut Vec<ProcSample>) -> io::Result<()> {
        let cpus = self.possible_cpus;
        let mut capacity = (BATCH_VALUE_BYTES / (cpus * std::mem::size_of::<ProcCounters>()))
            .clamp(MIN_BATCH_KEYS, MAX_BATCH_KEYS);
        let fd = self.fd();
        let mut cursor = sys_bpf::BatchCursor::default();
        while !cursor.is_done() {
            if self.batch_keys.len() < capacity {
                self.batch_keys.resize(capacity, 0);
                self.batch_values
                    .resize(capacity * cpus, ProcCounters::default());
            }
            let n = match sys_bpf::lookup_batch(
                fd,
                &mut cursor,
                as_bytes_mut(&mut self.batch_keys[..capacity]),
                as_bytes_mut(&mut self.batch_values[..capacity * cpus]),
                capacity as u32,
            ) {
                Ok(n) => n as usize,
                // One hash bucket holds more keys than fit: make room and retry.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    capacity *= 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            out.extend(
                self.batch_keys[..n]
                    .iter()
                    .zip(self.batch_values.chunks_exact(cpus))
                    .map(|(&pid, per_cpu)| sum_cpus(pid, per_cpu, false)),
            );
        }
        Ok(())
    }

    /// Removes a dead process's key and returns its final per-CPU values.
    fn take_final(&mut self, pid: u32) -> Result<Option<Vec<ProcCounters>>> {
        if self.atomic_delete {
            let mut buf = vec![ProcCounters::default(); self.possible_cpus];
            match sys_bpf::lookup_and_delete(self.fd(), &pid.to_ne_bytes(), as_bytes_mut(&mut buf))
            {
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

/// The bytes of a slice of plain-old-data values, for the kernel to fill.
fn as_bytes_mut<T: aya::Pod>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: `T: Pod` has no padding and accepts any bit pattern.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

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

fn sum_cpus(pid: u32, per_cpu: &[ProcCounters], reclaimed: bool) -> ProcSample {
    let (bytes, comm) = sum_counters(per_cpu);
    ProcSample {
        pid,
        comm: Comm::from_kernel(comm),
        bytes,
        reclaimed,
    }
}

/// One key's per-CPU counters summed, with the name the newest CPU wrote (every map
/// of `ProcCounters` values is read this way): the kernel writes a name at key
/// creation and at each rename, each time on the CPU it runs on.
pub(crate) fn sum_per_cpu(per_cpu: &[ProcCounters]) -> (Bytes, String) {
    let (bytes, comm) = sum_counters(per_cpu);
    (bytes, comm_to_string(comm))
}

/// [`sum_per_cpu`] with the name as the kernel's bytes.
fn sum_counters(per_cpu: &[ProcCounters]) -> (Bytes, &[u8]) {
    let mut bytes = Bytes::default();
    let mut newest: Option<&ProcCounters> = None;
    for c in per_cpu {
        bytes.rx += c.rx_bytes;
        bytes.tx += c.tx_bytes;
        if c.comm[0] != 0 && newest.is_none_or(|n| c.comm_ns > n.comm_ns) {
            newest = Some(c);
        }
    }
    (bytes, newest.map_or(&[], |c| &c.comm[..]))
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
    fn the_newest_name_wins() {
        let named = |comm, ns| ProcCounters {
            comm_ns: ns,
            ..counters(1, 0, comm)
        };
        // Created as "bash" on CPU 2, renamed to "curl" by exec on CPU 0.
        let s = sum_cpus(
            9,
            &[named("curl", 20), named("", 0), named("bash", 10)],
            false,
        );
        assert_eq!(s.comm, "curl");
        let s = sum_cpus(9, &[named("bash", 10), named("curl", 20)], false);
        assert_eq!(s.comm, "curl");
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(comm_to_string(b"sshd\0\0\0garbage"), "sshd");
        assert_eq!(comm_to_string(b"0123456789abcdef"), "0123456789abcdef");
    }

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
