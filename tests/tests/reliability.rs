//! flowtop under hostile conditions: killed with SIGKILL, run twice at once, run with
//! every CPU busy, and what it keeps of its privileges once attached. Ground truth
//! is again what trafficgen's syscalls returned.
use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use flowtop_tests::{check, scenario, send_signal, steady_intervals, wait_timeout, Ctx, Flowtop};

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

/// IDs of the BPF programs a process holds, from `prog_id:` in its fdinfo (exact even
/// while other tests load flowtop's programs in parallel).
fn program_ids_of(pid: u32) -> HashSet<u32> {
    let mut ids = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        ids.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("prog_id:"))
                .filter_map(|v| v.trim().parse::<u32>().ok()),
        );
    }
    ids
}

/// IDs of every BPF program loaded in the kernel.
fn loaded_program_ids() -> HashSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|p| p.id())
        .collect()
}

#[test]
fn sigkill_leaves_no_program_attached() {
    let ctx = ctx();
    let ft = Flowtop::start(&ctx, &[]).expect("flowtop starts");
    let ours = program_ids_of(ft.pid());
    assert!(
        ours.len() >= 2,
        "expected flowtop to hold its send and receive programs, found {ours:?}"
    );
    assert!(
        ours.is_subset(&loaded_program_ids()),
        "its programs are loaded"
    );
    // SAFETY: signalling a child we started.
    unsafe { libc::kill(ft.pid() as i32, libc::SIGKILL) };
    drop(ft); // reaps it
              // The kernel frees programs once the last fd and link are gone (after an RCU grace
              // period), so allow a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = loaded_program_ids().intersection(&ours).copied().collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "programs {left:?} still loaded 5 s after SIGKILL"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_instances_at_once_both_report_exactly() {
    let ctx = ctx();
    let a = Flowtop::start(&ctx, &[]).expect("first flowtop starts");
    let b = Flowtop::start(&ctx, &[]).expect("second flowtop starts");
    let sc = scenario("tcp4");
    let expects = (sc.traffic)(&ctx).expect("traffic");
    let (ra, rb) = (
        a.stop().expect("first stops"),
        b.stop().expect("second stops"),
    );
    for (which, run) in [("first", &ra), ("second", &rb)] {
        let res = check(&format!("two_instances/{which}"), &expects, run, None);
        assert!(res.passed(), "{res}\n{}", res.detail);
    }
}

/// What the kernel's own rule says flowtop must keep after attach: nothing from
/// Linux 5.19 on (the `kernel.unprivileged_bpf_disabled` check moved to the commands
/// that create maps and load programs), and before that only CAP_BPF when the sysctl
/// is set (every `bpf(2)` command checked it). Taken from the running kernel's
/// release and sysctl, independently of how flowtop finds out (it tries a read).
fn caps_kernel_requires_after_attach() -> &'static str {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap());
    let version = (nums.next().unwrap(), nums.next().unwrap());
    let disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .unwrap()
        .trim()
        != "0";
    if version >= (5, 19) || !disabled {
        "0000000000000000"
    } else {
        "0000008000000000"
    }
}

#[test]
fn only_what_map_reads_need_and_no_new_privs_remain_after_attach() {
    let ctx = ctx();
    let ft = Flowtop::start(&ctx, &[]).expect("flowtop starts");
    let status = std::fs::read_to_string(format!("/proc/{}/status", ft.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in status"))
    };
    // On this machine's 6.18: every set empty.
    let kept = caps_kernel_requires_after_attach();
    assert_eq!(field("CapEff:"), kept, "effective capabilities");
    assert_eq!(field("CapPrm:"), kept, "permitted capabilities");
    assert_eq!(
        field("CapInh:"),
        "0000000000000000",
        "inheritable capabilities"
    );
    assert_eq!(field("CapAmb:"), "0000000000000000", "ambient capabilities");
    assert_eq!(field("CapBnd:"), kept, "bounding set");
    assert_eq!(field("NoNewPrivs:"), "1");
    // And it still works with what it kept: it reads and reclaims map entries.
    let sc = scenario("short_child");
    let expects = (sc.traffic)(&ctx).expect("traffic");
    let run = ft.stop().expect("stops");
    let res = check("after_drop", &expects, &run, None);
    assert!(res.passed(), "{res}\n{}", res.detail);
}

/// Busy loops on every CPU (twice over) until dropped.
struct CpuHog(Vec<Child>);

impl CpuHog {
    fn start() -> CpuHog {
        let n = thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        CpuHog(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("sh")
                })
                .collect(),
        )
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn exact_and_on_time_with_every_cpu_busy() {
    let ctx = ctx();
    let _hog = CpuHog::start();
    // Exactness over interval boundaries while the CPUs are saturated.
    let res = steady_intervals(&ctx, Some(6), 4);
    assert!(res.passed(), "{res}\n{}", res.detail);
    // Timing: the `time` of successive intervals must stay within 10% of 1 s.
    let mut ft = Command::new(&ctx.flowtop)
        .args(["--format", "json", "1", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("flowtop");
    // Keep some traffic flowing so every interval has a row (and a timestamp).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        thread::spawn(move || {
            let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            tx.connect(rx.local_addr().unwrap()).unwrap();
            rx.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = tx.send(b"tick");
                while rx.recv(&mut buf).is_ok() {}
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let status = wait_timeout(&mut ft, Duration::from_secs(30)).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pinger.join().unwrap();
    let Some(status) = status else {
        let _ = send_signal(&ft, libc::SIGKILL);
        panic!("flowtop 1 5 did not finish within 30 s under load");
    };
    assert!(status.success(), "flowtop exited with {status}");
    let out = std::io::read_to_string(ft.stdout.take().unwrap()).unwrap();
    let mut times: Vec<(u64, f64)> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["interval"].as_u64().unwrap(),
                rfc3339_secs(v["time"].as_str().unwrap()),
            )
        })
        .collect();
    times.dedup_by_key(|(i, _)| *i);
    assert_eq!(times.len(), 5, "one timestamp per interval: {times:?}");
    for w in times.windows(2) {
        let gap = w[1].1 - w[0].1;
        assert!(
            (0.9..=1.1).contains(&gap),
            "intervals {} -> {} were {gap:.3} s apart under load: {times:?}",
            w[0].0,
            w[1].0
        );
    }
}

/// Seconds within the day of an RFC 3339 UTC timestamp (`...THH:MM:SS.mmmZ`);
/// enough to compare intervals a few seconds apart.
fn rfc3339_secs(t: &str) -> f64 {
    let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn stdout_full_for_seconds_loses_nothing() {
    use std::{
        io::Read as _,
        os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    };
    let ctx = ctx();
    // Our own pipe, shrunk to one page and filled to the brim, so that flowtop's first
    // write blocks until we drain it.
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    let set_nonblock = |on: bool| unsafe {
        let fl = libc::fcntl(write_end.as_raw_fd(), libc::F_GETFL);
        let fl = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        libc::fcntl(write_end.as_raw_fd(), libc::F_SETFL, fl);
    };
    set_nonblock(true);
    let mut filler = 0usize;
    loop {
        let n = unsafe { libc::write(write_end.as_raw_fd(), b"#".as_ptr().cast(), 1) };
        if n != 1 {
            break;
        }
        filler += 1;
    }
    set_nonblock(false); // flowtop must see an ordinary, blocking stdout
    assert!(filler >= 4096, "pipe holds {filler} bytes");

    let mut ft = Flowtop::builder(&ctx)
        .args(&["1"])
        .stdout(Stdio::from(write_end))
        .start()
        .expect("flowtop starts");
    // Traffic, then three more intervals in which flowtop cannot write at all.
    let expects = (scenario("tcp4").traffic)(&ctx).expect("traffic");
    thread::sleep(Duration::from_millis(3500));
    assert!(
        ft.is_running(),
        "flowtop must wait for a full stdout, not exit"
    );
    // Drain: the filler first, then everything flowtop wrote.
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        std::fs::File::from(read_end).read_to_end(&mut all).unwrap();
        all
    });
    thread::sleep(Duration::from_millis(1500));
    let run = ft.stop().expect("flowtop exits after SIGINT");
    let out = reader.join().unwrap();
    assert!(out[..filler].iter().all(|&b| b == b'#'));
    let text = String::from_utf8(out[filler..].to_vec()).unwrap();
    let run = run.with_json_stdout(&text);
    let res = check("stdout_full", &expects, &run, None);
    assert!(res.passed(), "{res}\n{}", res.detail);
}

/// What one `--max-entries 1` run moved and printed.
struct FullMapRun {
    src_pid: u32,
    /// Bytes the sender sent and the receiver received, by their own count.
    sent: u64,
    received: u64,
    stdout: String,
    stderr: String,
}

/// A sender and a receiver, both waiting; only they are counted (-p, in the
/// kernel), and the map has room for one process: the sender, which moves bytes
/// first. No `--summary`: the loss must show in the stream anyway.
fn full_map_run(format: &str) -> FullMapRun {
    use flowtop_tests::Gen;
    let ctx = ctx();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let sink = Gen::spawn(&ctx, &s(&["tcp-sink", "127.0.0.1"])).unwrap();
    let ready = sink.ready().unwrap();
    let bytes = 300_007u64;
    let mut src = Gen::spawn(
        &ctx,
        &s(&[
            "--wait-go",
            "tcp-source",
            &format!("127.0.0.1:{}", ready.port.unwrap()),
            &bytes.to_string(),
        ]),
    )
    .unwrap();
    let src_pid = src.ready().unwrap().pid;
    let pids = format!("{},{}", src_pid, ready.pid);
    // Raw: the loss lines are not rows; the tests read them themselves.
    let ft = Flowtop::builder(&ctx)
        .raw()
        .args(&["--format", format, "--max-entries", "1"])
        .args(&["-p", &pids, "1"])
        .start()
        .expect("flowtop starts");
    src.go().unwrap();
    let (src_truth, sink_truth) = (src.finish().unwrap(), sink.finish().unwrap());
    thread::sleep(Duration::from_millis(200));
    let run = ft.stop().expect("flowtop stops");
    run.assert_clean();
    assert_eq!((src_truth.tx_bytes, sink_truth.rx_bytes), (bytes, bytes));
    assert!(
        run.stderr.contains("map full"),
        "a warning on stderr says so: {}",
        run.stderr
    );
    FullMapRun {
        src_pid,
        sent: src_truth.tx_bytes,
        received: sink_truth.rx_bytes,
        stdout: run.text.clone(),
        stderr: run.stderr.clone(),
    }
}

#[test]
fn a_full_map_counts_what_it_cannot_store_as_unrecorded_in_json() {
    let r = full_map_run("json");
    let out = &r.stdout;
    let (mut tx_rows, mut rx_rows, mut unrecorded_rx, mut unrecorded, mut losses) = (0, 0, 0, 0, 0);
    for v in out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    {
        if let Some(loss) = v.get("loss") {
            assert!(v.get("pid").is_none(), "a loss object is not a row: {v}");
            unrecorded_rx += loss["unrecorded_rx_bytes"].as_u64().unwrap();
            unrecorded += loss["unrecorded_bytes"].as_u64().unwrap();
            losses += 1;
        } else if v["pid"] == r.src_pid {
            tx_rows += v["tx_bytes"].as_u64().unwrap();
        } else {
            rx_rows += v["rx_bytes"].as_u64().unwrap();
        }
    }
    // Every byte is either in a row or unrecorded: the sender's in its row, the
    // receiver's (no room for its key) all unrecorded, shown without --summary.
    assert_eq!(tx_rows, r.sent, "{out}");
    assert_eq!(rx_rows, 0, "the receiver had no room in the map: {out}");
    assert!(losses > 0, "{out}");
    assert_eq!(unrecorded_rx, r.received, "{out}\n{}", r.stderr);
    assert_eq!(unrecorded, r.received, "{out}");
}

#[test]
fn a_full_map_counts_what_it_cannot_store_as_unrecorded_in_csv() {
    let r = full_map_run("csv");
    let out = &r.stdout;
    let mut unrecorded_rx = 0u64;
    for line in out.lines().filter(|l| l.starts_with('#')) {
        // `# interval N loss: unrecorded_rx_bytes=A unrecorded_tx_bytes=B ...`
        let field = |name: &str| -> u64 {
            let at = line
                .find(&format!("{name}="))
                .unwrap_or_else(|| panic!("{line}"));
            line[at + name.len() + 1..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        unrecorded_rx += field("unrecorded_rx_bytes");
        assert_eq!(
            field("skipped_calls"),
            0,
            "the tracepoint family skips none: {line}"
        );
    }
    // The rows, read as CSV with the comment lines skipped.
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(out.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let col = |k: &str| header.iter().position(|h| h == k).unwrap();
    let (pid, tx, rx) = (col("pid"), col("tx_bytes"), col("rx_bytes"));
    let (mut tx_rows, mut rx_rows) = (0u64, 0u64);
    for rec in rdr.records().map(|r| r.unwrap()) {
        if rec[pid].parse::<u32>().unwrap() == r.src_pid {
            tx_rows += rec[tx].parse::<u64>().unwrap();
        } else {
            rx_rows += rec[rx].parse::<u64>().unwrap();
        }
    }
    assert_eq!(rx_rows, 0, "the receiver had no room in the map: {out}");
    assert_eq!(tx_rows, r.sent, "{out}");
    assert_eq!(unrecorded_rx, r.received, "{out}");
}

/// Exited processes' keys are reclaimed by the kernel, not by flowtop: with flowtop
/// stopped (SIGSTOP, so it cannot reclaim anything), eight times more short-lived
/// processes than its map holds each send a known datagram; after SIGCONT every
/// byte is in their rows and nothing is unrecorded. With reclaim left to flowtop
/// (kernels before 5.19), all but the first 8 would have found the map full.
#[test]
fn exits_are_reclaimed_in_the_kernel_while_flowtop_gets_no_cpu() {
    use std::{net::UdpSocket, os::fd::AsRawFd as _};
    let ctx = ctx();
    // A name no other test uses, so the map holds this test's children only.
    let name = format!("ftrec{}", std::process::id() % 100_000);
    let (children, max_entries, bytes) = (64u64, 8u32, 1_234usize);
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(sink.local_addr().unwrap()).unwrap();
    let ft = Flowtop::builder(&ctx)
        .args(&["--max-entries", &max_entries.to_string(), "-c", &name, "1"])
        .start()
        .expect("flowtop starts");
    assert!(
        ft.ready_line().contains("reclaimed by the kernel"),
        "this kernel must reclaim exited processes' keys itself (5.19+ with BTF): {}",
        ft.ready_line()
    );
    send_signal_pid(ft.pid(), libc::SIGSTOP);
    let mut comm = [0u8; 16];
    comm[..name.len()].copy_from_slice(name.as_bytes());
    let payload = vec![0x5au8; bytes];
    let mut sent = 0u64;
    for _ in 0..children {
        // SAFETY: the child only calls prctl, send and _exit (async-signal-safe).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
                let n = libc::send(sender.as_raw_fd(), payload.as_ptr().cast(), bytes, 0);
                libc::_exit(if n == bytes as isize { 0 } else { 1 });
            }
        }
        assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            sent += bytes as u64;
        }
    }
    assert_eq!(
        sent,
        children * bytes as u64,
        "every child sent its datagram"
    );
    send_signal_pid(ft.pid(), libc::SIGCONT);
    thread::sleep(Duration::from_millis(1500));
    let run = ft.stop().expect("flowtop stops");
    run.assert_clean();
    let reported: u64 = run
        .rows
        .iter()
        .filter(|r| r.comm == name)
        .map(|r| r.tx_bytes)
        .sum();
    assert!(
        run.losses.is_empty(),
        "nothing unrecorded: {:?}",
        run.losses
    );
    assert_eq!(reported, sent, "{}\n{}", run.text, run.stderr);
}

fn send_signal_pid(pid: u32, signal: libc::c_int) {
    // SAFETY: signalling flowtop, our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}
