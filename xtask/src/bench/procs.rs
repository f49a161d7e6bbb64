//! The processes a benchmark runs beside the traffic (monitors, iperf3) and what
//! is read from them (BPF program statistics, peak memory); stopped and cleaned up
//! on drop, so a failed measurement leaves nothing running.
use super::*;

/// What runs beside the traffic, once started.
pub(super) enum Active {
    Bare,
    Process(Running),
    Minimal(Attached),
}

impl Active {
    /// `(run_time_ns, run_cnt)` of the monitor's BPF programs.
    pub(super) fn prog_stats(&self) -> Result<(u64, u64)> {
        match self {
            Active::Bare => bail!("no programs run bare"),
            Active::Process(r) => prog_stats(r.child.id()),
            Active::Minimal(m) => m.stats(),
        }
    }
}

/// A monitor process; stopped with SIGINT like a user would.
pub(super) struct Running {
    pub(super) child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(super) fn stop(running: Active) -> Result<()> {
    let Active::Process(mut r) = running else {
        return Ok(());
    };
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if r.child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(2));
    }
    bail!("monitor did not exit within 5 s of SIGINT")
}

pub(super) struct IperfServer(Child);

impl IperfServer {
    pub(super) fn start() -> Result<Self> {
        let child = Command::new("iperf3")
            .args(["-s", "-p", PORT])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 -s")?;
        thread::sleep(Duration::from_millis(300));
        Ok(Self(child))
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One iperf3 run's result.
#[derive(Debug, Clone, Copy)]
pub(super) struct Iperf {
    /// Received throughput, bit/s.
    pub(super) bps: f64,
    /// Bytes received per CPU-second used by client and server together (iperf3's own
    /// getrusage figures, which include the time BPF programs run in their syscalls).
    /// When other work takes CPUs away, throughput falls but this barely moves.
    pub(super) bytes_per_cpu_s: f64,
}

pub(super) fn iperf(w: &Workload, secs: u64) -> Result<Iperf> {
    let out = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", PORT, "-A", "0,1", "-J", "-t"])
        .arg(secs.to_string())
        .args(w.iperf_args)
        .stdin(Stdio::null())
        .output()
        .context("running iperf3 -c")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "iperf3 printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = json.get("error") {
        bail!("iperf3: {e}");
    }
    let num = |path: &str| {
        json.pointer(path)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| anyhow!("iperf3 JSON has no {path}"))
    };
    let cpu_s = (num("/end/cpu_utilization_percent/host_total")?
        + num("/end/cpu_utilization_percent/remote_total")?)
        / 100.0
        * num("/end/sum_received/seconds")?;
    Ok(Iperf {
        bps: num("/end/sum_received/bits_per_second")?,
        bytes_per_cpu_s: num("/end/sum_received/bytes")? / cpu_s.max(1e-9),
    })
}

/// Sums `run_time_ns` and `run_cnt` of the BPF programs `pid` holds open (from
/// `/proc/<pid>/fdinfo`), leaving out perf-event programs (bpftrace's interval timer).
pub(super) fn prog_stats(pid: u32) -> Result<(u64, u64)> {
    const BPF_PROG_TYPE_PERF_EVENT: u64 = 7;
    let mut seen = Vec::new();
    let (mut time, mut count) = (0, 0);
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        let field = |name| fdinfo_field(&info, name);
        let (Some(id), Some(ty)) = (field("prog_id"), field("prog_type")) else {
            continue;
        };
        if ty == BPF_PROG_TYPE_PERF_EVENT || seen.contains(&id) {
            continue;
        }
        seen.push(id);
        time += field("run_time_ns").unwrap_or(0);
        count += field("run_cnt").unwrap_or(0);
    }
    if seen.is_empty() {
        bail!("process {pid} holds no BPF programs");
    }
    Ok((time, count))
}

/// Turns `kernel.bpf_stats_enabled` on, and back to what it was when dropped.
pub(super) struct BpfStats(String);

pub(super) const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub(super) fn enable() -> Result<Self> {
        let old = fs::read_to_string(BPF_STATS).context("reading kernel.bpf_stats_enabled")?;
        fs::write(BPF_STATS, "1").context("enabling kernel.bpf_stats_enabled")?;
        Ok(Self(old))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, self.0.trim());
    }
}

pub(super) fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/{pid}/status"))
}
