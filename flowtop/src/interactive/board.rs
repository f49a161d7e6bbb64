//! Pure: the rows `-i` keeps between intervals. The line output shows only what
//! moved this interval; a screen like top keeps a live process's row (idle: zero
//! this interval, its since-start totals unchanged), keeps an exited one's row one
//! more interval, dimmed, then lets it go.
use std::collections::{HashMap, HashSet};

use super::{rowkey::key, source::Sample};
use crate::collect::{
    aggregate::{GroupBy, Row},
    Bytes,
};

/// One row on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub row: Row,
    /// Its process (every process of a group) has exited: shown dimmed this
    /// interval, gone the next.
    pub gone: bool,
}

/// The rows of one grouping.
#[derive(Debug, Default)]
pub struct Shelf {
    rows: HashMap<String, Kept>,
    /// Bytes missing from these rows in the last interval (a map full).
    pub unrecorded: Bytes,
}

impl Shelf {
    /// The interval that ends now: `fresh` rows moved bytes, keys in `alive` are
    /// still alive.
    pub fn update(&mut self, by: GroupBy, fresh: &[Row], alive: &HashSet<String>) {
        self.rows.retain(|_, k| !k.gone);
        for k in self.rows.values_mut() {
            k.row.interval = Bytes::default();
            // Groups of processes count those that moved bytes this interval.
            if k.row.pid.is_none() {
                k.row.processes = 0;
            }
        }
        for r in fresh {
            let kept = Kept {
                row: r.clone(),
                gone: false,
            };
            self.rows.insert(key(by, r), kept);
        }
        for (k, kept) in &mut self.rows {
            kept.gone = !alive.contains(k);
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Kept> {
        self.rows.values()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Every grouping's rows, and what the header shows.
#[derive(Debug, Default)]
pub struct Board {
    shelves: Vec<(GroupBy, Shelf)>,
    /// Intervals read so far (a pause makes one interval longer, not more of them).
    pub index: u64,
    /// All processes' bytes this interval and since start (exited ones included).
    pub interval: Bytes,
    pub since_start: Bytes,
    /// Socket calls the kernel ran without flowtop's programs in the last interval.
    pub missed: u64,
}

impl Board {
    pub fn update(&mut self, s: &Sample, missed: u64) {
        for g in &s.groupings {
            let at = match self.shelves.iter().position(|(by, _)| *by == g.by) {
                Some(at) => at,
                None => {
                    self.shelves.push((g.by, Shelf::default()));
                    self.shelves.len() - 1
                }
            };
            let shelf = &mut self.shelves[at].1;
            shelf.update(g.by, &g.rows, &g.alive);
            shelf.unrecorded = g.unrecorded;
        }
        self.index = s.index;
        self.interval = s.all;
        self.since_start = self.since_start + s.all;
        self.missed = missed;
    }

    /// Bytes missing from the rows of `by` in the last interval.
    pub fn unrecorded(&self, by: GroupBy) -> Bytes {
        self.shelf(by).map_or(Bytes::default(), |s| s.unrecorded)
    }

    /// The rows of `by`; None before its first interval or where it has no rows.
    pub fn shelf(&self, by: GroupBy) -> Option<&Shelf> {
        self.shelves.iter().find(|(b, _)| *b == by).map(|(_, s)| s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::interactive::source::Grouping;

    pub fn proc_row(pid: u32, comm: &str, interval: u64, total: u64) -> Row {
        Row {
            pid: Some(pid),
            nspid: None,
            comm: Some(comm.into()),
            processes: 1,
            conn: None,
            cgroup: None,
            container: None,
            interval: Bytes {
                rx: interval,
                tx: 0,
            },
            total: Bytes { rx: total, tx: 0 },
        }
    }

    /// One interval of `by` rows, every row alive but those of `gone` PIDs.
    pub fn sample(index: u64, groupings: &[(GroupBy, Vec<Row>)], gone: &[u32]) -> Sample {
        let groupings: Vec<Grouping> = groupings
            .iter()
            .map(|(by, rows)| Grouping {
                by: *by,
                alive: rows
                    .iter()
                    .filter(|r| r.pid.is_none_or(|p| !gone.contains(&p)))
                    .map(|r| key(*by, r))
                    .collect(),
                rows: rows.clone(),
                unrecorded: Bytes::default(),
            })
            .collect();
        let all = groupings
            .iter()
            .find(|g| g.by == GroupBy::Pid)
            .map_or(Bytes::default(), |g| {
                g.rows.iter().fold(Bytes::default(), |a, r| a + r.interval)
            });
        Sample {
            index,
            groupings,
            all,
        }
    }

    /// A board after one interval `s`.
    pub fn board_of(s: &Sample) -> Board {
        let mut b = Board::default();
        b.update(s, 0);
        b
    }

    fn alive(keys: &[&str]) -> HashSet<String> {
        keys.iter().map(|k| format!("{k}\t")).collect()
    }

    #[test]
    fn idle_live_rows_stay_with_their_totals_and_exited_ones_stay_one_interval_dimmed() {
        let mut shelf = Shelf::default();
        let rows = [proc_row(1, "a", 10, 10), proc_row(2, "b", 5, 5)];
        shelf.update(GroupBy::Pid, &rows, &alive(&["1", "2"]));
        assert_eq!(shelf.len(), 2);
        // 1 idle and alive, 2 moved bytes and exited.
        shelf.update(GroupBy::Pid, &[proc_row(2, "b", 3, 8)], &alive(&["1"]));
        let get = |s: &Shelf, pid| s.rows().find(|k| k.row.pid == Some(pid)).cloned();
        let one = get(&shelf, 1).unwrap();
        assert_eq!(
            (one.row.interval.rx, one.row.total.rx, one.gone),
            (0, 10, false)
        );
        let two = get(&shelf, 2).unwrap();
        assert_eq!(
            (two.row.interval.rx, two.row.total.rx, two.gone),
            (3, 8, true)
        );
        shelf.update(GroupBy::Pid, &[], &alive(&["1"]));
        assert!(get(&shelf, 2).is_none(), "gone after one dimmed interval");
        assert!(get(&shelf, 1).is_some());
    }

    #[test]
    fn board_totals_keep_exited_processes() {
        let mut board = board_of(&sample(
            1,
            &[(GroupBy::Pid, vec![proc_row(1, "a", 10, 10)])],
            &[],
        ));
        let mut s = sample(2, &[(GroupBy::Pid, vec![proc_row(1, "a", 4, 14)])], &[1]);
        s.groupings[0].unrecorded = Bytes { rx: 1, tx: 0 };
        board.update(&s, 3);
        assert_eq!(board.since_start.rx, 14);
        assert_eq!(board.interval.rx, 4);
        assert_eq!(
            (board.unrecorded(GroupBy::Pid).rx, board.missed, board.index),
            (1, 3, 2)
        );
        assert_eq!(board.unrecorded(GroupBy::Conn), Bytes::default());
        let pids = board.shelf(GroupBy::Pid).unwrap();
        assert!(pids.rows().all(|k| k.gone));
        board.update(&sample(3, &[(GroupBy::Pid, vec![])], &[]), 0);
        assert!(board.shelf(GroupBy::Pid).unwrap().is_empty());
        assert_eq!(
            board.since_start.rx, 14,
            "exited processes stay in the totals"
        );
        assert!(board.shelf(GroupBy::Conn).is_none());
    }
}
