//! `--parts interactive`: what `flowtop -i` costs on screen. 1,000 forked processes
//! (named `ftbench-row`) each send one UDP datagram a second, so the screen has
//! 1,000 live rows that change every interval; flowtop runs in a detached tmux
//! terminal (`-i -c ftbench-row`, 1 s interval). Its CPU is its own user+system time
//! from /proc over the measured seconds; a keypress's latency is from `send-keys`
//! until `capture-pane` shows the change (tmux's own round trips included: an
//! upper bound). Budget (issue 15): under 2% of one CPU, under 50 ms.
use std::{
    fs,
    net::UdpSocket,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{env::have, stats::*};

const ROWS: usize = 1_000;
const NAME: &str = "ftbench-row";
const PRESSES: usize = 10;
/// A tmux server of the benchmark's own: no user's configuration or sessions.
const SOCKET: &str = "flowtop-bench";

pub fn run(flowtop: &std::path::Path, secs: u64) -> Result<()> {
    if !have("tmux") {
        bail!("the interactive part needs tmux (apt-get install tmux)");
    }
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let port = sink.local_addr()?.port();
    let children = Children::spawn(port)?;
    let session = format!("flowtop-bench-{}", std::process::id());
    let tmux = |args: &[&str]| -> Result<String> {
        let out = Command::new("tmux")
            .args(["-L", SOCKET])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let flowtop = flowtop.display().to_string();
    tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &flowtop,
        "-i",
        "-c",
        NAME,
    ])?;
    let _kill = KillSession(session.clone());
    let pid: u32 = tmux(&["display-message", "-p", "-t", &session, "#{pane_pid}"])?
        .trim()
        .parse()
        .context("pane pid")?;
    let screen = || tmux(&["capture-pane", "-p", "-t", &session]);
    let want = format!("{ROWS} processes");
    let start = Instant::now();
    while !screen()?.contains(&want) {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("flowtop -i never showed {want}:\n{}", screen()?);
        }
        thread::sleep(Duration::from_millis(200));
    }
    let (t0, c0) = (Instant::now(), cpu_ticks(pid)?);
    thread::sleep(Duration::from_secs(secs));
    let (wall, ticks) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid)? - c0);
    // SAFETY: no arguments.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu_pct = ticks as f64 / hz / wall * 100.0;
    // `s` cycles total, rx, tx, pid, comm; each press must show the next name.
    let sorts = ["rx", "tx", "pid", "comm", "total"];
    let mut ms = Vec::new();
    for i in 0..PRESSES {
        let want = format!("sort: {}", sorts[i % sorts.len()]);
        let t = Instant::now();
        tmux(&["send-keys", "-t", &session, "s"])?;
        while !screen()?.contains(&want) {
            if t.elapsed() > Duration::from_secs(5) {
                bail!("no {want} after a keypress:\n{}", screen()?);
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(children);
    println!(
        "## Interactive screen (-i)\n\n`flowtop -i` in a 120x40 tmux terminal, {ROWS} live \
         rows (processes sending a datagram a second), 1 s interval. CPU over {secs} s \
         of flowtop's user+system time; keypress: `send-keys s` until `capture-pane` \
         shows the new sort key, {PRESSES} presses (tmux round trips included). \
         Budget: under 2% of one CPU, under 50 ms.\n"
    );
    println!("| live rows | CPU, % of one CPU | keypress median ms | keypress max ms |\n|---|---|---|---|");
    println!(
        "| {ROWS} | {cpu_pct:.2} | {:.1} | {:.1} |\n",
        median(&ms),
        max(&ms)
    );
    Ok(())
}

/// user+system clock ticks of `pid` (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The name (field 2) may hold spaces: count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

struct KillSession(String);

impl Drop for KillSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", SOCKET, "kill-session", "-t", &self.0])
            .status();
    }
}

/// The forked senders; killed and reaped on drop (and killed if this process dies).
struct Children(Vec<libc::pid_t>);

impl Children {
    fn spawn(port: u16) -> Result<Self> {
        let name = std::ffi::CString::new(NAME)?;
        // SAFETY: plain structs filled before fork; the children only make syscalls
        // (async-signal-safe) and never return.
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut pids = Vec::with_capacity(ROWS);
        for _ in 0..ROWS {
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                let me = Self(pids);
                drop(me);
                bail!("fork: {}", std::io::Error::last_os_error());
            }
            if pid == 0 {
                unsafe { sender(&name, &addr) }
            }
            pids.push(pid);
        }
        Ok(Self(pids))
    }
}

/// A child: named `NAME`, one byte to `addr` every second until killed.
unsafe fn sender(name: &std::ffi::CStr, addr: &libc::sockaddr_in) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let second = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        loop {
            libc::sendto(
                fd,
                b"x".as_ptr().cast(),
                1,
                0,
                (addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            libc::nanosleep(&second, std::ptr::null_mut());
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in &self.0 {
            // SAFETY: reaping our own children.
            unsafe {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}
