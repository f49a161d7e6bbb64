//! Pure: which key does what. The mode decides: while a filter is typed, letters are
//! text; while the help is open, any key closes it.
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the screen is taking keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// `/`: typing a filter.
    Filter,
    /// `?`: the help overlay.
    Help,
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextGrouping,
    NextSort,
    Reverse,
    StartFilter,
    FilterChar(char),
    FilterDelete,
    FilterApply,
    FilterClear,
    NextUnit,
    ToggleRate,
    TogglePause,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Enter on a row: its process's connections.
    Open,
    /// Esc or Backspace: out of a process's connections.
    Back,
    ToggleHelp,
}

/// The action for `key` in `mode`; None: the key means nothing there.
pub fn action(mode: Mode, key: KeyEvent) -> Option<Action> {
    use Action::*;
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Some(Quit);
    }
    match mode {
        Mode::Help => Some(match key.code {
            KeyCode::Char('q') => Quit,
            _ => ToggleHelp,
        }),
        Mode::Filter => match key.code {
            KeyCode::Enter => Some(FilterApply),
            KeyCode::Esc => Some(FilterClear),
            KeyCode::Backspace => Some(FilterDelete),
            KeyCode::Char(c) if !ctrl => Some(FilterChar(c)),
            _ => None,
        },
        Mode::Normal if ctrl => None,
        Mode::Normal => Some(match key.code {
            KeyCode::Char('q') => Quit,
            KeyCode::Char('g') => NextGrouping,
            KeyCode::Char('s') => NextSort,
            KeyCode::Char('S') => Reverse,
            KeyCode::Char('/') => StartFilter,
            KeyCode::Char('u') => NextUnit,
            KeyCode::Char('t') => ToggleRate,
            KeyCode::Char(' ') | KeyCode::Char('p') => TogglePause,
            KeyCode::Char('?') => ToggleHelp,
            KeyCode::Up | KeyCode::Char('k') => Up,
            KeyCode::Down | KeyCode::Char('j') => Down,
            KeyCode::PageUp => PageUp,
            KeyCode::PageDown => PageDown,
            KeyCode::Home => Home,
            KeyCode::End => End,
            KeyCode::Enter => Open,
            KeyCode::Esc | KeyCode::Backspace => Back,
            _ => return None,
        }),
    }
}

/// The help overlay: every key, as [`action`] reads it.
pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit"),
    ("g", "next grouping, in --by's order (pid, conn, comm, ...)"),
    (
        "s / S",
        "next sort key (total, rx, tx, pid, comm) / reverse",
    ),
    ("/", "filter: name, pid, address:port, cgroup, ..."),
    ("  Enter / Esc", "  apply the filter / clear it"),
    ("u", "next unit: kb, bytes, human"),
    ("t", "per-interval amounts / per-second rates"),
    ("space, p", "pause / resume (counting goes on)"),
    ("Up Down PgUp PgDn", "move the selection"),
    ("Home End", "first / last row"),
    ("Enter", "the selected process's connections"),
    ("Esc, Backspace", "back"),
    ("?", "this help (any key closes it)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn normal_keys() {
        let a = |c| action(Mode::Normal, key(KeyCode::Char(c)));
        assert_eq!(a('q'), Some(Action::Quit));
        assert_eq!(a('g'), Some(Action::NextGrouping));
        assert_eq!(a('s'), Some(Action::NextSort));
        assert_eq!(a('S'), Some(Action::Reverse));
        assert_eq!(a('/'), Some(Action::StartFilter));
        assert_eq!(a('u'), Some(Action::NextUnit));
        assert_eq!(a('t'), Some(Action::ToggleRate));
        assert_eq!(a(' '), Some(Action::TogglePause));
        assert_eq!(a('p'), Some(Action::TogglePause));
        assert_eq!(a('?'), Some(Action::ToggleHelp));
        assert_eq!(a('x'), None);
        let n = |c| action(Mode::Normal, key(c));
        assert_eq!(n(KeyCode::Enter), Some(Action::Open));
        assert_eq!(n(KeyCode::Esc), Some(Action::Back));
        assert_eq!(n(KeyCode::Backspace), Some(Action::Back));
        assert_eq!(n(KeyCode::PageDown), Some(Action::PageDown));
        assert_eq!(n(KeyCode::End), Some(Action::End));
    }

    #[test]
    fn ctrl_c_quits_in_every_mode() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Normal, Mode::Filter, Mode::Help] {
            assert_eq!(action(mode, ctrl_c), Some(Action::Quit), "{mode:?}");
        }
    }

    #[test]
    fn while_filtering_letters_are_text() {
        let f = |c| action(Mode::Filter, key(c));
        assert_eq!(f(KeyCode::Char('q')), Some(Action::FilterChar('q')));
        assert_eq!(f(KeyCode::Char('g')), Some(Action::FilterChar('g')));
        assert_eq!(f(KeyCode::Enter), Some(Action::FilterApply));
        assert_eq!(f(KeyCode::Esc), Some(Action::FilterClear));
        assert_eq!(f(KeyCode::Backspace), Some(Action::FilterDelete));
    }

    #[test]
    fn any_key_closes_the_help_and_releases_do_nothing() {
        assert_eq!(
            action(Mode::Help, key(KeyCode::Char('g'))),
            Some(Action::ToggleHelp)
        );
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action(Mode::Normal, release), None);
    }
}
