//! Reads one of the kernel's counter maps (a per-CPU hash of any key to
//! [`ProcCounters`]) into cumulative [`Sample`]s. The per-process map (key: PID) and
//! the flow map (key: [`FlowKey`]) are two instances of the same reader, so both get
//! the same guarantees:
//!
//! - one read is the whole map in batches of thousands of keys
//!   (`BPF_MAP_LOOKUP_BATCH`, falling back to get_next_key + lookup on kernels
//!   without it), then one listing of `/proc` to learn which processes are alive;
//! - a key whose process is gone is reclaimed with an atomic lookup-and-delete,
//!   which returns its final value, so no byte written before the delete is lost
//!   (before Linux 5.14, lookup then delete: the process is gone, nothing writes);
//! - between reports, [`CounterReader::sweep`] reclaims early when a map with an
//!   insert counter is over a quarter full.
use std::{
    hash::Hash,
    io,
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
};

use anyhow::{anyhow, Context as _, Result};
use aya::maps::{IterableMap, MapData, PerCpuArray, PerCpuHashMap};
use flowtop_common::{FlowKey, ProcCounters};

use super::{live::LivePids, sys_bpf, Bytes, Comm};

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

/// A key of a counter map.
pub trait CounterKey: aya::Pod + Copy + Default + Eq + Hash {
    /// The process (thread group) whose bytes the key counts: when it is gone, the
    /// key is reclaimed.
    fn tgid(&self) -> u32;
}

impl CounterKey for u32 {
    fn tgid(&self) -> u32 {
        *self
    }
}

impl CounterKey for FlowKey {
    fn tgid(&self) -> u32 {
        self.tgid
    }
}

/// One key's cumulative counters as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample<K> {
    pub key: K,
    /// When the kernel created the key: which life of a reused key this is.
    pub born: u64,
    /// The newest name a CPU wrote for the key's process.
    pub comm: Comm,
    pub bytes: Bytes,
    /// The process is gone and its key was deleted with this final value.
    pub reclaimed: bool,
}

/// Whether the kernel offers `BPF_MAP_LOOKUP_BATCH` for this map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// Not tried yet: the first read probes it.
    Unknown,
    Supported,
    Unsupported,
}

/// Reads one counter map; the programs keep writing to it meanwhile.
pub struct CounterReader<K: CounterKey> {
    map: PerCpuHashMap<MapData, K, ProcCounters>,
    /// Keys ever inserted by the programs, where the map has such a counter.
    inserts: Option<PerCpuArray<MapData, u64>>,
    capacity: u32,
    possible_cpus: usize,
    /// False once the kernel refused lookup-and-delete (before Linux 5.14).
    atomic_delete: bool,
    /// Keys flowtop deleted; with the kernel's insert count, the map's occupancy.
    deleted: u64,
    /// Keys the kernel deleted itself (exit program), as last told.
    kernel_deleted: u64,
    /// Final values of keys reclaimed by [`CounterReader::sweep`] since the last read.
    pending: Vec<Sample<K>>,
    batch: Batch,
    /// Reused between intervals: keys and `keys x possible_cpus` values of one batch.
    batch_keys: Vec<K>,
    batch_values: Vec<ProcCounters>,
    /// Keys read last time: the next read's capacity, so it is allocated once.
    last_read: usize,
}

impl<K: CounterKey> CounterReader<K> {
    /// `inserts`: the programs' count of keys they created in `map` (makes
    /// [`Self::occupancy`] and early sweeps possible); `capacity`: the map's size.
    pub fn new(
        map: PerCpuHashMap<MapData, K, ProcCounters>,
        inserts: Option<PerCpuArray<MapData, u64>>,
        capacity: u32,
    ) -> Result<Self> {
        let possible_cpus = aya::util::nr_cpus()
            .map_err(|(path, e)| anyhow!("reading {path}: {e}"))?
            .get() as usize;
        Ok(Self {
            map,
            inserts,
            capacity,
            possible_cpus,
            atomic_delete: true,
            deleted: 0,
            kernel_deleted: 0,
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

    /// Reads every key. Keys of processes that no longer exist are deleted in the
    /// same step that reads their final value, so their last bytes are in this read,
    /// together with those reclaimed by [`Self::sweep`] since the last read.
    pub fn read(&mut self) -> Result<Vec<Sample<K>>> {
        self.read_with(LivePids::scan)
    }

    /// [`read`](Self::read) with the set of live processes taken from `live`, which
    /// is called after the map was read: a key whose process is missing from that
    /// later listing is certainly dead (a process that appears only after the
    /// listing cannot have a key in the earlier read).
    pub fn read_with(
        &mut self,
        live: impl FnOnce() -> io::Result<LivePids>,
    ) -> Result<Vec<Sample<K>>> {
        let mut samples = std::mem::take(&mut self.pending);
        let first = samples.len();
        samples.reserve(self.last_read + self.last_read / 8);
        self.read_all(&mut samples)?;
        self.last_read = samples.len() - first;
        let live = live().context("listing processes in /proc")?;
        // In place, in the order read: a dead process's sample becomes its final
        // value (or goes, when its key was already gone).
        let mut kept = first;
        for i in first..samples.len() {
            let key = samples[i].key;
            if live.contains(key.tgid()) {
                samples.swap(kept, i);
                kept += 1;
            } else if let Some(v) = self.take_final(&key)? {
                samples[kept] = sum_cpus(key, &v, true);
                kept += 1;
            }
        }
        samples.truncate(kept);
        Ok(samples)
    }

    /// Between reports: when the map is more than a quarter full, reclaims the keys
    /// of processes that have exited and keeps their final values for the next read.
    /// Under heavy process churn this keeps room for new processes, so nothing goes
    /// unrecorded; otherwise it costs one array read. A map without an insert
    /// counter is never swept early.
    pub fn sweep(&mut self) -> Result<()> {
        if self.inserts.is_none() || self.occupancy()? * 4 < u64::from(self.capacity) {
            return Ok(());
        }
        let mut samples = Vec::new();
        self.read_all(&mut samples)?;
        let live = LivePids::scan().context("listing processes in /proc")?;
        let before = self.deleted;
        for sample in samples {
            if !live.contains(sample.key.tgid()) {
                if let Some(v) = self.take_final(&sample.key)? {
                    self.pending.push(sum_cpus(sample.key, &v, true));
                }
            }
        }
        log::debug!(
            "sweep reclaimed {} keys of exited processes",
            self.deleted - before
        );
        Ok(())
    }

    /// The number of keys the kernel's exit program deleted so far (a running
    /// total), for [`Self::occupancy`] and the early sweeps that depend on it.
    pub fn note_kernel_deletes(&mut self, total: u64) {
        self.kernel_deleted = total;
    }

    /// Keys in the map now (inserted by the programs minus deleted by flowtop or the
    /// exit program); 0 for maps without an insert counter.
    pub fn occupancy(&self) -> Result<u64> {
        let Some(inserts) = &self.inserts else {
            return Ok(0);
        };
        let inserted: u64 = inserts
            .get(&0, 0)
            .context("reading the insert count")?
            .iter()
            .sum();
        Ok(inserted.saturating_sub(self.deleted + self.kernel_deleted))
    }

    fn fd(&self) -> RawFd {
        self.map.map().fd().as_fd().as_raw_fd()
    }

    /// Every key with its per-CPU values summed, batched when the kernel can.
    fn read_all(&mut self, out: &mut Vec<Sample<K>>) -> Result<()> {
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
        // Collect keys first: deleting while walking with get_next_key can restart
        // the walk.
        let keys: Vec<K> = self
            .map
            .keys()
            .collect::<Result<_, _>>()
            .context("listing map keys")?;
        out.reserve(keys.len());
        for key in keys {
            match self.map.get(&key, 0) {
                Ok(v) => out.push(sum_cpus(key, &v, false)),
                // Only flowtop deletes keys, and only after this listing.
                Err(e) => return Err(e).context("reading map value"),
            }
        }
        Ok(())
    }

    fn read_batched(&mut self, out: &mut Vec<Sample<K>>) -> io::Result<()> {
        let cpus = self.possible_cpus;
        let mut capacity = (BATCH_VALUE_BYTES / (cpus * std::mem::size_of::<ProcCounters>()))
            .clamp(MIN_BATCH_KEYS, MAX_BATCH_KEYS);
        let fd = self.fd();
        let mut cursor = sys_bpf::BatchCursor::default();
        while !cursor.is_done() {
            if self.batch_keys.len() < capacity {
                self.batch_keys.resize(capacity, K::default());
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
                    .map(|(&key, per_cpu)| sum_cpus(key, per_cpu, false)),
            );
        }
        Ok(())
    }

    /// Removes a dead process's key and returns its final per-CPU values.
    fn take_final(&mut self, key: &K) -> Result<Option<Vec<ProcCounters>>> {
        if self.atomic_delete {
            let mut buf = vec![ProcCounters::default(); self.possible_cpus];
            let mut k = *key;
            match sys_bpf::lookup_and_delete(
                self.fd(),
                as_bytes_mut(std::slice::from_mut(&mut k)),
                as_bytes_mut(&mut buf),
            ) {
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
        let v = match self.map.get(key, 0) {
            Ok(v) => v.to_vec(),
            Err(aya::maps::MapError::KeyNotFound) => return Ok(None),
            Err(e) => return Err(e).context("reading map value"),
        };
        self.map.remove(key).context("deleting map key")?;
        self.deleted += 1;
        Ok(Some(v))
    }
}

/// The bytes of a slice of plain-old-data values, for the kernel to read or fill.
fn as_bytes_mut<T: aya::Pod>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: `T: Pod` has no padding and accepts any bit pattern.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// One key's sample from its per-CPU values (or from one value already summed).
pub(super) fn sum_cpus<K>(key: K, per_cpu: &[ProcCounters], reclaimed: bool) -> Sample<K> {
    let (bytes, comm) = sum_counters(per_cpu);
    Sample {
        key,
        // Set on the CPU that created the key, zero on the others.
        born: per_cpu.iter().map(|c| c.born_ns).max().unwrap_or(0),
        comm: Comm::from_kernel(comm),
        bytes,
        reclaimed,
    }
}

/// One key's per-CPU counters summed, with the name the newest CPU wrote: the
/// kernel writes a name at key creation and at each rename, each time on the CPU it
/// runs on.
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
            7u32,
            &[
                counters(0, 0, ""),
                counters(5, 1, "curl"),
                counters(2, 3, "curl"),
            ],
            false,
        );
        assert_eq!(s.bytes, Bytes { rx: 7, tx: 4 });
        assert_eq!(&*s.comm, "curl");
    }

    #[test]
    fn the_newest_name_wins() {
        let named = |comm, ns| ProcCounters {
            comm_ns: ns,
            ..counters(1, 0, comm)
        };
        // Created as "bash" on CPU 2, renamed to "curl" by exec on CPU 0.
        let s = sum_cpus(
            9u32,
            &[named("curl", 20), named("", 0), named("bash", 10)],
            false,
        );
        assert_eq!(&*s.comm, "curl");
        let s = sum_cpus(9u32, &[named("bash", 10), named("curl", 20)], false);
        assert_eq!(&*s.comm, "curl");
    }

    #[test]
    fn keys_name_their_process() {
        let flow = FlowKey {
            tgid: 42,
            lport: 80,
            ..Default::default()
        };
        assert_eq!((flow.tgid(), 42u32.tgid()), (42, 42));
    }
}
