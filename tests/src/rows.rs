//! Parsing flowtop's JSON Lines output into rows and per-PID sums, with the
//! consistency checks of the cumulative columns; and any output (JSON Lines, CSV) as
//! generic JSON values for tests that check keys the typed [`Row`] does not carry.
use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
};

use serde::Deserialize;
use serde_json::Value;

use crate::FlowtopRun;

/// The keys every per-process row starts with, in order: the documented, stable
/// contract of the JSON and CSV output (written here once, as the user reads it in
/// the README, not taken from flowtop's code).
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

/// One JSON Lines row of flowtop.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub time: String,
    pub interval: u64,
    pub pid: u32,
    pub comm: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_total_bytes: u64,
    pub tx_total_bytes: u64,
    pub total_bytes: u64,
    /// `--by conn` rows: the grouping and the connection's identity.
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub proto: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub laddr: Option<String>,
    #[serde(default)]
    pub lport: Option<u16>,
    #[serde(default)]
    pub raddr: Option<String>,
    #[serde(default)]
    pub rport: Option<u16>,
}

/// Bytes and names reported for one PID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    pub rx: u64,
    pub tx: u64,
    /// Distinct names the rows carried, in order of appearance.
    pub comms: Vec<String>,
    /// Per interval index: (rx, tx).
    pub intervals: BTreeMap<u64, (u64, u64)>,
    /// Problems with the rows themselves (duplicate interval, totals that do not add up).
    pub inconsistencies: Vec<String>,
}

impl FlowtopRun {
    /// Sums of the per-interval rows of `pid`, with consistency checks of the
    /// cumulative columns against those sums.
    pub fn reported(&self, pid: u32) -> Reported {
        let mut r = Reported::default();
        for row in self.rows.iter().filter(|row| row.pid == pid) {
            r.rx += row.rx_bytes;
            r.tx += row.tx_bytes;
            if !r.comms.contains(&row.comm) {
                r.comms.push(row.comm.clone());
            }
            if r.intervals
                .insert(row.interval, (row.rx_bytes, row.tx_bytes))
                .is_some()
            {
                r.inconsistencies
                    .push(format!("two rows in interval {}", row.interval));
            }
            if (row.rx_total_bytes, row.tx_total_bytes) != (r.rx, r.tx)
                || row.total_bytes != r.rx + r.tx
            {
                r.inconsistencies.push(format!(
                    "interval {}: totals rx={} tx={} sum={} but intervals so far add up to rx={} tx={}",
                    row.interval, row.rx_total_bytes, row.tx_total_bytes, row.total_bytes, r.rx, r.tx
                ));
            }
        }
        r
    }

    /// PIDs that have at least one row.
    pub fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.rows.iter().map(|r| r.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

/// JSON Lines as values; panics naming the line that is not JSON.
pub fn json_values(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// CSV (parsed with the csv crate) as JSON objects keyed by the header, so the same
/// checks read both formats: numbers become numbers, empty fields null (no test
/// process has a numeric name). Panics on a record whose length is not the header's.
pub fn csv_values(text: &str) -> Vec<Value> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().expect("a CSV header").clone();
    rdr.records()
        .map(|rec| {
            let rec = rec.unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(rec.len(), header.len(), "{rec:?}");
            let fields = header.iter().zip(rec.iter()).map(|(k, v)| {
                let v = match v.parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) if v.is_empty() => Value::Null,
                    Err(_) => Value::from(v),
                };
                (k.to_string(), v)
            });
            Value::Object(fields.collect())
        })
        .collect()
}

/// `(rx_bytes, tx_bytes)` summed per key; rows for which `key` is None are left out.
pub fn sum_by<K: Eq + Hash>(
    rows: &[Value],
    key: impl Fn(&Value) -> Option<K>,
) -> HashMap<K, (u64, u64)> {
    let mut out = HashMap::new();
    for r in rows {
        if let Some(k) = key(r) {
            let e: &mut (u64, u64) = out.entry(k).or_default();
            e.0 += r["rx_bytes"]
                .as_u64()
                .unwrap_or_else(|| panic!("no rx_bytes: {r}"));
            e.1 += r["tx_bytes"]
                .as_u64()
                .unwrap_or_else(|| panic!("no tx_bytes: {r}"));
        }
    }
    out
}

/// The header line of CSV output, as its keys.
pub fn csv_header(text: &str) -> Vec<String> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().unwrap_or_else(|e| panic!("{e}: {text}"));
    header.iter().map(String::from).collect()
}
