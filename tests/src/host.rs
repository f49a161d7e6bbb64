//! What the machine must provide for the end-to-end tests (root, loopback, tools):
//! each check fails loudly, naming what is missing, so that no test passes by doing
//! nothing.
use std::path::PathBuf;

use anyhow::{bail, ensure, Result};

/// The tests load eBPF programs: without root they must fail, loudly, not skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "flowtop's end-to-end tests load eBPF programs and must run as root (euid is {euid})"
    );
}

/// Brings the loopback interface up (as `ip link set lo up` would), for fresh VM
/// guests and network namespaces. The kernel adds 127.0.0.1 and ::1 by itself.
pub fn ensure_loopback_up() -> Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        ensure!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        let result = (|| {
            if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) != 0 {
                bail!("SIOCGIFFLAGS lo: {}", std::io::Error::last_os_error());
            }
            let flags = req.ifr_ifru.ifru_flags;
            if flags & libc::IFF_UP as libc::c_short == 0 {
                req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
                if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut req) != 0 {
                    bail!("SIOCSIFFLAGS lo up: {}", std::io::Error::last_os_error());
                }
            }
            Ok(())
        })();
        libc::close(fd);
        result
    }
}

/// The path of `tool` on PATH; panics naming the tool and the Debian package that
/// `scripts/setup.sh test` installs it from, so a test that needs it fails instead
/// of passing without having run.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|f| f.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{tool} is needed for this test and is not on PATH ({}): install the \
                 Debian package {package} (`scripts/setup.sh test` does)",
                path.to_string_lossy()
            )
        })
}
