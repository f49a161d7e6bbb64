//! Rows and stamps for the output modules' unit tests.
use std::time::{Duration, SystemTime};

use super::Stamp;
use crate::collect::{diff::ProcRow, Bytes};

pub fn row(pid: u32, comm: &str, rx: u64, tx: u64, rxt: u64, txt: u64) -> ProcRow {
    ProcRow {
        pid,
        nspid: None,
        comm: comm.into(),
        interval: Bytes { rx, tx },
        total: Bytes { rx: rxt, tx: txt },
    }
}

pub fn stamp(secs: u64) -> Stamp {
    Stamp {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        elapsed: Duration::from_secs(secs),
        skipped: 0,
    }
}

/// The stable contract: the first keys of every JSON row and CSV line.
pub const CORE_KEYS: [&str; 9] = [
    "time",
    "interval",
    "pid",
    "comm",
    "rx_bytes",
    "tx_bytes",
    "rx_total_bytes",
    "tx_total_bytes",
    "total_bytes",
];
