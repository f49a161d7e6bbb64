//! `--by container`, `--show-container`, `--container` and `--pod` against the
//! real kernel (needs root, cgroup v2, and for the first test podman + runc, which
//! `scripts/setup.sh test` installs; a missing one fails the test).
//!
//! Traffic comes from helper processes (this test binary run again, see
//! [`helper`]): each moves a known number of bytes to itself over a loopback TCP
//! connection, so it both sends and receives exactly that many, and checks it read
//! every byte. The helpers run in a real podman container, or in real cgroup
//! directories named as docker, containerd, cri-o and systemd name theirs (both
//! cgroup drivers), with the runtimes' files laid out under a temporary
//! `--host-root`. Assertions are exact, per container and by name.
use std::{
    collections::HashMap,
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

mod common;

const FLOWTOP: &str = env!("CARGO_BIN_EXE_flowtop");
const HELPER_ENV: &str = "FLOWTOP_CONTAINER_HELPER";

/// Not a test: the body of a helper process (`FLOWTOP_CONTAINER_HELPER=BYTES` or
/// `BYTES:CGROUP_DIR`). Joins the cgroup first, prints `READY`, waits for a line
/// on stdin, moves BYTES to itself over 127.0.0.1, prints `DONE` and exits.
#[test]
fn helper() {
    let Ok(arg) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (bytes, cgroup) = match arg.split_once(':') {
        Some((b, dir)) => (b, Some(dir)),
        None => (arg.as_str(), None),
    };
    let bytes: usize = bytes.parse().unwrap();
    if let Some(dir) = cgroup {
        fs::write(Path::new(dir).join("cgroup.procs"), "0").unwrap();
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        let mut buf = vec![0; 65536];
        loop {
            match server.read(&mut buf).unwrap() {
                0 => break got,
                n => got += n,
            }
        }
    });
    client.write_all(&vec![b'c'; bytes]).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), bytes, "every byte read");
    println!("DONE");
    std::io::stdout().flush().unwrap();
}

fn require_root() {
    // SAFETY: no arguments.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// A running helper: released with [`Helper::go`], then waited for.
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts `cmd` (which runs the helper) and waits for its READY line.
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting a helper");
        let mut h = Helper {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        };
        h.expect_line("READY");
        h
    }

    /// The helper in cgroup directory `dir` on the host.
    fn in_cgroup(bytes: u64, dir: &Path) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "helper", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, format!("{bytes}:{}", dir.display()));
        Self::start(cmd)
    }

    fn expect_line(&mut self, want: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "helper exited before {want}");
            // The test harness prints `test helper ... ` before the first line.
            if line.trim_end().ends_with(want) {
                return;
            }
        }
    }

    /// Moves the bytes and waits for the helper to exit successfully.
    fn go_and_wait(mut self) {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        self.expect_line("DONE");
        drop(stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "helper failed: {status}");
    }
}

/// flowtop with `--format json -v` and `args`, counting.
struct Flowtop(Child);

impl Flowtop {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(FLOWTOP)
            .args(["--format", "json", "-v"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        common::wait_until_counting(child.stderr.take().unwrap(), &format!("{args:?}"));
        Flowtop(child)
    }

    /// SIGINT (the partial interval is printed), then every JSON row.
    fn stop(mut self) -> Vec<Value> {
        // Let the last sweep read what the helpers moved.
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let mut out = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "flowtop: {status}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// (rx, tx) summed over intervals per value of `key`, and the last row of each.
fn per(rows: &[Value], key: &str) -> HashMap<String, ((u64, u64), Value)> {
    let mut out: HashMap<String, ((u64, u64), Value)> = HashMap::new();
    for r in rows {
        let Some(k) = r[key].as_str() else { continue };
        let e = out.entry(k.to_string()).or_insert(((0, 0), Value::Null));
        e.0 .0 += r["rx_bytes"].as_u64().unwrap();
        e.0 .1 += r["tx_bytes"].as_u64().unwrap();
        e.1 = r.clone();
    }
    out
}

/// A 64-hex-digit container id unique to this run and `n`.
fn fake_id(n: u32) -> String {
    // `n` first: the 12-digit prefixes (`--container PREFIX`) differ between ids.
    let seed = format!(
        "{:08x}{:08x}{:016x}",
        n,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    );
    seed.repeat(2)
}

fn cgroup2_mount() -> PathBuf {
    flowtop::identity::cgroup2_mount().expect("these tests need a cgroup2 mount")
}

// ---------------------------------------------------------------------------
// podman

/// A busybox image built offline from Debian's busybox-static, once per run.
/// The helper (this test binary) and the C library it needs are mounted in.
fn busybox_image() -> String {
    let image = "localhost/flowtop-test-busybox:latest".to_string();
    let root = std::env::temp_dir().join(format!("flowtop-bb-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox (Debian's busybox-static) is needed to build the image");
    for l in ["sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(l)).unwrap();
    }
    for d in ["usr/lib", "usr/lib64", "helper"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib64", root.join("lib64")).unwrap();
    let tar = root.with_extension("tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    run_ok(Command::new("podman").arg("import").arg(&tar).arg(&image));
    let _ = fs::remove_dir_all(&root);
    let _ = fs::remove_file(&tar);
    image
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh test installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `podman run -i` of the helper in a container named `name`.
fn podman_helper(image: &str, name: &str, network: &str, bytes: u64, cidfile: &Path) -> Helper {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("podman");
    cmd.args([
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "run",
        "-i",
        "--rm",
    ])
    .args(["--name", name, "--network", network])
    .args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ])
    .arg("--cidfile")
    .arg(cidfile)
    .args([
        "-v",
        "/usr/lib:/usr/lib:ro",
        "-v",
        "/usr/lib64:/usr/lib64:ro",
    ])
    .arg("-v")
    .arg(format!("{}:/helper/t:ro", exe.display()))
    .args(["-e", &format!("{HELPER_ENV}={bytes}")])
    .args([image, "/helper/t", "--exact", "helper", "--nocapture"])
    .args(["--test-threads=1"]);
    Helper::start(cmd)
}

#[test]
fn podman_containers_are_named_and_exact_even_when_gone() {
    require_root();
    let image = busybox_image();
    let pid = std::process::id();
    let (a, b) = (format!("ft-a-{pid}"), format!("ft-b-{pid}"));
    let dir = std::env::temp_dir();
    let (cid_a, cid_b) = (dir.join(format!("{a}.cid")), dir.join(format!("{b}.cid")));
    let (_, _) = (fs::remove_file(&cid_a), fs::remove_file(&cid_b));
    let (bytes_a, bytes_b) = (300_001, 170_003);
    // a: running before flowtop starts, on the host's network.
    let ha = podman_helper(&image, &a, "host", bytes_a, &cid_a);
    let flowtop = Flowtop::start(&["--by", "container", "2"]);
    let container_flowtop = Flowtop::start(&["--container", &a, "--show-container", "2"]);
    // b does not exist yet: --wait counts it from when it appears.
    let waiting = Flowtop::start(&["--container", &b, "--wait", "--by", "container", "2"]);
    // b: starts after flowtop, in its own network namespace, moves its bytes over
    // its own loopback and is removed (`--rm`) within the interval.
    let hb = podman_helper(&image, &b, "none", bytes_b, &cid_b);
    // Names are read when a cgroup is first seen, on a walk every 200 ms.
    std::thread::sleep(Duration::from_millis(400));
    hb.go_and_wait();
    ha.go_and_wait();
    let id_a = fs::read_to_string(&cid_a).unwrap();
    let id_b = fs::read_to_string(&cid_b).unwrap();
    let rows = flowtop.stop();
    let by_name = per(&rows, "container");
    for (name, id, bytes) in [(&a, &id_a, bytes_a), (&b, &id_b, bytes_b)] {
        let (got, row) = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"));
        assert_eq!(*got, (bytes, bytes), "{name}: (rx, tx)");
        assert_eq!(row["container_id"], id.trim(), "{name}");
        assert_eq!(row["runtime"], "podman");
        assert_eq!(row["by"], "container");
        assert!(row["pod"].is_null() && row["namespace"].is_null());
        assert!(
            row["cgroup"].as_str().unwrap().ends_with(id.trim()),
            "{row}"
        );
    }
    // --container a: only a's process, each row named.
    let rows = container_flowtop.stop();
    assert!(!rows.is_empty());
    let mut sum = (0, 0);
    for r in &rows {
        assert_eq!(r["container"], a.as_str(), "{r}");
        assert_eq!(r["runtime"], "podman");
        sum.0 += r["rx_bytes"].as_u64().unwrap();
        sum.1 += r["tx_bytes"].as_u64().unwrap();
    }
    assert_eq!(sum, (bytes_a, bytes_a));
    let rows = waiting.stop();
    let got = per(&rows, "container");
    assert_eq!(got.len(), 1, "only b: {rows:?}");
    assert_eq!(got[&b].0, (bytes_b, bytes_b), "b, counted once it appeared");
    let _ = fs::remove_file(&cid_a);
    let _ = fs::remove_file(&cid_b);
}

// ---------------------------------------------------------------------------
// Fixtures: cgroups and files named as docker, containerd, cri-o, systemd do

/// cgroup directories under a test-only parent, removed on drop (leaf first).
struct Fixture {
    top: PathBuf,
    dirs: Vec<PathBuf>,
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let top = cgroup2_mount().join(format!("flowtop-{name}-{}", std::process::id()));
        let root = std::env::temp_dir().join(format!("flowtop-root-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Fixture {
            top,
            dirs: Vec::new(),
            root,
        }
    }

    /// Creates the cgroup `rel` (and its parents) under the fixture's top.
    fn cgroup(&mut self, rel: &str) -> PathBuf {
        let dir = self.top.join(rel);
        let mut d = self.top.clone();
        for part in Path::new(rel).components() {
            d.push(part);
            if !d.exists() {
                fs::create_dir_all(&d).unwrap();
            }
            if !self.dirs.contains(&d) {
                self.dirs.push(d.clone());
            }
        }
        dir
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
        let _ = fs::remove_dir(&self.top);
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// One fixture container: its cgroup, what it should be named, its bytes.
struct Case {
    dir: PathBuf,
    runtime: &'static str,
    id: Option<String>,
    name: String,
    pod: Option<(&'static str, &'static str)>,
    bytes: u64,
}

/// Every runtime's layout, both drivers, with its files under the host root.
fn fixture_cases(fx: &mut Fixture) -> Vec<Case> {
    let tag = std::process::id();
    let (d1, d2, c1, c2, o1, o2) = (
        fake_id(1),
        fake_id(2),
        fake_id(3),
        fake_id(4),
        fake_id(5),
        fake_id(6),
    );
    let uid = |n: u32| format!("{:08x}-0000-4000-8000-{:012x}", tag, n);
    let (u1, u2, u3, u4) = (uid(1), uid(2), uid(3), uid(4));
    let slice = |u: &str| u.replace('-', "_");
    let mut cases = Vec::new();
    let mut add =
        |fx: &mut Fixture, rel: String, runtime, id: Option<&String>, name: String, pod, bytes| {
            cases.push(Case {
                dir: fx.cgroup(&rel),
                runtime,
                id: id.cloned(),
                name,
                pod,
                bytes,
            });
        };
    // docker, systemd driver and cgroupfs driver.
    fx.file(
        &format!("var/lib/docker/containers/{d1}/config.v2.json"),
        &format!(r#"{{"ID":"{d1}","Name":"/web-{tag}","State":{{}}}}"#),
    );
    fx.file(
        &format!("var/lib/docker/containers/{d2}/config.v2.json"),
        &format!(r#"{{"ID":"{d2}","Name":"/db-{tag}"}}"#),
    );
    add(
        fx,
        format!("system.slice/docker-{d1}.scope"),
        "docker",
        Some(&d1),
        format!("web-{tag}"),
        None,
        100_003,
    );
    add(
        fx,
        format!("docker/{d2}"),
        "docker",
        Some(&d2),
        format!("db-{tag}"),
        None,
        100_005,
    );
    // Kubernetes + containerd: systemd driver (burstable) and cgroupfs (besteffort).
    let logs = |fx: &Fixture, ns: &str, pod: &str, uid: &str, ctr: &str, id: &str| {
        fx.file(&format!("var/log/pods/{ns}_{pod}_{uid}/{ctr}/0.log"), "");
        fx.file(&format!("var/log/containers/{pod}_{ns}_{ctr}-{id}.log"), "");
    };
    logs(fx, "shop", "front-1", &u1, "nginx", &c1);
    logs(fx, "shop", "front-2", &u2, "nginx", &c2);
    add(
        fx,
        format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{c1}.scope", slice(&u1)),
        "containerd",
        Some(&c1),
        "nginx".into(),
        Some(("shop", "front-1")),
        100_007,
    );
    add(
        fx,
        format!("kubepods/besteffort/pod{u2}/{c2}"),
        "containerd",
        Some(&c2),
        "nginx".into(),
        Some(("shop", "front-2")),
        100_009,
    );
    // Kubernetes + cri-o: systemd driver (guaranteed) and cgroupfs (burstable).
    logs(fx, "jobs", "batch", &u3, "worker", &o1);
    logs(fx, "jobs", "cron", &u4, "tick", &o2);
    add(
        fx,
        format!(
            "kubepods.slice/kubepods-pod{}.slice/crio-{o1}.scope",
            slice(&u3)
        ),
        "cri-o",
        Some(&o1),
        "worker".into(),
        Some(("jobs", "batch")),
        100_011,
    );
    add(
        fx,
        format!("kubepods/burstable/pod{u4}/crio-{o2}"),
        "cri-o",
        Some(&o2),
        "tick".into(),
        Some(("jobs", "cron")),
        100_013,
    );
    // A systemd service.
    add(
        fx,
        format!("system.slice/flowtop-fixture-{tag}.service"),
        "systemd",
        None,
        format!("flowtop-fixture-{tag}.service"),
        None,
        100_015,
    );
    cases
}

#[test]
fn docker_kubernetes_cri_o_and_systemd_cgroups_are_named_and_exact() {
    require_root();
    let mut fx = Fixture::new("runtimes");
    let cases = fixture_cases(&mut fx);
    let root = fx.root.to_str().unwrap().to_string();
    let helpers: Vec<Helper> = cases
        .iter()
        .map(|c| Helper::in_cgroup(c.bytes, &c.dir))
        .collect();
    let flowtop = Flowtop::start(&["--by", "container", "--host-root", &root]);
    let pod_flowtop = Flowtop::start(&[
        "--pod",
        "shop/front-2",
        "--host-root",
        &root,
        "--by",
        "container",
    ]);
    let named = Flowtop::start(&[
        "--container",
        "nginx",
        "--host-root",
        &root,
        "--by",
        "container",
    ]);
    for h in helpers {
        h.go_and_wait();
    }
    let rows = flowtop.stop();
    let mut by_cgroup = per(&rows, "cgroup");
    for c in &cases {
        let top = c.dir.strip_prefix(cgroup2_mount()).unwrap();
        let key = format!("/{}", top.display());
        let ((rx, tx), row) = by_cgroup
            .remove(&key)
            .unwrap_or_else(|| panic!("no row for {key}: {rows:?}"));
        assert_eq!((rx, tx), (c.bytes, c.bytes), "{key}");
        assert_eq!(row["container"], c.name.as_str(), "{row}");
        assert_eq!(row["runtime"], c.runtime, "{row}");
        assert_eq!(row["container_id"].as_str(), c.id.as_deref(), "{row}");
        let pod = c.pod.map(|(ns, p)| (Some(ns), Some(p)));
        assert_eq!(
            (row["namespace"].as_str(), row["pod"].as_str()),
            pod.unwrap_or((None, None)),
            "{row}"
        );
    }
    // --pod: one pod of two with a container named nginx.
    let rows = pod_flowtop.stop();
    let got = per(&rows, "container_id");
    assert_eq!(got.len(), 1, "{rows:?}");
    let c = &cases[3];
    assert_eq!(got[c.id.as_ref().unwrap()].0, (c.bytes, c.bytes));
    // --container nginx: both replicas, each counted.
    let rows = named.stop();
    let got = per(&rows, "container_id");
    assert_eq!(got.len(), 2, "{rows:?}");
    for c in &cases[2..4] {
        assert_eq!(got[c.id.as_ref().unwrap()].0, (c.bytes, c.bytes));
    }
}

#[test]
fn files_missing_give_ids_without_names_and_pid_rows_show_the_container() {
    require_root();
    let mut fx = Fixture::new("nofiles");
    let id = fake_id(9);
    let dir = fx.cgroup(&format!("system.slice/docker-{id}.scope"));
    let root = fx.root.to_str().unwrap().to_string();
    // The config is malformed: the row has the id, and no name.
    fx.file(
        &format!("var/lib/docker/containers/{id}/config.v2.json"),
        "{",
    );
    let bytes = 65_537;
    let h = Helper::in_cgroup(bytes, &dir);
    let grouped = Flowtop::start(&["--by", "container", "--host-root", &root]);
    let pids = Flowtop::start(&[
        "--show-container",
        "--host-root",
        &root,
        "--container",
        &id[..12],
    ]);
    h.go_and_wait();
    let rows = grouped.stop();
    let got = per(&rows, "container_id");
    let ((rx, tx), row) = &got[&id];
    assert_eq!((*rx, *tx), (bytes, bytes));
    assert!(row["container"].is_null(), "{row}");
    assert_eq!(row["runtime"], "docker");
    let rows = pids.stop();
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(r["pid"].as_u64().is_some(), "{r}");
        assert_eq!(r["container_id"], id.as_str(), "{r}\n{rows:?}");
    }
    let sum: u64 = rows.iter().map(|r| r["rx_bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, bytes);
}

#[test]
fn bad_container_arguments_exit_2_with_one_line() {
    for args in [
        &["--container", ""][..],
        &["--container", "12345678901z!"],
        &["--pod", "a/b/c"],
        &["--host-root", "/nonexistent-flowtop-root"],
        &["--container", "no-such-container-flowtop"],
    ] {
        let out = Command::new(FLOWTOP).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap();
        assert!(first.starts_with("error: "), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    // What does match is listed.
    let out = Command::new(FLOWTOP)
        .args(["--container", "no-such-container-flowtop"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing running matches"), "{err}");
}
