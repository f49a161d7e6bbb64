//! flowtop run by an ordinary user (`nobody`, through `setpriv`) on a copy of the
//! binary (needs root to set it up): without file capabilities it must refuse with
//! exit 1, naming the missing capabilities and the `setcap` line; with the `setcap`
//! line of docs/capabilities.md it must count exactly, per process and per
//! connection (whose cgroup programs need CAP_NET_ADMIN).
//!
//! Traffic: this test binary run again as a helper with a distinctive name, which
//! connects to a listener in the test process, sends UP bytes, receives DOWN bytes
//! and exits; flowtop (`--comm` that name, a 60 s interval) is then sent SIGINT and
//! prints the partial interval.
use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::Duration,
};

use serde_json::Value;

const FLOWTOP: &str = env!("CARGO_BIN_EXE_flowtop");
const HELPER_ENV: &str = "FLOWTOP_NONROOT_HELPER";
/// The line docs/capabilities.md and the error message give.
const SETCAP: &str = "cap_bpf,cap_perfmon,cap_net_admin+ep";
const UP: usize = 77_777;
const DOWN: usize = 33_333;

/// Not a test: the body of the helper process (`FLOWTOP_NONROOT_HELPER=name,addr`).
#[test]
fn helper() {
    let Ok(arg) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (name, addr) = arg.split_once(',').unwrap();
    std::fs::write("/proc/self/comm", name).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&vec![b'u'; UP]).unwrap();
    let mut buf = vec![0; DOWN];
    c.read_exact(&mut buf).unwrap();
}

/// A copy of flowtop that `nobody` may run, in a directory removed at the end.
struct Copy {
    dir: PathBuf,
    exe: PathBuf,
}

impl Copy {
    /// One directory per test: tests run in parallel.
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("flowtop-nonroot-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("flowtop");
        std::fs::copy(FLOWTOP, &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, exe }
    }

    fn setcap(&self, caps: &str) {
        let out = Command::new("setcap").arg(caps).arg(&self.exe).output();
        let out = out.expect("setcap (Debian package libcap2-bin) must be installed");
        assert!(out.status.success(), "setcap {caps}: {out:?}");
    }

    /// `setpriv` to nobody: no capabilities but what the file grants at exec.
    fn as_nobody(&self) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .arg(&self.exe);
        c
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn refusal(caps: Option<&str>) -> (Output, String, Copy) {
    let copy = Copy::new(caps.unwrap_or("none"));
    if let Some(caps) = caps {
        copy.setcap(caps);
    }
    let out = copy.as_nobody().args(["1", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
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

/// flowtop as nobody on a copy with `caps`: the helper's rows, the log, stdout.
fn count_as_nobody(caps: &str, args: &[&str]) -> (Vec<Value>, String, String) {
    let copy = Copy::new(&format!("{caps}{}", args.join("")));
    copy.setcap(caps);
    // Tests run in parallel: each helper gets a name of its own.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("nonroot{}-{n}", std::process::id() % 100_000);
    let mut flowtop = copy
        .as_nobody()
        .args(["-v", "--format", "json", "-c", &name, "60"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_for_counting(&mut flowtop);

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, format!("{name},{addr}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP];
    s.read_exact(&mut buf).unwrap();
    s.write_all(&vec![b'd'; DOWN]).unwrap();
    assert!(helper.wait().unwrap().success());
    drop(s);

    // SAFETY: kill(2) on our own child (setpriv exec'd flowtop in place).
    unsafe { libc::kill(flowtop.id() as i32, libc::SIGINT) };
    let out = flowtop.wait_with_output().unwrap();
    assert!(out.status.success(), "flowtop as nobody: {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["comm"] == name.as_str())
        .collect();
    (rows, log, stdout)
}

/// Collects flowtop's `-v` log up to its "counting" line; keeps draining after.
fn wait_for_counting(flowtop: &mut Child) -> String {
    let stderr = flowtop.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[flowtop] {line}");
            log.push_str(&line);
            log.push('\n');
            if !sent && line.contains("counting with probe family") {
                sent = tx.send(Ok(log.clone())).is_ok();
            }
        }
        let _ = tx.send(Err(log));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(log)) => log,
        Ok(Err(log)) => panic!("flowtop as nobody exited before counting:\n{log}"),
        Err(_) => panic!("flowtop as nobody not counting after 60s"),
    }
}

fn sum(rows: &[Value], key: &str) -> u64 {
    rows.iter().map(|r| r[key].as_u64().unwrap()).sum()
}

#[test]
fn nobody_with_the_setcap_line_counts_exact_bytes_per_process() {
    let (rows, _log, stdout) = count_as_nobody(SETCAP, &[]);
    assert_eq!(rows.len(), 1, "one row for the helper: {stdout}");
    assert_eq!(sum(&rows, "tx_bytes"), UP as u64, "{stdout}");
    assert_eq!(sum(&rows, "rx_bytes"), DOWN as u64, "{stdout}");
}

#[test]
fn nobody_with_the_setcap_line_attaches_the_cgroup_programs_of_by_conn() {
    let (rows, log, stdout) = count_as_nobody(SETCAP, &["--by", "conn", "--tcp"]);
    // Without CAP_NET_ADMIN flowtop says it has no per-datagram peers.
    assert!(
        !log.contains("no per-datagram peers"),
        "cgroup programs not attached as nobody:\n{log}"
    );
    assert_eq!(rows.len(), 1, "one connection for the helper: {rows:?}");
    assert_eq!(rows[0]["tx_bytes"], UP as u64, "{stdout}");
    assert_eq!(rows[0]["rx_bytes"], DOWN as u64, "{stdout}");
    assert_eq!(rows[0]["raddr"], "127.0.0.1", "{stdout}");
}

#[test]
fn by_conn_without_cap_net_admin_says_it_is_missing() {
    let (rows, log, stdout) = count_as_nobody("cap_bpf,cap_perfmon+ep", &["--by", "conn", "--tcp"]);
    assert!(
        log.contains("missing capability CAP_NET_ADMIN"),
        "the log does not name CAP_NET_ADMIN:\n{log}"
    );
    // TCP peers come from the socket, not the cgroup programs: still exact.
    assert_eq!(sum(&rows, "tx_bytes"), UP as u64, "{stdout}");
    assert_eq!(sum(&rows, "rx_bytes"), DOWN as u64, "{stdout}");
}
