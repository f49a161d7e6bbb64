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
//!   hash with atomic adds, per-CPU array), see `bench/minimal.rs`;
//! - startup: exec to counting (the `-v` line saying so), peak RSS, exit on SIGINT;
//! - poll: reading and reporting one interval with 1k, 10k and 100k live keys in a
//!   real per-CPU map of flowtop's layout, with flowtop's own reading code (a running
//!   flowtop's interval and the first one), and the kernel's batch read of a per-CPU
//!   and of a shared hash alone.
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
    HashMap, IterableMap as _, Map, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues,
};
use flowtop::{
    collect::{
        diff::Differ,
        read::{LivePids, MapReader},
        sys_bpf::{lookup_batch, BatchCursor},
    },
    output::{self, Format},
    probe::misses::fdinfo_field,
};
use flowtop_common::{ProcCounters, Unrecorded, COMM_LEN};

mod minimal;
use minimal::{Attached, Minimal};

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
        default_value = "traffic,events,startup,poll"
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
    let needs_binary = args
        .parts
        .iter()
        .any(|p| matches!(p, Part::Traffic | Part::Events | Part::Startup));
    let bench = Bench {
        flowtop: if needs_binary {
            flowtop_binary(args)?
        } else {
            PathBuf::new()
        },
        bpftrace: !args.no_bpftrace && have("bpftrace"),
        args,
    };
    if needs_binary {
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
            Part::Poll => poll()?,
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
             shared hash with atomic adds, a per-CPU array with no key (no lookup).\n",
            self.args.secs, self.args.rounds
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
        Ok(())
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

/// What runs beside the traffic, once started.
enum Active {
    Bare,
    Process(Running),
    Minimal(Attached),
}

impl Active {
    /// `(run_time_ns, run_cnt)` of the monitor's BPF programs.
    fn prog_stats(&self) -> Result<(u64, u64)> {
        match self {
            Active::Bare => bail!("no programs run bare"),
            Active::Process(r) => prog_stats(r.child.id()),
            Active::Minimal(m) => m.stats(),
        }
    }
}

/// A monitor process; stopped with SIGINT like a user would.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stop(running: Active) -> Result<()> {
    let Active::Process(mut r) = running else {
        return Ok(());
    };
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if r.child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(2));
    }
    bail!("monitor did not exit within 5 s of SIGINT")
}

/// Indices `0..n` starting at `offset % n`: each monitor takes each position in turn.
fn rotated(n: usize, offset: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + offset) % n)
}

struct IperfServer(Child);

impl IperfServer {
    fn start() -> Result<Self> {
        let child = Command::new("iperf3")
            .args(["-s", "-p", PORT])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 -s")?;
        thread::sleep(Duration::from_millis(300));
        Ok(Self(child))
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One iperf3 run's result.
#[derive(Debug, Clone, Copy)]
struct Iperf {
    /// Received throughput, bit/s.
    bps: f64,
    /// Bytes received per CPU-second used by client and server together (iperf3's own
    /// getrusage figures, which include the time BPF programs run in their syscalls).
    /// When other work takes CPUs away, throughput falls but this barely moves.
    bytes_per_cpu_s: f64,
}

fn iperf(w: &Workload, secs: u64) -> Result<Iperf> {
    let out = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", PORT, "-A", "0,1", "-J", "-t"])
        .arg(secs.to_string())
        .args(w.iperf_args)
        .stdin(Stdio::null())
        .output()
        .context("running iperf3 -c")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "iperf3 printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = json.get("error") {
        bail!("iperf3: {e}");
    }
    let num = |path: &str| {
        json.pointer(path)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| anyhow!("iperf3 JSON has no {path}"))
    };
    let cpu_s = (num("/end/cpu_utilization_percent/host_total")?
        + num("/end/cpu_utilization_percent/remote_total")?)
        / 100.0
        * num("/end/sum_received/seconds")?;
    Ok(Iperf {
        bps: num("/end/sum_received/bits_per_second")?,
        bytes_per_cpu_s: num("/end/sum_received/bytes")? / cpu_s.max(1e-9),
    })
}

/// Sums `run_time_ns` and `run_cnt` of the BPF programs `pid` holds open (from
/// `/proc/<pid>/fdinfo`), leaving out perf-event programs (bpftrace's interval timer).
fn prog_stats(pid: u32) -> Result<(u64, u64)> {
    const BPF_PROG_TYPE_PERF_EVENT: u64 = 7;
    let mut seen = Vec::new();
    let (mut time, mut count) = (0, 0);
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        let field = |name| fdinfo_field(&info, name);
        let (Some(id), Some(ty)) = (field("prog_id"), field("prog_type")) else {
            continue;
        };
        if ty == BPF_PROG_TYPE_PERF_EVENT || seen.contains(&id) {
            continue;
        }
        seen.push(id);
        time += field("run_time_ns").unwrap_or(0);
        count += field("run_cnt").unwrap_or(0);
    }
    if seen.is_empty() {
        bail!("process {pid} holds no BPF programs");
    }
    Ok((time, count))
}

/// Turns `kernel.bpf_stats_enabled` on, and back to what it was when dropped.
struct BpfStats(String);

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> Result<Self> {
        let old = fs::read_to_string(BPF_STATS).context("reading kernel.bpf_stats_enabled")?;
        fs::write(BPF_STATS, "1").context("enabling kernel.bpf_stats_enabled")?;
        Ok(Self(old))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, self.0.trim());
    }
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// Polling cost with N live keys: flowtop's `MapReader` on a real per-CPU hash of
/// flowtop's layout, then the diff and the table printer, as one interval does.
fn poll() -> Result<()> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(p, e)| anyhow!("reading {p}: {e}"))?
        .get() as usize;
    const REPS: usize = 5;
    println!(
        "## Polling\n\nOne interval (read map + diff + format the table to a sink) with N \
         live keys in a per-CPU hash ({cpus} possible CPUs), every key with new bytes \
         (N rows), median of {REPS}. CPU ms is this thread's user+system time (robust \
         against other load); wall ms includes waiting for a CPU. \"steady\" is a \
         running flowtop's interval: the same reader and differ as the interval before, \
         every key's counters raised between the two (untimed). \"first\" is the first \
         interval, with an empty differ (its tables grow). Both read with \
         BPF_MAP_LOOKUP_BATCH, flowtop's path; \"key by key\" is the get_next_key + \
         lookup fallback (first interval). Liveness: \"/proc stat per key\" is the cost \
         of the former `/proc/<pid>` check per key; flowtop now lists /proc once per \
         interval (cost independent of N, measured below on this machine).\n"
    );
    if cfg!(debug_assertions) {
        // `cargo xtask` builds in release (.cargo/config.toml); a dev build of xtask
        // (`cargo run -p xtask`) measures unoptimized code, several times slower.
        println!(
            "Built without optimizations (a dev build of xtask, not `cargo xtask`): \
             flowtop's code runs unoptimized here, several times slower than in the \
             release binary. `cargo xtask bench --parts poll` measures it optimized, \
             as shipped.\n"
        );
    }
    println!(
        "| live keys | steady: CPU ms | wall ms | CPU ns/key | first: CPU ms | wall ms | key by key: CPU ms | /proc stat per key: CPU ms |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for n in [1_000u32, 10_000, 100_000] {
        let steady = interval_times(n, cpus, REPS, Interval::Steady)?;
        let first = interval_times(n, cpus, REPS, Interval::First)?;
        let by_key = interval_times(n, cpus, REPS.min(3), Interval::FirstKeyByKey)?;
        let c = thread_cpu_ms();
        let alive = (1..=n)
            .filter(|p| Path::new("/proc").join(p.to_string()).exists())
            .count();
        let stat_ms = thread_cpu_ms() - c;
        std::hint::black_box(alive);
        let cpu = |v: &[Sample]| median(&v.iter().map(|s| s.cpu_ms).collect::<Vec<_>>());
        let wall = |v: &[Sample]| median(&v.iter().map(|s| s.wall_ms).collect::<Vec<_>>());
        println!(
            "| {n} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            cpu(&steady),
            wall(&steady),
            cpu(&steady) * 1e6 / n as f64,
            cpu(&first),
            wall(&first),
            cpu(&by_key),
            stat_ms
        );
    }
    let mut scans = Vec::new();
    let mut procs = 0;
    for _ in 0..REPS {
        let t = Instant::now();
        procs = LivePids::scan()?.len();
        scans.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "\nOne listing of /proc ({procs} processes here): {:.2} ms (median of {REPS}).\n",
        median(&scans)
    );
    read_by_design(cpus, REPS)
}

/// The kernel's share of a poll, by map design: `BPF_MAP_LOOKUP_BATCH` over every
/// key of a per-CPU hash (flowtop's design: one value per possible CPU per key) and
/// of one shared hash (one value per key, as a design with atomic adds would keep),
/// both `u32 -> ProcCounters` with N keys, 4096 keys per call.
fn read_by_design(cpus: usize, reps: usize) -> Result<()> {
    println!(
        "Map read alone (`BPF_MAP_LOOKUP_BATCH` of every key, 4096 per call), by map \
         design, `u32 -> ProcCounters` ({} B): CPU ms of this thread (almost all of it \
         system time), median of {reps}.\n\n\
         | live keys | per-CPU hash ({cpus} CPUs) | shared hash | shared / per-CPU |\n|---|---|---|---|",
        std::mem::size_of::<ProcCounters>()
    );
    for n in [1_000u32, 10_000, 100_000] {
        let mut per_cpu = PerCpuHashMap::<MapData, u32, ProcCounters>::create(n, 0)
            .context("creating a per-CPU hash")?;
        let mut shared =
            HashMap::<MapData, u32, ProcCounters>::create(n, 0).context("creating a hash")?;
        for (pid, values) in bench_counters(n, cpus, 0) {
            shared.insert(&pid, &values[0], 0)?;
            per_cpu.insert(&pid, PerCpuValues::try_from(values)?, 0)?;
        }
        let per_cpu_ms = batch_read_ms(per_cpu.map().fd().as_fd().as_raw_fd(), cpus, n, reps)?;
        let shared_ms = batch_read_ms(shared.map().fd().as_fd().as_raw_fd(), 1, n, reps)?;
        println!(
            "| {n} | {per_cpu_ms:.2} | {shared_ms:.2} | {:.2} |",
            shared_ms / per_cpu_ms
        );
    }
    println!();
    Ok(())
}

/// Median CPU ms of reading all `n` keys of the hash at `fd` in batches, `slots`
/// values per key (possible CPUs for a per-CPU map, else 1).
fn batch_read_ms(fd: RawFd, slots: usize, n: u32, reps: usize) -> Result<f64> {
    const BATCH: usize = 4096;
    let mut keys = vec![0u32; BATCH];
    let mut values = vec![ProcCounters::default(); BATCH * slots];
    let mut times = Vec::new();
    for _ in 0..reps {
        let c = thread_cpu_ms();
        let mut cursor = BatchCursor::default();
        let mut read = 0;
        while !cursor.is_done() {
            // SAFETY: plain-old-data buffers reinterpreted as bytes, sizes unchanged.
            let (k, v) = unsafe {
                (
                    std::slice::from_raw_parts_mut(keys.as_mut_ptr().cast::<u8>(), BATCH * 4),
                    std::slice::from_raw_parts_mut(
                        values.as_mut_ptr().cast::<u8>(),
                        std::mem::size_of_val(values.as_slice()),
                    ),
                )
            };
            read += lookup_batch(fd, &mut cursor, k, v, BATCH as u32)
                .context("BPF_MAP_LOOKUP_BATCH")?;
        }
        times.push(thread_cpu_ms() - c);
        if read != n {
            bail!("batch read {read} of {n} keys");
        }
    }
    Ok(median(&times))
}

/// CPU time (user + system) this thread has used: unlike wall time, other processes
/// competing for the CPUs barely change it.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

struct Sample {
    cpu_ms: f64,
    wall_ms: f64,
}

/// Which interval [`interval_times`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interval {
    /// A running flowtop's: reader and differ kept from the interval before.
    Steady,
    /// The first: a fresh differ, whose tables start empty.
    First,
    /// The first, reading key by key as on kernels without batch operations.
    FirstKeyByKey,
}

/// `n` keys' counters for round `round`: every round raises every key's bytes.
fn bench_counters(
    n: u32,
    cpus: usize,
    round: u64,
) -> impl Iterator<Item = (u32, Vec<ProcCounters>)> {
    let mut comm = [0u8; COMM_LEN];
    comm[..5].copy_from_slice(b"bench");
    (1..=n).map(move |pid| {
        let per_cpu = (0..cpus as u64)
            .map(|c| ProcCounters {
                rx_bytes: (round + 1) * (pid as u64 * 1000 + c),
                tx_bytes: (round + 1) * (pid as u64 * 10 + c),
                comm_ns: c,
                comm,
            })
            .collect();
        (pid, per_cpu)
    })
}

/// Time per interval, `reps` times, with `n` keys.
fn interval_times(n: u32, cpus: usize, reps: usize, which: Interval) -> Result<Vec<Sample>> {
    let procs = PerCpuHashMap::<MapData, u32, ProcCounters>::create(n, 0)
        .context("creating a per-CPU hash")?;
    // A second handle on the same map, to raise the counters between intervals while
    // the reader owns the first, as the programs do.
    let mut writer = PerCpuHashMap::<MapData, u32, ProcCounters>::try_from(Map::PerCpuHashMap(
        MapData::from_fd(procs.map().fd().as_fd().try_clone_to_owned()?)?,
    ))?;
    let mut raise = |round: u64| -> Result<()> {
        for (pid, per_cpu) in bench_counters(n, cpus, round) {
            writer.insert(&pid, PerCpuValues::try_from(per_cpu)?, 0)?;
        }
        Ok(())
    };
    raise(0)?;
    let unrecorded = PerCpuArray::<MapData, Unrecorded>::create(1, 0)?;
    let mut reader = MapReader::from_maps(procs, unrecorded)?;
    if which == Interval::FirstKeyByKey {
        reader.force_key_by_key();
    }
    let live: LivePids = (1..=n).collect();
    let mut sink = Vec::with_capacity(100 * n as usize);
    let mut differ = Differ::new();
    if which == Interval::Steady {
        // The interval before: fills the differ's tables and the reader's buffers.
        let report = differ.next(reader.read_with(|| Ok(live.clone()))?);
        std::hint::black_box(report);
    }
    let mut times = Vec::new();
    for rep in 0..reps {
        sink.clear();
        if which == Interval::Steady {
            raise(rep as u64 + 1)?;
        } else {
            // Every key has moved bytes since the start, so every key makes a row.
            differ = Differ::new();
        }
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let snap = reader.read_with(|| Ok(live.clone()))?;
        let (t_read, c_read) = (t.elapsed(), thread_cpu_ms());
        let report = differ.next(snap);
        let c_diff = thread_cpu_ms();
        let stamp = output::Stamp {
            at: SystemTime::now(),
            elapsed: std::time::Duration::from_secs(1),
        };
        output::printer(Format::Table, &mut sink).interval(&report, &stamp)?;
        let c_end = thread_cpu_ms();
        times.push(Sample {
            cpu_ms: c_end - c,
            wall_ms: t.elapsed().as_secs_f64() * 1e3,
        });
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!(
                "n={n} {which:?} cpu ms: read {:.2} diff {:.2} print {:.2}; wall read {t_read:?}",
                c_read - c,
                c_diff - c_read,
                c_end - c_diff
            );
        }
        if report.rows.len() != n as usize {
            bail!("read {} rows from {n} keys", report.rows.len());
        }
    }
    if which != Interval::FirstKeyByKey && reader.batched() != Some(true) {
        bail!("batched reads were not used");
    }
    Ok(times)
}

fn ratio_cell(ratios: &[f64]) -> String {
    format!(
        "{:.3} [{:.2}-{:.2}]",
        median(ratios),
        min(ratios),
        max(ratios)
    )
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// The flowtop binary to measure: `--flowtop`, or a fresh release build.
fn flowtop_binary(args: &BenchArgs) -> Result<PathBuf> {
    if let Some(p) = &args.flowtop {
        return Ok(p.clone());
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "flowtop"])
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running cargo build --release -p flowtop")?;
    if !status.success() {
        bail!("cargo build --release -p flowtop failed (run it to see why)");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/flowtop"))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_iperf3() -> Result<()> {
    if have("iperf3") {
        return Ok(());
    }
    eprintln!("installing iperf3 ...");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "iperf3"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !have("iperf3") {
        bail!("iperf3 is missing and apt-get could not install it");
    }
    Ok(())
}

/// bpftrace and classic tracepoints need tracefs.
fn ensure_tracefs() {
    if let Err(e) = flowtop::probe::detect::ensure_tracefs() {
        eprintln!("warning: {e}");
    }
}

fn machine() -> String {
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    format!(
        "Machine: {nproc} CPUs ({cpu}), kernel {}, load average at start {}.",
        kernel.trim(),
        loadavg()
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
