//! Names a user gave a container, from the runtimes' own files under the host root
//! (`--host-root`): no daemon is asked, no program is run, so this works in a
//! minimal container with the host's `/` mounted and on a node whose runtime hangs.
//!
//! - docker: `var/lib/docker/containers/<id>/config.v2.json`, key `Name` (`/web`).
//! - podman: `var/lib/containers/storage/<driver>-containers/containers.json` (the
//!   store of each storage driver), the entry whose `id` matches, first of `names`.
//! - Kubernetes (any CRI runtime): the kubelet's log layout,
//!   `var/log/containers/<pod>_<namespace>_<container>-<id>.log` for a container,
//!   `var/log/pods/<namespace>_<pod>_<uid>/` for a pod (its sandbox has no log).
//!
//! A file that is missing, unreadable or malformed gives no name (None), never an
//! error: the row still has the id and the runtime.
use std::{fs, path::Path};

use serde_json::Value;

use super::path::{PathIdentity, Runtime};

/// Where podman keeps its container store when run as root (Debian's default
/// `graphroot` in /etc/containers/storage.conf), with the overlay driver.
pub const PODMAN_STORE: &str = "var/lib/containers/storage/overlay-containers/containers.json";
/// The stores of the other storage drivers: podman falls back to vfs where overlay
/// is not supported (e.g. podman in a container), and the store's directory is
/// named after the driver.
pub const PODMAN_OTHER_STORES: [&str; 3] = [
    "var/lib/containers/storage/vfs-containers/containers.json",
    "var/lib/containers/storage/btrfs-containers/containers.json",
    "var/lib/containers/storage/zfs-containers/containers.json",
];
pub const DOCKER_CONTAINERS: &str = "var/lib/docker/containers";
pub const KUBELET_CONTAINER_LOGS: &str = "var/log/containers";
pub const KUBELET_POD_LOGS: &str = "var/log/pods";

/// What the runtime files say about one container or pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub container: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

/// The names of what `who` identifies, read from under `root`.
pub fn resolve(root: &Path, who: &PathIdentity) -> Names {
    let mut names = Names::default();
    if let Some(id) = &who.id {
        names.container = match who.runtime {
            Runtime::Docker => docker_name(root, id),
            Runtime::Podman => podman_name(root, id),
            _ => None,
        };
        if who.pod_uid.is_some() {
            if let Some((pod, ns, container)) = kubelet_container(root, id) {
                names = Names {
                    container: Some(container),
                    pod: Some(pod),
                    namespace: Some(ns),
                };
            }
        }
    }
    if let (Some(uid), None) = (&who.pod_uid, &names.pod) {
        if let Some((ns, pod)) = kubelet_pod(root, uid) {
            (names.namespace, names.pod) = (Some(ns), Some(pod));
        }
    }
    names
}

/// docker's name for `id`, without the leading `/`.
pub fn docker_name(root: &Path, id: &str) -> Option<String> {
    let text =
        fs::read_to_string(root.join(DOCKER_CONTAINERS).join(id).join("config.v2.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// podman's first name for `id` in the container store of any storage driver.
pub fn podman_name(root: &Path, id: &str) -> Option<String> {
    std::iter::once(PODMAN_STORE)
        .chain(PODMAN_OTHER_STORES)
        .find_map(|store| podman_name_in(&root.join(store), id))
}

fn podman_name_in(store: &Path, id: &str) -> Option<String> {
    let text = fs::read_to_string(store).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?
        .get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

/// `(pod, namespace, container)` from the kubelet's `var/log/containers` link
/// for container `id`.
pub fn kubelet_container(root: &Path, id: &str) -> Option<(String, String, String)> {
    let suffix = format!("-{id}.log");
    fs::read_dir(root.join(KUBELET_CONTAINER_LOGS))
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let head = name.strip_suffix(&suffix)?;
            let mut f = head.splitn(3, '_');
            let (pod, ns, container) = (f.next()?, f.next()?, f.next()?);
            [pod, ns, container]
                .iter()
                .all(|s| !s.is_empty())
                .then(|| (pod.into(), ns.into(), container.into()))
        })
}

/// `(namespace, pod)` from the kubelet's `var/log/pods/<ns>_<pod>_<uid>` directory.
pub fn kubelet_pod(root: &Path, uid: &str) -> Option<(String, String)> {
    let suffix = format!("_{uid}");
    fs::read_dir(root.join(KUBELET_POD_LOGS))
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (ns, pod) = name.strip_suffix(&suffix)?.split_once('_')?;
            (!ns.is_empty() && !pod.is_empty()).then(|| (ns.into(), pod.into()))
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::container::path::classify;

    const ID: &str = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";
    const UID: &str = "5e1a7c3b-2d4f-4a6b-8c9d-0e1f2a3b4c5d";

    /// A fresh host root under the temp directory, removed on drop.
    struct Root(PathBuf);

    impl Root {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("flowtop-names-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn docker_name_from_config_v2() {
        let root = Root::new("docker");
        let cfg = format!("{DOCKER_CONTAINERS}/{ID}/config.v2.json");
        root.write(&cfg, r#"{"ID":"x","Name":"/web","Config":{}}"#);
        let who = classify(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(resolve(&root.0, &who).container.as_deref(), Some("web"));
        for bad in ["", "{", "[]", r#"{"Name":7}"#, r#"{"Name":"/"}"#] {
            root.write(&cfg, bad);
            assert_eq!(resolve(&root.0, &who), Names::default(), "{bad:?}");
        }
    }

    #[test]
    fn podman_name_from_the_container_store() {
        let root = Root::new("podman");
        root.write(
            PODMAN_STORE,
            &format!(
                r#"[{{"id":"other","names":["x"]}},{{"id":"{ID}","names":["db","alias"],"image":"i"}}]"#
            ),
        );
        let who = classify(&format!("/libpod_parent/libpod-{ID}"));
        assert_eq!(resolve(&root.0, &who).container.as_deref(), Some("db"));
        for bad in ["", "{}", "[{", &format!(r#"[{{"id":"{ID}","names":[]}}]"#)] {
            root.write(PODMAN_STORE, bad);
            assert_eq!(resolve(&root.0, &who).container, None, "{bad:?}");
        }
        // The vfs driver's store (podman where overlay is not supported).
        let vfs = Root::new("podman-vfs");
        vfs.write(
            PODMAN_OTHER_STORES[0],
            &format!(r#"[{{"id":"{ID}","names":["cache"]}}]"#),
        );
        assert_eq!(resolve(&vfs.0, &who).container.as_deref(), Some("cache"));
    }

    #[test]
    fn kubernetes_names_from_the_kubelet_logs() {
        let root = Root::new("k8s");
        root.write(
            &format!("{KUBELET_CONTAINER_LOGS}/web-7d9f_shop_nginx-{ID}.log"),
            "",
        );
        root.write(
            &format!(
                "{KUBELET_CONTAINER_LOGS}/other_shop_nginx-{}.log",
                &ID[..63]
            ),
            "",
        );
        root.write(
            &format!("{KUBELET_POD_LOGS}/shop_web-7d9f_{UID}/nginx/0.log"),
            "",
        );
        let uid_ = UID.replace('-', "_");
        let who = classify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
        ));
        let want = Names {
            container: Some("nginx".into()),
            pod: Some("web-7d9f".into()),
            namespace: Some("shop".into()),
        };
        assert_eq!(resolve(&root.0, &who), want);
        // The pod's sandbox (pause) has no log: the pod is named, the container not.
        let pause = "a".repeat(64);
        let who = classify(&format!("/kubepods/burstable/pod{UID}/crio-{pause}"));
        assert_eq!(
            resolve(&root.0, &who),
            Names {
                container: None,
                ..want
            }
        );
    }

    #[test]
    fn nothing_there_gives_no_names_and_no_error() {
        let root = Path::new("/nonexistent-flowtop-root");
        for path in [
            format!("/docker/{ID}"),
            format!("/libpod_parent/libpod-{ID}"),
            format!("/kubepods/pod{UID}/{ID}"),
            "/system.slice/nginx.service".into(),
            "/".into(),
        ] {
            assert_eq!(resolve(root, &classify(&path)), Names::default(), "{path}");
        }
    }
}
