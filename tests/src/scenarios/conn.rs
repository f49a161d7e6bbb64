//! Per-connection scenarios (`--by conn` and the connection filters).
use std::collections::BTreeMap;

use anyhow::{ensure, Context as _, Result};

use crate::{args, ConnTruth, Ctx, Flowtop, FlowtopRun, Gen, Ready, ScenarioResult};

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
