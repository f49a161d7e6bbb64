//! Pure: what identifies a row of a grouping from one interval to the next. It is
//! what the table shows to say which row it is (the columns before and after the
//! amounts in [`layout`]: PID, connection, name, cgroup...), so a grouping the
//! table can print is keyed here without a change. Where a row has a PID, its name
//! is left out: a process that renames itself keeps its row.
use std::{
    borrow::Cow,
    time::{Duration, SystemTime},
};

use crate::{
    collect::aggregate::{GroupBy, Row},
    output::{
        columns::Column,
        layout,
        row::{RowCtx, Value},
        units::push_u64,
        Stamp,
    },
};

/// The key of `row` in grouping `by`: the identifying cells, tab-separated.
pub fn key(by: GroupBy, row: &Row) -> String {
    let mut columns = layout::table_lead(by, false, false);
    columns.extend_from_slice(layout::table_tail(by));
    let has_pid = columns.contains(&Column::Pid);
    let stamp = Stamp {
        at: SystemTime::UNIX_EPOCH,
        elapsed: Duration::ZERO,
        skipped: 0,
    };
    let ctx = RowCtx {
        index: 0,
        by,
        row,
        stamp: &stamp,
        seconds: 0.0,
    };
    let mut key = String::new();
    for column in columns {
        if column == Column::Processes || (has_pid && column == Column::Comm) {
            continue;
        }
        match column.value(&ctx) {
            Value::Text(Cow::Borrowed(t)) => key.push_str(t),
            Value::Text(Cow::Owned(t)) => key.push_str(&t),
            Value::Int(n) => push_u64(&mut key, n),
            _ => {}
        }
        key.push('\t');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{aggregate::Conn, Bytes};

    fn row(pid: Option<u32>, comm: &str) -> Row {
        Row {
            pid,
            nspid: None,
            comm: Some(comm.into()),
            processes: 3,
            conn: None,
            cgroup: Some("/a/b".into()),
            container: None,
            interval: Bytes { rx: 1, tx: 2 },
            total: Bytes { rx: 3, tx: 4 },
        }
    }

    #[test]
    fn rows_are_keyed_by_what_says_which_row_they_are() {
        assert_eq!(key(GroupBy::Pid, &row(Some(42), "a")), "42\t");
        assert_eq!(
            key(GroupBy::Pid, &row(Some(42), "b")),
            key(GroupBy::Pid, &row(Some(42), "a")),
            "a renamed process keeps its row"
        );
        assert_eq!(key(GroupBy::Comm, &row(None, "nginx")), "nginx\t");
        assert_eq!(key(GroupBy::Cgroup, &row(None, "x")), "/a/b\t");
        let conn = Row {
            conn: Some(Conn {
                family: 2,
                protocol: 6,
                laddr: "127.0.0.1".parse().unwrap(),
                lport: 4000,
                remote: None,
            }),
            ..row(Some(7), "c")
        };
        assert_eq!(key(GroupBy::Conn, &conn), "7\ttcp\t127.0.0.1:4000\t*\t");
    }
}
