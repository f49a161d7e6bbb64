//! What a cgroup path says about who runs there, by the names the runtimes give
//! their cgroups with either cgroup driver (systemd: `docker-<id>.scope`, cgroupfs:
//! `/docker/<id>`). Pure: no file is read here.
//!
//! The leaf is searched first, then its parents: a container's own sub-cgroups
//! (`libpod-<id>.scope/container`, `docker-<id>.scope/init.scope`) still belong to
//! the container.

/// Who made a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    CriO,
    /// A systemd unit that is not a container (`nginx.service`, `session-3.scope`).
    Systemd,
    /// None of the above: the root cgroup or one made by hand.
    Host,
}

impl Runtime {
    /// As the JSON key `runtime` and the table's RUNTIME column show it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Systemd => "systemd",
            Runtime::Host => "host",
        }
    }
}

/// What a cgroup path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathIdentity {
    pub runtime: Runtime,
    /// The runtime's full container id (containers only).
    pub id: Option<String>,
    /// The Kubernetes pod's uid, with `-` as the API shows it.
    pub pod_uid: Option<String>,
    /// The systemd unit (`Systemd` only).
    pub unit: Option<String>,
    /// The cgroup that stands for the container or unit: the path down to the
    /// component that named it (None for the host).
    pub cgroup: Option<String>,
}

impl PathIdentity {
    fn host() -> Self {
        Self {
            runtime: Runtime::Host,
            id: None,
            pod_uid: None,
            unit: None,
            cgroup: None,
        }
    }

    /// A container, not a unit or the host.
    pub fn is_container(&self) -> bool {
        self.id.is_some()
    }
}

/// Classifies a cgroup v2 (or v1) path as /proc/PID/cgroup shows it.
pub fn classify(path: &str) -> PathIdentity {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let upto = |i: usize| format!("/{}", parts[..=i].join("/"));
    let pod_uid = parts.iter().find_map(|p| pod_uid(p));
    for (i, part) in parts.iter().enumerate().rev() {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        if let Some((runtime, id)) = container(part, parent, pod_uid.is_some()) {
            // A Kubernetes pod's containers belong to its CRI runtime, whatever the
            // cgroupfs-driver leaf (a bare id) looks like.
            let runtime = match (runtime, &pod_uid) {
                (Runtime::Docker, Some(_)) if parent.is_some_and(is_pod_dir) => Runtime::Containerd,
                (r, _) => r,
            };
            return PathIdentity {
                runtime,
                id: Some(id.to_string()),
                pod_uid,
                unit: None,
                cgroup: Some(upto(i)),
            };
        }
    }
    let unit = parts.iter().rposition(|p| {
        [".service", ".scope", ".slice"]
            .iter()
            .any(|s| p.len() > s.len() && p.ends_with(s))
    });
    match unit {
        Some(i) => PathIdentity {
            runtime: Runtime::Systemd,
            unit: Some(parts[i].to_string()),
            cgroup: Some(upto(i)),
            ..PathIdentity::host()
        },
        None => PathIdentity::host(),
    }
}

/// A container's cgroup name: the runtime and the id in it.
fn container<'a>(part: &'a str, parent: Option<&str>, in_pod: bool) -> Option<(Runtime, &'a str)> {
    const SCOPES: [(&str, Runtime); 7] = [
        ("docker-", Runtime::Docker),
        ("libpod-conmon-", Runtime::Podman),
        ("libpod-", Runtime::Podman),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-conmon-", Runtime::CriO),
        ("crio-", Runtime::CriO),
        ("containerd-", Runtime::Containerd),
    ];
    for (prefix, runtime) in SCOPES {
        if let Some(rest) = part.strip_prefix(prefix) {
            let id = rest.strip_suffix(".scope").unwrap_or(rest);
            if is_id(id) {
                return Some((runtime, id));
            }
        }
    }
    // cgroupfs driver: the bare id under the runtime's parent or a pod's directory.
    if is_id(part) {
        return match parent {
            Some("docker") => Some((Runtime::Docker, part)),
            Some(p) if in_pod && is_pod_dir(p) => Some((Runtime::Docker, part)),
            _ => None,
        };
    }
    None
}

/// A container monitor's own cgroup (`libpod-conmon-<id>.scope`,
/// `crio-conmon-<id>.scope`): it carries the container's id but runs the monitor,
/// not the container.
pub fn is_monitor(part: &str) -> bool {
    ["libpod-conmon-", "crio-conmon-"]
        .iter()
        .any(|p| part.starts_with(p))
}

/// A pod's cgroup directory (`pod<uid>`, `kubepods-burstable-pod<uid>.slice`).
fn is_pod_dir(part: &str) -> bool {
    pod_uid(part).is_some()
}

/// The pod uid in `kubepods-besteffort-pod1234_abcd.slice` or `pod1234-abcd`.
fn pod_uid(part: &str) -> Option<String> {
    let raw = match part.strip_suffix(".slice") {
        Some(slice) if slice.starts_with("kubepods") => {
            slice.rsplit_once("-pod").map(|(_, uid)| uid)?
        }
        Some(_) => return None,
        None => part.strip_prefix("pod")?,
    };
    let uid = raw.replace('_', "-");
    let ok = uid.len() >= 32
        && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && uid.chars().filter(char::is_ascii_hexdigit).count() == 32;
    ok.then_some(uid)
}

/// A runtime's container id: 64 lowercase hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "916adfd5c3b1e0a2f4d6c8b0a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9";
    const UID: &str = "5e1a7c3b-2d4f-4a6b-8c9d-0e1f2a3b4c5d";

    fn container(path: &str) -> (Runtime, Option<String>, Option<String>) {
        let p = classify(path);
        (p.runtime, p.id, p.pod_uid)
    }

    #[test]
    fn docker_with_both_drivers() {
        let want = (Runtime::Docker, Some(ID.into()), None);
        assert_eq!(container(&format!("/system.slice/docker-{ID}.scope")), want);
        assert_eq!(container(&format!("/docker/{ID}")), want);
        // A sub-cgroup of the container (systemd inside it) is the container.
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope/init.scope")),
            want
        );
    }

    #[test]
    fn podman_with_both_drivers_and_its_monitor() {
        let want = (Runtime::Podman, Some(ID.into()), None);
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope")),
            want
        );
        assert_eq!(container(&format!("/libpod_parent/libpod-{ID}")), want);
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope/container")),
            want
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            want
        );
        assert_eq!(
            container(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            want
        );
    }

    #[test]
    fn kubernetes_containerd_with_both_drivers() {
        let uid_ = UID.replace('-', "_");
        let want = (Runtime::Containerd, Some(ID.into()), Some(UID.into()));
        assert_eq!(
            container(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
            )),
            want
        );
        // Guaranteed QoS: no QoS level in the path.
        assert_eq!(
            container(&format!(
                "/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"
            )),
            want
        );
        assert_eq!(
            container(&format!("/kubepods/besteffort/pod{UID}/{ID}")),
            want
        );
        assert_eq!(container(&format!("/kubepods/pod{UID}/{ID}")), want);
    }

    #[test]
    fn kubernetes_cri_o_with_both_drivers() {
        let uid_ = UID.replace('-', "_");
        let want = (Runtime::CriO, Some(ID.into()), Some(UID.into()));
        assert_eq!(
            container(&format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-{ID}.scope"
            )),
            want
        );
        assert_eq!(
            container(&format!("/kubepods/burstable/pod{UID}/crio-{ID}")),
            want
        );
        assert_eq!(
            container(&format!(
                "/kubepods.slice/kubepods-pod{uid_}.slice/crio-conmon-{ID}.scope"
            )),
            want
        );
    }

    #[test]
    fn a_pod_without_a_container_is_its_slice() {
        let uid_ = UID.replace('-', "_");
        let p = classify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice"
        ));
        assert_eq!(p.runtime, Runtime::Systemd);
        assert_eq!(p.id, None);
    }

    #[test]
    fn systemd_units_and_the_host() {
        let unit = |path: &str| {
            let p = classify(path);
            (p.runtime, p.unit, p.id)
        };
        assert_eq!(
            unit("/system.slice/nginx.service"),
            (Runtime::Systemd, Some("nginx.service".into()), None)
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/session-3.scope"),
            (Runtime::Systemd, Some("session-3.scope".into()), None)
        );
        assert_eq!(
            unit("/system.slice"),
            (Runtime::Systemd, Some("system.slice".into()), None)
        );
        assert_eq!(
            classify("/system.slice/nginx.service/worker")
                .cgroup
                .as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(
            classify(&format!("/system.slice/docker-{ID}.scope/init.scope")).cgroup,
            Some(format!("/system.slice/docker-{ID}.scope"))
        );
        for host in [
            "/",
            "",
            "/libpod_parent",
            "/my-test",
            "/docker",
            "/.scope",
            // Not 64 hex digits: not a container id.
            "/docker/abc",
            &format!("/other/{ID}"),
        ] {
            assert_eq!(unit(host), (Runtime::Host, None, None), "{host}");
        }
        assert!(!classify("/").is_container());
    }

    #[test]
    fn ids_are_64_lowercase_hex_digits() {
        assert!(is_id(ID));
        assert!(!is_id(&ID.to_uppercase()));
        assert!(!is_id(&ID[1..]));
        assert!(!is_id(&format!("{}x", &ID[1..])));
        assert_eq!(pod_uid("podnot-a-uid"), None);
        assert_eq!(pod_uid("kubepods-burstable.slice"), None);
        assert_eq!(pod_uid(&format!("pod{UID}")), Some(UID.into()));
    }

    #[test]
    fn monitors_are_told_apart() {
        assert!(is_monitor(&format!("libpod-conmon-{ID}.scope")));
        assert!(is_monitor(&format!("crio-conmon-{ID}.scope")));
        assert!(!is_monitor(&format!("libpod-{ID}.scope")));
        assert!(!is_monitor(&format!("crio-{ID}.scope")));
    }

    #[test]
    fn runtime_names() {
        assert_eq!(Runtime::CriO.name(), "cri-o");
        assert_eq!(Runtime::Host.name(), "host");
    }
}
