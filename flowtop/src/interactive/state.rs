//! Pure: what the screen shows (grouping, sort, filter, unit, rates, pause,
//! selection, the process looked into) and how each [`Action`] changes it. The rows
//! are put in order by [`order`], as `-s` and `-r` order the table.
use std::collections::HashSet;

use clap::ValueEnum;

use super::{
    board::{Board, Kept},
    keys::{Action, Mode},
    rowkey::key,
};
use crate::{
    collect::{
        aggregate::{GroupBy, Row, SortBy},
        order::order,
    },
    config::InteractiveConfig,
    output::Units,
};

/// What a key press asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub by: GroupBy,
    /// The groupings there are rows of here (`g` goes through them in order).
    pub groupings: Vec<GroupBy>,
    pub sort: SortBy,
    /// `S`: the sort's order reversed.
    pub reverse: bool,
    /// Applied filter (empty: none).
    pub filter: String,
    /// The filter being typed after `/`.
    pub typing: Option<String>,
    pub units: Units,
    pub rate: bool,
    pub paused: bool,
    pub help: bool,
    /// Index of the selected row in [`View::rows`].
    pub selected: usize,
    /// Key of the selected row, so it stays selected when rows move.
    pub selected_key: Option<String>,
    /// Enter on a process: its PID, and the grouping to go back to.
    pub opened: Option<(u32, GroupBy)>,
    /// Rows one page holds (set by the renderer).
    pub page: usize,
    /// `--show-nspid`.
    pub nspid: bool,
    /// `--show-container`: a CONTAINER column where rows are processes.
    pub container: bool,
    /// `-r`: only the N busiest rows.
    pub limit: Option<usize>,
    /// A one-off note for the status line (a key that cannot apply here).
    pub note: Option<String>,
}

/// One row as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub row: Row,
    pub gone: bool,
}

impl View {
    /// `groupings`: those there are rows of (the first grouping must be one).
    pub fn new(config: &InteractiveConfig, groupings: Vec<GroupBy>) -> Self {
        Self {
            by: config.rows.by,
            groupings,
            sort: config.rows.sort,
            reverse: false,
            filter: String::new(),
            typing: None,
            units: config.units,
            rate: config.rate,
            paused: false,
            help: false,
            selected: 0,
            selected_key: None,
            opened: None,
            page: 10,
            nspid: config.rows.nspid,
            container: config.rows.container,
            limit: config
                .rows
                .limit
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            note: None,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.help {
            Mode::Help
        } else if self.typing.is_some() {
            Mode::Filter
        } else {
            Mode::Normal
        }
    }

    /// The grouping of the rows on screen (connections when a process is open).
    pub fn shown_by(&self) -> GroupBy {
        match self.opened {
            Some(_) => GroupBy::Conn,
            None => self.by,
        }
    }

    /// The rows on screen, in order: the grouping's (or the opened process's
    /// connections), filtered, the `-r` busiest, sorted.
    pub fn rows(&self, board: &Board) -> Vec<Shown> {
        let by = self.shown_by();
        let needle = self.filter.to_lowercase();
        let kept: Vec<&Kept> = board
            .shelf(by)
            .into_iter()
            .flat_map(|s| s.rows())
            .filter(|k| self.opened.is_none_or(|(pid, _)| k.row.pid == Some(pid)))
            .filter(|k| needle.is_empty() || matches(by, &k.row, &needle))
            .collect();
        let gone: HashSet<String> = kept
            .iter()
            .filter(|k| k.gone)
            .map(|k| key(by, &k.row))
            .collect();
        let mut rows: Vec<Row> = kept.into_iter().map(|k| k.row.clone()).collect();
        order(&mut rows, self.sort, self.limit);
        let mut shown: Vec<Shown> = rows
            .into_iter()
            .map(|row| Shown {
                gone: !gone.is_empty() && gone.contains(&key(by, &row)),
                row,
            })
            .collect();
        if self.reverse {
            shown.reverse();
        }
        shown
    }

    /// After new rows: the selected row stays selected where it still is.
    pub fn follow(&mut self, rows: &[Shown]) {
        let by = self.shown_by();
        if let Some(k) = &self.selected_key {
            if let Some(i) = rows.iter().position(|r| &key(by, &r.row) == k) {
                self.selected = i;
                return;
            }
        }
        self.select(rows, self.selected);
    }

    fn select(&mut self, rows: &[Shown], i: usize) {
        self.selected = i.min(rows.len().saturating_sub(1));
        self.selected_key = rows
            .get(self.selected)
            .map(|r| key(self.shown_by(), &r.row));
    }

    fn unselect(&mut self) {
        self.selected = 0;
        self.selected_key = None;
    }

    /// Applies one action; `rows` are the rows on screen now.
    pub fn apply(&mut self, action: Action, rows: &[Shown]) -> Flow {
        use Action::*;
        self.note = None;
        let page = self.page.max(1);
        match action {
            Quit => return Flow::Quit,
            NextGrouping => {
                self.opened = None;
                self.by = next_in(&self.groupings, self.by);
                self.unselect();
            }
            NextSort => self.sort = next_in(SortBy::value_variants(), self.sort),
            Reverse => self.reverse = !self.reverse,
            StartFilter => self.typing = Some(self.filter.clone()),
            FilterChar(c) => self.typing.get_or_insert_with(String::new).push(c),
            FilterDelete => {
                self.typing.get_or_insert_with(String::new).pop();
            }
            FilterApply => {
                self.filter = self.typing.take().unwrap_or_default();
                self.unselect();
            }
            FilterClear => {
                self.typing = None;
                self.filter.clear();
            }
            NextUnit => self.units = next_in(Units::value_variants(), self.units),
            ToggleRate => self.rate = !self.rate,
            TogglePause => self.paused = !self.paused,
            Up => self.select(rows, self.selected.saturating_sub(1)),
            Down => self.select(rows, self.selected + 1),
            PageUp => self.select(rows, self.selected.saturating_sub(page)),
            PageDown => self.select(rows, self.selected + page),
            Home => self.select(rows, 0),
            End => self.select(rows, usize::MAX),
            Open => self.open(rows),
            Back => {
                if let Some((_, by)) = self.opened.take() {
                    self.by = by;
                    self.unselect();
                }
            }
            ToggleHelp => self.help = !self.help,
        }
        Flow::Continue
    }

    fn open(&mut self, rows: &[Shown]) {
        if self.opened.is_some() {
            return;
        }
        let Some(pid) = rows.get(self.selected).and_then(|r| r.row.pid) else {
            self.note = Some("Enter: select a process row (pid or conn grouping)".into());
            return;
        };
        if !self.groupings.contains(&GroupBy::Conn) {
            self.note =
                Some("no connections here: reading addresses needs the kernel's BTF".into());
            return;
        }
        self.opened = Some((pid, self.by));
        self.unselect();
    }
}

/// Whether what says which row it is (name, PID, addresses, cgroup...) contains
/// `needle` (lower case).
pub fn matches(by: GroupBy, row: &Row, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&key(by, row)) || row.comm.as_deref().is_some_and(has)
}

/// The value after `now` in `all`, wrapping (the first when `now` is not there).
fn next_in<T: Copy + PartialEq>(all: &[T], now: T) -> T {
    let at = all.iter().position(|x| *x == now);
    all[at.map_or(0, |i| (i + 1) % all.len())]
}

/// The totals line of an opened process: its row in the pid grouping.
pub fn opened_process(view: &View, board: &Board) -> Option<Row> {
    let (pid, _) = view.opened?;
    board
        .shelf(GroupBy::Pid)?
        .rows()
        .find(|k| k.row.pid == Some(pid))
        .map(|k| k.row.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        collect::aggregate::Conn,
        config::RowsConfig,
        interactive::board::tests::{board_of, proc_row, sample},
    };

    pub fn config(by: GroupBy, units: Units) -> InteractiveConfig {
        InteractiveConfig {
            interval: Duration::from_secs(1),
            count: None,
            rows: RowsConfig {
                by,
                sort: SortBy::Total,
                limit: None,
                nspid: false,
                container: false,
            },
            units,
            rate: false,
        }
    }

    fn view() -> View {
        View::new(&config(GroupBy::Pid, Units::Kb), GroupBy::all().to_vec())
    }

    fn conn_row(pid: u32, comm: &str, lport: u16, bytes: u64) -> Row {
        Row {
            conn: Some(Conn {
                family: 2,
                protocol: 6,
                laddr: "127.0.0.1".parse().unwrap(),
                lport,
                remote: Some(("127.0.0.1".parse().unwrap(), 9000)),
            }),
            ..proc_row(pid, comm, bytes, bytes)
        }
    }

    fn board() -> Board {
        board_of(&sample(
            1,
            &[
                (
                    GroupBy::Pid,
                    vec![
                        proc_row(10, "curl", 300, 300),
                        proc_row(20, "nginx", 500, 500),
                        proc_row(30, "sshd", 100, 100),
                    ],
                ),
                (
                    GroupBy::Conn,
                    vec![
                        conn_row(10, "curl", 40000, 200),
                        conn_row(10, "curl", 40001, 100),
                        conn_row(20, "nginx", 443, 500),
                    ],
                ),
            ],
            &[30],
        ))
    }

    fn pids(rows: &[Shown]) -> Vec<Option<u32>> {
        rows.iter().map(|r| r.row.pid).collect()
    }

    #[test]
    fn sorts_reverses_and_dims_exited_rows() {
        let (mut v, b) = (view(), board());
        let rows = v.rows(&b);
        assert_eq!(pids(&rows), [Some(20), Some(10), Some(30)]);
        assert!(rows[2].gone && !rows[0].gone, "30 exited");
        for _ in 0..3 {
            v.apply(Action::NextSort, &rows);
        }
        assert_eq!(v.sort, SortBy::Pid);
        assert_eq!(pids(&v.rows(&b)), [Some(10), Some(20), Some(30)]);
        v.apply(Action::Reverse, &rows);
        assert_eq!(pids(&v.rows(&b)), [Some(30), Some(20), Some(10)]);
        v.limit = Some(2);
        assert_eq!(
            pids(&v.rows(&b)),
            [Some(20), Some(10)],
            "-r 2: the busiest two"
        );
        v.apply(Action::NextSort, &rows);
        v.apply(Action::NextSort, &rows);
        assert_eq!(v.sort, SortBy::Total, "the sort keys wrap around");
    }

    #[test]
    fn filter_is_typed_applied_and_cleared() {
        let (mut v, b) = (view(), board());
        v.apply(Action::StartFilter, &[]);
        assert_eq!(v.mode(), Mode::Filter);
        for c in "NGI".chars() {
            v.apply(Action::FilterChar(c), &[]);
        }
        v.apply(Action::FilterDelete, &[]);
        v.apply(Action::FilterChar('i'), &[]);
        assert_eq!(v.rows(&b).len(), 3, "not applied while typing");
        v.apply(Action::FilterApply, &[]);
        assert_eq!((v.filter.as_str(), v.mode()), ("NGi", Mode::Normal));
        assert_eq!(pids(&v.rows(&b)), [Some(20)]);
        v.filter = "30".into();
        assert_eq!(pids(&v.rows(&b)), [Some(30)], "by pid");
        v.by = GroupBy::Conn;
        v.filter = ":443".into();
        assert_eq!(pids(&v.rows(&b)), [Some(20)], "by address:port");
        v.by = GroupBy::Pid;
        v.apply(Action::StartFilter, &[]);
        v.apply(Action::FilterClear, &[]);
        assert_eq!(v.rows(&b).len(), 3);
    }

    #[test]
    fn groupings_cycle_through_those_there_are() {
        let mut v = view();
        let mut seen = vec![v.by];
        for _ in 0..GroupBy::all().len() {
            v.apply(Action::NextGrouping, &[]);
            seen.push(v.by);
        }
        let mut want = GroupBy::all().to_vec();
        want.push(GroupBy::Pid);
        assert_eq!(seen, want);
        v.groupings = vec![GroupBy::Pid, GroupBy::Comm, GroupBy::Cgroup];
        v.apply(Action::NextGrouping, &[]);
        assert_eq!(v.by, GroupBy::Comm, "no conn without addresses");
    }

    #[test]
    fn units_rate_pause_and_help_toggle() {
        let mut v = view();
        let seen: Vec<Units> = (0..3)
            .map(|_| {
                v.apply(Action::NextUnit, &[]);
                v.units
            })
            .collect();
        assert_eq!(seen, [Units::Bytes, Units::Human, Units::Kb]);
        v.apply(Action::ToggleRate, &[]);
        v.apply(Action::TogglePause, &[]);
        v.apply(Action::ToggleHelp, &[]);
        assert!(v.rate && v.paused && v.help && v.mode() == Mode::Help);
        assert_eq!(v.apply(Action::Quit, &[]), Flow::Quit);
    }

    #[test]
    fn selection_moves_within_the_rows_and_follows_its_row() {
        let (mut v, b) = (view(), board());
        let rows = v.rows(&b);
        v.page = 2;
        v.apply(Action::Down, &rows);
        assert_eq!(v.selected, 1);
        v.apply(Action::PageDown, &rows);
        assert_eq!(v.selected, 2);
        v.apply(Action::Home, &rows);
        v.apply(Action::Up, &rows);
        assert_eq!(v.selected, 0);
        v.apply(Action::End, &rows);
        assert_eq!(v.selected, 2);
        assert_eq!(v.selected_key, Some(key(GroupBy::Pid, &rows[2].row)));
        v.reverse = true;
        v.follow(&v.rows(&b));
        assert_eq!(v.selected, 0, "pid 30 is first now");
    }

    #[test]
    fn enter_opens_the_selected_process_and_back_returns() {
        let (mut v, b) = (view(), board());
        let rows = v.rows(&b);
        v.apply(Action::Down, &rows); // curl, pid 10
        v.apply(Action::Open, &rows);
        assert_eq!(v.opened, Some((10, GroupBy::Pid)));
        let conns = v.rows(&b);
        assert_eq!(conns.len(), 2);
        assert!(conns
            .iter()
            .all(|r| r.row.pid == Some(10) && r.row.conn.is_some()));
        assert_eq!(opened_process(&v, &b).unwrap().total.rx, 300);
        v.apply(Action::Back, &conns);
        assert_eq!((v.opened, v.by), (None, GroupBy::Pid));
        v.groupings = vec![GroupBy::Pid, GroupBy::Comm];
        v.apply(Action::Open, &rows);
        assert!(v.opened.is_none() && v.note.is_some());
    }
}
