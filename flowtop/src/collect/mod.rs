//! Turning the kernel's cumulative counters into per-interval rows.
//!
//! One pipeline with two instances, per process (key: PID) and per flow (key:
//! process + connection or cgroup): [`maps`] takes the maps out of the loaded object,
//! [`counters`] reads one map (cumulative bytes since each key was created) and
//! reclaims keys of processes that are gone, taking their final value in the same
//! step, where [`exits`] has not got them from the kernel's own reclaim; [`diff`] (pure) turns successive reads into interval and total amounts;
//! [`pipeline`] runs one interval of both instances (and keeps the
//! `--container`/`--pod` kernel slots current); [`aggregate`] makes rows of any
//! `--by`, [`grouper`] picks the grouping's function and names containers.
//! [`collector`] drives them for reports, `-i` (`crate::interactive::source`) for
//! every grouping at once, [`exporter`] reads the same pipeline for `--serve`.
pub mod aggregate;
pub mod collector;
pub mod comm;
pub mod conn;
pub mod counters;
pub mod diff;
pub mod exits;
pub mod exporter;
pub mod flows;
pub mod grouper;
pub mod live;
pub mod maps;
pub mod order;
pub mod pipeline;
pub mod realtime;
pub mod row;
pub mod sys_bpf;

pub use comm::Comm;

/// Bytes received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub rx: u64,
    pub tx: u64,
}

impl Bytes {
    pub fn total(&self) -> u64 {
        self.rx + self.tx
    }

    /// What a cumulative counter gained since `earlier` (never negative: a key that
    /// was reclaimed and made again starts from zero).
    pub fn since(self, earlier: Bytes) -> Bytes {
        Bytes {
            rx: self.rx.saturating_sub(earlier.rx),
            tx: self.tx.saturating_sub(earlier.tx),
        }
    }
}

impl std::ops::Add for Bytes {
    type Output = Bytes;

    fn add(self, o: Bytes) -> Bytes {
        Bytes {
            rx: self.rx + o.rx,
            tx: self.tx + o.tx,
        }
    }
}

impl From<flowtop_common::Unrecorded> for Bytes {
    fn from(u: flowtop_common::Unrecorded) -> Bytes {
        Bytes {
            rx: u.rx_bytes,
            tx: u.tx_bytes,
        }
    }
}
