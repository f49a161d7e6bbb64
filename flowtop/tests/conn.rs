//! `--by conn|comm|cgroup` and the kernel filters, against the real kernel with real
//! sockets (needs root). Traffic comes from child processes (this test binary run
//! again as a helper, see [`helper`]) so each has its own PID and name; every byte
//! they move is known, and the assertions are exact.
//!
//! Protocol: the parent picks free ports and spawns helpers, which set their name,
//! bind, print `READY` and wait for a line on stdin. The parent starts flowtop
//! (`-v --format json`), waits for its `counting with probe family` line, releases
//! the helpers, waits for them to exit, then sends SIGINT: flowtop prints the
//! partial interval and exits 0.
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
    println!("READY");
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
}

/// A helper process, waiting for [`Helper::go`].
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    ports: Ports,
}

impl Helper {
    fn spawn(name: &str) -> Self {
        let ports = Ports::free();
        let mut child = Command::new(std::env::current_exe().unwrap())
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
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "helper died before READY"
            );
        }
        // Keep draining so the helper never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let stdin = child.stdin.take();
        Helper {
            child,
            stdin,
            ports,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn go(&mut self) {
        writeln!(self.stdin.take().unwrap(), "go").unwrap();
    }

    fn wait(mut self) {
        assert!(self.child.wait().unwrap().success(), "helper failed");
    }
}

/// A running flowtop whose JSON rows are collected on SIGINT.
struct Flowtop {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Flowtop {
    /// Starts flowtop and returns once it counts.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(FLOWTOP)
            .args(["-v", "--format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut log = String::new();
            for line in stderr.lines() {
                let line = line.unwrap_or_default();
                log.push_str(&line);
                log.push('\n');
                if line.contains("counting with probe family") {
                    let _ = ready_tx.send(Ok(()));
                }
            }
            let _ = ready_tx.send(Err(log));
        });
        let (out_tx, out_rx) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).unwrap();
            out_tx.send(s).unwrap();
        });
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("flowtop {args:?} exited before counting:\n{log}"),
            Err(_) => panic!("flowtop {args:?} not counting after 60s"),
        }
        Flowtop {
            child,
            stdout: out_rx,
        }
    }

    /// SIGINT, then every JSON row printed.
    fn stop(mut self) -> Vec<Value> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "flowtop exited with {status}");
        let out = self.stdout.recv_timeout(Duration::from_secs(10)).unwrap();
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs the helpers under every flowtop at once; returns each flowtop's rows.
fn run(helpers: Vec<Helper>, flowtops: &[&[&str]]) -> Vec<Vec<Value>> {
    let running: Vec<Flowtop> = flowtops.iter().map(|a| Flowtop::start(a)).collect();
    let mut helpers = helpers;
    for h in &mut helpers {
        h.go();
    }
    for h in helpers {
        h.wait();
    }
    running.into_iter().map(Flowtop::stop).collect()
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
    // The UDP server is not connected: these hooks do not see each datagram's peer.
    pair("udp", "127.0.0.1", p.udp4, client_ports[2], UDP4, false);
    pair("udp", "::1", p.udp6, client_ports[3], UDP6, false);
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
    if !is_root() {
        return;
    }
    let h = Helper::spawn("ft-conn");
    let (pid, ports) = (h.pid(), h.ports);
    let out = run(vec![h], &[&["--by", "conn"]]);
    let got = conn_rows(&out[0], pid);
    let want = expected_conns(ports, &client_ports(&got, ports));
    assert_eq!(got, want);
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
        let path = format!("{own}/flowtop-test-{}", std::process::id());
        let dir = PathBuf::from(format!("{mount}{path}"));
        std::fs::create_dir(&dir).unwrap();
        Some(TestCgroup { dir, path })
    }

    fn enter(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn cgroup_grouping_and_filter_are_exact() {
    if !is_root() {
        return;
    }
    let Some(cg) = TestCgroup::create() else {
        eprintln!("skipped: no cgroup v2");
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
