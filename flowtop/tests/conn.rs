//! `--by conn|comm|cgroup`, their output in every format, `--show-nspid` and the
//! kernel filters, against the real kernel with real sockets (needs root). Traffic
//! comes from child processes (this test binary run again as a helper, see
//! [`helper`]) so each has its own PID and name; every byte they move is known, and
//! the assertions are exact.
//!
//! Protocol: the parent picks free ports and spawns helpers (optionally under a
//! wrapper such as `unshare --pid`), which set their name, bind, print `READY <their
//! getpid()>` and wait for a line on stdin. The parent starts flowtop (`-v`, `--format
//! json` unless a test names a format), waits for its `counting with probe family`
//! line, releases the helpers, waits for them to exit (or, holding their stdin, for
//! their traffic to end), then sends SIGINT: flowtop prints the partial interval and
//! exits 0.
use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

mod common;

const FLOWTOP: &str = env!("CARGO_BIN_EXE_flowtop");
const SCENARIO_ENV: &str = "FLOWTOP_CONN_HELPER";

// What the helper moves (client -> server, server -> client).
const TCP4: (usize, usize) = (10_000, 3_000);
const TCP6: (usize, usize) = (20_000, 5_000);
const UDP4: (usize, usize) = (1_234, 567);
const UDP6: (usize, usize) = (890, 321);
/// Every byte one helper sends (and, over loopback to itself, receives).
const HELPER_BYTES: u64 =
    (TCP4.0 + TCP4.1 + TCP6.0 + TCP6.1 + UDP4.0 + UDP4.1 + UDP6.0 + UDP6.1) as u64;

#[derive(Clone, Copy, Debug)]
struct Ports {
    tcp4: u16,
    tcp6: u16,
    udp4: u16,
    udp6: u16,
}

impl Ports {
    fn free() -> Self {
        let tcp = |a: SocketAddr| TcpListener::bind(a).unwrap().local_addr().unwrap().port();
        let udp = |a: SocketAddr| UdpSocket::bind(a).unwrap().local_addr().unwrap().port();
        Ports {
            tcp4: tcp((Ipv4Addr::LOCALHOST, 0).into()),
            tcp6: tcp((Ipv6Addr::LOCALHOST, 0).into()),
            udp4: udp((Ipv4Addr::LOCALHOST, 0).into()),
            udp6: udp((Ipv6Addr::LOCALHOST, 0).into()),
        }
    }

    fn env(&self) -> String {
        format!("{},{},{},{}", self.tcp4, self.tcp6, self.udp4, self.udp6)
    }

    fn from_env(s: &str) -> Self {
        let p: Vec<u16> = s.split(',').map(|x| x.parse().unwrap()).collect();
        Ports {
            tcp4: p[0],
            tcp6: p[1],
            udp4: p[2],
            udp6: p[3],
        }
    }
}

/// Not a test: the body of a helper process (`FLOWTOP_CONN_HELPER=name,ports`).
/// Two simultaneous TCP connections (IPv4 and IPv6) and a UDP exchange per family:
/// a connected client and an unconnected server (which replies with `sendto`).
/// Prints the client ports, then exits.
#[test]
fn helper() {
    let Ok(arg) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    let (name, ports) = arg.split_once(':').unwrap();
    let ports = Ports::from_env(ports);
    // The process name as the kernel sees it: the thread-group leader's comm.
    std::fs::write("/proc/self/comm", name).unwrap();
    let l4 = TcpListener::bind((Ipv4Addr::LOCALHOST, ports.tcp4)).unwrap();
    let l6 = TcpListener::bind((Ipv6Addr::LOCALHOST, ports.tcp6)).unwrap();
    let s4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, ports.udp4)).unwrap();
    let s6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, ports.udp6)).unwrap();
    // Its own PID as it sees it: inside a PID namespace, not the host's.
    println!("READY {}", std::process::id());
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();

    // Both TCP connections are open at once; their bytes interleave.
    let mut c4 = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
    let mut c6 = TcpStream::connect(l6.local_addr().unwrap()).unwrap();
    let (mut a4, _) = l4.accept().unwrap();
    let (mut a6, _) = l6.accept().unwrap();
    let half = |n: usize| vec![b'x'; n / 2];
    for (c, (up, _)) in [(&mut c4, TCP4), (&mut c6, TCP6)] {
        c.write_all(&half(up)).unwrap();
    }
    for (c, (up, _)) in [(&mut c4, TCP4), (&mut c6, TCP6)] {
        c.write_all(&vec![b'y'; up - up / 2]).unwrap();
    }
    for (a, c, (up, down)) in [(&mut a4, &mut c4, TCP4), (&mut a6, &mut c6, TCP6)] {
        let mut buf = vec![0; up];
        a.read_exact(&mut buf).unwrap();
        a.write_all(&vec![b'z'; down]).unwrap();
        let mut buf = vec![0; down];
        c.read_exact(&mut buf).unwrap();
    }
    let mut client_ports = vec![
        c4.local_addr().unwrap().port(),
        c6.local_addr().unwrap().port(),
    ];
    for (server, (up, down)) in [(&s4, UDP4), (&s6, UDP6)] {
        let unspecified: SocketAddr = match server.local_addr().unwrap() {
            SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
        };
        let client = UdpSocket::bind(unspecified).unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        client.send(&vec![b'u'; up]).unwrap();
        let mut buf = vec![0; 65536];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        assert_eq!(n, up);
        server.send_to(&vec![b'd'; down], peer).unwrap();
        assert_eq!(client.recv(&mut buf).unwrap(), down);
        client_ports.push(client.local_addr().unwrap().port());
    }
    println!("CLIENT_PORTS {client_ports:?}");
    std::io::stdout().flush().unwrap();
    // Stays alive until stdin closes (at once unless the test holds it open).
    let _ = std::io::stdin().read_line(&mut go);
}

/// A helper process, waiting for [`Helper::go`].
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    ports: Ports,
    /// The helper's PID on the host (not the wrapper's).
    pid: u32,
    /// Its PID as the helper itself saw it (getpid), inside its PID namespace.
    ns_pid: u32,
    /// A message when its traffic is done.
    done: mpsc::Receiver<()>,
}

impl Helper {
    fn spawn(name: &str) -> Self {
        Self::spawn_in(name, &[])
    }

    /// The helper started by `wrapper` (a command line that runs its arguments), e.g.
    /// in a new PID namespace.
    fn spawn_in(name: &str, wrapper: &[&str]) -> Self {
        // A port picked free can be taken by another test's socket before the helper
        // binds it: then the helper dies before READY, and another set is tried.
        for _ in 0..5 {
            if let Some(h) = Self::try_spawn_in(name, wrapper) {
                return h;
            }
        }
        panic!("helper {name} died before READY five times");
    }

    fn try_spawn_in(name: &str, wrapper: &[&str]) -> Option<Self> {
        let ports = Ports::free();
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&exe);
                cmd
            }
            None => Command::new(&exe),
        };
        let mut child = cmd
            .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
            .env(SCENARIO_ENV, format!("{name}:{}", ports.env()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("READY") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                return None;
            }
        }
        let ns_pid = line
            .split("READY ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no PID in {line:?}"));
        // Keep draining so the helper never blocks on a full pipe; say when its
        // traffic is done.
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.contains("CLIENT_PORTS") {
                    let _ = done_tx.send(());
                }
            }
        });
        let stdin = child.stdin.take();
        // The wrappers each have one child: the helper is at the end of that chain.
        let mut pid = child.id();
        for _ in wrapper {
            match only_child(pid) {
                Some(c) => pid = c,
                None => break,
            }
        }
        Some(Helper {
            child,
            stdin,
            ports,
            pid,
            ns_pid,
            done,
        })
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the traffic; the helper exits when it is done.
    fn go(&mut self) {
        self.go_and_hold();
        self.stdin = None;
    }

    /// Starts the traffic; the helper stays alive until [`Helper::wait`].
    fn go_and_hold(&mut self) {
        writeln!(self.stdin.as_ref().unwrap(), "go").unwrap();
    }

    /// Returns once the traffic is done (the helper may still be alive).
    fn traffic_done(&self) {
        self.done
            .recv_timeout(Duration::from_secs(30))
            .expect("helper traffic not done after 30s");
    }

    fn wait(mut self) {
        self.stdin = None;
        assert!(self.child.wait().unwrap().success(), "helper failed");
    }
}

/// The one child of single-threaded process `pid`, from /proc (None: no child).
fn only_child(pid: u32) -> Option<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let list = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let children: Vec<u32> = list
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    assert!(children.len() <= 1, "{pid} has children {children:?}");
    children.first().copied()
}

/// A running flowtop whose output is collected when it exits.
struct Flowtop {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Flowtop {
    /// Starts flowtop (`--format json` unless `args` name a format) with `envs` and
    /// returns once it counts.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(FLOWTOP);
        cmd.arg("-v");
        if !args.contains(&"--format") {
            cmd.args(["--format", "json"]);
        }
        let mut child = cmd
            .args(args)
            .env_remove("COLUMNS")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out_tx, out_rx) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).unwrap();
            out_tx.send(s).unwrap();
        });
        common::wait_until_counting(child.stderr.take().unwrap(), &format!("{args:?}"));
        Flowtop {
            child,
            stdout: out_rx,
        }
    }

    /// SIGINT (flowtop prints the partial interval), then everything it printed.
    fn stop(self) -> String {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish()
    }

    /// Waits for flowtop to exit by itself (COUNT reports); everything it printed.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "flowtop exited with {status}");
        self.stdout.recv_timeout(Duration::from_secs(10)).unwrap()
    }
}

/// Runs the helpers under every flowtop at once (each with `envs`); returns what
/// each flowtop printed.
fn run_text(helpers: Vec<Helper>, flowtops: &[&[&str]], envs: &[(&str, &str)]) -> Vec<String> {
    let running: Vec<Flowtop> = flowtops.iter().map(|a| Flowtop::start(a, envs)).collect();
    let mut helpers = helpers;
    for h in &mut helpers {
        h.go();
    }
    for h in helpers {
        h.wait();
    }
    running.into_iter().map(Flowtop::stop).collect()
}

/// [`run_text`], each flowtop's rows parsed (JSON Lines, or CSV with `--format csv`).
fn run(helpers: Vec<Helper>, flowtops: &[&[&str]]) -> Vec<Vec<Value>> {
    let texts = run_text(helpers, flowtops, &[]);
    flowtops
        .iter()
        .zip(texts)
        .map(|(args, text)| match args.contains(&"csv") {
            true => csv_rows(&text),
            false => json_rows(&text),
        })
        .collect()
}

fn json_rows(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// CSV lines (parsed with the csv crate) as JSON objects keyed by the header, so
/// the same checks read both formats: numbers become numbers, empty fields null
/// (no test process has a numeric name).
fn csv_rows(text: &str) -> Vec<Value> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), header.len(), "{rec:?}");
            let fields = header.iter().zip(rec.iter()).map(|(k, v)| {
                let v = match v.parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) if v.is_empty() => Value::Null,
                    Err(_) => Value::from(v),
                };
                (k.to_string(), v)
            });
            Value::Object(fields.collect())
        })
        .collect()
}

/// The CSV header flowtop printed.
fn csv_header(text: &str) -> Vec<String> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    rdr.headers().unwrap().iter().map(String::from).collect()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Interval bytes summed over all intervals, by a row identity.
fn sum_by<K: std::hash::Hash + Eq>(
    rows: &[Value],
    key: impl Fn(&Value) -> Option<K>,
) -> HashMap<K, (u64, u64)> {
    let mut out = HashMap::new();
    for r in rows {
        if let Some(k) = key(r) {
            let e: &mut (u64, u64) = out.entry(k).or_default();
            e.0 += u(r, "rx_bytes");
            e.1 += u(r, "tx_bytes");
        }
    }
    out
}

type ConnId = (String, String, u64, Option<String>, Option<u64>);

fn conn_rows(rows: &[Value], pid: u32) -> HashMap<ConnId, (u64, u64)> {
    sum_by(rows, |r| {
        (r["pid"] == pid).then(|| {
            (
                r["proto"].as_str().unwrap().to_string(),
                r["laddr"].as_str().unwrap().to_string(),
                u(r, "lport"),
                r["raddr"].as_str().map(String::from),
                r["rport"].as_u64(),
            )
        })
    })
}

/// The rows a helper must produce under `--by conn`: both ends of each exchange.
fn expected_conns(p: Ports, client_ports: &[u16; 4]) -> HashMap<ConnId, (u64, u64)> {
    let mut m = HashMap::new();
    let mut pair = |proto: &str,
                    addr: &str,
                    server: u16,
                    client: u16,
                    (up, down): (usize, usize),
                    server_remote: bool| {
        let (up, down) = (up as u64, down as u64);
        // The client: sends `up`, receives `down`; connected, so its remote is known.
        m.insert(
            (
                proto.into(),
                addr.into(),
                client as u64,
                Some(addr.into()),
                Some(server as u64),
            ),
            (down, up),
        );
        let remote = server_remote.then(|| (Some(addr.to_string()), Some(client as u64)));
        let (ra, rp) = remote.unwrap_or((None, None));
        m.insert(
            (proto.into(), addr.into(), server as u64, ra, rp),
            (up, down),
        );
    };
    pair("tcp", "127.0.0.1", p.tcp4, client_ports[0], TCP4, true);
    pair("tcp", "::1", p.tcp6, client_ports[1], TCP6, true);
    // The UDP server is not connected: its rows name the peer of each datagram (the
    // one client), from flowtop's cgroup sendmsg/recvmsg programs.
    pair("udp", "127.0.0.1", p.udp4, client_ports[2], UDP4, true);
    pair("udp", "::1", p.udp6, client_ports[3], UDP6, true);
    m
}

/// The client ports are ephemeral: take them from the rows whose server port we know.
fn client_ports(got: &HashMap<ConnId, (u64, u64)>, p: Ports) -> [u16; 4] {
    let find = |proto: &str, server: u16| {
        got.keys()
            .find(|k| k.0 == proto && k.4 == Some(server as u64) && k.2 != server as u64)
            .map(|k| k.2 as u16)
            .unwrap_or_else(|| panic!("no {proto} client row for server port {server}: {got:?}"))
    };
    [
        find("tcp", p.tcp4),
        find("tcp", p.tcp6),
        find("udp", p.udp4),
        find("udp", p.udp6),
    ]
}

/// Asserts that the `--by conn` rows of the helper `pid` are exactly its
/// connections with their bytes; returns them (for checking other output of the run).
fn exact_conns(rows: &[Value], pid: u32, ports: Ports) -> HashMap<ConnId, (u64, u64)> {
    let got = conn_rows(rows, pid);
    let want = expected_conns(ports, &client_ports(&got, ports));
    assert_eq!(got, want);
    want
}

fn is_root() -> bool {
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

#[test]
fn by_conn_counts_each_connection_exactly() {
    let Some(h) = root_and_helper("ft-conn") else {
        return;
    };
    let (pid, ports) = (h.pid(), h.ports);
    let out = run(vec![h], &[&["--by", "conn"]]);
    exact_conns(&out[0], pid, ports);
    let row = out[0].iter().find(|r| r["pid"] == pid).unwrap();
    assert_eq!(row["comm"], "ft-conn");
    assert_eq!(row["by"], "conn");
    let v6 = out[0]
        .iter()
        .find(|r| r["pid"] == pid && r["laddr"] == "::1")
        .unwrap();
    assert_eq!(v6["family"], "ipv6");
}

#[test]
fn family_protocol_and_port_filters_keep_exactly_their_connections() {
    if !is_root() {
        return;
    }
    let h = Helper::spawn("ft-filter");
    let (pid, p) = (h.pid(), h.ports);
    let tcp4_port = p.tcp4.to_string();
    let udp6_port = p.udp6.to_string();
    let out = run(
        vec![h],
        &[
            &["--by", "conn"],
            &["--by", "conn", "-4"],
            &["--by", "conn", "-6", "--udp"],
            &["--by", "conn", "--tcp"],
            &["--by", "conn", "--port", &tcp4_port],
            &["--by", "conn", "--port", &udp6_port],
            &["--port", &tcp4_port], // --by pid: the filter still applies
        ],
    );
    let all = conn_rows(&out[0], pid);
    assert_eq!(all.len(), 8, "{all:?}");
    let subset = |keep: &dyn Fn(&ConnId) -> bool| -> HashMap<ConnId, (u64, u64)> {
        all.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let v4 = subset(&|k| k.1 == "127.0.0.1");
    assert_eq!(v4.len(), 4);
    assert_eq!(conn_rows(&out[1], pid), v4);
    assert_eq!(
        conn_rows(&out[2], pid),
        subset(&|k| k.1 == "::1" && k.0 == "udp")
    );
    assert_eq!(conn_rows(&out[3], pid), subset(&|k| k.0 == "tcp"));
    let port = |n: u16| move |k: &ConnId| k.2 == n as u64 || k.4 == Some(n as u64);
    let tcp4 = subset(&port(p.tcp4));
    assert_eq!(tcp4.len(), 2, "both ends of the connection");
    assert_eq!(conn_rows(&out[4], pid), tcp4);
    // The unconnected UDP server matches by its local port, the client by its remote.
    assert_eq!(conn_rows(&out[5], pid), subset(&port(p.udp6)));
    let by_pid = sum_by(&out[6], |r| (r["pid"] == pid).then_some(()));
    let n = (TCP4.0 + TCP4.1) as u64;
    assert_eq!(by_pid[&()], (n, n));
}

#[test]
fn pid_list_and_comm_filters_and_comm_grouping() {
    if !is_root() {
        return;
    }
    let a = Helper::spawn("ft-alpha");
    let b = Helper::spawn("ft-beta");
    let c = Helper::spawn("ft-beta");
    let (pa, pb, pc) = (a.pid(), b.pid(), c.pid());
    let ab = format!("{pa},{pb}");
    let only_a = pa.to_string();
    let out = run(
        vec![a, b, c],
        &[
            &["-p", &ab],
            &["-p", &only_a],
            &["-c", "ft-beta"],
            &["--by", "comm"],
            &["--by", "comm", "-c", "ft-alpha"],
            &["-p", &ab, "-r", "1"],
        ],
    );
    let per_pid = |rows: &[Value]| sum_by(rows, |r| r["pid"].as_u64());
    let all = (HELPER_BYTES, HELPER_BYTES);
    let pids =
        |v: &[u32]| -> HashMap<u64, (u64, u64)> { v.iter().map(|p| (*p as u64, all)).collect() };
    assert_eq!(per_pid(&out[0]), pids(&[pa, pb]), "-p {ab}");
    assert_eq!(per_pid(&out[1]), pids(&[pa]), "-p {pa}");
    assert_eq!(per_pid(&out[2]), pids(&[pb, pc]), "-c ft-beta");
    let per_comm = |rows: &[Value]| sum_by(rows, |r| r["comm"].as_str().map(String::from));
    let by_comm = per_comm(&out[3]);
    assert_eq!(by_comm["ft-alpha"], all);
    assert_eq!(by_comm["ft-beta"], (2 * HELPER_BYTES, 2 * HELPER_BYTES));
    assert!(out[3]
        .iter()
        .all(|r| r["pid"].is_null() && r["by"] == "comm"));
    assert_eq!(
        per_comm(&out[4]),
        HashMap::from([("ft-alpha".to_string(), all)])
    );
}

/// A cgroup made for the test below the test's own, removed on drop.
struct TestCgroup {
    dir: PathBuf,
    /// As /proc/PID/cgroup shows it.
    path: String,
}

impl TestCgroup {
    fn create() -> Option<Self> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mount = info.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).unwrap().to_string())
        })?;
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))?
            .trim_end_matches('/')
            .to_string();
        // One per test: tests of this binary run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = format!("{own}/flowtop-test-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("{mount}{path}"));
        std::fs::create_dir(&dir).unwrap();
        Some(TestCgroup { dir, path })
    }

    fn enter(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

/// A helper named `name`, or None (and a note) when not root.
fn root_and_helper(name: &str) -> Option<Helper> {
    is_root().then(|| Helper::spawn(name))
}

/// A test cgroup, or None (and a note) when not root or without cgroup v2.
fn root_and_cgroup() -> Option<TestCgroup> {
    if !is_root() {
        return None;
    }
    let cg = TestCgroup::create();
    if cg.is_none() {
        eprintln!("skipped: no cgroup v2");
    }
    cg
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn cgroup_grouping_and_filter_are_exact() {
    let Some(cg) = root_and_cgroup() else {
        return;
    };
    let inside = Helper::spawn("ft-inside");
    let outside = Helper::spawn("ft-outside");
    cg.enter(inside.pid());
    let (pin, pout) = (inside.pid(), outside.pid());
    let own_path = cg.path.clone();
    let out = run(
        vec![inside, outside],
        &[
            &["--by", "cgroup"],
            &["--cgroup", &own_path],
            &["--by", "cgroup", "--cgroup", &own_path],
        ],
    );
    let all = (HELPER_BYTES, HELPER_BYTES);
    let per_cgroup = |rows: &[Value]| sum_by(rows, |r| r["cgroup"].as_str().map(String::from));
    let groups = per_cgroup(&out[0]);
    assert_eq!(groups.get(&cg.path), Some(&all), "{groups:?}");
    assert!(out[0]
        .iter()
        .all(|r| r["by"] == "cgroup" && r["pid"].is_null()));
    let per_pid = sum_by(&out[1], |r| r["pid"].as_u64());
    assert_eq!(
        per_pid,
        HashMap::from([(pin as u64, all)]),
        "outside is {pout}"
    );
    assert_eq!(per_cgroup(&out[2]), HashMap::from([(cg.path.clone(), all)]));
    drop(cg);
}

/// The per-process CSV header (its literal keys are checked in output_formats.rs)
/// followed by `more`.
fn keys_then(more: &[&str]) -> Vec<String> {
    let opts = flowtop::output::OutputOptions::default();
    let core = flowtop::output::layout::record_columns(&opts);
    let core = core.into_iter().map(|c| c.key());
    core.chain(more.iter().copied()).map(String::from).collect()
}

#[test]
fn csv_of_every_grouping_adds_up_to_the_bytes_moved() {
    let Some(cg) = root_and_cgroup() else {
        return;
    };
    let h = Helper::spawn("ft-csv");
    cg.enter(h.pid());
    let (pid, ports) = (h.pid(), h.ports);
    let args: [&[&str]; 3] = [
        &["--by", "conn", "--format", "csv"],
        &["--by", "comm", "--format", "csv"],
        &["--by", "cgroup", "--format", "csv", "--summary"],
    ];
    let texts = run_text(vec![h], &args, &[]);
    assert_eq!(
        csv_header(&texts[0]),
        keys_then(&["proto", "family", "laddr", "lport", "raddr", "rport"])
    );
    assert_eq!(csv_header(&texts[1]), keys_then(&["processes"]));
    assert_eq!(
        csv_header(&texts[2]),
        keys_then(&[
            "cgroup",
            "processes",
            "rows",
            "all_rx_bytes",
            "all_tx_bytes",
            "unrecorded_rx_bytes",
            "unrecorded_tx_bytes",
            "unrecorded_bytes"
        ])
    );
    let conn = csv_rows(&texts[0]);
    exact_conns(&conn, pid, ports);
    assert!(conn
        .iter()
        .filter(|r| r["pid"] == pid)
        .all(|r| r["comm"] == "ft-csv"));
    let all = (HELPER_BYTES, HELPER_BYTES);
    let comm = csv_rows(&texts[1]);
    let per_comm = sum_by(&comm, |r| r["comm"].as_str().map(String::from));
    assert_eq!(per_comm["ft-csv"], all);
    let mine: Vec<&Value> = comm.iter().filter(|r| r["comm"] == "ft-csv").collect();
    assert!(mine
        .iter()
        .all(|r| r["pid"].is_null() && r["processes"] == 1));
    let cgroup = csv_rows(&texts[2]);
    let per_cgroup = sum_by(&cgroup, |r| r["cgroup"].as_str().map(String::from));
    assert_eq!(per_cgroup.get(&cg.path), Some(&all), "{per_cgroup:?}");
    for r in cgroup.iter().filter(|r| r["cgroup"] == *cg.path) {
        assert!(r["pid"].is_null() && r["comm"].is_null(), "{r}");
        assert_eq!(r["processes"], 1);
        assert!(u(r, "rows") >= 1 && u(r, "all_rx_bytes") >= u(r, "rx_bytes"));
    }
}

/// The header of `--by conn --units bytes`.
const CONN_HEADER_IN_BYTES: [&str; 10] = [
    "PID",
    "COMM",
    "PROTO",
    "LADDR:LPORT",
    "RADDR:RPORT",
    "RX_BYTES",
    "TX_BYTES",
    "RXSUM_BYTES",
    "TXSUM_BYTES",
    "SUM_BYTES",
];

/// `127.0.0.1:80`, `[::1]:80` from a connection's address and port.
fn endpoint(addr: &str, port: u64) -> String {
    match addr.contains(':') {
        true => format!("[{addr}]:{port}"),
        false => format!("{addr}:{port}"),
    }
}

/// The table cell a connection's end may be shown as: itself, or its end after `…`.
fn shows(cell: &str, endpoint: &str) -> bool {
    cell == endpoint
        || cell
            .strip_prefix('…')
            .is_some_and(|end| endpoint.ends_with(end))
}

/// Interval bytes of `--by conn --units bytes` table rows of `pid`, by the
/// connection in `want` each row shows (every row must show exactly one).
fn table_conn_rows(
    text: &str,
    pid: u32,
    want: &HashMap<ConnId, (u64, u64)>,
) -> HashMap<ConnId, (u64, u64)> {
    let mut got = HashMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() != Some(&pid.to_string().as_str()) {
            continue;
        }
        let matching: Vec<&ConnId> = want
            .keys()
            .filter(|(proto, laddr, lport, raddr, rport)| {
                let remote = match (raddr, rport) {
                    (Some(a), Some(p)) => endpoint(a, *p),
                    _ => "*".into(),
                };
                w[2] == proto && shows(w[3], &endpoint(laddr, *lport)) && shows(w[4], &remote)
            })
            .collect();
        assert_eq!(matching.len(), 1, "{line:?} matches {matching:?}");
        let e: &mut (u64, u64) = got.entry(matching[0].clone()).or_default();
        e.0 += w[5].parse::<u64>().unwrap();
        e.1 += w[6].parse::<u64>().unwrap();
    }
    got
}

#[test]
fn grouped_table_in_bytes_adds_up_and_rate_is_per_second() {
    let Some(mut h) = root_and_helper("ft-units") else {
        return;
    };
    let (pid, ports) = (h.pid(), h.ports);
    let conn_table = Flowtop::start(
        &["--by", "conn", "--units", "bytes", "--format", "table"],
        &[],
    );
    let conn_json = Flowtop::start(&["--by", "conn"], &[]);
    // One full two-second interval, then flowtop exits by itself: rates divide by
    // the measured length, at least 2 s.
    let comm_rate = Flowtop::start(
        &[
            "--by", "comm", "--units", "bytes", "--rate", "-T", "--format", "table", "2", "1",
        ],
        &[],
    );
    h.go();
    h.wait();
    let table = conn_table.stop();
    let want = exact_conns(&json_rows(&conn_json.stop()), pid, ports);
    let rate = comm_rate.finish();

    let headers: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("PID"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(!headers.is_empty(), "{table}");
    for h in headers {
        assert_eq!(h, CONN_HEADER_IN_BYTES);
    }
    assert!(
        table.lines().any(|l| l.contains(" connections, RX ")),
        "summary line: {table}"
    );
    assert_eq!(table_conn_rows(&table, pid, &want), want);

    let lines: Vec<Vec<&str>> = rate
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let header = lines.iter().find(|w| w.first() == Some(&"TIME")).unwrap();
    assert_eq!(
        header[1..],
        [
            "PROCS",
            "COMM",
            "RX_BYTES/s",
            "TX_BYTES/s",
            "RXSUM_BYTES",
            "TXSUM_BYTES",
            "SUM_BYTES"
        ]
    );
    let rows: Vec<&Vec<&str>> = lines
        .iter()
        .filter(|w| w.get(2) == Some(&"ft-units"))
        .collect();
    assert_eq!(rows.len(), 1, "{rate}");
    let n = |i: usize| rows[0][i].parse::<u64>().unwrap();
    assert_eq!(rows[0][1], "1", "one process");
    assert_eq!(
        (n(5), n(6), n(7)),
        (HELPER_BYTES, HELPER_BYTES, 2 * HELPER_BYTES)
    );
    // bytes / seconds, rounded to whole bytes: the interval lasts 2 s, or up to 3 s
    // when flowtop waits for a busy CPU (an amount would be twice as large).
    for per_sec in [n(3), n(4)] {
        let (lo, hi) = (HELPER_BYTES as f64 / 3.0, HELPER_BYTES as f64 / 2.0 + 1.0);
        assert!(
            (lo..=hi).contains(&(per_sec as f64)),
            "{per_sec} B/s for {HELPER_BYTES} bytes in 2 s\n{rate}"
        );
    }
}

#[test]
fn conn_table_fits_a_narrow_terminal() {
    let Some(h) = root_and_helper("ft-narrow") else {
        return;
    };
    let (pid, ports) = (h.pid(), h.ports);
    let p = pid.to_string();
    let args = [
        "--by", "conn", "--units", "bytes", "-p", &p, "--format", "table",
    ];
    let json_args = ["--by", "conn", "-p", &p];
    let out = run_text(vec![h], &[&args, &json_args], &[("COLUMNS", "64")]);
    let want = exact_conns(&json_rows(&out[1]), pid, ports);
    let table = &out[0];
    for line in table.lines() {
        assert!(line.chars().count() <= 64, "wider than COLUMNS: {line:?}");
    }
    // 131 columns at full width: the padding goes, COMM is shortened, the three
    // totals are dropped, then both addresses lose a little, never their port.
    let header = table.lines().find(|l| l.starts_with("PID")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        CONN_HEADER_IN_BYTES[..7]
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with(&p)).collect();
    assert!(
        rows.iter()
            .all(|l| l.split_whitespace().nth(1) == Some("ft-…")),
        "{table}"
    );
    assert!(
        rows.iter().any(|l| l.contains("….0.1:")),
        "an IPv4 address keeps its end: {table}"
    );
    assert_eq!(table_conn_rows(table, pid, &want), want);
}

/// Runs a command in a new PID namespace (with its own /proc) under a shell, so the
/// command is not the namespace's PID 1.
const IN_PID_NAMESPACE: [&str; 7] = [
    "unshare",
    "--pid",
    "--fork",
    "--mount-proc",
    "sh",
    "-c",
    "\"$0\" \"$@\"; exit $?",
];

#[test]
fn show_nspid_gives_the_pid_inside_a_pid_namespace() {
    if !is_root() {
        return;
    }
    let boxed = Helper::spawn_in("ft-nsbox", &IN_PID_NAMESPACE);
    let host = Helper::spawn("ft-nshost");
    let (bp, bns, ports) = (boxed.pid(), boxed.ns_pid, boxed.ports);
    assert_ne!(bp, bns, "the helper saw its namespace PID, not the host's");
    assert_eq!(
        host.ns_pid,
        host.pid(),
        "no namespace: getpid is the host PID"
    );
    let hp = host.pid();
    let pids = format!("{bp},{hp}");
    let args: [&[&str]; 5] = [
        &[
            "--show-nspid",
            "-p",
            &pids,
            "--units",
            "bytes",
            "--format",
            "table",
        ],
        &["--show-nspid", "-p", &pids],
        &["--show-nspid", "-p", &pids, "--by", "conn"],
        &["--show-nspid", "-p", &pids, "--format", "csv"],
        &["-p", &pids],
    ];
    // flowtop reports while the helpers still live: a process's namespace PID is read
    // when its row is first shown (one that is gone by then shows `-`).
    let flowtops: Vec<Flowtop> = args.iter().map(|a| Flowtop::start(a, &[])).collect();
    let mut helpers = [boxed, host];
    for h in &mut helpers {
        h.go_and_hold();
    }
    for h in &helpers {
        h.traffic_done();
    }
    let out: Vec<String> = flowtops.into_iter().map(Flowtop::stop).collect();
    for h in helpers {
        h.wait();
    }
    let all = (HELPER_BYTES, HELPER_BYTES);

    // Table: NSPID after PID; each host PID's row shows its namespace PID.
    let mut seen = HashMap::new();
    for line in out[0].lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() == Some(&"PID") {
            assert_eq!(w[..3], ["PID", "NSPID", "COMM"], "NSPID after PID: {line}");
            assert_eq!(w[3..], CONN_HEADER_IN_BYTES[5..], "{line}");
        } else if w.len() == 8 && (w[0] == bp.to_string() || w[0] == hp.to_string()) {
            let e: &mut (String, u64, u64) = seen.entry(w[0].to_string()).or_default();
            e.0 = w[1].to_string();
            e.1 += w[3].parse::<u64>().unwrap();
            e.2 += w[4].parse::<u64>().unwrap();
        }
    }
    let row = |ns: u32| (ns.to_string(), HELPER_BYTES, HELPER_BYTES);
    assert_eq!(seen.get(&bp.to_string()), Some(&row(bns)), "{}", out[0]);
    assert_eq!(seen.get(&hp.to_string()), Some(&row(hp)), "{}", out[0]);

    // JSON and CSV: key `nspid` after the others; exact bytes per host PID.
    let per_pid = |rows: &[Value]| sum_by(rows, |r| r["pid"].as_u64());
    let nspids = |rows: &[Value], pid: u32| -> Vec<Value> {
        let mine = rows.iter().filter(|r| r["pid"] == pid);
        mine.map(|r| r["nspid"].clone()).collect()
    };
    for text in [&out[1], &out[3]] {
        let rows = if text.starts_with("time,") {
            assert_eq!(csv_header(text), keys_then(&["nspid"]));
            csv_rows(text)
        } else {
            json_rows(text)
        };
        assert_eq!(
            per_pid(&rows),
            HashMap::from([(bp.into(), all), (hp.into(), all)])
        );
        assert!(nspids(&rows, bp).iter().all(|n| *n == bns), "{text}");
        assert!(nspids(&rows, hp).iter().all(|n| *n == hp), "{text}");
    }
    let conn = json_rows(&out[2]);
    exact_conns(&conn, bp, ports);
    assert!(nspids(&conn, bp).iter().all(|n| *n == bns), "{}", out[2]);
    for line in out[1].lines().chain(out[2].lines()) {
        let last_key = line.rsplit_once(",\"").map(|(_, k)| k);
        assert!(
            last_key.is_some_and(|k| k.starts_with("nspid\":")),
            "{line}"
        );
    }
    // Without the flag there is no such key.
    let plain = json_rows(&out[4]);
    assert_eq!(per_pid(&plain)[&u64::from(bp)], all);
    assert!(plain.iter().all(|r| r.get("nspid").is_none()));
}
