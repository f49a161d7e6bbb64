//! `--serve` against a real Prometheus server (needs root; installs the Debian
//! package `prometheus` when it is missing). Two flowtops (with and without
//! `--metrics-pid-label`) are scraped every second by a Prometheus on loopback with a
//! temporary config and storage; a helper process with a distinctive name sends and
//! receives known bytes over loopback TCP to this test process and exits; the test
//! then asks Prometheus's HTTP API for the helper's counters until they show exactly
//! those bytes. The helper has exited by then: its bytes must stay in the counters.
use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

mod common;

const FLOWTOP: &str = env!("CARGO_BIN_EXE_flowtop");
const HELPER_ENV: &str = "FLOWTOP_PROM_HELPER";
const CGROUP_ENV: &str = "FLOWTOP_PROM_CGROUP";
/// Helper -> test process, and back.
const UP: usize = 123_457;
const DOWN: usize = 54_321;

/// Not a test: the body of the helper process (`FLOWTOP_PROM_HELPER=name,addr`).
#[test]
fn helper() {
    let Ok(arg) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (name, addr) = arg.split_once(',').unwrap();
    if let Ok(dir) = std::env::var(CGROUP_ENV) {
        // Joins a test cgroup first (named as docker names its containers').
        std::fs::write(Path::new(&dir).join("cgroup.procs"), "0").unwrap();
    }
    std::fs::write("/proc/self/comm", name).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&vec![b'u'; UP]).unwrap();
    let mut buf = vec![0; DOWN];
    c.read_exact(&mut buf).unwrap();
}

/// Children killed (SIGTERM, then waited for) when the test ends, however it ends.
struct Reaper(Vec<(&'static str, Child)>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for (_, c) in &mut self.0 {
            let _ = c.wait();
        }
    }
}

impl Reaper {
    /// SIGTERM each flowtop: it must exit 0.
    fn stop_flowtops(&mut self) {
        for (what, c) in &mut self.0 {
            if *what == "flowtop" {
                // SAFETY: kill(2) on our own child.
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                let status = c.wait().unwrap();
                assert!(status.success(), "flowtop exited with {status}");
            }
        }
    }
}

/// Starts `flowtop -v --serve 127.0.0.1:0 ARGS` and returns the address it serves on.
fn start_flowtop(reaper: &mut Reaper, args: &[&str]) -> SocketAddr {
    let mut child = Command::new(FLOWTOP)
        .args(["-v", "--serve", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    reaper.0.push(("flowtop", child));
    let line = common::wait_until_counting(stderr, &format!("{args:?}"));
    let addr = line
        .split("serving http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    addr.trim_end_matches("/metrics").parse().unwrap()
}

/// `prometheus` on PATH, installed with apt-get when missing.
fn prometheus_binary() -> PathBuf {
    let find = || {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("prometheus"))
                .find(|f| f.is_file())
        })
    };
    if let Some(p) = find() {
        return p;
    }
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .expect("running apt-get");
    assert!(status.success(), "apt-get install prometheus: {status}");
    find().expect("prometheus not on PATH after installing the package")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(reaper: &mut Reaper, dir: &Path, targets: &[(&str, SocketAddr)]) -> SocketAddr {
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, addr) in targets {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
        ));
    }
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let web: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(prometheus_binary())
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    reaper.0.push(("prometheus", child));
    web
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
    let Ok(mut s) = TcpStream::connect(web) else {
        return vec![];
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: {web}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    if s.read_to_string(&mut resp).is_err() {
        return vec![];
    }
    let Some((_, body)) = resp.split_once("\r\n\r\n") else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<Value>(body) else {
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

/// This process's cgroup v2 path, as flowtop labels it (the helper inherits it).
fn own_cgroup() -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .expect("no cgroup v2 line in /proc/self/cgroup")
}

#[test]
fn prometheus_scrapes_exact_bytes_by_comm_cgroup_and_pid() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("flowtop-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut reaper = Reaper(Vec::new());
    let plain = start_flowtop(&mut reaper, &["--metrics-cgroup-label"]);
    let with_pid = start_flowtop(&mut reaper, &["--metrics-pid-label"]);
    let web = start_prometheus(
        &mut reaper,
        &dir,
        &[("flowtop", plain), ("flowtop_pid", with_pid)],
    );
    // Both targets scraped successfully before the traffic.
    let up = poll(web, "up", |r| {
        r.len() == 2 && r.iter().all(|s| s["value"][1] == "1")
    });
    assert!(
        up.len() == 2 && up.iter().all(|s| s["value"][1] == "1"),
        "targets not up: {up:?}\n{}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );

    // Known bytes from a helper with a name nothing else has.
    let name = format!("ftprom{}", std::process::id() % 1_000_000);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env(
            HELPER_ENV,
            format!("{name},{}", listener.local_addr().unwrap()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let helper_pid = helper.id();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP];
    conn.read_exact(&mut buf).unwrap();
    conn.write_all(&vec![b'd'; DOWN]).unwrap();
    assert!(helper.wait().unwrap().success(), "helper failed");

    let cgroup = own_cgroup();
    for (dir_name, want) in [("tx", UP as u64), ("rx", DOWN as u64)] {
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
                    "{q}: no cgroup label by default: {m}"
                );
            }
            if job == "flowtop_pid" {
                assert_eq!(m["pid"], helper_pid.to_string().as_str(), "{q}: {m}");
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

    reaper.stop_flowtops();
    drop(reaper);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_non_loopback_without_the_flag_and_report_options() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    for (args, says) in [
        (&["--serve", "0.0.0.0:9464"][..], "--serve-public"),
        (&["--serve", "[::]:9464"], "--serve-public"),
        (&["--serve", "9464", "--format", "json"], "--format"),
        (&["--serve", "9464", "5", "3"], "cannot be used"),
        (&["--serve-public"], "--serve"),
    ] {
        let out = Command::new(FLOWTOP).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

/// `--series-ttl 3s`: a container that finished is scraped with its exact bytes and
/// its `container` label, then its series leaves the page and Prometheus.
#[test]
fn series_ttl_drops_a_finished_containers_series() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    // SAFETY: no arguments.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root");
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("flowtop-prom-ttl-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    let id = format!("{pid:08x}").repeat(8);
    let root = dir.join("root");
    let config = root.join(format!("var/lib/docker/containers/{id}/config.v2.json"));
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let container = format!("ft-ttl-{pid}");
    std::fs::write(&config, format!(r#"{{"Name":"/{container}"}}"#)).unwrap();
    let mount = flowtop::identity::cgroup2_mount().expect("a cgroup2 mount");
    let top = mount.join(format!("flowtop-prom-{pid}"));
    let cg = top.join(format!("docker-{id}.scope"));
    std::fs::create_dir_all(&cg).unwrap();
    let mut reaper = Reaper(Vec::new());
    let root_arg = root.to_str().unwrap().to_string();
    let flowtop = start_flowtop(
        &mut reaper,
        &["--series-ttl", "3s", "--host-root", &root_arg],
    );
    let web = start_prometheus(&mut reaper, &dir, &[("flowtop", flowtop)]);
    let up = poll(web, "up", |r| r.iter().all(|s| s["value"][1] == "1"));
    assert!(!up.is_empty(), "target not up");

    let name = format!("ftttl{}", pid % 1_000_000);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env(
            HELPER_ENV,
            format!("{name},{}", listener.local_addr().unwrap()),
        )
        .env(CGROUP_ENV, &cg)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP];
    conn.read_exact(&mut buf).unwrap();
    conn.write_all(&vec![b'd'; DOWN]).unwrap();
    assert!(helper.wait().unwrap().success(), "helper failed");

    let q = format!("flowtop_tx_bytes_total{{container=\"{container}\"}}");
    let r = poll(web, &q, |r| r.iter().map(value).sum::<u64>() >= UP as u64);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    assert_eq!(value(&r[0]), UP as u64, "{q}: exact: {r:?}");
    assert_eq!(r[0]["metric"]["comm"], name.as_str());
    assert!(r[0]["metric"].get("cgroup").is_none(), "{r:?}");
    // Idle for 3 s: gone from the page, so Prometheus marks it stale.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !query(web, &q).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(query(web, &q).is_empty(), "{q} still there after its TTL");
    let page = {
        let mut s = TcpStream::connect(flowtop).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    assert!(!page.contains(&container), "{page}");
    reaper.stop_flowtops();
    drop(reaper);
    let _ = std::fs::remove_dir(&cg);
    let _ = std::fs::remove_dir(&top);
    let _ = std::fs::remove_dir_all(&dir);
}
