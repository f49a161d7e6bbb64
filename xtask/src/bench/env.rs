//! What a benchmark needs from the machine: the flowtop binary, iperf3, tracefs,
//! and a description of the machine for the tables.
use super::*;

pub(super) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// The flowtop binary to measure: `--flowtop`, or a fresh release build.
pub(super) fn flowtop_binary(args: &BenchArgs) -> Result<PathBuf> {
    if let Some(p) = &args.flowtop {
        return Ok(p.clone());
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "flowtop"])
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running cargo build --release -p flowtop")?;
    if !status.success() {
        bail!("cargo build --release -p flowtop failed (run it to see why)");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/flowtop"))
}

pub(super) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(super) fn ensure_iperf3() -> Result<()> {
    if have("iperf3") {
        return Ok(());
    }
    eprintln!("installing iperf3 ...");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "iperf3"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !have("iperf3") {
        bail!("iperf3 is missing and apt-get could not install it");
    }
    Ok(())
}

/// bpftrace and classic tracepoints need tracefs.
pub(super) fn ensure_tracefs() {
    if let Err(e) = flowtop::dev::ensure_tracefs() {
        eprintln!("warning: {e}");
    }
}

pub(super) fn machine() -> String {
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    format!(
        "Machine: {nproc} CPUs ({cpu}), kernel {}, load average at start {}.",
        kernel.trim(),
        loadavg()
    )
}

pub(super) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
