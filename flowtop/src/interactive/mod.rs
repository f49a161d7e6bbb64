//! `-i`: a full-screen view that can be steered (sort, group, filter, pause, look
//! into one process) with the exact counts of the line output.
//!
//! [`source`] groups each interval's read (report mode's pipeline and grouper) every
//! way at once, [`board`] keeps the rows between intervals ([`rowkey`] says which
//! row is which), [`state`] is what the screen shows and how keys change it
//! ([`keys`]), [`render`] draws it, [`terminal`] puts the terminal back. This
//! module is the loop: reads, reclaim sweeps, keys, resizes and signals wait in one
//! `select!`, so a key is answered at once and an idle screen costs what the line
//! output does.
pub mod board;
pub mod keys;
pub mod render;
pub mod rowkey;
pub mod source;
pub mod state;
pub mod terminal;

use std::{
    future::Future,
    io::{self, IsTerminal as _},
    pin::Pin,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result};
use crossterm::event::{Event, EventStream};
use futures_core::Stream as _;
use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    time::{interval, interval_at, Instant, MissedTickBehavior},
};

use self::{
    board::Board,
    render::Info,
    source::Source,
    state::{Flow, View},
    terminal::Screen,
};
use crate::{
    config::InteractiveConfig,
    output::{term::local_hms, Stamp},
    probe::misses::MissedEvents,
};

/// How often exited processes' keys may be reclaimed early (as in the line output).
const SWEEP_PERIOD: Duration = Duration::from_millis(50);

/// Whether stdin and stdout are both terminals: `-i` needs both (keys in, screen out).
pub fn has_terminal() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// Runs the screen until `q`, Ctrl-C, SIGINT/SIGTERM/SIGHUP or COUNT intervals.
/// `probe`: the family and program kind attached, for the header; the signal
/// streams are the session's, installed before counting began.
pub async fn run(
    config: &InteractiveConfig,
    mut source: Source,
    mut misses: MissedEvents<'_>,
    probe: String,
    mut sigint: Signal,
    mut sigterm: Signal,
) -> Result<()> {
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut screen = Screen::enter()?;
    let mut events = EventStream::new();
    let period = config.interval;
    let mut reads = interval_at(Instant::now() + period, period);
    reads.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sweeps = interval(SWEEP_PERIOD);
    sweeps.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut view = View::new(config, source.groupings().to_vec());
    let mut board = Board::default();
    let mut info = Info {
        time: local_hms(SystemTime::now()),
        interval_secs: period.as_secs(),
        probe,
        stamp: Stamp {
            at: SystemTime::now(),
            elapsed: Duration::ZERO,
            skipped: 0,
        },
    };
    let mut last_read = Instant::now();
    let mut shown = 0u64;
    let mut rows = Vec::new();
    let mut dirty = true;
    loop {
        if dirty {
            rows = view.rows(&board);
            view.follow(&rows);
            screen.terminal.draw(|f| {
                view.page = render::draw(f, &view, &board, &rows, &info);
            })?;
            dirty = false;
        }
        tokio::select! {
            _ = sweeps.tick() => source.sweep()?,
            _ = reads.tick() => {
                // Paused: the maps are not read, so the next read covers the pause.
                if view.paused {
                    continue;
                }
                let sample = source.read()?;
                let skipped = misses.since_last();
                board.update(&sample, skipped);
                info.stamp = Stamp {
                    at: SystemTime::now(),
                    elapsed: last_read.elapsed(),
                    skipped,
                };
                info.time = local_hms(info.stamp.at);
                last_read = Instant::now();
                dirty = true;
                shown += 1;
                if config.count.is_some_and(|c| shown >= c) {
                    return Ok(());
                }
            }
            event = next_event(&mut events) => {
                match event {
                    Some(Ok(Event::Key(key))) => {
                        if let Some(action) = keys::action(view.mode(), key) {
                            if view.apply(action, &rows) == Flow::Quit {
                                return Ok(());
                            }
                            dirty = true;
                        }
                    }
                    Some(Ok(Event::Resize(..))) => {
                        screen.terminal.autoresize()?;
                        dirty = true;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e).context("reading the terminal"),
                    // The terminal is gone: nobody to show anything to.
                    None => return Ok(()),
                }
            }
            _ = sigint.recv() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
            _ = sighup.recv() => return Ok(()),
        }
    }
}

/// The terminal's next event (key, resize); None when the terminal is gone.
fn next_event(events: &mut EventStream) -> impl Future<Output = Option<io::Result<Event>>> + '_ {
    std::future::poll_fn(move |cx| Pin::new(&mut *events).poll_next(cx))
}
