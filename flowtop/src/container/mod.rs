//! Containers, Kubernetes pods and systemd services by name (`--by container`,
//! `--show-container`, `--container`, `--pod`), from the node's own files: the
//! cgroup path says who made a cgroup ([`path`]), the runtimes' files name it
//! ([`names`]).
//!
//! A container that exits within an interval must still show with its name, so
//! names are not looked up when a report is printed (its cgroup and its runtime's
//! files may be gone by then) but when its cgroup id is first seen: the cgroup2
//! tree is walked for new directories between reports ([`Containers::refresh`]),
//! and what was learnt is kept until the container's last report.
pub mod filter;
pub mod names;
pub mod path;

use std::{
    collections::{hash_map, HashMap},
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use path::{classify, Runtime};

/// How often the cgroup2 tree is walked for new cgroups between reports: a
/// container that starts, moves bytes and is removed within this is shown by id.
pub const REFRESH_PERIOD: Duration = Duration::from_millis(200);

/// What a reader keeps up to date between reports: the names of containers as
/// their cgroups appear, and the kernel's `--container`/`--pod` slots as matching
/// containers come and go.
#[derive(Default)]
pub struct Tracking {
    /// `--by container`, `--show-container`, `--serve`.
    pub names: Option<Containers>,
    /// `--container`, `--pod`.
    pub filter: Option<filter::CgroupFilter>,
}

impl Tracking {
    /// Between reports.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        if let Some(c) = &mut self.names {
            c.refresh();
        }
        if let Some(f) = &mut self.filter {
            f.refresh()?;
        }
        Ok(())
    }
}

/// Who a row's bytes belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The container's name, the systemd unit, or `host`; None when the runtime's
    /// files did not name the container.
    pub name: Option<String>,
    /// The runtime's full container id.
    pub id: Option<String>,
    /// None: the cgroup was gone before it could be seen.
    pub runtime: Option<Runtime>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// The container's or unit's cgroup path (`cgroup:<id>` when not known).
    pub cgroup: Option<String>,
}

impl Identity {
    /// Names what the cgroup path `path` stands for, from files under `root`.
    pub fn of_path(root: &Path, path: &str) -> Self {
        let who = classify(path);
        let n = names::resolve(root, &who);
        let name = match who.runtime {
            Runtime::Host => Some("host".to_string()),
            Runtime::Systemd => who.unit.clone(),
            _ => n.container,
        };
        Self {
            name,
            id: who.id,
            runtime: Some(who.runtime),
            pod: n.pod,
            namespace: n.namespace,
            cgroup: who.cgroup,
        }
    }

    /// A cgroup that was gone before its path could be read.
    pub fn unknown(cgroup_id: u64) -> Self {
        Self {
            name: None,
            id: None,
            runtime: None,
            pod: None,
            namespace: None,
            cgroup: Some(format!("cgroup:{cgroup_id}")),
        }
    }

    /// How people see it: the name, else the id's first 12 digits (as `docker ps`
    /// shows it), else the cgroup path.
    pub fn label(&self) -> Option<&str> {
        match (&self.name, &self.id, &self.cgroup) {
            (Some(n), _, _) => Some(n),
            (None, Some(id), _) => Some(&id[..id.len().min(12)]),
            (None, None, cg) => cg.as_deref(),
        }
    }

    /// A container of some runtime (not a unit, not the host).
    pub fn is_container(&self) -> bool {
        self.id.is_some()
    }

    /// What makes one `--by container` row: the container id (its monitor's
    /// cgroup too), else the unit's cgroup, else `host`.
    pub fn group_key(&self) -> String {
        match (&self.id, &self.cgroup, self.runtime) {
            (Some(id), _, _) => id.clone(),
            (None, _, Some(Runtime::Host)) => "host".into(),
            (None, Some(cg), _) => cg.clone(),
            (None, None, _) => "host".into(),
        }
    }

    /// `--container NAME`: its name, or an id prefix of at least 12 hex digits.
    pub fn matches_container(&self, want: &ContainerArg) -> bool {
        match want {
            ContainerArg::Name(n) => self.is_container() && self.name.as_deref() == Some(n),
            ContainerArg::IdPrefix(p) => self.id.as_deref().is_some_and(|id| id.starts_with(p)),
        }
    }

    /// `--pod [NAMESPACE/]NAME`.
    pub fn matches_pod(&self, want: &PodArg) -> bool {
        self.pod.as_deref() == Some(&want.name)
            && want
                .namespace
                .as_ref()
                .is_none_or(|ns| self.namespace.as_ref() == Some(ns))
    }
}

/// `--container`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerArg {
    Name(String),
    /// At least 12 lowercase hex digits.
    IdPrefix(String),
}

impl ContainerArg {
    /// A string of 12 or more hex digits is an id prefix; any other non-empty
    /// string a name. Names of docker and podman containers start with a letter or
    /// digit and contain `[a-zA-Z0-9_.-]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("a container name or id prefix cannot be empty".into());
        }
        if s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self::IdPrefix(s.to_ascii_lowercase()));
        }
        let name_ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if !name_ok {
            return Err(format!(
                "'{s}' is neither a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) nor an id \
                 prefix (12 or more hex digits)"
            ));
        }
        Ok(Self::Name(s.into()))
    }
}

impl std::fmt::Display for ContainerArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(s) | Self::IdPrefix(s) => f.write_str(s),
        }
    }
}

/// `--pod`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodArg {
    pub namespace: Option<String>,
    pub name: String,
}

impl PodArg {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (namespace, name) = match parts[..] {
            [name] => (None, name),
            [ns, name] => (Some(ns), name),
            _ => return Err(format!("'{s}': a pod is NAME or NAMESPACE/NAME")),
        };
        if name.is_empty() || namespace.is_some_and(str::is_empty) {
            return Err(format!("'{s}': empty pod or namespace name"));
        }
        Ok(Self {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for PodArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// How long a container that its runtime's files did not name yet is looked up
/// again on each walk: the kubelet links `var/log/containers/..-<id>.log` only
/// after the container started, and its cgroup exists from before that.
pub const NAME_RETRY: Duration = Duration::from_secs(10);

struct Entry {
    ident: Arc<Identity>,
    /// The cgroup path, and since when it is a container without a name (looked up
    /// again for [`NAME_RETRY`]).
    unnamed: Option<(String, Instant)>,
    /// The cgroup's directory: for the kernel filter (`--container`, `--pod`).
    dir: PathBuf,
    /// Report number before which the directory was found gone.
    gone_at: Option<u64>,
}

/// cgroup id -> identity, learnt when the id is first seen and kept until the
/// report after its cgroup is gone.
pub struct Containers {
    mount: PathBuf,
    root: PathBuf,
    by_cgroup: HashMap<u64, Entry>,
    /// Per process, the v1 fallback: None when its v1 paths name no container.
    pids: HashMap<u32, Option<Arc<Identity>>>,
    /// Per process, `--show-container --by pid`: None when it was gone before its
    /// cgroup was read.
    procs: HashMap<u32, Option<Arc<Identity>>>,
    /// `/proc`, or a fake tree in tests.
    proc: PathBuf,
    reports: u64,
    last_walk: Option<Instant>,
}

impl Containers {
    /// `mount`: the cgroup2 mount; `root`: `--host-root`.
    pub fn new(mount: PathBuf, root: PathBuf) -> Self {
        let mut c = Self {
            mount,
            root,
            by_cgroup: HashMap::new(),
            pids: HashMap::new(),
            procs: HashMap::new(),
            proc: "/proc".into(),
            reports: 0,
            last_walk: None,
        };
        c.walk();
        c
    }

    /// Walks the cgroup2 tree if the last walk is older than [`REFRESH_PERIOD`]:
    /// called between reports, so short-lived containers are named while alive.
    pub fn refresh(&mut self) {
        if self.last_walk.is_none_or(|t| t.elapsed() >= REFRESH_PERIOD) {
            self.walk();
        }
    }

    /// Names every new cgroup and marks the ones that are gone.
    fn walk(&mut self) {
        let mut now = HashMap::new();
        crate::identity::walk(&self.mount, "", &mut now);
        for (id, path) in &now {
            match self.by_cgroup.entry(*id) {
                hash_map::Entry::Occupied(mut e) => Self::name_again(&self.root, e.get_mut()),
                hash_map::Entry::Vacant(v) => {
                    let ident = Identity::of_path(&self.root, path);
                    v.insert(Entry {
                        unnamed: (ident.is_container() && ident.name.is_none())
                            .then(|| (path.clone(), Instant::now())),
                        ident: Arc::new(ident),
                        dir: self.mount.join(path.trim_start_matches('/')),
                        gone_at: None,
                    });
                }
            }
        }
        let reports = self.reports;
        for (id, e) in &mut self.by_cgroup {
            if e.gone_at.is_none() && !now.contains_key(id) {
                e.gone_at = Some(reports);
            }
        }
        self.last_walk = Some(Instant::now());
    }

    /// A container first seen before its runtime's files named it: looked up again
    /// while it is younger than [`NAME_RETRY`] (a sandbox that is never named, like
    /// a pod's pause container, stops costing lookups then).
    fn name_again(root: &Path, e: &mut Entry) {
        let Some((path, since)) = &e.unnamed else {
            return;
        };
        if since.elapsed() >= NAME_RETRY {
            e.unnamed = None;
        } else {
            let ident = Identity::of_path(root, path);
            if ident.name.is_some() {
                e.ident = Arc::new(ident);
                e.unnamed = None;
            }
        }
    }

    /// Who cgroup `cgroup_id` is; `tgid`, when known, lets a process that a
    /// runtime placed only in the v1 hierarchies (hybrid layouts) be found there.
    pub fn get(&mut self, cgroup_id: u64, tgid: Option<u32>) -> Arc<Identity> {
        if !self.by_cgroup.contains_key(&cgroup_id) {
            self.walk();
        }
        let ident = match self.by_cgroup.get(&cgroup_id) {
            Some(e) => e.ident.clone(),
            None => Arc::new(Identity::unknown(cgroup_id)),
        };
        if ident.is_container() || ident.runtime.is_none() {
            return ident;
        }
        match tgid.and_then(|pid| self.v1_container(pid)) {
            Some(v1) => v1,
            None => ident,
        }
    }

    /// `--show-container` for a process row: its v2 cgroup from /proc/PID/cgroup,
    /// read once per process and kept while it lives. None when it was gone
    /// before it was read.
    pub fn of_pid(&mut self, pid: u32) -> Option<Arc<Identity>> {
        if let Some(known) = self.procs.get(&pid) {
            return known.clone();
        }
        let ident = self.read_pid(pid);
        self.procs.insert(pid, ident.clone());
        ident
    }

    /// What a process's counted bytes said it is in: [`Self::of_pid`] answers
    /// with it later, even once the process is gone (until it is reported exited).
    pub fn remember_pid(&mut self, pid: u32, who: Arc<Identity>) {
        self.procs.insert(pid, Some(who));
    }

    fn read_pid(&mut self, pid: u32) -> Option<Arc<Identity>> {
        let text = fs::read_to_string(self.proc.join(pid.to_string()).join("cgroup")).ok()?;
        let v2 = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let ino = fs::metadata(self.mount.join(v2.trim_start_matches('/')))
            .ok()?
            .ino();
        Some(self.get(ino, Some(pid)))
    }

    /// The container a process is in by its v1 cgroups (`N:controller:/path`), when
    /// its v2 cgroup names none. Cached per process.
    fn v1_container(&mut self, pid: u32) -> Option<Arc<Identity>> {
        let (proc, root) = (&self.proc, &self.root);
        self.pids
            .entry(pid)
            .or_insert_with(|| {
                let text = fs::read_to_string(proc.join(pid.to_string()).join("cgroup")).ok()?;
                text.lines()
                    .filter(|l| !l.starts_with("0::"))
                    .filter_map(|l| l.splitn(3, ':').nth(2))
                    .find(|p| classify(p).is_container())
                    .map(|p| Arc::new(Identity::of_path(root, p)))
            })
            .clone()
    }

    /// After a report: forgets processes that exited and cgroups that were gone
    /// before it (their last bytes are in it).
    pub fn end_report(&mut self, exited: impl IntoIterator<Item = u32>) {
        for pid in exited {
            self.pids.remove(&pid);
            self.procs.remove(&pid);
        }
        let reports = self.reports;
        self.by_cgroup
            .retain(|_, e| e.gone_at.is_none_or(|g| g >= reports));
        self.reports += 1;
    }

    /// Live cgroups whose identity `pred` accepts, with their directories: each is
    /// the top of a container or unit (not its sub-cgroups), so the kernel filter
    /// (which includes descendants) counts each once. As fresh as the last walk
    /// ([`REFRESH_PERIOD`]): the filter asks on every sweep (50 ms), and a walk
    /// opens every directory of the cgroup tree.
    pub fn matching(&mut self, pred: impl Fn(&Identity) -> bool) -> Vec<(Arc<Identity>, PathBuf)> {
        self.refresh();
        let mount = &self.mount;
        let mut out: Vec<_> = self
            .by_cgroup
            .values()
            .filter(|e| e.gone_at.is_none() && pred(&e.ident))
            .filter(|e| {
                e.ident
                    .cgroup
                    .as_deref()
                    .is_some_and(|cg| mount.join(cg.trim_start_matches('/')) == e.dir)
            })
            .map(|e| (e.ident.clone(), e.dir.clone()))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// Every live container (for the error that lists what does match).
    pub fn running(&mut self) -> Vec<Arc<Identity>> {
        self.matching(Identity::is_container)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    /// cgroups remembered.
    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";

    #[test]
    fn container_args() {
        assert_eq!(
            ContainerArg::parse("web-1"),
            Ok(ContainerArg::Name("web-1".into()))
        );
        assert_eq!(
            ContainerArg::parse("916ADFD5C3B1"),
            Ok(ContainerArg::IdPrefix("916adfd5c3b1".into()))
        );
        // Fewer than 12 hex digits is a name (docker allows `cafe`).
        assert_eq!(
            ContainerArg::parse("cafe"),
            Ok(ContainerArg::Name("cafe".into()))
        );
        for bad in ["", "-x", "a/b", "a b", "zz!"] {
            assert!(ContainerArg::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pod_args() {
        assert_eq!(
            PodArg::parse("shop/web"),
            Ok(PodArg {
                namespace: Some("shop".into()),
                name: "web".into()
            })
        );
        assert_eq!(PodArg::parse("web").unwrap().namespace, None);
        for bad in ["", "a/b/c", "/x", "x/"] {
            assert!(PodArg::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identities_match_and_group() {
        let root = Path::new("/nonexistent");
        let c = Identity::of_path(root, &format!("/docker/{ID}"));
        assert_eq!(c.group_key(), ID);
        assert!(c.matches_container(&ContainerArg::IdPrefix(ID[..12].into())));
        assert!(!c.matches_container(&ContainerArg::IdPrefix("0".repeat(12))));
        let host = Identity::of_path(root, "/my-test");
        assert_eq!(
            (host.name.as_deref(), host.group_key()),
            (Some("host"), "host".into())
        );
        assert!(!host.matches_container(&ContainerArg::Name("host".into())));
        let unit = Identity::of_path(root, "/system.slice/cron.service");
        assert_eq!(unit.group_key(), "/system.slice/cron.service");
        assert_eq!(unit.name.as_deref(), Some("cron.service"));
        let gone = Identity::unknown(7);
        assert_eq!(
            (gone.runtime, gone.cgroup.as_deref()),
            (None, Some("cgroup:7"))
        );
        let pod = Identity {
            pod: Some("web".into()),
            namespace: Some("shop".into()),
            ..Identity::unknown(1)
        };
        assert!(pod.matches_pod(&PodArg::parse("web").unwrap()));
        assert!(pod.matches_pod(&PodArg::parse("shop/web").unwrap()));
        assert!(!pod.matches_pod(&PodArg::parse("dev/web").unwrap()));
    }

    #[test]
    fn v1_fallback_when_v2_names_no_container() {
        let dir = std::env::temp_dir().join(format!("flowtop-v1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("42")).unwrap();
        fs::write(
            dir.join("42/cgroup"),
            format!("3:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"),
        )
        .unwrap();
        let mount = crate::identity::cgroup2_mount().expect("a cgroup2 mount");
        let root_ino = fs::metadata(&mount).unwrap().ino();
        let mut c = Containers::new(mount, "/nonexistent".into());
        c.proc = dir.clone();
        assert_eq!(c.get(root_ino, None).name.as_deref(), Some("host"));
        let v1 = c.get(root_ino, Some(42));
        assert_eq!(
            (v1.runtime, v1.id.as_deref()),
            (Some(Runtime::Docker), Some(ID))
        );
        assert_eq!(c.get(u64::MAX, Some(42)).runtime, None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
