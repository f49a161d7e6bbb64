//! The main loop: attach, then read, diff and print every interval until COUNT
//! reports, SIGINT/SIGTERM, or the reader of stdout goes away.
use std::{
    io::{self, Write as _},
    os::fd::AsRawFd as _,
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context as _, Result};
use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    time::{interval_at, Instant, MissedTickBehavior},
};

use crate::{
    collect::{
        collector::{Collector, Interval},
        exporter::ExportReader,
    },
    config::{Config, Mode, ReportConfig},
    filter::KernelFilters,
    output::{self, term::Term, OutputOptions, Printer, Stamp},
    privileges,
    probe::{
        detect::KernelFacts,
        load::{attach_first, Attached, LoadConfig},
        misses::MissedEvents,
        preempt,
        select::{plan, Facts},
        udp_peer,
    },
    serve::{
        self,
        metrics::{Info, Metrics},
    },
};

/// How often flowtop checks whether exited processes' keys must be reclaimed early.
const SWEEP_PERIOD: Duration = Duration::from_millis(50);

pub fn run(config: &Config) -> Result<()> {
    if !privileges::can_trace(privileges::effective_caps()) {
        bail!(
            "loading eBPF programs needs root, or the capabilities CAP_BPF and CAP_PERFMON; \
             try: sudo flowtop"
        );
    }
    match &config.mode {
        Mode::Report(report) => {
            let mut attached = attach(config)?;
            // The readers take their maps while flowtop still holds its capabilities.
            let mut reader = Collector::new(
                &mut attached.ebpf,
                report.rows.by,
                report.rows.sort,
                report.rows.limit,
                config.max_entries,
            )?;
            if report.rows.nspid {
                reader.show_nspids();
            }
            let session = Session::start(
                &attached,
                &format!("first report in {}s", report.interval.as_secs()),
            )?;
            let stdout = io::stdout().lock();
            let opts = OutputOptions::resolve(
                &report.output,
                report.rows.by,
                report.rows.nspid,
                &Term::detect(),
            );
            let printer = output::printer_with(&opts, stdout);
            // `attached` lives until here: dropping it detaches the programs.
            let misses = MissedEvents::new(&attached.ebpf);
            let Session { runtime, signals } = session;
            let result = runtime.block_on(report_loop(
                report,
                config.max_entries,
                reader,
                misses,
                printer,
                signals,
            ));
            drop(attached);
            result
        }
        Mode::Serve(serve) => {
            // Before loading (a port in use fails fast) and before capabilities are
            // dropped (a port below 1024).
            let listener = serve::bind(serve.addr)?;
            let mut attached = attach(config)?;
            let reader = ExportReader::new(&mut attached.ebpf, config.max_entries)?;
            let addr = listener.local_addr()?;
            let session = Session::start(&attached, &format!("serving http://{addr}/metrics"))?;
            let metrics = Metrics::new(Info {
                family: attached.family.to_string(),
                kind: attached.kind.to_string(),
                version: crate::VERSION.to_string(),
                capacity: config.max_entries,
                pid_label: serve.pid_label,
            });
            let Session { runtime, signals } = session;
            let result = runtime.block_on(serve::serve_loop(
                listener,
                reader,
                metrics,
                signals.int,
                signals.term,
            ));
            drop(attached);
            result
        }
    }
}

/// Loads and attaches the programs the kernel supports best, with the filters set
/// and filled, and the optional parts (datagram peers) attached where they apply.
fn attach(config: &Config) -> Result<Attached> {
    let facts = KernelFacts::detect();
    let candidates = plan(config.probe, &Facts::from(&facts))?;
    let filters = KernelFilters::new(&config.filters, config.group_by(), facts.offsets.is_ok())?;
    let mut attached = attach_first(
        &candidates,
        &LoadConfig {
            max_entries: config.max_entries,
            offsets: facts.offsets.ok(),
            filters: filters.clone(),
            btf_ids: facts.btf_ids,
        },
    )?;
    filters.fill_maps(&mut attached.ebpf)?;
    if let Some(mode) = preempt::kernel_code_preemptible() {
        let raised = !attached.retprobes.is_empty();
        log::warn!("{}", preempt::start_warning(attached.family, raised, &mode));
    }
    if filters.reads_addresses() {
        if let Err(e) = udp_peer::attach(&mut attached.ebpf) {
            log::info!(
                "no per-datagram peers for unconnected UDP sockets ({e:#}): their remote \
                 shows as '*', --port matches only their local port, and on a dual-stack \
                 IPv6 socket they count as IPv6 for -4/-6"
            );
        }
    }
    Ok(attached)
}

/// What report and serve mode share once the programs are attached and the readers
/// hold their maps: no capabilities left, an event loop, and signal handlers.
struct Session {
    runtime: tokio::runtime::Runtime,
    signals: Signals,
}

impl Session {
    /// `what_next`: the end of the "counting" line (when the first output comes).
    fn start(attached: &Attached, what_next: &str) -> Result<Self> {
        privileges::drop_after_attach().context("dropping capabilities after attaching")?;
        log::debug!(
            "capabilities now {:#x}, no_new_privs set",
            privileges::effective_caps()
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the event loop")?;
        // Handlers go in before the "counting" line: a SIGINT sent as soon as that
        // line appears must end flowtop cleanly (the partial interval printed, exit
        // 0), not kill the process.
        let signals = {
            let _rt = runtime.enter();
            Signals {
                int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
                term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            }
        };
        log::info!(
            "counting with probe family {} ({}); {what_next}",
            attached.family,
            attached.kind,
        );
        Ok(Self { runtime, signals })
    }
}

/// SIGINT and SIGTERM streams, installed before flowtop announces that it counts.
struct Signals {
    int: Signal,
    term: Signal,
}

async fn report_loop(
    config: &ReportConfig,
    max_entries: u32,
    mut reader: Collector,
    mut misses: MissedEvents<'_>,
    mut printer: Box<dyn Printer + '_>,
    signals: Signals,
) -> Result<()> {
    let period = config.interval;
    let mut ticks = interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Reclaim sweeps between reports (cheap unless the map is over a quarter full).
    let mut sweeps = tokio::time::interval(SWEEP_PERIOD);
    sweeps.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let Signals {
        int: mut sigint,
        term: mut sigterm,
    } = signals;
    let mut reports = 0u64;
    let mut last_read = Instant::now();
    loop {
        let stopping = tokio::select! {
            _ = sweeps.tick() => {
                reader.sweep()?;
                continue;
            }
            _ = ticks.tick() => false,
            _ = sigint.recv() => true,
            _ = sigterm.recv() => true,
        };
        let occupancy = reader.occupancy()?;
        let report = reader.report()?;
        let stamp = Stamp {
            at: SystemTime::now(),
            elapsed: last_read.elapsed(),
        };
        last_read = Instant::now();
        log::debug!(
            "interval {}: keys in the process map: {occupancy} (capacity {})",
            report.index(),
            max_entries,
        );
        let unrecorded = report.unrecorded();
        if unrecorded.total() > 0 {
            log::warn!(
                "map full: {} bytes received and {} sent could not be attributed to a process \
                 this interval (raise --max-entries, now {})",
                unrecorded.rx,
                unrecorded.tx,
                max_entries
            );
        }
        let missed = misses.since_last();
        if missed > 0 {
            log::warn!(
                "the kernel skipped flowtop's programs for {missed} socket calls this \
                 interval (the program was still running on that CPU, e.g. preempted): \
                 their bytes are not counted"
            );
        }
        // On a signal, print the partial interval too: nothing counted is lost.
        if !stopping || !report.is_empty() {
            match &report {
                Interval::Procs(r) => printer.interval(r, &stamp)?,
                Interval::Grouped(r) => printer.grouped(r, &stamp)?,
            }
            io::stdout().flush()?;
        }
        reports += 1;
        if stopping || config.count.is_some_and(|c| reports >= c) || stdout_reader_gone() {
            return Ok(());
        }
    }
}

/// True when stdout is a pipe or socket whose reader has gone: exit quietly even in
/// intervals where there is nothing to write (writing would fail with EPIPE anyway).
fn stdout_reader_gone() -> bool {
    let mut pfd = libc::pollfd {
        fd: io::stdout().as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & libc::POLLERR != 0
}
