//! `--container` and `--pod` in the kernel: the matching containers' (or pods')
//! cgroups go into the slots of the same cgroup array `--cgroup` uses, so the
//! programs count their tasks and everything below them and nothing else.
//!
//! Replicas that share a name are all counted (one slot each). The matches are
//! looked for again between reports, so a container that appears later (`--wait`)
//! or a replica that replaces another is counted from when it is seen; a slot
//! whose cgroup is gone is freed.
use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{anyhow, Context as _, Result};
use aya::{
    maps::{CgroupArray, MapData},
    Ebpf,
};
use flowtop_common::{MAP_FILTER_CGROUP, MAX_FILTER_CGROUPS};

use super::{ContainerArg, Containers, Identity, PodArg};

/// What `--container` and `--pod` ask for (both: a container of that pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub container: Option<ContainerArg>,
    pub pod: Option<PodArg>,
}

impl Wanted {
    /// None when neither flag is given.
    pub fn new(container: Option<ContainerArg>, pod: Option<PodArg>) -> Option<Self> {
        (container.is_some() || pod.is_some()).then_some(Self { container, pod })
    }

    pub fn accepts(&self, who: &Identity) -> bool {
        self.container
            .as_ref()
            .is_none_or(|c| who.matches_container(c))
            && self.pod.as_ref().is_none_or(|p| who.matches_pod(p))
    }

    /// The cgroups to count: with only `--pod`, the pod's own cgroup (its
    /// containers are below it) when the path names one, else each container.
    pub fn cgroups(&self, containers: &mut Containers) -> Vec<(Arc<Identity>, PathBuf)> {
        let mut found = containers.matching(|i| self.accepts(i));
        // A runtime's monitor (conmon, beside each container with the systemd
        // driver) has the container's id but none of its sockets: a slot for it
        // would halve the replicas that fit in the kernel's slots.
        found.retain(|(_, d)| {
            !d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(super::path::is_monitor)
        });
        if self.container.is_none() {
            // Several containers of one pod under its slice: keep the topmost.
            let dirs: Vec<PathBuf> = found.iter().map(|(_, d)| d.clone()).collect();
            found.retain(|(_, d)| !dirs.iter().any(|o| o != d && d.starts_with(o)));
        }
        found
    }

    /// The error when nothing matches: what does.
    pub fn nothing_matches(&self, containers: &mut Containers) -> String {
        let mut running: Vec<String> = containers
            .running()
            .iter()
            .map(|i| match (&i.pod, &i.namespace, &i.name, &i.id) {
                (Some(p), Some(ns), n, _) => {
                    format!("{} (pod {ns}/{p})", n.as_deref().unwrap_or("-"))
                }
                (_, _, Some(n), _) => n.clone(),
                (_, _, None, Some(id)) => id[..12].to_string(),
                _ => "-".into(),
            })
            .collect();
        running.sort();
        running.dedup();
        let what = match (&self.container, &self.pod) {
            (Some(c), Some(p)) => format!("--container {c} --pod {p}"),
            (Some(c), None) => format!("--container {c}"),
            (None, Some(p)) => format!("--pod {p}"),
            (None, None) => String::new(),
        };
        let list = if running.is_empty() {
            "no container is running".to_string()
        } else {
            format!("running: {}", running.join(", "))
        };
        format!("{what}: nothing running matches ({list}); --wait counts it once it appears")
    }
}

/// The cgroups `wanted` names now, under the cgroup2 mount, naming them from
/// files under `root`. Without `wait`, none is an error that lists what runs.
pub fn initial(wanted: &Wanted, root: &Path, wait: bool) -> Result<Vec<PathBuf>, String> {
    let mount = crate::identity::cgroup2_mount().map_err(|e| format!("{e:#}"))?;
    let mut containers = Containers::new(mount, root.to_path_buf());
    let dirs: Vec<PathBuf> = wanted
        .cgroups(&mut containers)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    if dirs.is_empty() && !wait {
        return Err(wanted.nothing_matches(&mut containers));
    }
    Ok(dirs)
}

/// The kernel's cgroup filter slots, kept in step with the matches.
pub struct CgroupFilter {
    map: CgroupArray<MapData>,
    slots: Vec<Option<PathBuf>>,
    wanted: Wanted,
    containers: Containers,
}

impl CgroupFilter {
    /// Takes the filter map out of `ebpf` and fills it with `initial`.
    pub fn new(
        ebpf: &mut Ebpf,
        wanted: Wanted,
        containers: Containers,
        initial: &[PathBuf],
    ) -> Result<Self> {
        let map = CgroupArray::try_from(
            ebpf.take_map(MAP_FILTER_CGROUP)
                .ok_or_else(|| anyhow!("map {MAP_FILTER_CGROUP} missing"))?,
        )?;
        let mut f = Self {
            map,
            slots: vec![None; MAX_FILTER_CGROUPS as usize],
            wanted,
            containers,
        };
        f.set(initial)?;
        Ok(f)
    }

    /// Between reports: new matches get a free slot, gone ones free theirs.
    pub fn refresh(&mut self) -> Result<()> {
        let now: Vec<PathBuf> = self
            .wanted
            .cgroups(&mut self.containers)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        self.set(&now)
    }

    fn set(&mut self, dirs: &[PathBuf]) -> Result<()> {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|d| !dirs.contains(d)) {
                // The cgroup is gone (or no longer matches): free the slot.
                let _ = self.map.unset(i as u32);
                *slot = None;
            }
        }
        for dir in dirs {
            if self.slots.iter().flatten().any(|d| d == dir) {
                continue;
            }
            let Some(i) = self.slots.iter().position(Option::is_none) else {
                log::warn!(
                    "more than {MAX_FILTER_CGROUPS} containers match; {} is not counted",
                    dir.display()
                );
                continue;
            };
            // A cgroup removed between the walk and here is simply not counted.
            let Ok(fd) = File::open(dir) else { continue };
            self.map
                .set(i as u32, fd, 0)
                .with_context(|| format!("adding {} to the cgroup filter", dir.display()))?;
            log::info!("counting cgroup {}", dir.display());
            self.slots[i] = Some(dir.clone());
        }
        Ok(())
    }
}
