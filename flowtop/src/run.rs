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
    cli::Cli,
    collect::{
        collector::{Collector, Interval},
        exporter::ExportReader,
    },
    filter::KernelFilters,
    output::{self, term::Term, OutputOptions, Printer, Stamp},
    privileges,
    probe::{
        detect::KernelFacts,
        load::{attach_first, Attached, LoadConfig},
        misses::MissedEvents,
        preempt,
        select::{plan, Facts},
        udp_peer, Family,
    },
    serve::{
        self,
        metrics::{Info, Metrics},
    },
};

/// How often flowtop checks whether exited processes' keys must be reclaimed early.
const SWEEP_PERIOD: Duration = Duration::from_millis(50);

pub fn run(cli: &Cli) -> Result<()> {
    if let Some(message) =
        privileges::cannot_trace_message(privileges::effective_caps(), &privileges::current_exe())
    {
        bail!(message);
    }
    // Before loading (a port in use fails fast) and before capabilities are dropped.
    let listener = cli.serve.map(serve::bind).transpose()?;
    let facts = KernelFacts::detect();
    let candidates = plan(cli.probe, &Facts::from(&facts))?;
    let filters = KernelFilters::from_cli(cli, facts.offsets.is_ok())?;
    let mut attached = attach_first(
        &candidates,
        &LoadConfig {
            filter_tgid: filters.single_tgid(),
            max_entries: cli.max_entries,
            offsets: facts.offsets.ok(),
            filters: filters.clone(),
            btf_ids: facts.btf_ids,
        },
    )
    .map_err(|e| privileges::explain_refusal(e.into()))?;
    filters.fill_maps(&mut attached.ebpf)?;
    if attached.family != Family::Tracepoint {
        if let Some(mode) = preempt::kernel_code_preemptible() {
            log::warn!(
                "this kernel preempts kernel code ({mode}): with the {} family, socket \
                 calls can go uncounted while many threads send at once (fentry: \
                 reported as skipped calls; kprobe: not detectable). The tracepoint \
                 family (Linux 6.3+) is not affected",
                attached.family
            );
        }
    }
    if filters.reads_addresses() {
        if let Err(e) = udp_peer::attach(&mut attached.ebpf) {
            let e = match privileges::net_admin_hint(privileges::effective_caps()) {
                Some(hint) => e.context(hint),
                None => e,
            };
            log::info!(
                "no per-datagram peers for unconnected UDP sockets ({e:#}): their remote \
                 shows as '*', --port matches only their local port, and on a dual-stack \
                 IPv6 socket they count as IPv6 for -4/-6"
            );
        }
    }
    if let Some(listener) = listener {
        return serve(cli, listener, attached);
    }
    let mut reader = Collector::new(
        &mut attached.ebpf,
        cli.by,
        cli.sort,
        cli.rows,
        cli.max_entries,
    )?;
    if cli.show_nspid {
        reader.show_nspids();
    }
    privileges::drop_after_attach().context("dropping capabilities after attaching")?;
    log::debug!(
        "capabilities now {:#x}, no_new_privs set",
        privileges::effective_caps()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    // Handlers go in before the "counting" line: a SIGINT sent as soon as that line
    // appears must print the partial interval and exit 0, not kill the process.
    let signals = {
        let _rt = runtime.enter();
        Signals {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        }
    };
    log::info!(
        "counting with probe family {} ({}); first report in {}s",
        attached.family,
        attached.kind,
        cli.interval
    );
    let stdout = io::stdout().lock();
    let printer = output::printer_with(&OutputOptions::resolve(cli, &Term::detect()), stdout);
    // `attached` lives until here: dropping it detaches the programs.
    let misses = MissedEvents::new(&attached.ebpf);
    let result = runtime.block_on(report_loop(cli, reader, misses, printer, signals));
    drop(attached);
    result
}

/// `--serve`: the exporter's half of [`run`], after the programs are attached.
fn serve(cli: &Cli, listener: std::net::TcpListener, mut attached: Attached) -> Result<()> {
    let reader = ExportReader::new(&mut attached.ebpf, cli.max_entries)?;
    privileges::drop_after_attach().context("dropping capabilities after attaching")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let (int, term) = {
        let _rt = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        )
    };
    let metrics = Metrics::new(Info {
        family: attached.family.to_string(),
        kind: attached.kind.to_string(),
        version: crate::cli::VERSION.to_string(),
        capacity: cli.max_entries,
        pid_label: cli.metrics_pid_label,
    });
    let addr = listener.local_addr()?;
    log::info!(
        "counting with probe family {} ({}); serving http://{addr}/metrics",
        attached.family,
        attached.kind,
    );
    let result = runtime.block_on(serve::serve_loop(listener, reader, metrics, int, term));
    drop(attached);
    result
}

/// SIGINT and SIGTERM streams, installed before flowtop announces that it counts.
struct Signals {
    int: Signal,
    term: Signal,
}

async fn report_loop(
    cli: &Cli,
    mut reader: Collector,
    mut misses: MissedEvents<'_>,
    mut printer: Box<dyn Printer + '_>,
    signals: Signals,
) -> Result<()> {
    let period = Duration::from_secs(cli.interval);
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
            cli.max_entries,
        );
        let unrecorded = report.unrecorded();
        if unrecorded.total() > 0 {
            log::warn!(
                "map full: {} bytes received and {} sent could not be attributed to a process \
                 this interval (raise --max-entries, now {})",
                unrecorded.rx,
                unrecorded.tx,
                cli.max_entries
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
        if stopping || cli.count.is_some_and(|c| reports >= c) || stdout_reader_gone() {
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
