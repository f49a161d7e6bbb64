//! The terminal while the screen is up: raw mode and the alternate screen on entry,
//! and back exactly as it was on every way out (return, error, panic), so the shell
//! gets its prompt on a clean line with the cursor shown.
use std::io::{self, Stdout};

use anyhow::{Context as _, Result};
use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor::Show,
        execute,
        terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
    },
    Terminal,
};

/// The terminal in raw mode on the alternate screen; dropping it (also on errors)
/// and the panic hook put it back.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    /// Log lines (`-v`) would be written over the screen: off while it is up.
    log_level: log::LevelFilter,
}

impl Screen {
    pub fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode().context("putting the terminal in raw mode")?;
        let screen = Self {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
            log_level: log::max_level(),
        };
        log::set_max_level(log::LevelFilter::Off);
        execute!(io::stdout(), EnterAlternateScreen)?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        log::set_max_level(self.log_level);
    }
}

/// Leaves raw mode and the alternate screen, shows the cursor. Idempotent.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}
