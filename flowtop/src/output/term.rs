//! What stdout is connected to, read once at start: whether it is a terminal, its
//! size, and the environment (COLUMNS, LINES, NO_COLOR). Decisions are made from
//! this in [`super::OutputOptions::resolve`], which is pure and tested. Only the
//! terminal's size is read again, every interval ([`stdout_window_size`]), so a
//! resized terminal gets lines that fit it.
use std::{
    io::{self, IsTerminal as _},
    os::fd::AsRawFd as _,
    time::{SystemTime, UNIX_EPOCH},
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Term {
    pub stdout_is_tty: bool,
    /// (columns, rows) of the terminal on stdout.
    pub tty_size: Option<(usize, usize)>,
    /// `COLUMNS`, when set to a positive number.
    pub env_columns: Option<usize>,
    /// `LINES`, when set to a positive number.
    pub env_lines: Option<usize>,
    /// `NO_COLOR` is set and not empty (<https://no-color.org>).
    pub no_color: bool,
}

impl Term {
    pub fn detect() -> Self {
        let stdout = io::stdout();
        let stdout_is_tty = stdout.is_terminal();
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        Self {
            stdout_is_tty,
            tty_size: if stdout_is_tty {
                window_size(stdout.as_raw_fd())
            } else {
                None
            },
            env_columns: num("COLUMNS"),
            env_lines: num("LINES"),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// (columns, rows) of the terminal on stdout now, if stdout is one.
pub fn stdout_window_size() -> Option<(usize, usize)> {
    window_size(io::stdout().as_raw_fd())
}

fn window_size(fd: i32) -> Option<(usize, usize)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills one winsize we own.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col.into(), ws.ws_row.into()))
}

/// `HH:MM:SS` in local time (the table's TIME column and summary line; machine
/// formats use RFC 3339 UTC).
pub fn local_hms(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // `as _`: time_t, inferred from localtime_r, because naming libc::time_t warns
    // (deprecated) on musl, the target of the release binaries.
    let time = secs as _;
    // SAFETY: localtime_r writes into a tm we own; all-zero is a valid tm.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if ok {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let s = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hms_is_eight_chars() {
        let t = local_hms(SystemTime::now());
        assert_eq!(t.len(), 8, "{t}");
        assert_eq!(t.as_bytes()[2], b':');
        assert_eq!(t.as_bytes()[5], b':');
    }
}
