//! `cargo xtask bench`: what flowtop costs, measured against a baseline taken in the
//! same run. Machines drift (other builds, thermal, frequency), so monitored and bare
//! rounds alternate, their order rotates every round, and every figure is reported
//! as the median of per-round ratios to the bare run next to it.
//!
//! Parts (all by default, `--parts` picks some):
//! - traffic: iperf3 over 127.0.0.1 (TCP 64 B and 64 KiB writes, UDP 64 B datagrams),
//!   bare vs flowtop (default settings, output to /dev/null) vs a bpftrace one-liner;
//! - events: nanoseconds per event of each program kind, from the kernel's BPF
//!   run-time statistics (`kernel.bpf_stats_enabled`), with bpftrace as an anchor,
//!   the no-op floor, and one minimal program per map design (per-CPU hash, shared
//!   hash with atomic adds, per-CPU array, direct-mapped arrays in front of the
//!   hash, task storage), see `bench/minimal.rs`, and what reading the
//!   direct-mapped arrays costs per slot (`bench/slot_read.rs`);
//! - startup: exec to counting (the `-v` line saying so), peak RSS, exit on SIGINT;
//! - poll: reading and reporting one interval with 1k, 10k, 100k and 1M live keys in a
//!   real per-CPU map of flowtop's layout, with flowtop's own reading code (a running
//!   flowtop's interval and the first one), and the kernel's batch read of a per-CPU
//!   and of a shared hash alone, and an mmapped array of the same counters;
//! - interactive: `flowtop -i` with 1,000 live rows: CPU and keypress latency, see
//!   `bench/interactive.rs`.
//!
//! Output is Markdown tables, ready for docs/performance.md.
use std::{
    fs,
    io::{BufRead as _, BufReader, Read},
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::maps::{
    Array, HashMap, IterableMap as _, Map, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues,
};
use flowtop::dev::{
    fdinfo_field, lookup_batch, BatchCursor, Format, KernelMaps, LivePids, ProcDiffer,
};
use flowtop_common::{ProcCounters, Unrecorded, COMM_LEN};

mod env;
mod interactive;
mod minimal;
mod poll;
mod procs;
mod slot_read;
mod stats;

use env::*;
use minimal::{Attached, Minimal};
use procs::*;
use stats::*;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Alternating rounds per measurement (medians are taken over these)
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds of traffic per iperf3 run
    #[arg(long, default_value_t = 3)]
    pub secs: u64,
    /// Which parts to run
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "traffic,events,startup,poll,interactive"
    )]
    pub parts: Vec<Part>,
    /// Start-ups to time
    #[arg(long, default_value_t = 7)]
    pub starts: usize,
    /// flowtop binary to measure [default: build target/release/flowtop]
    #[arg(long)]
    pub flowtop: Option<PathBuf>,
    /// Leave out the bpftrace anchor
    #[arg(long)]
    pub no_bpftrace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Traffic,
    Events,
    Startup,
    Poll,
    Interactive,
}

const PORT: &str = "5299";
/// The anchor: what a user would type instead of flowtop. Same hooks and filters
/// (bytes returned, no MSG_PEEK, IPv4/IPv6), print-and-clear every second.
const BPFTRACE_SCRIPT: &str = r#"
tracepoint:sock:sock_send_length /args->ret > 0 && (args->family == 2 || args->family == 10)/ { @tx[pid, comm] = sum(args->ret); }
tracepoint:sock:sock_recv_length /args->ret > 0 && !(args->flags & 2) && (args->family == 2 || args->family == 10)/ { @rx[pid, comm] = sum(args->ret); }
interval:s:1 { print(@tx); print(@rx); clear(@tx); clear(@rx); }
"#;

pub fn run(args: &BenchArgs) -> Result<()> {
    // SAFETY: no arguments, cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark loads eBPF programs: run it as root (sudo -E cargo xtask bench)");
    }
    let needs_iperf = args
        .parts
        .iter()
        .any(|p| matches!(p, Part::Traffic | Part::Events | Part::Startup));
    let needs_binary = needs_iperf || args.parts.contains(&Part::Interactive);
    let bench = Bench {
        flowtop: if needs_binary {
            flowtop_binary(args)?
        } else {
            PathBuf::new()
        },
        bpftrace: !args.no_bpftrace && have("bpftrace"),
        args,
    };
    if needs_iperf {
        ensure_iperf3()?;
        ensure_tracefs();
    }
    println!("# flowtop benchmark\n");
    println!("{}\n", machine());
    let started = Instant::now();
    for part in &args.parts {
        match part {
            Part::Traffic => bench.traffic()?,
            Part::Events => bench.events()?,
            Part::Startup => bench.startup()?,
            Part::Poll => poll::poll()?,
            Part::Interactive => interactive::run(&bench.flowtop, bench.args.secs.max(10))?,
        }
    }
    println!(
        "Finished in {:.0} s; load average now {}.",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

struct Bench<'a> {
    args: &'a BenchArgs,
    flowtop: PathBuf,
    bpftrace: bool,
}

/// What runs beside the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Monitor {
    Bare,
    /// flowtop with default settings, or forced to one program kind.
    Flowtop(Option<&'static str>),
    Bpftrace,
    /// A minimal program on the same hooks: the no-op floor (the least any monitor
    /// there can cost) or the least one map design needs.
    Minimal(Minimal),
}

impl Monitor {
    fn label(self) -> String {
        match self {
            Monitor::Bare => "bare".into(),
            Monitor::Flowtop(None) => "flowtop".into(),
            Monitor::Flowtop(Some(kind)) => format!("flowtop {kind}"),
            Monitor::Bpftrace => "bpftrace one-liner".into(),
            Monitor::Minimal(kind) => kind.label().into(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    iperf_args: &'static [&'static str],
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "TCP, 64 B writes",
        iperf_args: &["-l", "64"],
    },
    Workload {
        name: "TCP, 64 KiB writes",
        iperf_args: &["-l", "65536"],
    },
    Workload {
        name: "UDP, 64 B datagrams",
        iperf_args: &["-u", "-b", "0", "-l", "64"],
    },
];

impl Bench<'_> {
    fn traffic(&self) -> Result<()> {
        let mut monitors = vec![Monitor::Bare, Monitor::Flowtop(None)];
        if self.bpftrace {
            monitors.push(Monitor::Bpftrace);
        }
        monitors.push(Monitor::Minimal(Minimal::FloorTpBtf));
        let _server = IperfServer::start()?;
        // Warm-up (page cache, CPU frequency, iperf3 server): not counted.
        iperf(&WORKLOADS[0], 1)?;
        println!(
            "## Traffic path\n\niperf3 over 127.0.0.1 (client on CPU 0, server on CPU 1), \
             {} rounds of {} s per cell, order rotated every round. Each cell: median of \
             the per-round ratios to the bare run of the same round [lowest-highest]. \
             \"bytes per CPU-s\" divides bytes received by the CPU time client and \
             server used (the BPF programs run inside their syscalls): the cost per \
             byte, which other load on the machine barely changes.\n",
            self.args.rounds, self.args.secs
        );
        let mut header = "| workload | measure | bare |".to_string();
        for m in &monitors[1..] {
            header += &format!(" {} |", m.label());
        }
        println!(
            "{header}\n|---|---|---|{}",
            "---|".repeat(monitors.len() - 1)
        );
        for (w, workload) in WORKLOADS.iter().enumerate() {
            // runs[monitor][round]
            let mut runs: Vec<Vec<Iperf>> = vec![Vec::new(); monitors.len()];
            for round in 0..self.args.rounds {
                for i in rotated(monitors.len(), round + w) {
                    let running = self.start(monitors[i])?;
                    let r = iperf(workload, self.args.secs);
                    stop(running)?;
                    runs[i].push(r?);
                }
            }
            for (measure, unit, scale, get) in [
                (
                    "throughput",
                    "Mbit/s",
                    1e-6,
                    (|r: &Iperf| r.bps) as fn(&Iperf) -> f64,
                ),
                ("bytes per CPU-s", "MB/CPU-s", 1e-6, |r: &Iperf| {
                    r.bytes_per_cpu_s
                }),
            ] {
                let bare: Vec<f64> = runs[0].iter().map(get).collect();
                let mut line = format!(
                    "| {} | {measure} | {:.0} {unit} |",
                    workload.name,
                    median(&bare) * scale
                );
                for series in &runs[1..] {
                    let ratios: Vec<f64> =
                        series.iter().zip(&bare).map(|(m, b)| get(m) / b).collect();
                    line += &format!(" {} |", ratio_cell(&ratios));
                }
                println!("{line}");
            }
        }
        println!();
        Ok(())
    }

    fn events(&self) -> Result<()> {
        let _stats = BpfStats::enable()?;
        let mut monitors: Vec<Monitor> = ["tp_btf", "raw_tp", "tracepoint"]
            .into_iter()
            .map(|k| Monitor::Flowtop(Some(k)))
            .collect();
        if self.bpftrace {
            monitors.push(Monitor::Bpftrace);
        }
        monitors.extend([
            Monitor::Minimal(Minimal::FloorTpBtf),
            Monitor::Minimal(Minimal::FloorRawTp),
            Monitor::Minimal(Minimal::PerCpuHash),
            Monitor::Minimal(Minimal::SharedHashAtomic),
            Monitor::Minimal(Minimal::PerCpuArray),
            Monitor::Minimal(Minimal::PerCpuArrayTgid),
            Monitor::Minimal(Minimal::DirectShared),
            Monitor::Minimal(Minimal::DirectSharedTask),
            Monitor::Minimal(Minimal::DirectPerCpu),
            Monitor::Minimal(Minimal::DirectPerCpuAtomic),
            Monitor::Minimal(Minimal::TaskStorage),
        ]);
        let _server = IperfServer::start()?;
        println!(
            "## Per-event cost\n\nKernel BPF run-time statistics (`kernel.bpf_stats_enabled`) \
             of the monitor's programs while iperf3 sends 64 B TCP writes over 127.0.0.1 \
             for {} s; {} rounds, order rotated. run_time_ns / run_cnt over both hooks \
             (every send and receive on any socket is one event). Map designs: \
             the \"minimal\" programs do only what each design needs per event (skip \
             failed calls, key by tgid, find the counter, add), so their differences \
             are the design's alone: per-CPU hash with plain adds (flowtop's), one \
             shared hash with atomic adds, a per-CPU array with no key (no lookup), \
             the same after reading the tgid (the price of a key); \
             then designs without a hash lookup on the common path: a direct-mapped \
             array of {} slots (slot = tgid & (slots - 1), tagged with its owner, \
             claimed by cmpxchg, the per-CPU hash on a collision), shared with atomic \
             adds or per-CPU with plain or atomic adds, and task local storage (one \
             counter pair per thread).\n",
            self.args.secs,
            self.args.rounds,
            minimal::DIRECT_SLOTS
        );
        println!(
            "| program | ns/event (median) | [lowest-highest] | events/s |\n|---|---|---|---|"
        );
        let mut ns = vec![Vec::new(); monitors.len()];
        let mut rate = vec![Vec::new(); monitors.len()];
        for round in 0..self.args.rounds {
            for i in rotated(monitors.len(), round) {
                let running = self.start(monitors[i])?;
                let r = iperf(&WORKLOADS[0], self.args.secs);
                let stats = running.prog_stats();
                stop(running)?;
                r?;
                let (time_ns, count) = stats?;
                if count == 0 {
                    bail!("{} ran no events", monitors[i].label());
                }
                ns[i].push(time_ns as f64 / count as f64);
                rate[i].push(count as f64 / self.args.secs as f64);
            }
        }
        for (i, m) in monitors.iter().enumerate() {
            let label = match m {
                Monitor::Flowtop(Some(k)) => format!("flowtop {k}"),
                m => m.label(),
            };
            println!(
                "| {label} | {:.1} | {:.1}-{:.1} | {:.2} M |",
                median(&ns[i]),
                min(&ns[i]),
                max(&ns[i]),
                median(&rate[i]) / 1e6
            );
        }
        println!();
        slot_read::report(self.args.rounds.max(5))
    }

    fn startup(&self) -> Result<()> {
        let (mut ready, mut rss, mut exit) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.args.starts {
            let t0 = Instant::now();
            let running = self.start(Monitor::Flowtop(None))?;
            let Active::Process(process) = &running else {
                bail!("flowtop did not start a process");
            };
            ready.push(t0.elapsed().as_secs_f64() * 1e3);
            // Past the first report, so the reading buffers exist.
            thread::sleep(Duration::from_millis(1300));
            rss.push(peak_rss_kib(process.child.id())? as f64 / 1024.0);
            let t1 = Instant::now();
            stop(running)?;
            exit.push(t1.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "## Start-up and footprint\n\n`flowtop -v` with stdout to /dev/null, {} runs: \
             exec until the `counting with probe family` line (programs attached), peak \
             RSS (VmHWM) after the first report, and SIGINT until exit.\n",
            self.args.starts
        );
        println!("| | median | lowest | highest | target |\n|---|---|---|---|---|");
        for (name, v, unit, target) in [
            ("exec to counting", &ready, "ms", "< 100 ms"),
            ("peak RSS", &rss, "MiB", "< 16 MiB"),
            ("SIGINT to exit", &exit, "ms", "< 1000 ms"),
        ] {
            println!(
                "| {name} | {:.1} {unit} | {:.1} | {:.1} | {target} |",
                median(v),
                min(v),
                max(v)
            );
        }
        println!();
        Ok(())
    }

    /// Starts `m` and returns once it counts (None for bare).
    fn start(&self, m: Monitor) -> Result<Active> {
        let (mut cmd, ready_marker, from_stderr) = match m {
            Monitor::Bare => return Ok(Active::Bare),
            Monitor::Minimal(kind) => return Ok(Active::Minimal(Attached::attach(kind)?)),
            Monitor::Flowtop(kind) => {
                let mut cmd = Command::new(&self.flowtop);
                cmd.arg("-v");
                match kind {
                    Some(k) => cmd.env("FLOWTOP_PROGRAM_KIND", k),
                    None => cmd.env_remove("FLOWTOP_PROGRAM_KIND"),
                };
                cmd.env_remove("RUST_LOG");
                (cmd, "counting with probe family", true)
            }
            Monitor::Bpftrace => {
                let mut cmd = Command::new("bpftrace");
                cmd.arg("-e").arg(BPFTRACE_SCRIPT);
                (cmd, "Attaching", false)
            }
        };
        cmd.stdin(Stdio::null());
        if from_stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", m.label()))?;
        let pipe: Box<dyn Read + Send> = if from_stderr {
            Box::new(child.stderr.take().expect("piped"))
        } else {
            Box::new(child.stdout.take().expect("piped"))
        };
        let running = Running { child };
        let (tx, rx) = mpsc::channel();
        // Reads until the marker, then drains the pipe so the monitor never blocks.
        thread::spawn(move || {
            let mut lines = BufReader::new(pipe).lines();
            let mut seen = Vec::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.contains(ready_marker) {
                    let _ = tx.send(Ok(()));
                    break;
                }
                seen.push(line);
            }
            let _ = tx.send(Err(seen.join("\n")));
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => Ok(Active::Process(running)),
            Ok(Err(out)) => Err(anyhow!("{} did not start:\n{out}", m.label())),
            Err(_) => Err(anyhow!("{} did not start within 30 s", m.label())),
        }
    }
}

/// Indices `0..n` starting at `offset % n`: each monitor takes each position in turn.
fn rotated(n: usize, offset: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + offset) % n)
}
