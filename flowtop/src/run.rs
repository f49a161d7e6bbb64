//! The main loop: attach, then read, diff and print every interval until COUNT
//! reports, SIGINT/SIGTERM, or the reader of stdout goes away. `-i` and `--serve`
//! attach and start the same way, then run their own loop.
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
    config::{Config, GroupBy, Mode, ReportConfig},
    container::{filter::CgroupFilter, Containers},
    filter::KernelFilters,
    identity,
    interactive::{self, source::Source},
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
    if let Some(message) =
        privileges::cannot_trace_message(privileges::effective_caps(), &privileges::current_exe())
    {
        bail!(message);
    }
    match &config.mode {
        Mode::Report(report) => {
            let (mut attached, _, cgroup_filter) = attach(config)?;
            // The readers take their maps while flowtop still holds its capabilities.
            let mut reader = Collector::new(
                &mut attached.ebpf,
                report.rows.by,
                report.rows.sort,
                report.rows.limit,
                config.max_entries,
                report.rows.container,
            )?;
            if report.rows.nspid {
                reader.show_nspids();
            }
            if report.rows.container || report.rows.by == GroupBy::Container {
                reader.name_containers(config.host_root.clone())?;
            }
            if let Some(f) = cgroup_filter {
                reader.follow_cgroup_filter(f);
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
                report.rows.container,
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
        Mode::Interactive(screen) => {
            let (mut attached, flow_mode, cgroup_filter) = attach(config)?;
            let mut source = Source::new(
                &mut attached.ebpf,
                config.max_entries,
                flow_mode,
                screen.rows.nspid,
                screen.rows.container,
                config.host_root.clone(),
            )?;
            if let Some(f) = cgroup_filter {
                source.follow_cgroup_filter(f);
            }
            let session = Session::start(&attached, "the screen follows")?;
            let misses = MissedEvents::new(&attached.ebpf);
            let probe = format!("{} ({})", attached.family, attached.kind);
            let Session { runtime, signals } = session;
            let result = runtime.block_on(interactive::run(
                screen,
                source,
                misses,
                probe,
                signals.int,
                signals.term,
            ));
            drop(attached);
            result
        }
        Mode::Serve(serve) => {
            // Before loading (a port in use fails fast) and before capabilities are
            // dropped (a port below 1024).
            let listener = serve::bind(serve.addr)?;
            let (mut attached, _, cgroup_filter) = attach(config)?;
            let reader = ExportReader::new(
                &mut attached.ebpf,
                config.max_entries,
                config.host_root.clone(),
                cgroup_filter,
            )?;
            let addr = listener.local_addr()?;
            let session = Session::start(&attached, &format!("serving http://{addr}/metrics"))?;
            let metrics = Metrics::new(Info {
                family: attached.family.to_string(),
                kind: attached.kind.to_string(),
                version: crate::VERSION.to_string(),
                capacity: config.max_entries,
                pid_label: serve.pid_label,
                cgroup_label: serve.cgroup_label,
                series_ttl: serve.series_ttl,
            });
            let Session { runtime, signals } = session;
            let misses = MissedEvents::new(&attached.ebpf);
            let result = runtime.block_on(serve::serve_loop(
                listener,
                reader,
                misses,
                metrics,
                signals.int,
                signals.term,
            ));
            drop(attached);
            result
        }
    }
}

/// `-i` without a terminal on stdin and stdout: the line saying so. A command-line
/// error (exit 2), found before anything is loaded.
pub fn terminal_missing(config: &Config) -> Option<&'static str> {
    (matches!(config.mode, Mode::Interactive(_)) && !interactive::has_terminal())
        .then_some("-i needs a terminal on stdin and stdout")
}

/// Loads and attaches the programs the kernel supports best, with the filters set
/// and filled, and the optional parts (datagram peers) attached where they apply.
/// Also the `flow_mode` the programs key flows by, and with `--container`/`--pod`
/// the filter that keeps the kernel's cgroup slots in step with the matching
/// containers.
fn attach(config: &Config) -> Result<(Attached, u32, Option<CgroupFilter>)> {
    let facts = KernelFacts::detect();
    let candidates = plan(config.probe, &Facts::from(&facts))?;
    let filters = KernelFilters::new(
        &config.filters,
        config.group_by(),
        config.show_container(),
        config.switchable_groupings(),
        facts.offsets.is_ok(),
    )?;
    let mut attached = attach_first(
        &candidates,
        &LoadConfig {
            max_entries: config.max_entries,
            offsets: facts.offsets.ok(),
            filters: filters.clone(),
            btf_ids: facts.btf_ids,
        },
    )
    .map_err(|e| privileges::explain_refusal(e.into()))?;
    filters.fill_maps(&mut attached.ebpf)?;
    let cgroup_filter = match &filters.containers {
        Some((wanted, dirs)) => Some(CgroupFilter::new(
            &mut attached.ebpf,
            wanted.clone(),
            Containers::new(identity::cgroup2_mount()?, config.host_root.clone()),
            dirs,
        )?),
        None => None,
    };
    if let Some(mode) = preempt::kernel_code_preemptible() {
        let raised = !attached.retprobes.is_empty();
        log::warn!(
            "{}",
            preempt::start_warning(attached.family, attached.kind, raised, &mode)
        );
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
    Ok((attached, filters.flow_mode, cgroup_filter))
}

/// What report, interactive and serve mode share once the programs are attached and the readers
/// hold their maps: no capabilities left, an event loop, and signal handlers.
struct Session {
    runtime: tokio::runtime::Runtime,
    signals: Signals,
}

impl Session {
    /// `what_next`: the end of the "counting" line (when the first output comes).
    fn start(attached: &Attached, what_next: &str) -> Result<Self> {
        // While privileged: the map reads' real-time priority needs no capability later.
        crate::collect::realtime::allow();
        let kept =
            privileges::drop_after_attach().context("dropping capabilities after attaching")?;
        log::debug!(
            "capabilities now {:#x} ({}), no_new_privs set",
            privileges::effective_caps(),
            match kept {
                0 => "none: this kernel lets map reads go without CAP_BPF",
                _ => "kept for map reads, which this kernel refuses without",
            }
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
            "counting with probe family {} ({}), exited processes reclaimed by {}; {what_next}",
            attached.family,
            attached.kind,
            if attached.kernel_reclaim {
                "the kernel"
            } else {
                "flowtop"
            },
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
        let missed = misses.since_last();
        let stamp = Stamp {
            at: SystemTime::now(),
            elapsed: last_read.elapsed(),
            skipped: missed,
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
        if missed > 0 {
            log::warn!(
                "the kernel skipped flowtop's programs for {missed} socket calls this \
                 interval (the program was still running on that CPU, e.g. preempted): \
                 their bytes are not counted"
            );
        }
        // On a signal, print the partial interval too: nothing counted is lost.
        if !stopping || !report.is_empty() || unrecorded.total() > 0 || missed > 0 {
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
