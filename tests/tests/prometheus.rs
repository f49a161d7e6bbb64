//! `--serve` against a real Prometheus server (needs root and the Debian package
//! `prometheus`, which `scripts/setup.sh test` installs: without either the test
//! fails, naming what is missing). Two flowtops (one with `--metrics-cgroup-label`,
//! one with `--metrics-pid-label`) are scraped every second by a Prometheus on
//! loopback with a temporary config and storage; `trafficgen exchange`, with a
//! distinctive name, sends and receives bytes over loopback TCP to this test process
//! and exits; the test then asks Prometheus's HTTP API for the helper's counters
//! until they show exactly the bytes trafficgen's syscalls returned. The helper has
//! exited by then: its bytes must stay in the counters. Container labels and
//! `--series-ttl` are checked with real podman containers (see the last test).
use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Stdio,
    time::{Duration, Instant},
};

use flowtop_tests::{
    args, own_cgroup,
    podman::{Container, Image, Network},
    Ctx, Flowtop, Gen, Prometheus, Truth,
};
use serde_json::Value;

/// Helper -> test process, and back.
const UP: u64 = 123_457;
const DOWN: u64 = 54_321;

/// Starts `flowtop -v --serve 127.0.0.1:0 ARGS`; returns it and the address it
/// serves on (from its ready line).
fn start_flowtop(ctx: &Ctx, extra: &[&str]) -> (Flowtop, SocketAddr) {
    let ft = Flowtop::builder(ctx)
        .raw()
        .args(&["--serve", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .start()
        .expect("flowtop --serve starts");
    let line = ft.ready_line();
    let addr = line
        .split("serving http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let addr = addr.trim_end_matches("/metrics").parse().unwrap();
    (ft, addr)
}

/// `GET PATH` from `addr` over HTTP/1.0: the body, None when the server does not
/// answer (yet).
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// `GET /api/v1/query?query=Q`: the result vector (empty while Prometheus starts).
fn query(web: SocketAddr, q: &str) -> Vec<Value> {
    let encoded: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some(body) = http_get(web, &format!("/api/v1/query?query={encoded}")) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return vec![];
    };
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Polls `q` until it returns something and `done` accepts it; the last result.
fn poll(web: SocketAddr, q: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = query(web, q);
        if !r.is_empty() && done(&r) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn value(r: &Value) -> u64 {
    r["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_exact_bytes_by_comm_cgroup_and_pid() {
    let ctx = Ctx::host(env!("CARGO_BIN_EXE_trafficgen"));
    let dir = std::env::temp_dir().join(format!("flowtop-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (plain_ft, plain) = start_flowtop(&ctx, &["--metrics-cgroup-label"]);
    let (pid_ft, with_pid) = start_flowtop(&ctx, &["--metrics-pid-label"]);
    let prometheus = Prometheus::start(&dir, &[("flowtop", plain), ("flowtop_pid", with_pid)])
        .expect("Prometheus starts");
    let web = prometheus.web;
    // Both targets scraped successfully before the traffic.
    let up = poll(web, "up", |r| {
        r.len() == 2 && r.iter().all(|s| s["value"][1] == "1")
    });
    assert!(
        up.len() == 2 && up.iter().all(|s| s["value"][1] == "1"),
        "targets not up: {up:?}\n{}",
        prometheus.log()
    );

    // Known bytes from a helper with a name nothing else has.
    let name = format!("ftprom{}", std::process::id() % 1_000_000);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let helper = Gen::spawn(
        &ctx,
        &args(&[
            "--name",
            &name,
            "exchange",
            &listener.local_addr().unwrap().to_string(),
            &UP.to_string(),
            &DOWN.to_string(),
        ]),
    )
    .expect("trafficgen starts");
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP as usize];
    conn.read_exact(&mut buf).unwrap();
    conn.write_all(&vec![b'd'; DOWN as usize]).unwrap();
    let truth = helper.finish().expect("helper");
    assert_eq!((truth.tx_bytes, truth.rx_bytes), (UP, DOWN), "{truth:?}");

    let cgroup = own_cgroup().expect("this process's cgroup");
    for (dir_name, want) in [("tx", truth.tx_bytes), ("rx", truth.rx_bytes)] {
        for job in ["flowtop", "flowtop_pid"] {
            let q = format!("flowtop_{dir_name}_bytes_total{{job=\"{job}\",comm=\"{name}\"}}");
            let r = poll(web, &q, |r| r.iter().map(value).sum::<u64>() >= want);
            assert_eq!(r.len(), 1, "{q}: one series: {r:?}");
            let m = &r[0]["metric"];
            assert_eq!(value(&r[0]), want, "{q}: exactly the helper's bytes: {r:?}");
            if job == "flowtop" {
                assert_eq!(m["cgroup"], cgroup.as_str(), "{q}: {m}");
            } else {
                assert!(
                    m.get("cgroup").is_none(),
                    "{q}: no cgroup label without --metrics-cgroup-label: {m}"
                );
            }
            if job == "flowtop_pid" {
                assert_eq!(m["pid"], truth.pid.to_string().as_str(), "{q}: {m}");
            } else {
                assert!(m.get("pid").is_none(), "{q}: no pid label by default: {m}");
            }
        }
    }
    // Health series are there too.
    let info = poll(web, "flowtop_probe_info", |r| r.len() == 2);
    assert_eq!(info.len(), 2, "{info:?}");
    let lost = poll(web, "sum(flowtop_unrecorded_bytes_total)", |_| true);
    assert_eq!(value(&lost[0]), 0, "no bytes lost: {lost:?}");
    let cap = poll(web, "flowtop_map_capacity", |r| r.len() == 4);
    assert!(cap.iter().all(|r| value(r) == 16384), "{cap:?}");

    // SIGTERM: each flowtop must exit 0.
    for ft in [plain_ft, pid_ft] {
        ft.stop_with(libc::SIGTERM)
            .expect("flowtop exits on SIGTERM")
            .assert_clean();
    }
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts that the last samples of container `name`'s counters are exactly what
/// `truth` moved. Counters only grow: the largest sample is the last one, even once
/// the series went stale.
fn assert_final_bytes(web: SocketAddr, name: &str, truth: &Truth) {
    for (dir, want) in [("tx", truth.tx_bytes), ("rx", truth.rx_bytes)] {
        let q = format!("max_over_time(flowtop_{dir}_bytes_total{{container=\"{name}\"}}[10m])");
        let r = poll(web, &q, |r| r.iter().map(value).sum::<u64>() >= want);
        eprintln!(
            "{name} {dir}: moved {want}, Prometheus has {:?}",
            r.iter().map(value).collect::<Vec<_>>()
        );
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        assert_eq!(value(&r[0]), want, "{q}: exact: {r:?}");
    }
}

/// `--series-ttl 3s` with container labels: two real podman containers move known
/// bytes over their own loopback; the one that finished is scraped with its exact
/// bytes and its `container` label, then its series leaves the page and Prometheus
/// while the other one's, still moving, stays; the other's final counters are exact
/// too.
#[test]
fn series_ttl_drops_a_finished_containers_series_and_keeps_the_others_exact() {
    let ctx = Ctx::host(env!("CARGO_BIN_EXE_trafficgen"));
    let image = Image::build("prometheus").expect("building the podman image offline");
    let tag = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let (done, busy) = (format!("ft-done-{tag}"), format!("ft-busy-{tag}"));
    // done: one burst, then it exits (and --rm removes it).
    let (cd, mut gd) = Container::run(
        &ctx,
        &image,
        &done,
        Network::Own,
        &args(&["--wait-go", "phases", "2", "100003", "0"]),
    )
    .expect("podman run done");
    // busy: a burst every second for 15 s, longer than done's series lives.
    let (cb, mut gb) = Container::run(
        &ctx,
        &image,
        &busy,
        Network::Own,
        &args(&["--wait-go", "phases", "15", "50021", "1000"]),
    )
    .expect("podman run busy");
    gd.ready().expect("done ready");
    gb.ready().expect("busy ready");
    let (id_done, id_busy) = (cd.id().unwrap(), cb.id().unwrap());
    let (ft, addr) = start_flowtop(&ctx, &["--series-ttl", "3s", "--metrics-cgroup-label"]);
    let prometheus =
        Prometheus::start(dir.path(), &[("flowtop", addr)]).expect("Prometheus starts");
    let web = prometheus.web;
    let up = poll(web, "up", |r| r.iter().all(|s| s["value"][1] == "1"));
    assert!(!up.is_empty(), "target not up");

    gd.go().unwrap();
    gb.go().unwrap();
    let truth = gd.finish().expect("done exits 0");
    assert_final_bytes(web, &done, &truth);
    let q = format!("flowtop_tx_bytes_total{{container=\"{done}\"}}");
    let r = poll(web, &q, |_| true);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    let m = &r[0]["metric"];
    assert_eq!(m["comm"], "trafficgen", "{m}");
    // Prometheus leaves out empty labels: a podman container has no pod.
    assert!(
        m.get("pod").is_none() && m.get("namespace").is_none(),
        "{m}"
    );
    assert_eq!(
        m["cgroup"],
        format!("/libpod_parent/libpod-{id_done}").as_str(),
        "{m}"
    );

    // Idle for 3 s: gone from the page, so Prometheus marks it stale; busy stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !query(web, &q).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(query(web, &q).is_empty(), "{q} still there after its TTL");
    let busy_now = format!("flowtop_tx_bytes_total{{container=\"{busy}\"}}");
    let r = query(web, &busy_now);
    assert_eq!(r.len(), 1, "{busy} still moving, still there: {r:?}");
    assert!(
        cb.exists(),
        "busy was still running when done's series went"
    );
    let page = http_get(addr, "/metrics").expect("flowtop serves /metrics");
    assert!(!page.contains(&id_done), "{page}");
    assert!(page.contains(&id_busy), "{page}");

    let truth = gb.finish().expect("busy exits 0");
    assert_final_bytes(web, &busy, &truth);
    ft.stop_with(libc::SIGTERM)
        .expect("flowtop exits on SIGTERM")
        .assert_clean();
    drop(prometheus);
}
