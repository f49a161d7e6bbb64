//! `cargo xtask soak`: thousands of short-lived processes each send a known number of
//! bytes over loopback UDP while flowtop runs with a small map. Passes when flowtop's
//! rows add up to exactly the bytes the children sent, nothing was unrecorded (the
//! `loss`/`summary` objects of its JSON say 0), and the map and flowtop's memory
//! stayed flat.
//!
//! Two modes:
//! - default: paced (`--rate`, 2,000/s), `--max-entries 4096`, flowtop at normal
//!   priority;
//! - `--starved`: what the in-kernel reclaim is for. Children start as fast as the
//!   machine can fork them (unpaced), flowtop runs at `nice 19` beside two CPU-bound
//!   loops (so it waits for a CPU for long stretches), with `--max-entries 1024`
//!   unless given. Only exits reclaimed by the kernel keep the map from filling with
//!   dead processes then; `--userspace-reclaim` runs the same with the kernel's
//!   reclaim switched off (as on kernels before 5.19), for comparison.
use std::{
    io::{BufRead as _, BufReader},
    net::UdpSocket,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};

/// The name every child gives itself, so its rows can be told from anything else.
const CHILD_COMM: &[u8] = b"ft-soak-child\0";
/// flowtop's stderr (-vv) during the soak, with seconds since start, for diagnosis.
const LOG: &str = "target/soak-flowtop.log";

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Number of short-lived processes
    #[arg(long, default_value_t = 50_000)]
    procs: u64,
    /// Bytes each process sends (one UDP datagram)
    #[arg(long, default_value_t = 1000)]
    bytes: usize,
    /// flowtop's --max-entries: small (the default is 16384), to prove keys are
    /// reclaimed. Without the kernel's reclaim it must hold the processes that start
    /// and exit while flowtop waits for a CPU between reclaim sweeps: rate x that
    /// wait. Seen here: waits of up to ~0.4 s with a VM running beside the soak, so
    /// at 2,000/s about 800 keys. [default: 4096, 1024 with --starved]
    #[arg(long)]
    max_entries: Option<u32>,
    /// Process starts per second at most (a busy build or CI host; unpaced, 2 cores
    /// fork ~5,000/s); ignored with --starved (unpaced)
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Unpaced starts, flowtop at nice 19 beside two CPU-bound loops, --max-entries
    /// 1024 (see the module doc)
    #[arg(long)]
    starved: bool,
    /// Switch off the kernel's reclaim of exited processes (FLOWTOP_KERNEL_RECLAIM=0),
    /// to compare with flowtop reclaiming keys itself
    #[arg(long)]
    userspace_reclaim: bool,
    /// Children alive at once
    #[arg(long, default_value_t = 32)]
    batch: u64,
    /// flowtop binary (default: target/release/flowtop, built if missing)
    #[arg(long)]
    flowtop: Option<PathBuf>,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    let flowtop = match &args.flowtop {
        Some(p) => p.clone(),
        None => build_flowtop()?,
    };
    let sink = UdpSocket::bind("127.0.0.1:0").context("binding the sink")?;
    let sink_addr = sink.local_addr()?;
    // A large receive buffer so the sink drops nothing while children burst.
    set_rcvbuf(&sink, 64 << 20);

    let max_entries = args
        .max_entries
        .unwrap_or(if args.starved { 1024 } else { 4096 });
    let mut command = Command::new(&flowtop);
    command
        .args(["--format", "json", "--summary", "-vv", "--max-entries"])
        .arg(max_entries.to_string())
        .arg("1");
    if args.userspace_reclaim {
        command.env("FLOWTOP_KERNEL_RECLAIM", "0");
    }
    if args.starved {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setpriority is async-signal-safe; it only lowers our child's priority.
        unsafe {
            command.pre_exec(|| {
                if libc::setpriority(libc::PRIO_PROCESS, 0, 19) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", flowtop.display()))?;
    let flowtop_pid = child.id();
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let t0 = Instant::now();
    let stderr_thread = thread::spawn(move || {
        let mut keys_max = 0u64;
        let mut keys_seen = Vec::new();
        let mut warnings = Vec::new();
        let mut log = std::fs::File::create(LOG).ok();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                use std::io::Write as _;
                let _ = writeln!(f, "{:.3} {line}", t0.elapsed().as_secs_f64());
            }
            if line.contains("counting with probe family") {
                let _ = ready_tx.send(line.contains("reclaimed by the kernel"));
            }
            if let Some(n) = line
                .split("keys in the process map: ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<u64>().ok())
            {
                keys_max = keys_max.max(n);
                keys_seen.push(n);
            }
            if line.starts_with("flowtop: warn") || line.starts_with("flowtop: error") {
                warnings.push(line);
            }
        }
        let first_last = (
            keys_seen.first().copied().unwrap_or(0),
            keys_seen.last().copied().unwrap_or(0),
        );
        (keys_max, first_last, warnings)
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let rows_thread = thread::spawn(move || {
        // Rows, not distinct PIDs: PIDs are reused many times over 50,000 processes.
        let mut seen = Reported::default();
        for line in stdout.lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["comm"] == "ft-soak-child" {
                seen.tx += v["tx_bytes"].as_u64().unwrap_or(0);
                seen.rows += 1;
            }
            // Every interval has a summary (--summary); an interval that lost
            // bytes without one would carry a `loss` object instead.
            for object in ["summary", "loss"] {
                let o = &v[object];
                if o.is_object() {
                    seen.summaries += u64::from(object == "summary");
                    seen.unrecorded += o["unrecorded_bytes"].as_u64().unwrap_or(0);
                    seen.skipped += o["skipped_calls"].as_u64().unwrap_or(0);
                }
            }
        }
        seen
    });
    let kernel_reclaim = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .context("flowtop did not start counting within 30 s")?;
    let busy_stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..if args.starved { 2 } else { 0 })
        .map(|_| {
            let stop = busy_stop.clone();
            thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let rss_start = vm_hwm_kb(flowtop_pid);

    // Drain the sink in a thread: ground truth for what was received.
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let (received, stop, sink) = (received.clone(), stop.clone(), sink.try_clone()?);
        sink.set_read_timeout(Some(Duration::from_millis(100)))?;
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = sink.recv(&mut buf) {
                    received.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    };

    let started = Instant::now();
    let payload = vec![0x5au8; args.bytes];
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    sender.connect(sink_addr)?;
    let mut sent_ok = 0u64;
    let mut done = 0u64;
    while done < args.procs {
        // Pace: batch k may start only after k * batch / rate seconds.
        let due = Duration::from_secs_f64(done as f64 / args.rate.max(1) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()).filter(|_| !args.starved) {
            thread::sleep(wait);
        }
        let n = args.batch.min(args.procs - done);
        let mut pids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            pids.push(fork_sender(&sender, &payload)?);
        }
        for pid in pids {
            if wait_ok(pid) {
                sent_ok += 1;
            }
        }
        done += n;
    }
    let spawn_secs = started.elapsed().as_secs_f64();
    busy_stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().expect("busy loop");
    }
    // Let flowtop report the last children, then stop it (it prints the partial interval).
    thread::sleep(Duration::from_millis(2500));
    let rss_end = vm_hwm_kb(flowtop_pid);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(flowtop_pid as i32, libc::SIGINT) };
    let status = child.wait()?;
    stop.store(true, Ordering::Relaxed);
    drain.join().expect("drain thread");
    let reported = rows_thread.join().expect("rows thread");
    let (tx_reported, rows_reported) = (reported.tx, reported.rows);
    let (keys_max, (keys_first, keys_last), warnings) =
        stderr_thread.join().expect("stderr thread");

    let expected = sent_ok * args.bytes as u64;
    println!(
        "soak: {} processes in {spawn_secs:.1} s ({:.0}/s{}), {} bytes each, flowtop --max-entries \
         {max_entries}{}, exits reclaimed by {}",
        args.procs,
        args.procs as f64 / spawn_secs,
        if args.starved { ", unpaced" } else { "" },
        args.bytes,
        if args.starved {
            " at nice 19 beside 2 busy loops"
        } else {
            ""
        },
        if kernel_reclaim { "the kernel" } else { "flowtop" },
    );
    println!(
        "soak: children that sent their datagram: {sent_ok}; sink received {} bytes",
        received.load(Ordering::Relaxed)
    );
    println!("soak: tx expected {expected} bytes, reported {tx_reported} in {rows_reported} rows (fewer than processes only where a reused PID sent within one interval)");
    println!(
        "soak: unrecorded {} bytes, skipped calls {}, in {} interval summaries",
        reported.unrecorded, reported.skipped, reported.summaries
    );
    println!(
        "soak: map keys {keys_first} at the first report, {keys_last} at the last, at most \
         {keys_max} (capacity {max_entries}); flowtop peak RSS {rss_start} kB after start, \
         {rss_end} kB at end"
    );
    for w in &warnings {
        println!("soak: flowtop said: {w}");
    }
    ensure!(status.success(), "flowtop exited with {status}");
    ensure!(
        sent_ok == args.procs,
        "only {sent_ok} of {} children sent their bytes",
        args.procs
    );
    ensure!(
        reported.summaries > 0,
        "flowtop printed no interval summary: unrecorded bytes unknown"
    );
    ensure!(
        reported.unrecorded == 0 && reported.skipped == 0,
        "flowtop left {} bytes unrecorded and {} calls skipped",
        reported.unrecorded,
        reported.skipped
    );
    ensure!(
        tx_reported == expected,
        "flowtop reported {tx_reported} bytes sent, children sent {expected}"
    );
    ensure!(
        rows_reported > 0 && rows_reported <= sent_ok,
        "flowtop reported {rows_reported} rows for {sent_ok} processes"
    );
    ensure!(warnings.is_empty(), "flowtop warned (map full or errors)");
    ensure!(
        keys_max <= u64::from(max_entries),
        "map use exceeded capacity"
    );
    if rss_start > 0 && rss_end > rss_start + 8 * 1024 {
        bail!("flowtop's peak RSS grew from {rss_start} kB to {rss_end} kB");
    }
    println!("soak: PASS");
    Ok(())
}

/// What flowtop's JSON said: the children's rows, and its interval summaries.
#[derive(Debug, Default)]
struct Reported {
    tx: u64,
    rows: u64,
    summaries: u64,
    unrecorded: u64,
    skipped: u64,
}

/// Forks a child that names itself, sends one datagram, and exits 0 only if the
/// kernel took all of it. Only async-signal-safe calls happen in the child.
fn fork_sender(sock: &UdpSocket, payload: &[u8]) -> Result<libc::pid_t> {
    use std::os::fd::AsRawFd as _;
    let fd = sock.as_raw_fd();
    // SAFETY: the child only calls prctl, send and _exit.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => unsafe {
            libc::prctl(
                libc::PR_SET_NAME,
                CHILD_COMM.as_ptr() as libc::c_ulong,
                0,
                0,
                0,
            );
            let n = libc::send(fd, payload.as_ptr().cast(), payload.len(), 0);
            libc::_exit(if n == payload.len() as isize { 0 } else { 1 });
        },
        pid => Ok(pid),
    }
}

fn wait_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn set_rcvbuf(sock: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: setsockopt with a valid int. SO_RCVBUFFORCE works as root.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
}

/// Peak resident set size of a process, in kB (0 if unreadable).
fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn build_flowtop() -> Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "flowtop"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build failed");
    Ok(root.join("target/release/flowtop"))
}
