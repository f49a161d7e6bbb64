//! flowtop run by an ordinary user (`nobody`, through `setpriv`) on a copy of the
//! binary (needs root to set it up): without file capabilities it must refuse with
//! exit 1, naming the missing capabilities and the `setcap` line; with the `setcap`
//! line of docs/capabilities.md it must count exactly, per process and per
//! connection (whose cgroup programs need CAP_NET_ADMIN).
//!
//! Traffic: `trafficgen exchange` with a name of its own connects to a listener in
//! the test process, sends UP bytes, receives DOWN bytes and exits; flowtop (`--comm`
//! that name, a 60 s interval) is then sent SIGINT and prints the partial interval,
//! which must hold exactly what trafficgen's syscalls returned.
use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener},
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use flowtop_tests::{
    args, output_within, panic_text, require_tool, Ctx, Flowtop, FlowtopRun, Gen, Row, Truth,
};

/// The line docs/capabilities.md and the error message give.
const SETCAP: &str = "cap_bpf,cap_perfmon,cap_net_admin+ep";
const UP: u64 = 77_777;
const DOWN: u64 = 33_333;

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

/// A copy of flowtop that `nobody` may run, in a directory removed at the end: file
/// capabilities are set on the copy, never on the build's binary.
struct Copy {
    dir: PathBuf,
    exe: PathBuf,
}

impl Copy {
    /// One directory per test: tests run in parallel.
    fn new(ctx: &Ctx, test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("flowtop-nonroot-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("flowtop");
        std::fs::copy(&ctx.flowtop, &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, exe }
    }

    fn setcap(&self, caps: &str) {
        let setcap = require_tool("setcap", "libcap2-bin");
        let out = output_within(
            Command::new(setcap).arg(caps).arg(&self.exe),
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "setcap {caps}: {out:?}");
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `setpriv` to nobody: no capabilities but what the copy's file grants at exec.
const AS_NOBODY: [&str; 7] = [
    "setpriv",
    "--reuid",
    "nobody",
    "--regid",
    "nogroup",
    "--clear-groups",
    "--",
];

/// flowtop as nobody on a copy with `caps` (or none), run to its refusal.
fn refusal(caps: Option<&str>) -> (Output, String, Copy) {
    let ctx = ctx();
    require_tool("setpriv", "util-linux");
    let copy = Copy::new(&ctx, caps.unwrap_or("none"));
    if let Some(caps) = caps {
        copy.setcap(caps);
    }
    let out = output_within(
        Command::new(AS_NOBODY[0])
            .args(&AS_NOBODY[1..])
            .arg(&copy.exe)
            .args(["1", "1"]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(panic_text(&stderr), None, "{stderr}");
    (out, stderr, copy)
}

#[test]
fn without_capabilities_names_them_and_the_setcap_line() {
    let (out, stderr, copy) = refusal(None);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("flowtop: missing capabilities CAP_BPF and CAP_PERFMON"),
        "{stderr}"
    );
    let line = format!("sudo setcap {SETCAP} {}", copy.exe.display());
    assert!(stderr.trim_end().ends_with(&line), "{stderr} lacks {line}");
}

#[test]
fn with_cap_bpf_alone_names_only_cap_perfmon() {
    let (out, stderr, _copy) = refusal(Some("cap_bpf+ep"));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("flowtop: missing capabilities CAP_PERFMON ("),
        "{stderr}"
    );
}

/// flowtop as nobody on a copy with `caps`, `--comm` a name of its own, while
/// trafficgen under that name exchanges UP/DOWN bytes with this process: the run
/// (SIGINT after the exchange) and trafficgen's ground truth.
fn count_as_nobody(caps: &str, extra: &[&str]) -> (FlowtopRun, Truth) {
    let ctx = ctx();
    require_tool("setpriv", "util-linux");
    let copy = Copy::new(&ctx, &format!("{caps}{}", extra.join("")));
    copy.setcap(caps);
    // Tests run in parallel: each trafficgen gets a name of its own.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("nonroot{}-{n}", std::process::id() % 100_000);
    let ft = Flowtop::builder(&Ctx {
        flowtop: copy.exe.clone(),
        ..ctx.clone()
    })
    .via(&AS_NOBODY)
    .args(&["-c", &name, "60"])
    .args(extra)
    .start()
    .expect("flowtop as nobody starts counting");

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let gen = Gen::spawn(
        &ctx,
        &args(&[
            "--name",
            &name,
            "exchange",
            &addr,
            &UP.to_string(),
            &DOWN.to_string(),
        ]),
    )
    .expect("trafficgen starts");
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP as usize];
    s.read_exact(&mut buf).unwrap();
    s.write_all(&vec![b'd'; DOWN as usize]).unwrap();
    let truth = gen.finish().expect("trafficgen exchange");
    assert_eq!((truth.tx_bytes, truth.rx_bytes), (UP, DOWN), "{truth:?}");
    drop(s);

    let run = ft.stop().expect("flowtop as nobody stops on SIGINT");
    run.assert_clean();
    (run, truth)
}

/// The rows of trafficgen's PID add up to exactly what its syscalls returned.
fn assert_exact_sum(run: &FlowtopRun, truth: &Truth) {
    let got = run.reported(truth.pid);
    assert_eq!(
        (got.tx, got.rx),
        (truth.tx_bytes, truth.rx_bytes),
        "{}",
        run.text
    );
}

fn rows_of<'a>(run: &'a FlowtopRun, truth: &Truth) -> Vec<&'a Row> {
    run.rows.iter().filter(|r| r.pid == truth.pid).collect()
}

#[test]
fn nobody_with_the_setcap_line_counts_exact_bytes_per_process() {
    let (run, truth) = count_as_nobody(SETCAP, &[]);
    let rows = rows_of(&run, &truth);
    assert_eq!(rows.len(), 1, "one row for trafficgen: {}", run.text);
    assert_exact_sum(&run, &truth);
}

#[test]
fn nobody_with_the_setcap_line_attaches_the_cgroup_programs_of_by_conn() {
    let (run, truth) = count_as_nobody(SETCAP, &["--by", "conn", "--tcp"]);
    // Without CAP_NET_ADMIN flowtop says it has no per-datagram peers.
    assert!(
        !run.stderr.contains("no per-datagram peers"),
        "cgroup programs not attached as nobody:\n{}",
        run.stderr
    );
    let rows = rows_of(&run, &truth);
    assert_eq!(rows.len(), 1, "one connection for trafficgen: {}", run.text);
    assert_eq!(rows[0].tx_bytes, truth.tx_bytes, "{}", run.text);
    assert_eq!(rows[0].rx_bytes, truth.rx_bytes, "{}", run.text);
    assert_eq!(rows[0].raddr.as_deref(), Some("127.0.0.1"), "{}", run.text);
}

#[test]
fn by_conn_without_cap_net_admin_says_it_is_missing() {
    let (run, truth) = count_as_nobody("cap_bpf,cap_perfmon+ep", &["--by", "conn", "--tcp"]);
    assert!(
        run.stderr.contains("missing capability CAP_NET_ADMIN"),
        "the log does not name CAP_NET_ADMIN:\n{}",
        run.stderr
    );
    // TCP peers come from the socket, not the cgroup programs: still exact.
    assert_exact_sum(&run, &truth);
}
