//! Reads `FLOW_BYTES` (per connection / per cgroup, `--by conn`/`--by cgroup`) and
//! turns successive cumulative reads into per-interval deltas, with the same rules as
//! the per-process map: counters are never reset, keys of dead processes are removed
//! with lookup-and-delete, taking their final value in the same step.
use std::{
    collections::HashMap,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use anyhow::{anyhow, Context as _, Result};
use aya::{
    maps::{IterableMap as _, Map, MapData, PerCpuArray, PerCpuHashMap},
    Ebpf,
};
use flowtop_common::{
    FlowKey, ProcCounters, Unrecorded, MAP_FLOW_BYTES, MAP_UNRECORDED, UNRECORDED_FLOW,
};

use super::{read::sum_per_cpu, sys_bpf, Bytes};

/// One flow's cumulative counters as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSample {
    pub key: FlowKey,
    pub comm: String,
    pub bytes: Bytes,
    /// The process is gone and the key was deleted with this final value.
    pub reclaimed: bool,
}

/// One flow's bytes in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDelta {
    pub key: FlowKey,
    pub comm: String,
    pub interval: Bytes,
    /// Since flowtop started.
    pub total: Bytes,
}

pub struct FlowReader {
    flows: PerCpuHashMap<MapData, FlowKey, ProcCounters>,
    /// A second handle on `UNRECORDED` (the per-process reader owns the first).
    unrecorded: PerCpuArray<MapData, Unrecorded>,
    possible_cpus: usize,
}

impl FlowReader {
    /// Call before `MapReader::new`, which takes `UNRECORDED` out of `ebpf`.
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        let flows = ebpf
            .take_map(MAP_FLOW_BYTES)
            .ok_or_else(|| anyhow!("map {MAP_FLOW_BYTES} missing from the eBPF object"))?;
        let flows = PerCpuHashMap::try_from(flows)?;
        let fd = match ebpf.map(MAP_UNRECORDED) {
            Some(Map::PerCpuArray(data)) => data.fd().as_fd().try_clone_to_owned()?,
            _ => return Err(anyhow!("map {MAP_UNRECORDED} missing from the eBPF object")),
        };
        let unrecorded = PerCpuArray::try_from(Map::PerCpuArray(MapData::from_fd(fd)?))?;
        let possible_cpus = aya::util::nr_cpus()
            .map_err(|(path, e)| anyhow!("reading {path}: {e}"))?
            .get() as usize;
        Ok(Self {
            flows,
            unrecorded,
            possible_cpus,
        })
    }

    /// Every flow's cumulative bytes, and the cumulative bytes `FLOW_BYTES` had no room for.
    pub fn read(&mut self) -> Result<(Vec<FlowSample>, Bytes)> {
        let keys: Vec<FlowKey> = self
            .flows
            .keys()
            .collect::<Result<_, _>>()
            .context("listing flow keys")?;
        let mut alive: HashMap<u32, bool> = HashMap::new();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let live = *alive
                .entry(key.tgid)
                .or_insert_with(|| Path::new("/proc").join(key.tgid.to_string()).exists());
            let per_cpu = if live {
                self.flows
                    .get(&key, 0)
                    .context("reading flow value")?
                    .to_vec()
            } else {
                match self.take_final(&key)? {
                    Some(v) => v,
                    None => continue,
                }
            };
            out.push(sum_cpus(key, &per_cpu, !live));
        }
        let lost = self
            .unrecorded
            .get(&UNRECORDED_FLOW, 0)
            .context("reading unrecorded flow bytes")?
            .iter()
            .fold(Bytes::default(), |a, u| Bytes {
                rx: a.rx + u.rx_bytes,
                tx: a.tx + u.tx_bytes,
            });
        Ok((out, lost))
    }

    /// Removes a dead process's flow key, returning its final per-CPU values.
    fn take_final(&mut self, key: &FlowKey) -> Result<Option<Vec<ProcCounters>>> {
        let mut buf = vec![ProcCounters::default(); self.possible_cpus];
        let fd = self.flows.map().fd().as_fd().as_raw_fd();
        // SAFETY: FlowKey and ProcCounters are Pod; ProcCounters is 32 bytes, so the
        // buffer is exactly possible_cpus 8-byte aligned slots of the value size.
        let (k, v) = unsafe {
            (
                std::slice::from_raw_parts(
                    key as *const FlowKey as *const u8,
                    size_of::<FlowKey>(),
                ),
                std::slice::from_raw_parts_mut(
                    buf.as_mut_ptr() as *mut u8,
                    size_of_val(buf.as_slice()),
                ),
            )
        };
        match sys_bpf::lookup_and_delete(fd, k, v) {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(_) => {
                // Before 5.14: the process is gone, nothing writes its keys any more.
                let v = self
                    .flows
                    .get(key, 0)
                    .context("reading flow value")?
                    .to_vec();
                self.flows.remove(key).context("deleting flow key")?;
                Ok(Some(v))
            }
        }
    }
}

fn sum_cpus(key: FlowKey, per_cpu: &[ProcCounters], reclaimed: bool) -> FlowSample {
    let (bytes, comm) = sum_per_cpu(per_cpu);
    FlowSample {
        key,
        comm,
        bytes,
        reclaimed,
    }
}

/// Pure: cumulative flow samples in, interval deltas out (like `diff::Differ`).
#[derive(Debug, Default)]
pub struct FlowDiffer {
    /// Last cumulative value and total since start, per live key.
    seen: HashMap<FlowKey, (Bytes, Bytes)>,
    lost: Bytes,
}

impl FlowDiffer {
    /// Flows that moved bytes since the last call, and the unrecorded bytes of the interval.
    pub fn next(&mut self, samples: &[FlowSample], lost: Bytes) -> (Vec<FlowDelta>, Bytes) {
        let mut out = Vec::new();
        for s in samples {
            let (kernel, total) = self.seen.entry(s.key).or_default();
            let d = Bytes {
                rx: s.bytes.rx.saturating_sub(kernel.rx),
                tx: s.bytes.tx.saturating_sub(kernel.tx),
            };
            *kernel = s.bytes;
            total.rx += d.rx;
            total.tx += d.tx;
            if d.total() > 0 {
                out.push(FlowDelta {
                    key: s.key,
                    comm: s.comm.clone(),
                    interval: d,
                    total: *total,
                });
            }
            if s.reclaimed {
                self.seen.remove(&s.key);
            }
        }
        let d = Bytes {
            rx: lost.rx.saturating_sub(self.lost.rx),
            tx: lost.tx.saturating_sub(self.lost.tx),
        };
        self.lost = lost;
        (out, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tgid: u32, lport: u16, rx: u64, reclaimed: bool) -> FlowSample {
        FlowSample {
            key: FlowKey {
                tgid,
                lport,
                ..Default::default()
            },
            comm: "c".into(),
            bytes: Bytes { rx, tx: 0 },
            reclaimed,
        }
    }

    #[test]
    fn flows_are_diffed_per_key_and_reclaimed_keys_start_fresh() {
        let mut d = FlowDiffer::default();
        let (r, _) = d.next(
            &[sample(1, 80, 10, false), sample(1, 81, 5, false)],
            Bytes::default(),
        );
        assert_eq!(r.len(), 2);
        let (r, _) = d.next(
            &[sample(1, 80, 15, true), sample(1, 81, 5, false)],
            Bytes::default(),
        );
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].interval.rx, r[0].total.rx), (5, 15));
        let (r, _) = d.next(&[sample(1, 80, 3, false)], Bytes::default());
        assert_eq!((r[0].interval.rx, r[0].total.rx), (3, 3));
    }

    #[test]
    fn unrecorded_is_per_interval() {
        let mut d = FlowDiffer::default();
        assert_eq!(
            d.next(&[], Bytes { rx: 4, tx: 1 }).1,
            Bytes { rx: 4, tx: 1 }
        );
        assert_eq!(
            d.next(&[], Bytes { rx: 6, tx: 1 }).1,
            Bytes { rx: 2, tx: 0 }
        );
    }
}
