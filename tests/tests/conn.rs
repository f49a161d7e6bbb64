//! `--by conn|comm|cgroup`, their output in every format, `--show-nspid` and the
//! kernel filters, against the real kernel with real sockets (needs root; cgroup v2 for
//! the cgroup tests: without either they fail, naming what is missing). Traffic comes
//! from `trafficgen conns` helpers, each its own process with its own name: two TCP
//! connections (IPv4 and IPv6) open at once and UDP over both families and from IPv4
//! to a dual-stack socket, a connected client and an unconnected server (which
//! answers with `sendto`) each. trafficgen reports what every socket end's syscalls
//! returned, and the assertions are exact against that.
//!
//! Protocol: helpers set their name, connect, print their ready line (ports, their
//! getpid()) and wait for go. The test starts flowtop (`-v`, `--format json` unless a
//! test names a format), waits until it counts, releases the helpers, waits for their
//! ground truth (and, holding their stdin, keeps them alive while flowtop reports
//! them), then sends SIGINT: flowtop prints the partial interval and exits 0.
use std::collections::HashMap;

use flowtop_tests::{
    args, csv_header, csv_values as csv_rows, json_values as json_rows, sum_by, Ctx, Flowtop, Gen,
    ScenarioCgroup, Truth, CORE_KEYS,
};
use serde_json::Value;

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

/// What each helper's TCP clients send, about (`trafficgen conns BYTES`).
const CONN_BYTES: u64 = 20_000;

/// The server ports of a helper, from its ready line.
#[derive(Clone, Copy, Debug)]
struct Ports {
    tcp4: u16,
    udp6: u16,
}

/// A `trafficgen conns` helper, set up and waiting for [`Helper::go`].
struct Helper {
    gen: Gen,
    /// The helper's PID on the host (not a wrapper's).
    pid: u32,
    /// Its PID as the helper itself saw it (getpid), inside its PID namespace.
    ns_pid: u32,
    ports: Ports,
}

impl Helper {
    fn spawn(ctx: &Ctx, name: &str) -> Self {
        Self::spawn_in(ctx, name, &[], &[])
    }

    /// A helper that joins `cg` before it moves a byte.
    fn in_cgroup(ctx: &Ctx, name: &str, cg: &ScenarioCgroup) -> Self {
        Self::spawn_in(ctx, name, &[], &cg.join_arg())
    }

    /// The helper started by `wrapper` (a command line that runs its arguments), e.g.
    /// in a new PID namespace, with trafficgen options `opts`.
    fn spawn_in(ctx: &Ctx, name: &str, wrapper: &[&str], opts: &[String]) -> Self {
        let mut a = args(&["--wait-go", "--hold", "--name", name]);
        a.extend_from_slice(opts);
        a.extend(args(&["conns", &CONN_BYTES.to_string()]));
        let gen = Gen::spawn_in(ctx, wrapper, &a).expect("trafficgen starts");
        let ready = gen.ready().expect("trafficgen ready");
        let port = |k: &str| -> u16 {
            ready
                .field(k)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no {k}= in {:?}", ready.line))
        };
        let ports = Ports {
            tcp4: port("tcp4"),
            udp6: port("udp6"),
        };
        let pid = gen.host_pid().expect("the helper's host PID");
        Helper {
            gen,
            pid,
            ns_pid: ready.pid,
            ports,
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the traffic; the helper exits when it is done.
    fn go(&mut self) {
        self.gen.go().expect("go");
    }

    /// Starts the traffic; the helper stays alive until [`Helper::wait`].
    fn go_and_hold(&mut self) {
        self.gen.go_and_hold().expect("go");
    }

    /// Waits until the traffic is done (the helper may still be alive); its truth.
    fn traffic_done(&self) -> Truth {
        self.gen.truth().expect("helper traffic")
    }

    /// Waits for the helper to exit 0; its ground truth.
    fn wait(self) -> Truth {
        self.gen.finish().expect("helper")
    }
}

/// Starts flowtop `args` (`--format json` unless they name a format) with `envs`;
/// returns once it counts.
fn start(ctx: &Ctx, args: &[&str], envs: &[(&str, &str)]) -> Flowtop {
    let mut b = Flowtop::builder(ctx).raw().args(args);
    if !args.contains(&"--format") {
        b = b.args(&["--format", "json"]);
    }
    for (k, v) in envs {
        b = b.env(k, v);
    }
    b.start().expect("flowtop starts")
}

/// SIGINT (flowtop prints the partial interval, exits 0), then what it printed.
fn stop(ft: Flowtop) -> String {
    let run = ft.stop().expect("flowtop stops");
    run.assert_clean();
    run.text
}

/// Runs the helpers under every flowtop at once (each with `envs`); returns what
/// each flowtop printed and each helper's ground truth.
fn run_text(
    ctx: &Ctx,
    helpers: Vec<Helper>,
    flowtops: &[&[&str]],
    envs: &[(&str, &str)],
) -> (Vec<String>, Vec<Truth>) {
    let running: Vec<Flowtop> = flowtops.iter().map(|a| start(ctx, a, envs)).collect();
    let mut helpers = helpers;
    for h in &mut helpers {
        h.go();
    }
    let truths = helpers.into_iter().map(Helper::wait).collect();
    (running.into_iter().map(stop).collect(), truths)
}

/// [`run_text`], each flowtop's rows parsed (JSON Lines, or CSV with `--format csv`).
fn run(ctx: &Ctx, helpers: Vec<Helper>, flowtops: &[&[&str]]) -> (Vec<Vec<Value>>, Vec<Truth>) {
    let (texts, truths) = run_text(ctx, helpers, flowtops, &[]);
    let rows = flowtops
        .iter()
        .zip(texts)
        .map(|(args, text)| match args.contains(&"csv") {
            true => csv_rows(&text),
            false => json_rows(&text),
        })
        .collect();
    (rows, truths)
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Every byte a helper moved, each way (over loopback to itself: rx as tx).
fn moved(t: &Truth) -> (u64, u64) {
    (t.rx_bytes, t.tx_bytes)
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

/// The rows a helper must produce under `--by conn`: one per socket end, with the
/// bytes its syscalls returned. A connected end's rows name its peer; an unconnected
/// UDP server's rows name the peer of each datagram, its one client (flowtop's cgroup
/// sendmsg/recvmsg programs).
fn expected_conns(t: &Truth) -> HashMap<ConnId, (u64, u64)> {
    let v6 = |a: &str| a.contains(':');
    t.conns
        .iter()
        .map(|c| {
            let (raddr, rport) = match (&c.raddr, c.rport) {
                (Some(a), Some(p)) => (a.clone(), p),
                _ => {
                    let client = t
                        .conns
                        .iter()
                        .find(|o| {
                            o.proto == c.proto
                                && o.rport == Some(c.lport)
                                && o.raddr.as_deref().is_some_and(|a| v6(a) == v6(&c.laddr))
                        })
                        .unwrap_or_else(|| panic!("no client of {c:?} in {t:?}"));
                    (client.laddr.clone(), client.lport)
                }
            };
            let id = (
                c.proto.clone(),
                c.laddr.clone(),
                u64::from(c.lport),
                Some(raddr),
                Some(u64::from(rport)),
            );
            (id, (c.rx_bytes, c.tx_bytes))
        })
        .collect()
}

/// Asserts that the `--by conn` rows of the helper `pid` are exactly its socket ends
/// with their bytes; returns them (for checking other output of the run).
fn exact_conns(rows: &[Value], pid: u32, truth: &Truth) -> HashMap<ConnId, (u64, u64)> {
    let want = expected_conns(truth);
    assert_eq!(conn_rows(rows, pid), want);
    want
}

/// [`CORE_KEYS`] followed by `more`.
fn keys_then(more: &[&str]) -> Vec<String> {
    CORE_KEYS
        .iter()
        .chain(more)
        .map(|k| k.to_string())
        .collect()
}

#[test]
fn by_conn_counts_each_connection_exactly() {
    let ctx = ctx();
    let h = Helper::spawn(&ctx, "ft-conn");
    let pid = h.pid();
    let (out, truth) = run(&ctx, vec![h], &[&["--by", "conn"]]);
    exact_conns(&out[0], pid, &truth[0]);
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
    let ctx = ctx();
    let h = Helper::spawn(&ctx, "ft-filter");
    let (pid, p) = (h.pid(), h.ports);
    let tcp4_port = p.tcp4.to_string();
    let udp6_port = p.udp6.to_string();
    let (out, truth) = run(
        &ctx,
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
    let all = exact_conns(&out[0], pid, &truth[0]);
    assert_eq!(all.len(), truth[0].conns.len(), "{all:?}");
    let subset = |keep: &dyn Fn(&ConnId) -> bool| -> HashMap<ConnId, (u64, u64)> {
        all.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    // IPv4 ends, the dual-stack `[::]` server's IPv4 traffic (shown as 0.0.0.0) among them.
    let v4 = subset(&|k| !k.1.contains(':'));
    assert!(!v4.is_empty() && v4.len() < all.len(), "{v4:?}");
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
    let kept = tcp4
        .values()
        .fold((0, 0), |(rx, tx), v| (rx + v.0, tx + v.1));
    assert_eq!(by_pid[&()], kept);
}

#[test]
fn pid_list_and_comm_filters_and_comm_grouping() {
    let ctx = ctx();
    let a = Helper::spawn(&ctx, "ft-alpha");
    let b = Helper::spawn(&ctx, "ft-beta");
    let c = Helper::spawn(&ctx, "ft-beta");
    let (pa, pb, pc) = (a.pid(), b.pid(), c.pid());
    let ab = format!("{pa},{pb}");
    let only_a = pa.to_string();
    let (out, truth) = run(
        &ctx,
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
    let each = HashMap::from([
        (pa, moved(&truth[0])),
        (pb, moved(&truth[1])),
        (pc, moved(&truth[2])),
    ]);
    let pids = |v: &[u32]| -> HashMap<u64, (u64, u64)> {
        v.iter().map(|p| (u64::from(*p), each[p])).collect()
    };
    assert_eq!(per_pid(&out[0]), pids(&[pa, pb]), "-p {ab}");
    assert_eq!(per_pid(&out[1]), pids(&[pa]), "-p {pa}");
    assert_eq!(per_pid(&out[2]), pids(&[pb, pc]), "-c ft-beta");
    let per_comm = |rows: &[Value]| sum_by(rows, |r| r["comm"].as_str().map(String::from));
    let by_comm = per_comm(&out[3]);
    assert_eq!(by_comm["ft-alpha"], each[&pa]);
    assert_eq!(
        by_comm["ft-beta"],
        (each[&pb].0 + each[&pc].0, each[&pb].1 + each[&pc].1)
    );
    assert!(out[3]
        .iter()
        .all(|r| r["pid"].is_null() && r["by"] == "comm"));
    assert_eq!(
        per_comm(&out[4]),
        HashMap::from([("ft-alpha".to_string(), each[&pa])])
    );
}

#[test]
fn cgroup_grouping_and_filter_are_exact() {
    let ctx = ctx();
    let cg = ScenarioCgroup::required("flowtop-test");
    let inside = Helper::in_cgroup(&ctx, "ft-inside", &cg);
    let outside = Helper::spawn(&ctx, "ft-outside");
    let (pin, pout) = (inside.pid(), outside.pid());
    let own_path = cg.path.clone();
    let (out, truth) = run(
        &ctx,
        vec![inside, outside],
        &[
            &["--by", "cgroup"],
            &["--cgroup", &own_path],
            &["--by", "cgroup", "--cgroup", &own_path],
        ],
    );
    let all = moved(&truth[0]);
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

#[test]
fn csv_of_every_grouping_adds_up_to_the_bytes_moved() {
    let ctx = ctx();
    let cg = ScenarioCgroup::required("flowtop-test");
    let h = Helper::in_cgroup(&ctx, "ft-csv", &cg);
    let pid = h.pid();
    let args: [&[&str]; 3] = [
        &["--by", "conn", "--format", "csv"],
        &["--by", "comm", "--format", "csv"],
        &["--by", "cgroup", "--format", "csv", "--summary"],
    ];
    let (texts, truth) = run_text(&ctx, vec![h], &args, &[]);
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
            "unrecorded_bytes",
            "skipped_calls"
        ])
    );
    let conn = csv_rows(&texts[0]);
    exact_conns(&conn, pid, &truth[0]);
    assert!(conn
        .iter()
        .filter(|r| r["pid"] == pid)
        .all(|r| r["comm"] == "ft-csv"));
    let all = moved(&truth[0]);
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
    let ctx = ctx();
    let mut h = Helper::spawn(&ctx, "ft-units");
    let pid = h.pid();
    let conn_table = start(
        &ctx,
        &["--by", "conn", "--units", "bytes", "--format", "table"],
        &[],
    );
    let conn_json = start(&ctx, &["--by", "conn"], &[]);
    // One full two-second interval, then flowtop exits by itself: rates divide by
    // the measured length, at least 2 s.
    let comm_rate = start(
        &ctx,
        &[
            "--by", "comm", "--units", "bytes", "--rate", "-T", "--format", "table", "2", "1",
        ],
        &[],
    );
    h.go();
    let truth = h.wait();
    let table = stop(conn_table);
    let want = exact_conns(&json_rows(&stop(conn_json)), pid, &truth);
    let rate = comm_rate
        .wait(std::time::Duration::from_secs(30))
        .expect("flowtop 2 1 exits by itself");
    rate.assert_clean();
    let rate = rate.text;
    let (all_rx, all_tx) = moved(&truth);

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
    assert_eq!((n(5), n(6), n(7)), (all_rx, all_tx, all_rx + all_tx));
    // bytes / seconds, rounded to whole bytes: the interval lasts 2 s, or up to 3 s
    // when flowtop waits for a busy CPU (an amount would be twice as large).
    for (per_sec, bytes) in [(n(3), all_rx), (n(4), all_tx)] {
        let (lo, hi) = (bytes as f64 / 3.0, bytes as f64 / 2.0 + 1.0);
        assert!(
            (lo..=hi).contains(&(per_sec as f64)),
            "{per_sec} B/s for {bytes} bytes in 2 s\n{rate}"
        );
    }
}

#[test]
fn conn_table_fits_a_narrow_terminal() {
    let ctx = ctx();
    let h = Helper::spawn(&ctx, "ft-narrow");
    let pid = h.pid();
    let p = pid.to_string();
    let args = [
        "--by", "conn", "--units", "bytes", "-p", &p, "--format", "table",
    ];
    let json_args = ["--by", "conn", "-p", &p];
    let (out, truth) = run_text(&ctx, vec![h], &[&args, &json_args], &[("COLUMNS", "64")]);
    let want = exact_conns(&json_rows(&out[1]), pid, &truth[0]);
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
    let ctx = ctx();
    let boxed = Helper::spawn_in(&ctx, "ft-nsbox", &IN_PID_NAMESPACE, &[]);
    let host = Helper::spawn(&ctx, "ft-nshost");
    let (bp, bns) = (boxed.pid(), boxed.ns_pid);
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
    let flowtops: Vec<Flowtop> = args.iter().map(|a| start(&ctx, a, &[])).collect();
    let mut helpers = [boxed, host];
    for h in &mut helpers {
        h.go_and_hold();
    }
    let truth: Vec<Truth> = helpers.iter().map(Helper::traffic_done).collect();
    let out: Vec<String> = flowtops.into_iter().map(stop).collect();
    for h in helpers {
        h.wait();
    }
    let (boxed_all, host_all) = (moved(&truth[0]), moved(&truth[1]));

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
    let row = |ns: u32, (rx, tx): (u64, u64)| (ns.to_string(), rx, tx);
    assert_eq!(
        seen.get(&bp.to_string()),
        Some(&row(bns, boxed_all)),
        "{}",
        out[0]
    );
    assert_eq!(
        seen.get(&hp.to_string()),
        Some(&row(hp, host_all)),
        "{}",
        out[0]
    );

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
            HashMap::from([(bp.into(), boxed_all), (hp.into(), host_all)])
        );
        assert!(nspids(&rows, bp).iter().all(|n| *n == bns), "{text}");
        assert!(nspids(&rows, hp).iter().all(|n| *n == hp), "{text}");
    }
    let conn = json_rows(&out[2]);
    exact_conns(&conn, bp, &truth[0]);
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
    assert_eq!(per_pid(&plain)[&u64::from(bp)], boxed_all);
    assert!(plain.iter().all(|r| r.get("nspid").is_none()));
}
