//! The image run as deploy/kubernetes/daemonset.yaml runs it, with podman: the
//! host's PID namespace, every capability dropped but BPF and PERFMON, the seccomp
//! profile of deploy/kubernetes/seccomp, no new privileges, a read-only root, the
//! host's `/` read-only at /host (`--host-root /host`) and its cgroup2 file system
//! at /sys/fs/cgroup.
//! One difference: the host's network (`--network host`), because podman's default
//! network does not start on the machines this runs on; the pod's network changes
//! nothing flowtop counts (it counts in the kernel, for every process).
//!
//! First the same container under the runtime's default seccomp profile: it must
//! fail (exit 1), which is why the manifest asks for the custom profile. Then the
//! real Prometheus scrapes the exporter while two host processes (trafficgen, with
//! names of their own) move bytes over loopback; their counters must equal the bytes
//! trafficgen reports having moved.
use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use flowtop_tests::{free_port, Prometheus};
use serde_json::Value;

use crate::{image::podman, release::run_cmd};

/// Bytes the host process sends (and its sink receives).
const BYTES: u64 = 3_333_333;

pub fn check(root: &Path, tag: &str) -> Result<()> {
    let cgroup2 = flowtop_tests::cgroup2_mount().map_err(anyhow::Error::msg)?;
    let seccomp = root.join("deploy/kubernetes/seccomp/flowtop.json");
    let id = std::process::id();

    let port = free_port()?;
    let default = podman()
        .arg("run")
        .arg("--rm")
        .args(daemonset_flags(&cgroup2))
        .arg(tag)
        .args(["--serve", &format!("127.0.0.1:{port}")])
        .output()?;
    let stderr = String::from_utf8_lossy(&default.stderr);
    ensure!(
        default.status.code() == Some(1)
            && stderr.contains("Operation not permitted")
            && stderr.contains("seccomp/flowtop.json"),
        "under the default seccomp profile flowtop should fail with EPERM and name the \
         profile: {}\n{stderr}",
        default.status
    );
    println!(
        "release-test: default seccomp profile: refused as expected ({})",
        stderr.trim()
    );

    let trafficgen = build_trafficgen()?;
    let mut guard = Guard {
        container: format!("flowtop-release-test-{id}"),
        prometheus: None,
        dir: std::env::temp_dir().join(format!("flowtop-release-test-{id}")),
    };
    std::fs::create_dir_all(&guard.dir)?;
    let exporter: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()?).into();
    run_cmd(
        podman()
            .args(["run", "--detach", "--name", &guard.container])
            .args(daemonset_flags(&cgroup2))
            .arg(format!("--security-opt=seccomp={}", seccomp.display()))
            .arg(tag)
            .args([
                "--serve",
                &exporter.to_string(),
                "--host-root",
                "/host",
                "-v",
            ])
            .stdout(Stdio::null()),
    )?;
    wait_ready(exporter, &guard.container)?;
    println!("release-test: container ready: http://{exporter}/metrics answers 200");

    let prometheus = Prometheus::start(&guard.dir, &[("flowtop-daemonset", exporter)])?;
    let web = guard.prometheus.insert(prometheus).web;
    let sink_name = format!("ftsink{}", id % 100_000);
    let source_name = format!("ftsrc{}", id % 100_000);
    let (sink_truth, source_truth) = move_bytes(&trafficgen, &sink_name, &source_name)?;
    ensure!(
        source_truth["tx_bytes"] == BYTES,
        "trafficgen: {source_truth}"
    );

    for (metric, name, truth) in [
        (
            "flowtop_tx_bytes_total",
            &source_name,
            &source_truth["tx_bytes"],
        ),
        (
            "flowtop_rx_bytes_total",
            &sink_name,
            &sink_truth["rx_bytes"],
        ),
    ] {
        let want = truth.as_u64().context("trafficgen's ground truth")?;
        let query = format!("sum({metric}{{comm=\"{name}\"}})");
        let got = poll(web, &query, want)?;
        ensure!(
            got == Some(want),
            "Prometheus: {query} = {got:?}, trafficgen moved {want}"
        );
        println!("release-test: Prometheus {query} = {want}, as trafficgen moved");
    }
    Ok(())
}

/// What the DaemonSet's pod spec asks for, in podman's words.
fn daemonset_flags(cgroup2: &Path) -> Vec<String> {
    [
        "--pid=host",
        "--network=host",
        "--user=0",
        "--cap-drop=all",
        "--cap-add=CAP_BPF,CAP_PERFMON",
        "--security-opt=no-new-privileges",
        "--read-only",
        "--volume=/:/host:ro,rslave",
        "--ulimit=nofile=1024:1024",
        "--ulimit=nproc=1024:1024",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--volume={}:/sys/fs/cgroup:ro", cgroup2.display())])
    .collect()
}

/// The container, Prometheus and the scratch directory, gone however the check ends.
struct Guard {
    container: String,
    prometheus: Option<Prometheus>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Stopped before its directory goes.
        drop(self.prometheus.take());
        let _ = podman()
            .args(["rm", "--force", "--time", "5", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Status line of `GET /metrics`, as the readiness probe sees it.
fn metrics_status(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.lines().next().map(str::to_string)
}

fn wait_ready(addr: SocketAddr, container: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if metrics_status(addr).is_some_and(|l| l.contains(" 200 ")) {
            return Ok(());
        }
        let state = podman()
            .args(["inspect", "--format", "{{.State.Status}}", container])
            .output()?;
        if String::from_utf8_lossy(&state.stdout).trim() == "exited" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = podman().args(["logs", container]).output()?;
    bail!(
        "the container never answered on http://{addr}/metrics:\n{}",
        String::from_utf8_lossy(&logs.stderr)
    )
}

/// `FLOWTOP_TRAFFICGEN` (scripts/test.sh points it at the one `cargo test --release`
/// built), else a build of it: a `-p flowtop-tests` build unifies features
/// differently from the workspace's test build and recompiles serde and syn.
fn build_trafficgen() -> Result<PathBuf> {
    if std::env::var_os("FLOWTOP_TRAFFICGEN").is_none() {
        run_cmd(Command::new(env!("CARGO")).args([
            "build",
            "--release",
            "-p",
            "flowtop-tests",
            "--bin",
            "trafficgen",
        ]))?;
    }
    Ok(flowtop_tests::find_trafficgen(None))
}

/// A trafficgen sink and source on the host, each with its own name; their ground
/// truth lines.
fn move_bytes(trafficgen: &Path, sink_name: &str, source_name: &str) -> Result<(Value, Value)> {
    let mut sink = Command::new(trafficgen)
        .args(["--name", sink_name, "tcp-sink", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let port = ready_port(&mut sink)?;
    let source = Command::new(trafficgen)
        .args(["--name", source_name, "tcp-source"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(BYTES.to_string())
        .output()?;
    ensure!(source.status.success(), "trafficgen tcp-source: {source:?}");
    let sink = sink.wait_with_output()?;
    ensure!(sink.status.success(), "trafficgen tcp-sink: {sink:?}");
    Ok((
        serde_json::from_slice(&sink.stdout)?,
        serde_json::from_slice(&source.stdout)?,
    ))
}

/// The port in the sink's `trafficgen: ready pid=P port=N` line.
fn ready_port(sink: &mut Child) -> Result<u16> {
    use std::io::BufRead as _;
    let stderr = sink.stderr.take().context("sink stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("ready"))
        .context("trafficgen tcp-sink exited before it was ready")?;
    // Keep draining so that the sink never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    line.rsplit("port=")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("no port in {line:?}"))
}

/// Asks Prometheus (`promtool query instant`) until `query` equals `want` or a
/// minute has passed; the last value seen.
fn poll(web: SocketAddr, query: &str, want: u64) -> Result<Option<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        let out = Command::new("promtool")
            .args(["query", "instant", &format!("http://{web}"), query])
            .output()
            .context("running promtool (Debian package prometheus)")?;
        // `{} => 3333333 @[1764770000.123]`
        last = String::from_utf8_lossy(&out.stdout)
            .split("=>")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok());
        if last == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(last)
}
