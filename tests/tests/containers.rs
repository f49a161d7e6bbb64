//! `--by container`, `--show-container`, `--container`, `--pod`, `--wait` and
//! `--host-root` against the real kernel (root, cgroup v2, and for the first test
//! podman + runc + busybox-static, which `scripts/setup.sh test` installs: a missing
//! one fails the test, naming it).
//!
//! Traffic is trafficgen's, with the ground truth its own syscalls returned (and,
//! for the container that talks to this test, the bytes this test itself read and
//! wrote). It runs in real podman containers (image built offline), or in real
//! cgroup directories named exactly as docker, containerd, cri-o and systemd name
//! theirs with either cgroup driver, with the runtimes' name files laid out under a
//! temporary `--host-root`. Every check is exact and keyed by names, ids or cgroup
//! paths this test made, so other containers and tests on the machine cannot
//! disturb it. Containers, images, cgroups and files are removed by guards, also
//! when an assertion fails.
use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener},
    path::Path,
    process::Command,
    time::Duration,
};

use flowtop_tests::{
    args,
    podman::{Container, Image, Network},
    sum_by, CgroupTree, Ctx, Flowtop, Gen, Truth,
};
use serde_json::Value;
use tempfile::TempDir;

fn ctx() -> Ctx {
    Ctx::host(env!("CARGO_BIN_EXE_trafficgen"))
}

/// `flowtop --format json ARGS`, counting. With an interval longer than the test,
/// the only report is the partial one printed on SIGINT: by then the containers
/// that exited are gone, and must still be named.
fn start(ctx: &Ctx, a: &[&str]) -> Flowtop {
    Flowtop::builder(ctx)
        .raw()
        .args(&["--format", "json"])
        .args(a)
        .args(&["600"])
        .start()
        .unwrap_or_else(|e| panic!("flowtop {a:?}: {e:#}"))
}

/// SIGINT (the partial interval is printed, exit 0), then every JSON row.
fn stop(ft: Flowtop) -> Vec<Value> {
    let run = ft.stop().expect("flowtop stops");
    run.assert_clean();
    run.values()
}

/// (rx, tx) summed per value of the string key `key`, with the last row of each.
fn per(rows: &[Value], key: &str) -> HashMap<String, ((u64, u64), Value)> {
    let sums = sum_by(rows, |r| r[key].as_str().map(String::from));
    let mut last: HashMap<String, Value> = HashMap::new();
    for r in rows {
        if let Some(k) = r[key].as_str() {
            last.insert(k.to_string(), r.clone());
        }
    }
    sums.into_iter()
        .map(|(k, b)| {
            let row = last.remove(&k).unwrap();
            (k, (b, row))
        })
        .collect()
}

/// The (rx, tx) and last row of the rows whose `key` is `value`; panics without one.
fn one(rows: &[Value], key: &str, value: &str) -> ((u64, u64), Value) {
    per(rows, key)
        .remove(value)
        .unwrap_or_else(|| panic!("no row with {key} {value}: {rows:?}"))
}

/// Releases trafficgen (`--wait-go`) and waits for it to exit 0: its ground truth.
fn release(mut gen: Gen) -> Truth {
    gen.go().unwrap();
    gen.finish().expect("trafficgen exits 0")
}

/// Every byte a process moved to itself: received as sent.
fn both(t: &Truth) -> (u64, u64) {
    (t.rx_bytes, t.tx_bytes)
}

/// `trafficgen --wait-go phases 3 BYTES 10`: TCP and UDP between two sockets of one
/// process over 127.0.0.1, so it receives every byte it sends.
fn phases(bytes: u64) -> Vec<String> {
    args(&["--wait-go", "phases", "3", &bytes.to_string(), "10"])
}

// ---------------------------------------------------------------------------
// podman

/// Bytes the container on the host's network sends to this test, and gets back.
const UP: u64 = 300_001;
const DOWN: u64 = 170_003;

#[test]
fn podman_containers_are_named_and_exact_even_when_gone() {
    let ctx = ctx();
    let image = Image::build("containers").expect("building the podman image offline");
    let tag = std::process::id();
    let (a, b) = (format!("ft-a-{tag}"), format!("ft-b-{tag}"));
    // a: on the host's network, running before flowtop starts; exchanges bytes with
    // this test and stays alive until the reports are read (--hold).
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to_test = listener.local_addr().unwrap().to_string();
    let (ca, mut ga) = Container::run(
        &ctx,
        &image,
        &a,
        Network::Host,
        &args(&[
            "--wait-go",
            "--hold",
            "exchange",
            &to_test,
            &UP.to_string(),
            &DOWN.to_string(),
        ]),
    )
    .expect("podman run a");
    ga.ready().expect("a ready");
    let id_a = ca.id().unwrap();
    let grouped = start(&ctx, &["--by", "container"]);
    let only_a = start(&ctx, &["--container", &a, "--show-container"]);
    // b does not exist yet: --wait counts it from when it appears.
    let waiting = start(&ctx, &["--container", &b, "--wait", "--by", "container"]);
    // b: starts after flowtop, in its own network namespace, moves its bytes over
    // its own loopback and is removed (--rm) long before the report.
    let (cb, mut gb) =
        Container::run(&ctx, &image, &b, Network::Own, &phases(200_003)).expect("podman run b");
    gb.ready().expect("b ready");
    let id_b = cb.id().unwrap();
    waiting
        .wait_for_log(&format!("libpod-{id_b}"))
        .expect("--wait follows b once it appears");
    // The others walk the cgroup tree every 200 ms: let them see b alive (with a
    // margin for a loaded machine).
    std::thread::sleep(Duration::from_secs(1));
    gb.go().unwrap();
    ga.go_and_hold().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = vec![0; UP as usize];
    conn.read_exact(&mut buf).unwrap();
    conn.write_all(&vec![b'd'; DOWN as usize]).unwrap();
    drop(conn);
    let truth_b = gb.finish().expect("b exits 0");
    let truth_a = ga.truth().expect("a's traffic");
    assert_eq!(
        (truth_a.rx_bytes, truth_a.tx_bytes),
        (DOWN, UP),
        "a moved what this test read and wrote"
    );
    assert!(!cb.exists(), "b was removed (--rm) before the report");

    let rows = stop(grouped);
    let by_name = per(&rows, "container");
    let want = [
        (&a, &id_a, (truth_a.rx_bytes, truth_a.tx_bytes)),
        (&b, &id_b, both(&truth_b)),
    ];
    for (name, id, bytes) in want {
        let (got, row) = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no row named {name}: {rows:?}"));
        eprintln!("{name}: moved (rx, tx) {bytes:?}, --by container reported {got:?}");
        assert_eq!(*got, bytes, "{name}: (rx, tx)");
        assert_eq!(row["container_id"], id.as_str(), "{row}");
        assert_eq!(row["runtime"], "podman", "{row}");
        assert_eq!(row["by"], "container", "{row}");
        assert!(row["pod"].is_null() && row["namespace"].is_null(), "{row}");
        let cgroup = row["cgroup"].as_str().unwrap();
        assert!(cgroup.ends_with(&format!("libpod-{id}")), "{row}");
    }
    let cgroup_b = by_name[&b].1["cgroup"].as_str().unwrap().to_string();
    let mount = flowtop_tests::cgroup2_mount().unwrap();
    assert!(
        !mount.join(cgroup_b.trim_start_matches('/')).exists(),
        "b's cgroup {cgroup_b} was gone before the report"
    );

    // --container a --show-container: only a's process, each row named.
    let rows = stop(only_a);
    assert!(!rows.is_empty(), "no rows for --container {a}");
    for r in &rows {
        assert!(r["pid"].as_u64().is_some(), "a process row: {r}");
        assert_eq!(r["container"], a.as_str(), "{r}");
        assert_eq!(r["container_id"], id_a.as_str(), "{r}");
        assert_eq!(r["runtime"], "podman", "{r}");
    }
    let all = sum_by(&rows, |_| Some(()));
    assert_eq!(all[&()], (truth_a.rx_bytes, truth_a.tx_bytes), "{rows:?}");

    // --wait --container b: b alone, counted once it appeared.
    let rows = stop(waiting);
    let got = per(&rows, "container");
    assert_eq!(got.len(), 1, "only b: {rows:?}");
    assert_eq!(got[&b].0, both(&truth_b), "{rows:?}");
    ga.finish().expect("a exits 0");
}

// ---------------------------------------------------------------------------
// Fixtures: cgroups and files named as docker, containerd, cri-o and systemd do

/// A temporary host root (`--host-root`) with the runtimes' files written into it.
struct HostRoot(TempDir);

impl HostRoot {
    fn new() -> Self {
        HostRoot(tempfile::tempdir().expect("temporary host root"))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn arg(&self) -> String {
        self.0.path().to_string_lossy().into_owned()
    }
}

/// A 64-hex-digit container id unique to this process and `n` (`n` first, so that
/// 12-digit prefixes differ between the ids of one run).
fn fake_id(n: u32) -> String {
    format!("{n:08x}{:08x}", std::process::id()).repeat(4)
}

/// A Kubernetes pod uid unique to this process and `n`.
fn pod_uid(n: u32) -> String {
    format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id())
}

/// One fixture container: its cgroup, what flowtop must call it, its traffic.
struct Case {
    dir: std::path::PathBuf,
    runtime: &'static str,
    id: Option<String>,
    name: String,
    /// (namespace, pod)
    pod: Option<(&'static str, &'static str)>,
    bytes: u64,
}

/// Every runtime's layout with both drivers, with its files under `root`.
fn fixture_cases(tree: &CgroupTree, root: &HostRoot) -> Vec<Case> {
    let tag = std::process::id();
    let slice = |u: &str| u.replace('-', "_");
    let mut bytes = 100_001;
    let mut case = |rel: String, runtime, id: Option<String>, name: String, pod| {
        bytes += 2;
        Case {
            dir: tree.mkdir(&rel),
            runtime,
            id,
            name,
            pod,
            bytes,
        }
    };
    let docker = |n: u32, name: &str| {
        let id = fake_id(n);
        root.write(
            &format!("var/lib/docker/containers/{id}/config.v2.json"),
            &format!(r#"{{"ID":"{id}","Name":"/{name}","State":{{}}}}"#),
        );
        id
    };
    // The kubelet's logs name a pod's containers.
    let kubelet = |n: u32, ns: &str, pod: &str, uid: &str, ctr: &str| {
        let id = fake_id(n);
        root.write(&format!("var/log/pods/{ns}_{pod}_{uid}/{ctr}/0.log"), "");
        root.write(&format!("var/log/containers/{pod}_{ns}_{ctr}-{id}.log"), "");
        id
    };
    let (u1, u2, u3, u4) = (pod_uid(1), pod_uid(2), pod_uid(3), pod_uid(4));
    let (web, db) = (format!("web-{tag}"), format!("db-{tag}"));
    let (d1, d2) = (docker(1, &web), docker(2, &db));
    let (c1, c2) = (
        kubelet(3, "shop", "front-1", &u1, "nginx"),
        kubelet(4, "shop", "front-2", &u2, "nginx"),
    );
    let (o1, o2) = (
        kubelet(5, "jobs", "batch", &u3, "worker"),
        kubelet(6, "jobs", "cron", &u4, "tick"),
    );
    let unit = format!("flowtop-fixture-{tag}.service");
    vec![
        // docker: systemd driver, cgroupfs driver.
        case(
            format!("system.slice/docker-{d1}.scope"),
            "docker",
            Some(d1),
            web,
            None,
        ),
        case(format!("docker/{d2}"), "docker", Some(d2), db, None),
        // Kubernetes + containerd: systemd driver (burstable), cgroupfs (besteffort).
        case(
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{c1}.scope",
                slice(&u1)
            ),
            "containerd",
            Some(c1),
            "nginx".into(),
            Some(("shop", "front-1")),
        ),
        case(
            format!("kubepods/besteffort/pod{u2}/{c2}"),
            "containerd",
            Some(c2),
            "nginx".into(),
            Some(("shop", "front-2")),
        ),
        // Kubernetes + cri-o: systemd driver (guaranteed), cgroupfs (burstable).
        case(
            format!("kubepods.slice/kubepods-pod{}.slice/crio-{o1}.scope", slice(&u3)),
            "cri-o",
            Some(o1),
            "worker".into(),
            Some(("jobs", "batch")),
        ),
        case(
            format!("kubepods/burstable/pod{u4}/crio-{o2}"),
            "cri-o",
            Some(o2),
            "tick".into(),
            Some(("jobs", "cron")),
        ),
        // A systemd service.
        case(format!("system.slice/{unit}"), "systemd", None, unit.clone(), None),
    ]
}

/// trafficgen in cgroup `dir`, ready and waiting for go.
fn in_cgroup(ctx: &Ctx, dir: &Path, bytes: u64) -> Gen {
    let mut a = args(&["--cgroup", &dir.to_string_lossy()]);
    a.extend(phases(bytes));
    let g = Gen::spawn(ctx, &a).expect("trafficgen starts");
    g.ready().expect("trafficgen ready");
    g
}

#[test]
fn docker_kubernetes_cri_o_and_systemd_cgroups_are_named_and_exact() {
    let ctx = ctx();
    let tree = CgroupTree::required("flowtop-runtimes");
    let root = HostRoot::new();
    let cases = fixture_cases(&tree, &root);
    let gens: Vec<Gen> = cases
        .iter()
        .map(|c| in_cgroup(&ctx, &c.dir, c.bytes))
        .collect();
    let root_arg = root.arg();
    let grouped = start(&ctx, &["--by", "container", "--host-root", &root_arg]);
    let pod = start(
        &ctx,
        &[
            "--pod",
            "shop/front-2",
            "--host-root",
            &root_arg,
            "--by",
            "container",
        ],
    );
    let replicas = start(
        &ctx,
        &[
            "--container",
            "nginx",
            "--host-root",
            &root_arg,
            "--by",
            "container",
        ],
    );
    let truths: Vec<Truth> = gens.into_iter().map(release).collect();
    let rows = stop(grouped);
    for (c, t) in cases.iter().zip(&truths) {
        let (got, row) = one(&rows, "cgroup", &tree.path_of(&c.dir));
        eprintln!(
            "{} {}: moved {:?}, reported {got:?} as {}",
            c.runtime,
            c.name,
            both(t),
            row["container"]
        );
        assert_eq!(got, both(t), "{row}");
        assert_eq!(row["container"], c.name.as_str(), "{row}");
        assert_eq!(row["runtime"], c.runtime, "{row}");
        assert_eq!(row["container_id"].as_str(), c.id.as_deref(), "{row}");
        let (ns, pod) = c.pod.unzip();
        assert_eq!(row["namespace"].as_str(), ns, "{row}");
        assert_eq!(row["pod"].as_str(), pod, "{row}");
    }
    // --pod shop/front-2: one of the two pods with a container named nginx.
    let rows = stop(pod);
    let got = per(&rows, "container_id");
    assert_eq!(got.len(), 1, "{rows:?}");
    assert_eq!(got[cases[3].id.as_ref().unwrap()].0, both(&truths[3]));
    // --container nginx: both replicas, each counted.
    let rows = stop(replicas);
    let got = per(&rows, "container_id");
    assert_eq!(got.len(), 2, "{rows:?}");
    for i in [2, 3] {
        assert_eq!(got[cases[i].id.as_ref().unwrap()].0, both(&truths[i]));
    }
}

/// `--container NAME` matching more replicas than the kernel has cgroup slots for
/// would lose some: cri-o's monitor (`crio-conmon-<id>.scope`, beside each
/// container) carries the container's id and must not take a slot. Five replicas
/// with their monitors (ten cgroups) fit in eight slots, each counted exactly.
#[test]
fn replicas_are_all_counted_without_slots_for_their_monitors() {
    let ctx = ctx();
    let tree = CgroupTree::required("flowtop-replicas");
    let root = HostRoot::new();
    let mut dirs = Vec::new();
    for n in 21..26 {
        let (id, uid) = (fake_id(n), pod_uid(n));
        let pod = format!("cache-{n}");
        root.write(&format!("var/log/pods/rep_{pod}_{uid}/cache/0.log"), "");
        root.write(&format!("var/log/containers/{pod}_rep_cache-{id}.log"), "");
        let slice = format!("kubepods.slice/kubepods-pod{}.slice", uid.replace('-', "_"));
        tree.mkdir(&format!("{slice}/crio-conmon-{id}.scope"));
        dirs.push((id.clone(), tree.mkdir(&format!("{slice}/crio-{id}.scope"))));
    }
    let gens: Vec<Gen> = dirs
        .iter()
        .map(|(_, d)| in_cgroup(&ctx, d, 40_009))
        .collect();
    let root_arg = root.arg();
    let replicas = start(
        &ctx,
        &[
            "--container",
            "cache",
            "--host-root",
            &root_arg,
            "--by",
            "container",
        ],
    );
    let truths: Vec<Truth> = gens.into_iter().map(release).collect();
    let rows = stop(replicas);
    assert_eq!(per(&rows, "container_id").len(), dirs.len(), "{rows:?}");
    for ((id, _), t) in dirs.iter().zip(&truths) {
        let (bytes, row) = one(&rows, "container_id", id);
        assert_eq!(bytes, both(t), "{row}");
        assert_eq!(row["container"], "cache", "{row}");
    }
}

/// The kubelet links `var/log/containers/<pod>_<ns>_<container>-<id>.log` only after
/// the container started, when its cgroup already exists: a container first seen
/// before the link is named once the link appears.
#[test]
fn a_kubernetes_container_is_named_once_the_kubelet_links_its_log() {
    let ctx = ctx();
    let tree = CgroupTree::required("flowtop-late");
    let root = HostRoot::new();
    let (id, uid) = (fake_id(11), pod_uid(11));
    root.write(&format!("var/log/pods/late_api-0_{uid}/server/0.log"), "");
    let dir = tree.mkdir(&format!("kubepods/burstable/pod{uid}/{id}"));
    let root_arg = root.arg();
    let grouped = start(&ctx, &["--by", "container", "--host-root", &root_arg]);
    let gen = in_cgroup(&ctx, &dir, 70_001);
    // flowtop has walked the tree (every 200 ms) and seen the cgroup unnamed.
    std::thread::sleep(Duration::from_millis(600));
    root.write(
        &format!("var/log/containers/api-0_late_server-{id}.log"),
        "",
    );
    std::thread::sleep(Duration::from_millis(600));
    let truth = release(gen);
    let rows = stop(grouped);
    let (bytes, row) = one(&rows, "container_id", &id);
    assert_eq!(bytes, both(&truth));
    assert_eq!(row["container"], "server", "{row}");
    assert_eq!(
        (row["namespace"].as_str(), row["pod"].as_str()),
        (Some("late"), Some("api-0")),
        "{row}"
    );
    assert_eq!(row["runtime"], "containerd", "{row}");
}

#[test]
fn unreadable_names_give_the_id_and_pid_and_conn_rows_show_the_container() {
    let ctx = ctx();
    let tree = CgroupTree::required("flowtop-nofiles");
    let root = HostRoot::new();
    let id = fake_id(9);
    let dir = tree.mkdir(&format!("system.slice/docker-{id}.scope"));
    // A malformed config: the row has the id and no name.
    root.write(
        &format!("var/lib/docker/containers/{id}/config.v2.json"),
        "{",
    );
    let gen = in_cgroup(&ctx, &dir, 65_537);
    let root_arg = root.arg();
    let grouped = start(&ctx, &["--by", "container", "--host-root", &root_arg]);
    // By id prefix, with FLOWTOP_HOST_ROOT instead of the flag.
    let pids = Flowtop::builder(&ctx)
        .raw()
        .args(&[
            "--format",
            "json",
            "--show-container",
            "--container",
            &id[..12],
            "600",
        ])
        .env("FLOWTOP_HOST_ROOT", &root_arg)
        .start()
        .expect("flowtop --container ID-PREFIX");
    let conns = start(
        &ctx,
        &["--by", "conn", "--show-container", "--host-root", &root_arg],
    );
    let truth = release(gen);
    let rows = stop(grouped);
    let (bytes, row) = one(&rows, "container_id", &id);
    assert_eq!(bytes, both(&truth));
    assert!(row["container"].is_null(), "{row}");
    assert_eq!(row["runtime"], "docker", "{row}");
    assert_eq!(row["cgroup"], tree.path_of(&dir).as_str(), "{row}");
    let rows = stop(pids);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["pid"], truth.pid, "{r}");
        assert_eq!(r["container_id"], id.as_str(), "{r}");
        assert!(r["container"].is_null(), "{r}");
    }
    assert_eq!(sum_by(&rows, |_| Some(()))[&()], both(&truth));
    // --by conn --show-container: each of its connections names the container.
    let rows = stop(conns);
    let mine: Vec<Value> = rows.into_iter().filter(|r| r["pid"] == truth.pid).collect();
    assert!(mine.len() >= 2, "its TCP and UDP connections: {mine:?}");
    for r in &mine {
        assert_eq!(r["container_id"], id.as_str(), "{r}");
        assert_eq!(r["cgroup"], tree.path_of(&dir).as_str(), "{r}");
    }
    assert_eq!(sum_by(&mine, |_| Some(()))[&()], both(&truth));
}

#[test]
fn bad_container_arguments_exit_2_with_one_line() {
    let ctx = ctx();
    let missing = TempDir::new().unwrap().path().join("nonexistent");
    let missing = missing.to_string_lossy();
    for (a, says) in [
        (&["--container", ""][..], "empty"),
        (
            &["--container", "12345678901z!"],
            "neither a container name",
        ),
        (&["--pod", "a/b/c"], "NAMESPACE/NAME"),
        (&["--pod", "/x"], "empty"),
        (&["--host-root", &missing], &missing),
        (
            &["--container", "no-such-container-flowtop"],
            "nothing running matches",
        ),
    ] {
        let out = Command::new(&ctx.flowtop).args(a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        // One line says what is wrong; clap may add its usage and `--help` hints.
        let said: Vec<&str> = err
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("Usage: ") && !l.starts_with("For more"))
            .collect();
        assert_eq!(said.len(), 1, "{a:?}: one line: {err}");
        assert!(said[0].starts_with("error: "), "{a:?}: {err}");
        assert!(said[0].contains(says), "{a:?}: should say {says:?}: {err}");
        assert!(flowtop_tests::panic_text(&err).is_none(), "{err}");
        assert!(out.stdout.is_empty(), "{a:?}");
    }
}
