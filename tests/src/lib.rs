//! End-to-end harness for flowtop: real sockets over loopback, ground truth from the
//! return values of the syscalls that moved the bytes (printed by `trafficgen`),
//! compared byte for byte with what `flowtop --format json` reported.
//!
//! A scenario's traffic is a plain function producing [`Expect`]ations; the runners
//! start flowtop, run the traffic, stop flowtop with SIGINT (it prints the partial
//! last interval) and compare. The same scenarios run as `cargo test` on the host
//! (`tests/exactness.rs`, one flowtop per test) and in VM guests through the
//! `flowtop-scenarios` binary (one flowtop for most scenarios, to keep emulated runs
//! short). Every check compares only the PIDs the scenario created, so other traffic
//! on the machine, and other tests running in parallel, cannot disturb it.
use std::{
    collections::BTreeMap,
    env, fmt,
    io::{BufRead as _, BufReader, Read, Write as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        mpsc::{self, Receiver, RecvTimeoutError},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use serde::Deserialize;

/// What flowtop logs (with `-v`) once its programs are attached.
pub const READY_MARKER: &str = "counting with probe family";

// ---------------------------------------------------------------------------
// Locating the binaries

/// `FLOWTOP_BIN`, else `<workspace>/target/release/flowtop`, else
/// `<workspace>/target/debug/flowtop` (`CARGO_TARGET_DIR` replaces `<workspace>/target`).
/// Panics with what to do when none exists.
pub fn find_flowtop() -> PathBuf {
    if let Some(p) = env::var_os("FLOWTOP_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FLOWTOP_BIN={} does not exist; build it with `cargo build -p flowtop`",
            p.display()
        );
        return p;
    }
    let target = target_dir();
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("flowtop");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "flowtop binary not found in {}/{{release,debug}}/flowtop and FLOWTOP_BIN is unset: \
         run `cargo build -p flowtop` first (these tests run the real binary)",
        target.display()
    );
}

fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ lives in the workspace")
            .join("target"),
    }
}

/// `FLOWTOP_TRAFFICGEN`, else `built` (cargo's `CARGO_BIN_EXE_trafficgen` in
/// integration tests), else `trafficgen` next to the running executable or one
/// directory up (integration tests run from `target/<profile>/deps`).
pub fn find_trafficgen(built: Option<&str>) -> PathBuf {
    if let Some(p) = env::var_os("FLOWTOP_TRAFFICGEN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FLOWTOP_TRAFFICGEN={} does not exist",
            p.display()
        );
        return p;
    }
    if let Some(p) = built.map(PathBuf::from).filter(|p| p.is_file()) {
        return p;
    }
    let exe = env::current_exe().expect("current executable");
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join("trafficgen");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "trafficgen not found next to {} and FLOWTOP_TRAFFICGEN is unset: \
         run `cargo build -p flowtop-tests --bins`",
        exe.display()
    );
}

/// The tests load eBPF programs: without root they must fail, loudly, not skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "flowtop's end-to-end tests load eBPF programs and must run as root (euid is {euid})"
    );
}

/// Brings the loopback interface up (as `ip link set lo up` would), for fresh VM
/// guests and network namespaces. The kernel adds 127.0.0.1 and ::1 by itself.
pub fn ensure_loopback_up() -> Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        ensure!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        let result = (|| {
            if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) != 0 {
                bail!("SIOCGIFFLAGS lo: {}", std::io::Error::last_os_error());
            }
            let flags = req.ifr_ifru.ifru_flags;
            if flags & libc::IFF_UP as libc::c_short == 0 {
                req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
                if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut req) != 0 {
                    bail!("SIOCSIFFLAGS lo up: {}", std::io::Error::last_os_error());
                }
            }
            Ok(())
        })();
        libc::close(fd);
        result
    }
}

// ---------------------------------------------------------------------------
// Context

/// Binaries, probe family and sizes for one run of the scenarios.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub flowtop: PathBuf,
    pub trafficgen: PathBuf,
    /// `--probe` value: auto, tracepoint, fentry, kprobe.
    pub probe: String,
    /// Base payload per scenario (each adds an odd number so sizes are not round).
    pub bytes: u64,
    /// Limit for flowtop to become ready, for a generator to finish, for flowtop to
    /// exit after SIGINT.
    pub timeout: Duration,
    /// Steady scenario: seconds of traffic and bytes per second.
    pub steady_secs: f64,
    pub steady_rate: u64,
}

impl Ctx {
    /// For `cargo test` on the host: `FLOWTOP_PROBE` (default auto), root required.
    pub fn host(trafficgen_built: &str) -> Ctx {
        require_root();
        Ctx {
            flowtop: find_flowtop(),
            trafficgen: find_trafficgen(Some(trafficgen_built)),
            probe: env::var("FLOWTOP_PROBE").unwrap_or_else(|_| "auto".into()),
            bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            steady_secs: 4.5,
            steady_rate: 1 << 20,
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes with readers on their pipes

/// Lines of a child's pipe, collected by a thread; each also goes to a channel.
struct LineCollector {
    lines: Arc<Mutex<Vec<String>>>,
    rx: Receiver<String>,
    handle: Option<JoinHandle<()>>,
}

impl LineCollector {
    fn new(pipe: impl Read + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let store = Arc::clone(&lines);
        let handle = thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                store.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Self {
            lines,
            rx,
            handle: Some(handle),
        }
    }

    /// Waits for a line containing `needle`; None if the pipe closed or time ran out.
    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// All lines, after the pipe closed (the child exited).
    fn join(mut self) -> Vec<String> {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    fn snapshot(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

/// Waits for `child` to exit for at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to a child.
pub fn send_signal(child: &Child, sig: libc::c_int) -> Result<()> {
    // SAFETY: kill on our own child's pid.
    if unsafe { libc::kill(child.id() as libc::pid_t, sig) } != 0 {
        bail!(
            "kill({}, {sig}): {}",
            child.id(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Text that must never appear on flowtop's stderr.
pub fn panic_text(stderr: &str) -> Option<&'static str> {
    [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "thread 'main'",
    ]
    .into_iter()
    .find(|t| stderr.contains(t))
}

// ---------------------------------------------------------------------------
// flowtop

/// One JSON Lines row of flowtop.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub time: String,
    pub interval: u64,
    pub pid: u32,
    pub comm: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_total_bytes: u64,
    pub tx_total_bytes: u64,
    pub total_bytes: u64,
    /// `--by conn` rows: the grouping and the connection's identity.
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub proto: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub laddr: Option<String>,
    #[serde(default)]
    pub lport: Option<u16>,
    #[serde(default)]
    pub raddr: Option<String>,
    #[serde(default)]
    pub rport: Option<u16>,
}

/// A running `flowtop --format json -v`.
pub struct Flowtop {
    child: Child,
    stdout: Option<LineCollector>,
    stderr: Option<LineCollector>,
    timeout: Duration,
}

impl Flowtop {
    /// Starts flowtop with `--probe ctx.probe` and `extra` arguments and waits for the
    /// readiness line on stderr.
    pub fn start(ctx: &Ctx, extra: &[String]) -> Result<Flowtop> {
        let mut child = Command::new(&ctx.flowtop)
            .args(["--format", "json", "-v", "--probe", &ctx.probe])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", ctx.flowtop.display()))?;
        let stdout = LineCollector::new(child.stdout.take().unwrap());
        let stderr = LineCollector::new(child.stderr.take().unwrap());
        let mut ft = Flowtop {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            timeout: ctx.timeout,
        };
        let stderr = ft.stderr.as_ref().unwrap();
        let started = Instant::now();
        if stderr.wait_for(READY_MARKER, ctx.timeout).is_none() {
            // Either time ran out or stderr closed because flowtop exited: say which.
            let exited = wait_timeout(&mut ft.child, Duration::from_secs(2))?;
            let _ = ft.child.kill();
            let _ = ft.child.wait();
            let text = ft.stderr.take().unwrap().join().join("\n");
            let how = match exited {
                Some(st) => format!("exited ({st}) after {:?}", started.elapsed()),
                None => format!("still not ready after {:?}", ctx.timeout),
            };
            bail!(
                "flowtop --probe {} never logged {READY_MARKER:?}: {how}; stderr:\n{text}",
                ctx.probe,
            );
        }
        Ok(ft)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGINT, then collect everything it printed.
    pub fn stop(mut self) -> Result<FlowtopRun> {
        send_signal(&self.child, libc::SIGINT)?;
        let timeout = self.timeout;
        self.collect(timeout)
    }

    /// Waits (at most `timeout`) for flowtop to exit by itself (COUNT reached).
    pub fn wait(mut self, timeout: Duration) -> Result<FlowtopRun> {
        self.collect(timeout)
    }

    fn collect(&mut self, timeout: Duration) -> Result<FlowtopRun> {
        let started = Instant::now();
        let status = wait_timeout(&mut self.child, timeout)?;
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!(
                "flowtop did not exit within {timeout:?}; stderr:\n{}",
                self.stderr.as_ref().unwrap().snapshot()
            );
        };
        let exit_after = started.elapsed();
        let lines = self.stdout.take().unwrap().join();
        let stderr = self.stderr.take().unwrap().join().join("\n");
        let mut rows = Vec::new();
        let mut bad_lines = Vec::new();
        for l in lines {
            match serde_json::from_str::<Row>(&l) {
                Ok(r) => rows.push(r),
                Err(_) => bad_lines.push(l),
            }
        }
        Ok(FlowtopRun {
            status,
            exit_after,
            rows,
            bad_lines,
            stderr,
        })
    }
}

impl Drop for Flowtop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything one flowtop run printed.
#[derive(Debug)]
pub struct FlowtopRun {
    pub status: ExitStatus,
    /// From the stop request (or wait) to exit.
    pub exit_after: Duration,
    pub rows: Vec<Row>,
    /// stdout lines that were not a valid row.
    pub bad_lines: Vec<String>,
    pub stderr: String,
}

/// Bytes and names reported for one PID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    pub rx: u64,
    pub tx: u64,
    /// Distinct names the rows carried, in order of appearance.
    pub comms: Vec<String>,
    /// Per interval index: (rx, tx).
    pub intervals: BTreeMap<u64, (u64, u64)>,
    /// Problems with the rows themselves (duplicate interval, totals that do not add up).
    pub inconsistencies: Vec<String>,
}

impl FlowtopRun {
    /// Sums of the per-interval rows of `pid`, with consistency checks of the
    /// cumulative columns against those sums.
    pub fn reported(&self, pid: u32) -> Reported {
        let mut r = Reported::default();
        for row in self.rows.iter().filter(|row| row.pid == pid) {
            r.rx += row.rx_bytes;
            r.tx += row.tx_bytes;
            if !r.comms.contains(&row.comm) {
                r.comms.push(row.comm.clone());
            }
            if r.intervals
                .insert(row.interval, (row.rx_bytes, row.tx_bytes))
                .is_some()
            {
                r.inconsistencies
                    .push(format!("two rows in interval {}", row.interval));
            }
            if (row.rx_total_bytes, row.tx_total_bytes) != (r.rx, r.tx)
                || row.total_bytes != r.rx + r.tx
            {
                r.inconsistencies.push(format!(
                    "interval {}: totals rx={} tx={} sum={} but intervals so far add up to rx={} tx={}",
                    row.interval, row.rx_total_bytes, row.tx_total_bytes, row.total_bytes, r.rx, r.tx
                ));
            }
        }
        r
    }

    /// PIDs that have at least one row.
    pub fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.rows.iter().map(|r| r.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Problems with the run as a whole: exit status, unparsable lines, panics.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.status.success() {
            p.push(format!("flowtop exited with {}", self.status));
        }
        if !self.bad_lines.is_empty() {
            p.push(format!("unparsable stdout lines: {:?}", self.bad_lines));
        }
        if let Some(t) = panic_text(&self.stderr) {
            p.push(format!("stderr contains {t:?}"));
        }
        p
    }
}

// ---------------------------------------------------------------------------
// trafficgen

/// trafficgen's ground-truth line.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Truth {
    pub pid: u32,
    pub comm: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    #[serde(default)]
    pub parent_pid: Option<u32>,
    /// `trafficgen conns`: one entry per socket end.
    #[serde(default)]
    pub conns: Vec<ConnTruth>,
}

/// One socket end of `trafficgen conns`, with what its own syscalls returned.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConnTruth {
    pub proto: String,
    pub laddr: String,
    pub lport: u16,
    /// None: an unconnected socket (the UDP server).
    pub raddr: Option<String>,
    pub rport: Option<u16>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A running trafficgen.
pub struct Gen {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<LineCollector>,
    stderr: Option<LineCollector>,
    timeout: Duration,
}

/// What `trafficgen: ready ...` said.
#[derive(Debug, Clone)]
pub struct Ready {
    pub pid: u32,
    pub port: Option<u16>,
    /// The whole line, for mode-specific fields (see [`Ready::field`]).
    pub line: String,
}

impl Ready {
    /// The value of ` NAME=VALUE` on the ready line.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    }
}

impl Gen {
    pub fn spawn(ctx: &Ctx, args: &[String]) -> Result<Gen> {
        let what = format!("trafficgen {}", args.join(" "));
        let mut child = Command::new(&ctx.trafficgen)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", ctx.trafficgen.display()))?;
        Ok(Gen {
            what,
            stdin: child.stdin.take(),
            stdout: Some(LineCollector::new(child.stdout.take().unwrap())),
            stderr: Some(LineCollector::new(child.stderr.take().unwrap())),
            child,
            timeout: ctx.timeout,
        })
    }

    /// Waits for `trafficgen: ready pid=P [port=N]`.
    pub fn ready(&self) -> Result<Ready> {
        let line = self
            .stderr
            .as_ref()
            .unwrap()
            .wait_for("trafficgen: ready", self.timeout)
            .ok_or_else(|| {
                anyhow!(
                    "{}: no ready line within {:?}; stderr:\n{}",
                    self.what,
                    self.timeout,
                    self.stderr.as_ref().unwrap().snapshot()
                )
            })?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
        };
        let pid = field("pid=")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no pid in {line:?}"))?;
        let port = field("port=").and_then(|p| p.parse().ok());
        Ok(Ready { pid, port, line })
    }

    /// Ends `--wait-go`.
    pub fn go(&mut self) -> Result<()> {
        let mut stdin = self.stdin.take().context("go sent twice")?;
        stdin.write_all(b"go\n")?;
        Ok(())
    }

    /// Waits for exit status 0 and returns the ground truth line.
    pub fn finish(mut self) -> Result<Truth> {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, self.timeout)?;
        let stderr = self.stderr.take().unwrap();
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!(
                "{}: still running after {:?}; stderr:\n{}",
                self.what,
                self.timeout,
                stderr.join().join("\n")
            );
        };
        let out = self.stdout.take().unwrap().join();
        let err = stderr.join().join("\n");
        ensure!(
            status.success(),
            "{}: exited with {status}; stderr:\n{err}",
            self.what
        );
        ensure!(
            out.len() == 1,
            "{}: expected one ground-truth line, got {out:?}; stderr:\n{err}",
            self.what
        );
        serde_json::from_str(&out[0])
            .with_context(|| format!("{}: parsing {:?}", self.what, out[0]))
    }
}

impl Drop for Gen {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `HOST:PORT` for a listen address as trafficgen takes it.
fn target(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Expectations and results

/// What flowtop must report for one PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Role in the scenario, for messages ("sender", "sink").
    pub role: String,
    pub pid: u32,
    /// Every row of this PID must carry this name (None: not checked).
    pub comm: Option<String>,
    /// The process renamed itself from this name to `comm` while moving bytes:
    /// rows up to the rename may carry it, every later row must carry `comm`.
    pub renamed_from: Option<String>,
    pub rx: u64,
    pub tx: u64,
}

impl Expect {
    pub fn from_truth(role: &str, t: &Truth) -> Expect {
        Expect {
            role: role.into(),
            pid: t.pid,
            comm: Some(t.comm.clone()),
            renamed_from: None,
            rx: t.rx_bytes,
            tx: t.tx_bytes,
        }
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// It could not run on this machine (the reason is the result's `detail`), so it
    /// proved nothing: never counted as a pass.
    Skip,
}

/// One scenario's verdict.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub expected: String,
    pub reported: String,
    pub verdict: Verdict,
    /// Why it failed, and flowtop's stderr; for a skip, why it could not run.
    pub detail: String,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    fn error(name: &str, e: &anyhow::Error) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            expected: "-".into(),
            reported: format!("error: {}", one_line(&format!("{e:#}"))),
            verdict: Verdict::Fail,
            detail: format!("{e:#}"),
        }
    }

    fn skip(name: &str, reason: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            expected: String::new(),
            reported: String::new(),
            verdict: Verdict::Skip,
            detail: reason.into(),
        }
    }

    /// PASS when `why` is empty, else FAIL with the reasons and flowtop's stderr.
    fn judged(
        name: &str,
        expected: &[String],
        reported: &[String],
        why: &[String],
        run: &FlowtopRun,
    ) -> ScenarioResult {
        let pass = why.is_empty();
        ScenarioResult {
            name: name.into(),
            expected: expected.join(";"),
            reported: reported.join(";"),
            verdict: if pass { Verdict::Pass } else { Verdict::Fail },
            detail: if pass {
                String::new()
            } else {
                format!("{}\nflowtop stderr:\n{}", why.join("\n"), run.stderr)
            },
        }
    }

    /// Turns a PASS into a FAIL for `why` (a check on top of [`check`]'s).
    fn fail(&mut self, why: &str) {
        self.verdict = Verdict::Fail;
        self.detail.push('\n');
        self.detail.push_str(why);
    }
}

/// `SCENARIO <name> PASS|FAIL expected=.. reported=..`, or
/// `SCENARIO <name> SKIP reason=..` (the reason is the rest of the line).
impl fmt::Display for ScenarioResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verdict {
            Verdict::Skip => write!(
                f,
                "SCENARIO {} SKIP reason={}",
                self.name,
                one_line(&self.detail)
            ),
            Verdict::Pass | Verdict::Fail => write!(
                f,
                "SCENARIO {} {} expected={} reported={}",
                self.name,
                if self.passed() { "PASS" } else { "FAIL" },
                self.expected,
                self.reported
            ),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn describe(role: &str, pid: u32, comm: &str, rx: u64, tx: u64) -> String {
    format!("{role}[{pid},{comm}]:rx={rx},tx={tx}")
}

/// Compares `expects` with `run`. `only_pids`: no other PID may appear at all.
pub fn check(
    name: &str,
    expects: &[Expect],
    run: &FlowtopRun,
    only_pids: Option<&[u32]>,
) -> ScenarioResult {
    let mut expected = Vec::new();
    let mut reported = Vec::new();
    let mut why = run.problems();
    for e in expects {
        let r = run.reported(e.pid);
        let comm = e.comm.as_deref().unwrap_or("*");
        expected.push(describe(&e.role, e.pid, comm, e.rx, e.tx));
        reported.push(describe(&e.role, e.pid, &r.comms.join("|"), r.rx, r.tx));
        if (r.rx, r.tx) != (e.rx, e.tx) {
            why.push(format!(
                "{} pid {}: expected rx={} tx={}, flowtop reported rx={} tx={}",
                e.role, e.pid, e.rx, e.tx, r.rx, r.tx
            ));
        }
        if let Some(c) = &e.comm {
            // Names in order of appearance: [comm], or [renamed_from, comm].
            let allowed = match &e.renamed_from {
                Some(old) => r.comms == [c.clone()] || r.comms == [old.clone(), c.clone()],
                None => r.comms.iter().all(|rc| rc == c),
            };
            if !allowed {
                why.push(format!(
                    "{} pid {}: expected comm {c:?}, rows carry {:?}",
                    e.role, e.pid, r.comms
                ));
            }
        }
        why.extend(
            r.inconsistencies
                .iter()
                .map(|i| format!("{} pid {}: {i}", e.role, e.pid)),
        );
    }
    if let Some(only) = only_pids {
        let others: Vec<u32> = run
            .pids()
            .into_iter()
            .filter(|p| !only.contains(p))
            .collect();
        let list: Vec<String> = only.iter().map(u32::to_string).collect();
        expected.push(format!("only_pids={}", list.join(",")));
        reported.push(format!("other_pids={others:?}"));
        if !others.is_empty() {
            why.push(format!(
                "filtered to PIDs {only:?}, yet rows for other PIDs {others:?}"
            ));
        }
    }
    ScenarioResult::judged(name, &expected, &reported, &why, run)
}

// ---------------------------------------------------------------------------
// Scenarios

/// Traffic that produces ground truth; flowtop is already running.
pub type Traffic = fn(&Ctx) -> Result<Vec<Expect>>;

/// A scenario that any running flowtop (no `-p`) can check.
#[derive(Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub traffic: Traffic,
}

/// Scenarios that need nothing but a running flowtop.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tcp4",
        traffic: tcp4,
    },
    Scenario {
        name: "tcp6",
        traffic: tcp6,
    },
    Scenario {
        name: "udp4",
        traffic: udp4,
    },
    Scenario {
        name: "udp6",
        traffic: udp6,
    },
    Scenario {
        name: "threads",
        traffic: threads,
    },
    Scenario {
        name: "short_child",
        traffic: short_child,
    },
    Scenario {
        name: "msg_peek",
        traffic: msg_peek,
    },
    Scenario {
        name: "sendfile",
        traffic: sendfile,
    },
    Scenario {
        name: "prctl_rename",
        traffic: prctl_rename,
    },
    Scenario {
        name: "exec_rename",
        traffic: exec_rename,
    },
];

/// The named scenario of [`SCENARIOS`].
pub fn scenario(name: &str) -> Scenario {
    *SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A sink on `addr`, then `source` against it; both ground truths.
fn sink_and_source(
    ctx: &Ctx,
    sink: &[&str],
    addr: &str,
    source: &[String],
) -> Result<(Truth, Truth)> {
    let mut sink_args = args(sink);
    sink_args.push(addr.into());
    let sink = Gen::spawn(ctx, &sink_args)?;
    let port = sink.ready()?.port.context("sink printed no port")?;
    let mut src_args = vec![source[0].clone(), target(addr, port)];
    src_args.extend_from_slice(&source[1..]);
    let src = Gen::spawn(ctx, &src_args)?;
    let src_truth = src.finish()?;
    let sink_truth = sink.finish()?;
    Ok((src_truth, sink_truth))
}

fn stream(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        addr,
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    // The generator's own sanity: TCP delivers what was sent.
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

fn tcp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "127.0.0.1", ctx.bytes + 4_099)
}

fn tcp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    stream(ctx, "::1", ctx.bytes + 6_007)
}

fn datagrams(ctx: &Ctx, addr: &str, bytes: u64) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["udp-recv"],
        addr,
        &args(&["udp-send", &bytes.to_string(), "--dgram", "1333"]),
    )?;
    ensure!(
        src.tx_bytes == bytes,
        "sender moved {src:?}, wanted {bytes}"
    );
    ensure!(sink.rx_bytes > 0, "receiver got nothing: {sink:?}");
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

fn udp4(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "127.0.0.1", ctx.bytes / 8 + 4_111)
}

fn udp6(ctx: &Ctx) -> Result<Vec<Expect>> {
    datagrams(ctx, "::1", ctx.bytes / 8 + 6_113)
}

/// Four threads named ft-worker-N send under a process named ft-mtmain.
fn threads(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 1_237;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "4"],
        "127.0.0.1",
        &args(&["threads", &bytes.to_string(), "4", "--name", "ft-mtmain"]),
    )?;
    ensure!(src.comm == "ft-mtmain", "process name not set: {src:?}");
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("threads", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A forked child renames itself ft-short, sends and exits before flowtop reads.
fn short_child(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 4 + 3_001;
    let (child, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["short", &bytes.to_string(), "--name", "ft-short"]),
    )?;
    let parent = child.parent_pid.context("short: no parent_pid")?;
    ensure!(
        child.comm == "ft-short" && child.pid != parent,
        "bad child truth {child:?}"
    );
    ensure!(
        !Path::new(&format!("/proc/{}", child.pid)).exists(),
        "child {} still exists",
        child.pid
    );
    Ok(vec![
        Expect::from_truth("child", &child),
        Expect {
            role: "parent".into(),
            pid: parent,
            comm: None,
            renamed_from: None,
            rx: 0,
            tx: 0,
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// The receiver peeks at every chunk before reading it: peeks move nothing.
fn msg_peek(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes / 2 + 2_221;
    let (src, sink) = sink_and_source(
        ctx,
        &["peek-sink"],
        "::1",
        &args(&["tcp-source", &bytes.to_string()]),
    )?;
    ensure!(
        sink.rx_bytes == bytes,
        "peek sink read {sink:?}, wanted {bytes}"
    );
    Ok(vec![
        Expect::from_truth("sender", &src),
        Expect::from_truth("peek-receiver", &sink),
    ])
}

fn sendfile(ctx: &Ctx) -> Result<Vec<Expect>> {
    let bytes = ctx.bytes + 8_191;
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink"],
        "127.0.0.1",
        &args(&["sendfile", &bytes.to_string()]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect::from_truth("sendfile", &src),
        Expect::from_truth("receiver", &sink),
    ])
}

/// A sender that renames itself half-way (`trafficgen renamed`): its bytes stay one
/// process's, and the rows after the rename carry the new name.
fn renamed(ctx: &Ctx, bytes: u64, how: &str, before: &str) -> Result<Vec<Expect>> {
    let (src, sink) = sink_and_source(
        ctx,
        &["tcp-sink", "--conns", "2"],
        "127.0.0.1",
        &args(&["renamed", &bytes.to_string(), how, "--name", before]),
    )?;
    ensure!(
        src.tx_bytes == bytes && sink.rx_bytes == bytes && src.comm != before,
        "generator moved {src:?} / {sink:?}"
    );
    Ok(vec![
        Expect {
            renamed_from: Some(before.into()),
            ..Expect::from_truth("renamed", &src)
        },
        Expect::from_truth("receiver", &sink),
    ])
}

/// `prctl(PR_SET_NAME)` half-way.
fn prctl_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_109, "prctl:ft-renamed", "ft-prename")
}

/// exec half-way: the same PID continues as `trafficgen`.
fn exec_rename(ctx: &Ctx) -> Result<Vec<Expect>> {
    renamed(ctx, ctx.bytes / 2 + 1_201, "exec", "ft-preexec")
}

/// Runs `f`, then stops flowtop and checks; a harness error becomes a FAIL.
fn with_flowtop(
    ctx: &Ctx,
    name: &str,
    extra: &[String],
    f: impl FnOnce(&Ctx) -> Result<Vec<Expect>>,
) -> ScenarioResult {
    let run = || -> Result<ScenarioResult> {
        let ft = Flowtop::start(ctx, extra)?;
        let expects = f(ctx);
        let run = ft.stop()?;
        Ok(check(name, &expects?, &run, None))
    };
    run().unwrap_or_else(|e| ScenarioResult::error(name, &e))
}

/// One scenario with a flowtop of its own.
pub fn run_isolated(ctx: &Ctx, sc: Scenario) -> ScenarioResult {
    with_flowtop(ctx, sc.name, &[], sc.traffic)
}

/// Several scenarios, one after another, under one flowtop (saves start-ups in slow
/// guests); each is checked on its own PIDs.
pub fn run_batch(ctx: &Ctx, scs: &[Scenario]) -> Vec<ScenarioResult> {
    let ft = match Flowtop::start(ctx, &[]) {
        Ok(ft) => ft,
        Err(e) => {
            return scs
                .iter()
                .map(|s| ScenarioResult::error(s.name, &e))
                .collect()
        }
    };
    let traffic: Vec<Result<Vec<Expect>>> = scs.iter().map(|s| (s.traffic)(ctx)).collect();
    let run = match ft.stop() {
        Ok(r) => r,
        Err(e) => {
            return scs
                .iter()
                .map(|s| ScenarioResult::error(s.name, &e))
                .collect()
        }
    };
    scs.iter()
        .zip(traffic)
        .map(|(s, t)| match t {
            Ok(expects) => check(s.name, &expects, &run, None),
            Err(e) => ScenarioResult::error(s.name, &e),
        })
        .collect()
}

/// Steady traffic for `ctx.steady_secs` under `flowtop 1 [COUNT]`: the per-interval
/// rows must add up exactly, and at least `min_intervals` intervals must carry bytes
/// of the sender. With `count`, flowtop must exit by itself; otherwise SIGINT.
pub fn steady_intervals(ctx: &Ctx, count: Option<u64>, min_intervals: usize) -> ScenarioResult {
    const NAME: &str = STEADY_INTERVALS;
    let run = || -> Result<ScenarioResult> {
        // flowtop first, then the sink: with the fentry and kprobe families, exit
        // probes cannot see a recv() that was already blocked when they attached, so a
        // sink started earlier would test that documented limit, not interval sums.
        let mut extra = args(&["1"]);
        extra.extend(count.map(|c| c.to_string()));
        let mut ft = Flowtop::start(ctx, &extra)?;
        let sink = Gen::spawn(ctx, &args(&["tcp-sink", "127.0.0.1"]))?;
        let port = sink.ready()?.port.context("sink printed no port")?;
        let mut src = Gen::spawn(
            ctx,
            &args(&[
                "--wait-go",
                "--chunk",
                "4096",
                "--rate",
                &ctx.steady_rate.to_string(),
                "steady",
                &target("127.0.0.1", port),
                &ctx.steady_secs.to_string(),
            ]),
        )?;
        src.ready()?;
        let started = Instant::now();
        src.go()?;
        let src_truth = src.finish()?;
        let sink_truth = sink.finish()?;
        let traffic_took = started.elapsed();
        // With COUNT, flowtop must still be running, or it missed some of the traffic
        // for reasons of timing, not counting: say so instead of a byte mismatch.
        ensure!(
            ft.is_running(),
            "flowtop exited before the traffic ended ({traffic_took:?} of traffic); \
             the machine is too slow for this COUNT"
        );
        let run = match count {
            Some(c) => ft.wait(Duration::from_secs(c) + ctx.timeout)?,
            None => ft.stop()?,
        };
        let mut res = check(
            NAME,
            &[
                Expect::from_truth("sender", &src_truth),
                Expect::from_truth("receiver", &sink_truth),
            ],
            &run,
            None,
        );
        let intervals = run.reported(src_truth.pid).intervals;
        let with_bytes = intervals.values().filter(|(rx, tx)| rx + tx > 0).count();
        res.expected
            .push_str(&format!(";sender_intervals>={min_intervals}"));
        res.reported.push_str(&format!(
            ";sender_intervals={with_bytes} per_interval_tx={:?}",
            intervals.values().map(|v| v.1).collect::<Vec<_>>()
        ));
        if with_bytes < min_intervals {
            res.fail(&format!(
                "sender had bytes in {with_bytes} intervals, wanted at least {min_intervals} \
                 (traffic took {traffic_took:?})"
            ));
        }
        if let Some(c) = count {
            let last = run.rows.iter().map(|r| r.interval).max().unwrap_or(0);
            if last > c {
                res.fail(&format!(
                    "flowtop {c} reports, yet a row has interval {last}"
                ));
            }
        }
        Ok(res)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(NAME, &e))
}

pub const PID_FILTER: &str = "pid_filter";
pub const STEADY_INTERVALS: &str = "steady_intervals";
pub const PID_LIST_FILTER: &str = "pid_list_filter";
pub const COMM_FILTER: &str = "comm_filter";
pub const CGROUP_FILTER: &str = "cgroup_filter";

/// The name of every result [`run_all`] produces, in its order: what each cell of the
/// VM matrix must report (`cargo xtask vm-test` fails a cell that lacks one).
pub fn all_scenario_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = SCENARIOS.iter().map(|s| s.name).collect();
    names.extend([PID_FILTER, STEADY_INTERVALS]);
    names.extend(conn_scenario_names());
    names.extend([PID_LIST_FILTER, COMM_FILTER, CGROUP_FILTER]);
    names
}

/// Everything, for one probe family, as the `flowtop-scenarios` binary runs it: the
/// plain scenarios under one flowtop, then the `-p`, interval, per-connection and
/// process-filter scenarios ([`all_scenario_names`] lists them).
pub fn run_all(ctx: &Ctx) -> Vec<ScenarioResult> {
    let mut results = run_batch(ctx, SCENARIOS);
    results.push(pid_filter(ctx));
    results.push(steady_intervals(ctx, None, 3));
    results.extend(conn_scenarios(ctx));
    results.push(pid_list_filter(ctx));
    results.push(comm_filter(ctx));
    results.push(cgroup_filter(ctx));
    results
}

// ---------------------------------------------------------------------------
// Per-connection scenarios (`--by conn` and the connection filters)

/// The first result of [`conn_scenarios`]; the others are [`CONN_FILTERS`]'.
pub const CONN_EXACT: &str = "conn_exact";
pub const CONN_PORT_FILTER: &str = "conn_port_filter";
pub const CONN_PEER_PORT_FILTER: &str = "conn_peer_port_filter";
pub const PID_PEER_PORT_FILTER: &str = "pid_peer_port_filter";
pub const PID_IPV4_FILTER: &str = "pid_ipv4_filter";
pub const CONN_IPV4_FILTER: &str = "conn_ipv4_filter";
pub const CONN_IPV6_FILTER: &str = "conn_ipv6_filter";
pub const CONN_TCP_FILTER: &str = "conn_tcp_filter";
pub const CONN_UDP_FILTER: &str = "conn_udp_filter";

/// Ports of `trafficgen conns` known before its traffic starts (its ready line).
#[derive(Debug, Clone, Copy)]
pub struct ConnPorts {
    /// The TCP-over-IPv4 server.
    pub tcp4: u16,
    /// The unconnected UDP-over-IPv4 server and its (connected) client.
    pub udp4: u16,
    pub udp4_client: u16,
}

impl ConnPorts {
    fn from_ready(ready: &Ready) -> Result<Self> {
        let port = |name: &str| -> Result<u16> {
            ready
                .field(name)
                .and_then(|p| p.parse().ok())
                .with_context(|| format!("no {name}= in {:?}", ready.line))
        };
        Ok(Self {
            tcp4: port("tcp4")?,
            udp4: port("udp4")?,
            udp4_client: port("udp4c")?,
        })
    }
}

/// A connection filter of [`conn_scenarios`]: its result's name, flowtop's options
/// and the socket ends it must keep, given the ports. `by_pid`: flowtop runs with
/// the filter alone (`--by pid`), and the process's row must carry exactly the kept
/// ends' bytes: the filter must not depend on `--by conn`.
pub struct ConnFilter {
    pub name: &'static str,
    options: fn(&ConnPorts) -> Vec<String>,
    keeps: fn(&ConnTruth, &ConnPorts) -> bool,
    by_pid: bool,
}

/// `--port` with the UDP-over-IPv4 client's port: the client (its local port) and the
/// unconnected server's datagrams to and from it, whose remote port is only in each
/// datagram's address.
fn peer_port(p: &ConnPorts) -> Vec<String> {
    args(&["--port", &p.udp4_client.to_string()])
}

fn keeps_peer_port(c: &ConnTruth, p: &ConnPorts) -> bool {
    c.proto == "udp" && (c.lport == p.udp4_client || c.lport == p.udp4)
}

fn ipv4(_: &ConnPorts) -> Vec<String> {
    args(&["-4"])
}

/// IPv4 ends, the dual-stack `[::]` server's IPv4 traffic among them.
fn keeps_ipv4(c: &ConnTruth, _: &ConnPorts) -> bool {
    !c.laddr.contains(':')
}

pub const CONN_FILTERS: [ConnFilter; 8] = [
    ConnFilter {
        name: CONN_PORT_FILTER,
        options: |p| args(&["--port", &p.tcp4.to_string()]),
        keeps: |c, p| c.lport == p.tcp4 || c.rport == Some(p.tcp4),
        by_pid: false,
    },
    ConnFilter {
        name: CONN_PEER_PORT_FILTER,
        options: peer_port,
        keeps: keeps_peer_port,
        by_pid: false,
    },
    ConnFilter {
        name: PID_PEER_PORT_FILTER,
        options: peer_port,
        keeps: keeps_peer_port,
        by_pid: true,
    },
    ConnFilter {
        name: PID_IPV4_FILTER,
        options: ipv4,
        keeps: keeps_ipv4,
        by_pid: true,
    },
    ConnFilter {
        name: CONN_IPV4_FILTER,
        options: ipv4,
        keeps: keeps_ipv4,
        by_pid: false,
    },
    ConnFilter {
        name: CONN_IPV6_FILTER,
        options: |_| args(&["-6"]),
        keeps: |c, _| c.laddr.contains(':'),
        by_pid: false,
    },
    ConnFilter {
        name: CONN_TCP_FILTER,
        options: |_| args(&["--tcp"]),
        keeps: |c, _| c.proto == "tcp",
        by_pid: false,
    },
    ConnFilter {
        name: CONN_UDP_FILTER,
        options: |_| args(&["--udp"]),
        keeps: |c, _| c.proto == "udp",
        by_pid: false,
    },
];

/// The names of [`conn_scenarios`]' results, in order.
pub fn conn_scenario_names() -> Vec<&'static str> {
    let mut names = vec![CONN_EXACT];
    names.extend(CONN_FILTERS.iter().map(|f| f.name));
    names
}

/// (proto, laddr, lport): one socket end within one process.
type EndKey = (String, String, u16);
/// A row's remote (raddr, rport); None: not known.
type Remote = Option<(String, u16)>;

fn end_label(proto: &str, laddr: &str, lport: u16, remote: Option<(&str, u16)>) -> String {
    let fam = if laddr.contains(':') { 6 } else { 4 };
    match remote {
        Some((_, rport)) => format!("{proto}{fam}/{lport}>{rport}"),
        None => format!("{proto}{fam}/{lport}>*"),
    }
}

/// One process (`trafficgen conns`) with TCP over 127.0.0.1 and ::1 open at once and
/// UDP over both and from IPv4 to a dual-stack `[::]` socket (ten socket ends),
/// watched by one flowtop per result, all started
/// before any byte moves:
/// - `conn_exact`: `--by conn`; every socket end's row (matched by protocol, local
///   address and port, remote port) carries exactly the bytes its syscalls returned;
/// - each of [`CONN_FILTERS`]: `--by conn` with the filter (`--port P`, P the
///   TCP-over-IPv4 server port: both ends of that connection; `--port C`, C the
///   UDP-over-IPv4 client's port: the client and the unconnected server's datagrams
///   with it; `-4`: six ends, the dual-stack server's among them; `-6`: four;
///   `--tcp`: four; `--udp`: six) shows exactly the ends it keeps, with the same
///   exact bytes, and nothing of the process's other ends;
/// - `pid_peer_port_filter`, `pid_ipv4_filter`: the same two filters without
///   `--by conn`: the process's row carries exactly the kept ends' bytes.
pub fn conn_scenarios(ctx: &Ctx) -> Vec<ScenarioResult> {
    let run = || -> Result<Vec<ScenarioResult>> {
        let bytes = ctx.bytes / 4 + 3_331;
        let mut gen = Gen::spawn(ctx, &args(&["--wait-go", "conns", &bytes.to_string()]))?;
        let ready = gen.ready()?;
        let ports = ConnPorts::from_ready(&ready)?;
        let by_conn = |extra: Vec<String>| {
            let mut a = args(&["--by", "conn"]);
            a.extend(extra);
            Flowtop::start(ctx, &a)
        };
        let all = by_conn(vec![])?;
        let filtered = CONN_FILTERS
            .iter()
            .map(|f| match f.by_pid {
                true => Flowtop::start(ctx, &(f.options)(&ports)),
                false => by_conn((f.options)(&ports)),
            })
            .collect::<Result<Vec<_>>>()?;
        gen.go()?;
        let truth = gen.finish()?;
        let all = all.stop()?;
        let filtered = filtered
            .into_iter()
            .map(Flowtop::stop)
            .collect::<Result<Vec<_>>>()?;
        ensure!(
            truth.conns.len() == 10 && truth.conns.iter().all(|c| c.rx_bytes + c.tx_bytes > 0),
            "trafficgen conns moved {truth:?}"
        );
        let mut results = vec![check_conns(CONN_EXACT, truth.pid, &truth.conns, &all)];
        for (f, run) in CONN_FILTERS.iter().zip(&filtered) {
            let (inside, outside): (Vec<ConnTruth>, Vec<ConnTruth>) = truth
                .conns
                .iter()
                .cloned()
                .partition(|c| (f.keeps)(c, &ports));
            ensure!(
                !inside.is_empty() && !outside.is_empty(),
                "{}: keeps {inside:?}, drops {outside:?}: proves nothing",
                f.name
            );
            let mut res = match f.by_pid {
                true => check_pid_sum(f.name, truth.pid, &inside, run),
                false => check_conns(f.name, truth.pid, &inside, run),
            };
            res.expected.push_str(&format!(
                ";excluded={}",
                outside
                    .iter()
                    .map(|c| end_label(&c.proto, &c.laddr, c.lport, None))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            results.push(res);
        }
        Ok(results)
    };
    run().unwrap_or_else(|e| {
        conn_scenario_names()
            .iter()
            .map(|n| ScenarioResult::error(n, &e))
            .collect()
    })
}

/// `run`'s `--by pid` rows of `pid` must add up to exactly the bytes of the socket
/// ends `want`, with consistent totals.
fn check_pid_sum(name: &str, pid: u32, want: &[ConnTruth], run: &FlowtopRun) -> ScenarioResult {
    let mut why = run.problems();
    let got = run.reported(pid);
    why.extend(got.inconsistencies.iter().cloned());
    let (rx, tx) = want
        .iter()
        .fold((0, 0), |(rx, tx), c| (rx + c.rx_bytes, tx + c.tx_bytes));
    if (got.rx, got.tx) != (rx, tx) {
        why.push(format!(
            "pid {pid}: expected rx={rx} tx={tx} (the kept ends), flowtop reported rx={} tx={}",
            got.rx, got.tx
        ));
    }
    if let Some(other) = run.rows.iter().find(|r| r.pid == pid && r.by.is_some()) {
        why.push(format!("a grouped row without --by: {other:?}"));
    }
    let expected = [format!("pid[{pid}]:rx={rx},tx={tx}")];
    let reported = [format!("pid[{pid}]:rx={},tx={}", got.rx, got.tx)];
    ScenarioResult::judged(name, &expected, &reported, &why, run)
}

/// `run`'s `--by conn` rows of `pid` must be exactly the socket ends `want`: the same
/// set, and per end the exact bytes. A connected end's rows must all name its peer;
/// an unconnected end's rows name the peer it talked to (per datagram).
pub fn check_conns(name: &str, pid: u32, want: &[ConnTruth], run: &FlowtopRun) -> ScenarioResult {
    let mut why = run.problems();
    // Per end: summed bytes and every remote its rows named.
    let mut got: BTreeMap<EndKey, (u64, u64, Vec<Remote>)> = BTreeMap::new();
    // Per full row identity: cumulative totals must add up like the intervals.
    let mut cumulative: BTreeMap<(EndKey, Remote), (u64, u64)> = BTreeMap::new();
    for row in run.rows.iter().filter(|r| r.pid == pid) {
        let (Some(proto), Some(laddr), Some(lport)) = (&row.proto, &row.laddr, row.lport) else {
            why.push(format!("row without a connection: {row:?}"));
            continue;
        };
        if row.by.as_deref() != Some("conn") {
            why.push(format!("row with by={:?}, wanted conn", row.by));
        }
        let want_family = if laddr.contains(':') { "ipv6" } else { "ipv4" };
        if row.family.as_deref() != Some(want_family) {
            why.push(format!(
                "{laddr}: family {:?}, wanted {want_family}",
                row.family
            ));
        }
        let remote = match (&row.raddr, row.rport) {
            (Some(a), Some(p)) => Some((a.clone(), p)),
            (None, None) => None,
            other => {
                why.push(format!("half a remote: {other:?}"));
                None
            }
        };
        let key = (proto.clone(), laddr.clone(), lport);
        let e = got.entry(key.clone()).or_default();
        e.0 += row.rx_bytes;
        e.1 += row.tx_bytes;
        if !e.2.contains(&remote) {
            e.2.push(remote.clone());
        }
        let c = cumulative.entry((key, remote)).or_default();
        c.0 += row.rx_bytes;
        c.1 += row.tx_bytes;
        if (row.rx_total_bytes, row.tx_total_bytes) != *c || row.total_bytes != c.0 + c.1 {
            why.push(format!(
                "interval {} {proto} {laddr}:{lport}: totals rx={} tx={} sum={}, intervals add up to rx={} tx={}",
                row.interval, row.rx_total_bytes, row.tx_total_bytes, row.total_bytes, c.0, c.1
            ));
        }
    }
    let mut expected = Vec::new();
    let mut reported = Vec::new();
    for w in want {
        let key = (w.proto.clone(), w.laddr.clone(), w.lport);
        let remote = w.raddr.as_deref().zip(w.rport);
        expected.push(format!(
            "{}:rx={},tx={}",
            end_label(&w.proto, &w.laddr, w.lport, remote),
            w.rx_bytes,
            w.tx_bytes
        ));
        let Some((rx, tx, remotes)) = got.remove(&key) else {
            reported.push(format!(
                "{}:missing",
                end_label(&w.proto, &w.laddr, w.lport, remote)
            ));
            why.push(format!("no row for {} {}:{}", w.proto, w.laddr, w.lport));
            continue;
        };
        let shown: Vec<String> = remotes
            .iter()
            .map(|r| r.as_ref().map_or("*".into(), |(a, p)| format!("{a}:{p}")))
            .collect();
        let fam = if w.laddr.contains(':') { 6 } else { 4 };
        reported.push(format!(
            "{}{fam}/{}>{}:rx={rx},tx={tx}",
            w.proto,
            w.lport,
            shown.join("|")
        ));
        if (rx, tx) != (w.rx_bytes, w.tx_bytes) {
            why.push(format!(
                "{} {}:{}: expected rx={} tx={}, flowtop reported rx={rx} tx={tx}",
                w.proto, w.laddr, w.lport, w.rx_bytes, w.tx_bytes
            ));
        }
        let ok_remote = |r: &Remote| match (remote, r) {
            // Connected: its peer, always.
            (Some((a, p)), Some((ra, rp))) => a == ra && p == *rp,
            (Some(_), None) => false,
            // Unconnected: the peer each datagram came from or went to (flowtop's
            // cgroup sendmsg/recvmsg programs), never `*`: trafficgen's unconnected
            // server passes an address to every sendto/recvfrom.
            (None, None) => false,
            (None, Some((ra, rp))) => want.iter().any(|o| {
                o.proto == w.proto && o.laddr == *ra && o.lport == *rp && o.rport == Some(w.lport)
            }),
        };
        if let Some(bad) = remotes.iter().find(|r| !ok_remote(r)) {
            why.push(format!(
                "{} {}:{}: a row names remote {bad:?}, wanted {remote:?}",
                w.proto, w.laddr, w.lport
            ));
        }
    }
    for (k, (rx, tx, _)) in &got {
        reported.push(format!(
            "unexpected {}:rx={rx},tx={tx}",
            end_label(&k.0, &k.1, k.2, None)
        ));
        why.push(format!(
            "row that should not be there: {k:?} rx={rx} tx={tx}"
        ));
    }
    ScenarioResult::judged(name, &expected, &reported, &why, run)
}

// ---------------------------------------------------------------------------
// Process filters (`-p`, `-c`, `--cgroup`)

/// Which process of a [`Pair`] a filter scenario must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Sender,
    Sink,
}

/// A TCP sink and a sender connected to it, two processes, both waiting for go: their
/// PIDs are known before flowtop starts (`-p` needs them), yet their first recv and send
/// start after it attached (fentry and kprobe miss a call already in progress).
struct Pair {
    sink: Gen,
    src: Gen,
    bytes: u64,
}

impl Pair {
    /// `sink_opts`/`src_opts`: trafficgen options of each (`--name`, `--cgroup`).
    fn spawn(
        ctx: &Ctx,
        addr: &str,
        bytes: u64,
        sink_opts: &[String],
        src_opts: &[String],
    ) -> Result<(Pair, u32)> {
        let mut a = args(&["--wait-go"]);
        a.extend_from_slice(sink_opts);
        a.extend(args(&["tcp-sink", addr]));
        let sink = Gen::spawn(ctx, &a)?;
        let port = sink.ready()?.port.context("sink printed no port")?;
        let mut a = args(&["--wait-go"]);
        a.extend_from_slice(src_opts);
        a.extend(args(&[
            "tcp-source",
            &target(addr, port),
            &bytes.to_string(),
        ]));
        let src = Gen::spawn(ctx, &a)?;
        let src_pid = src.ready()?.pid;
        Ok((Pair { sink, src, bytes }, src_pid))
    }

    fn go(&mut self) -> Result<()> {
        self.sink.go()?;
        self.src.go()
    }

    /// The ground truths (sender, sink); TCP delivered every byte.
    fn finish(self) -> Result<(Truth, Truth)> {
        let src = self.src.finish()?;
        let sink = self.sink.finish()?;
        ensure!(
            src.tx_bytes == self.bytes && sink.rx_bytes == self.bytes,
            "generator moved {src:?} / {sink:?}, wanted {}",
            self.bytes
        );
        Ok((src, sink))
    }
}

/// Every pair's traffic at once under `flowtop FILTER`: the ends in `keep` (pair index,
/// end) must be reported exactly, and no other PID may appear at all, though every
/// other end moved bytes as well (all pairs carry traffic; the result lists them as
/// `excluded`).
fn process_filter(
    ctx: &Ctx,
    name: &str,
    mut pairs: Vec<Pair>,
    filter: &[String],
    keep: &[(usize, End)],
) -> Result<ScenarioResult> {
    let ft = Flowtop::start(ctx, filter)?;
    for p in &mut pairs {
        p.go()?;
    }
    let truths: Vec<(Truth, Truth)> = pairs.into_iter().map(Pair::finish).collect::<Result<_>>()?;
    let run = ft.stop()?;
    let mut expects = Vec::new();
    let mut excluded = Vec::new();
    for (i, (src, sink)) in truths.iter().enumerate() {
        for (end, truth, role) in [(End::Sender, src, "sender"), (End::Sink, sink, "sink")] {
            let role = format!("{role}{i}");
            if keep.contains(&(i, end)) {
                expects.push(Expect::from_truth(&role, truth));
            } else {
                excluded.push(format!("{role}/{}", truth.pid));
            }
        }
    }
    let pids: Vec<u32> = expects.iter().map(|e| e.pid).collect();
    let mut res = check(name, &expects, &run, Some(&pids));
    res.expected
        .push_str(&format!(";excluded={}", excluded.join(",")));
    Ok(res)
}

/// Spawns one [`Pair`] per entry of `opts` (sink options, sender options), over
/// 127.0.0.1 and ::1 in turn, each moving a different number of bytes; returns them
/// with the senders' PIDs.
fn pairs(ctx: &Ctx, opts: &[(Vec<String>, Vec<String>)]) -> Result<(Vec<Pair>, Vec<u32>)> {
    let mut pairs = Vec::new();
    let mut senders = Vec::new();
    for (i, (sink_opts, src_opts)) in opts.iter().enumerate() {
        let addr = ["127.0.0.1", "::1"][i % 2];
        let bytes = ctx.bytes / 4 + 5_003 + 1_013 * i as u64;
        let (pair, pid) = Pair::spawn(ctx, addr, bytes, sink_opts, src_opts)?;
        pairs.push(pair);
        senders.push(pid);
    }
    Ok((pairs, senders))
}

/// `flowtop -p SENDER` while a second sender runs at the same time
/// (`KernelConfig::filter_tgid`): only the first one's bytes, and nothing of anyone else.
pub fn pid_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let (pairs, senders) = pairs(ctx, &[Default::default(), Default::default()])?;
        let filter = args(&["-p", &senders[0].to_string()]);
        process_filter(ctx, PID_FILTER, pairs, &filter, &[(0, End::Sender)])
    };
    run().unwrap_or_else(|e| ScenarioResult::error(PID_FILTER, &e))
}

/// `flowtop -p A,B` (the `FILTER_PIDS` map) with three senders: exactly A and B.
pub fn pid_list_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let (pairs, senders) = pairs(ctx, &vec![Default::default(); 3])?;
        let filter = args(&["-p", &format!("{},{}", senders[0], senders[1])]);
        let keep = [(0, End::Sender), (1, End::Sender)];
        process_filter(ctx, PID_LIST_FILTER, pairs, &filter, &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(PID_LIST_FILTER, &e))
}

/// The name `comm_filter` asks for, and one it extends (a prefix match would take it).
const COMM_IN: &str = "ft-comm";
const COMM_OUT: &str = "ft-comm2";

/// `flowtop -c ft-comm`: two senders and one sink have that name, exactly they count;
/// a sender named ft-comm2 and the sinks named trafficgen do not.
pub fn comm_filter(ctx: &Ctx) -> ScenarioResult {
    let run = || {
        let name = |n: &str| args(&["--name", n]);
        let (pairs, _) = pairs(
            ctx,
            &[
                (name(COMM_IN), name(COMM_IN)),
                (vec![], name(COMM_IN)),
                (vec![], name(COMM_OUT)),
            ],
        )?;
        let keep = [(0, End::Sink), (0, End::Sender), (1, End::Sender)];
        process_filter(ctx, COMM_FILTER, pairs, &args(&["-c", COMM_IN]), &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(COMM_FILTER, &e))
}

/// `flowtop --cgroup C` with C a cgroup v2 made for the scenario: a sender in C and
/// its sink in a cgroup below C count exactly; a second pair outside C does not.
/// SKIP when this machine has no cgroup v2 to make C in.
pub fn cgroup_filter(ctx: &Ctx) -> ScenarioResult {
    let cg = match ScenarioCgroup::create("flowtop-scenario") {
        Ok(cg) => cg,
        Err(why) => return ScenarioResult::skip(CGROUP_FILTER, &why),
    };
    let run = || {
        let join = |dir: &Path| args(&["--cgroup", &dir.to_string_lossy()]);
        let (pairs, _) = pairs(ctx, &[(join(&cg.below), join(&cg.dir)), Default::default()])?;
        let keep = [(0, End::Sender), (0, End::Sink)];
        let filter = args(&["--cgroup", &cg.path]);
        process_filter(ctx, CGROUP_FILTER, pairs, &filter, &keep)
    };
    run().unwrap_or_else(|e| ScenarioResult::error(CGROUP_FILTER, &e))
}

/// A cgroup v2 made below this process's own, with one cgroup below it; both removed
/// on drop (after the processes in them exited).
pub struct ScenarioCgroup {
    /// Its directory in the cgroup2 mount.
    pub dir: PathBuf,
    /// The cgroup below it.
    pub below: PathBuf,
    /// As `/proc/PID/cgroup` shows it (what `flowtop --cgroup` takes).
    pub path: String,
}

impl ScenarioCgroup {
    /// `NAME-PID`; Err: why this machine cannot have it (no cgroup2 mount, this process
    /// in no v2 cgroup, mkdir refused).
    pub fn create(name: &str) -> std::result::Result<ScenarioCgroup, String> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
        // mountinfo: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ...`
        let mount = read("/proc/self/mountinfo")?
            .lines()
            .find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                (right.split_whitespace().next()? == "cgroup2")
                    .then(|| left.split_whitespace().nth(4).map(str::to_string))?
            })
            .ok_or("no cgroup2 file system mounted (none in /proc/self/mountinfo)")?;
        let own = read("/proc/self/cgroup")?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .ok_or("this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")?;
        let path = format!(
            "{}/{name}-{}",
            own.trim_end_matches('/'),
            std::process::id()
        );
        let dir = PathBuf::from(format!("{mount}{path}"));
        let mkdir = |d: &Path| {
            std::fs::create_dir(d).map_err(|e| format!("cannot make cgroup {}: {e}", d.display()))
        };
        mkdir(&dir)?;
        let below = dir.join("below");
        let cg = ScenarioCgroup { dir, below, path };
        mkdir(&cg.below)?;
        Ok(cg)
    }
}

impl Drop for ScenarioCgroup {
    fn drop(&mut self) {
        // A cgroup whose last process was just reaped can be busy for a moment.
        for d in [&self.below, &self.dir] {
            for _ in 0..100 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// For `#[test]`s: panics with the verdict, the reasons and flowtop's stderr. A SKIP
/// (this machine cannot run the scenario) is printed with its reason and returns, as
/// the other host tests skip: `cargo test` has no skipped state.
pub fn assert_pass(r: &ScenarioResult) {
    eprintln!("{r}");
    if r.verdict == Verdict::Skip {
        eprintln!("skipped: {}", r.detail);
        return;
    }
    assert!(r.passed(), "{r}\n{}", r.detail);
}
