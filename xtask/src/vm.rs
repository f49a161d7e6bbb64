//! `cargo xtask vm-test`: flowtop's kernel matrix.
//!
//! From a fresh machine: installs each architecture's qemu (and cross linker and
//! Rust target) if missing, downloads Debian's cloud kernels and busybox-static with
//! `apt-get download` through a private apt state per series (see `vm/fetch.rs`;
//! cached under `target/vm/`), builds flowtop and the test binaries statically for
//! each architecture (see `vm/arch.rs`), packs them with busybox and an `/init`
//! script into an initramfs per architecture, and boots each kernel with QEMU
//! (software emulation: x86-64 and arm64 guests alike).
//! The guest runs the exactness scenarios once per probe family the kernel must
//! support, plus `--probe auto`, checks that the families it lacks fail cleanly, prints
//! `VMTEST ...` result lines and one verdict line, and powers off. The host enforces a
//! timeout per boot, kills QEMU on a kernel panic, judges every cell itself, prints a
//! kernel x family table and fails on any failure or missing verdict.
use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

mod arch;
mod cpio;
mod fetch;
mod report;

use arch::{Arch, AMD64, ARM64};
use report::KernelRun;

/// The guest's `/init` (see the script).
const INIT_SH: &str = include_str!("vm/init.sh");

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Only kernels whose label (5.10, 6.1, 6.12, 7.2, 6.1-arm64, 6.12-arm64) matches;
    /// repeatable. Default: all.
    #[arg(long = "kernel", value_name = "LABEL")]
    kernels: Vec<String>,
    /// Seconds one boot may take, scenarios included (TCG is slow) [default: per
    /// architecture, see vm/arch.rs].
    #[arg(long)]
    timeout: Option<u64>,
    /// Do not rebuild the binaries; use those already under target/.
    #[arg(long)]
    no_build: bool,
    /// Echo the whole serial console, not only the result lines.
    #[arg(short, long)]
    verbose: bool,
}

/// A Debian kernel series and what flowtop must do on it.
pub struct KernelSpec {
    pub label: &'static str,
    /// apt source lines without the component (`URI SUITE`): the suites the series
    /// comes from, read through a private apt state.
    sources: &'static [&'static str],
    /// The guest's architecture: the packages', QEMU's, the binaries'.
    arch: &'static Arch,
    /// Package name prefix and suffix around the ABI/patch number; the newest
    /// available package wins. The package holds the kernel image.
    prefix: &'static str,
    suffix: &'static str,
    /// `tar --wildcards` pattern of the kernel image inside the package.
    image_glob: &'static str,
    /// Families whose scenarios must pass.
    pub families: &'static [&'static str],
    /// Families that must fail cleanly.
    pub absent: &'static [&'static str],
    /// What `--probe auto` must pick.
    pub auto: &'static str,
    /// Families the kernel, as it boots, runs preemptible so that it skips their
    /// programs now and then (7.2: lazy preemption; fexit and kprobe programs):
    /// a scenario of theirs that is not exact passes only if flowtop reported the
    /// skipped calls. `--probe auto` must stay exact everywhere.
    pub preempted: &'static [&'static str],
    /// Whether `--probe auto` must be exact in the preemption check: false where no
    /// family always is (6.1: fentry skips calls, reported, kprobes lost some
    /// silently), and auto must then
    /// report like the family it chose.
    pub auto_exact_preempted: bool,
    /// Whether the kernel can switch to full preemption at run time
    /// (`CONFIG_PREEMPT_DYNAMIC`); the guest's preemption check needs it.
    pub preempt_dynamic: bool,
}

const BULLSEYE: &[&str] = &[
    "http://deb.debian.org/debian bullseye",
    "http://deb.debian.org/debian-security bullseye-security",
];
pub const BOOKWORM: &[&str] = &[
    "http://deb.debian.org/debian bookworm",
    "http://deb.debian.org/debian bookworm-updates",
    "http://deb.debian.org/debian-security bookworm-security",
];
const SID: &[&str] = &["http://deb.debian.org/debian sid"];
/// Debian's packages before 7.x keep the image in /boot (on arm64 an uncompressed
/// `Image` under the same name: arm64 kernels do not decompress themselves).
const BOOT_VMLINUZ: &str = "./boot/vmlinuz-*";

pub const KERNELS: [KernelSpec; 6] = [
    // Bullseye's kernel (Debian 11, like Amazon Linux 2's 5.10): no sock tracepoints,
    // no bpf_get_func_ret (fexit reads the return value from its context), no
    // lookup-and-delete on hash maps, built PREEMPT_VOLUNTARY without
    // PREEMPT_DYNAMIC. The `-unsigned` package is gone from the security pool; the
    // signed one boots the same way.
    KernelSpec {
        label: "5.10",
        sources: BULLSEYE,
        arch: &AMD64,
        prefix: "linux-image-5.10.0-",
        suffix: "-cloud-amd64",
        image_glob: BOOT_VMLINUZ,
        families: &["fentry", "kprobe"],
        absent: &["tracepoint"],
        auto: "fentry",
        preempted: &[],
        auto_exact_preempted: true,
        preempt_dynamic: false,
    },
    // Bookworm's kernel: no sock_{send,recv}_length tracepoints (6.3+), sendfile goes
    // through inet_sendpage.
    KernelSpec {
        label: "6.1",
        sources: BOOKWORM,
        arch: &AMD64,
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
        image_glob: BOOT_VMLINUZ,
        families: &["fentry", "kprobe"],
        absent: &["tracepoint"],
        auto: "fentry",
        preempted: &[],
        auto_exact_preempted: false,
        preempt_dynamic: true,
    },
    // Bookworm's backported kernel (Trixie's series): every family.
    KernelSpec {
        label: "6.12",
        sources: BOOKWORM,
        arch: &AMD64,
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-amd64-unsigned",
        image_glob: BOOT_VMLINUZ,
        families: &["tracepoint", "fentry", "kprobe"],
        absent: &[],
        auto: "tracepoint",
        preempted: &[],
        auto_exact_preempted: true,
        preempt_dynamic: true,
    },
    // Sid's kernel, the newest: every family. `linux-image-7.2.*` is a meta package
    // there; the image is in `linux-binary-*` under /usr/lib/modules/<release>/.
    // Built PREEMPT_DYNAMIC with PREEMPT_LAZY, and boots lazy (preempts kernel code):
    // tp_btf programs are skipped while preempted there (tracepoint callbacks run
    // under SRCU from 7.0 on), so flowtop loads the tracepoint family as the classic
    // program, which perf runs with preemption disabled: its scenarios and auto's
    // (the same program) must be exact, under full preemption too.
    KernelSpec {
        label: "7.2",
        sources: SID,
        arch: &AMD64,
        prefix: "linux-binary-7.2.",
        suffix: "+deb14-cloud-amd64",
        image_glob: "./usr/lib/modules/*/vmlinuz",
        families: &["tracepoint", "fentry", "kprobe"],
        absent: &[],
        auto: "tracepoint",
        // kprobe programs were skipped too, rarely (seen in the conn scenarios, while
        // flowtop's own map reads were preempted, a guess; not since those reads run
        // at SCHED_FIFO), reported as well.
        preempted: &["fentry", "kprobe"],
        auto_exact_preempted: true,
        preempt_dynamic: true,
    },
    // Bookworm's kernel on arm64: no sock tracepoints as on x86-64, and no fentry:
    // arm64 has BPF trampolines only from 6.4 (no DYNAMIC_FTRACE_WITH_DIRECT_CALLS),
    // so attaching fails with ENOTSUPP (524). Kprobes work. Debian builds its arm64
    // kernels PREEMPT_VOLUNTARY without PREEMPT_DYNAMIC (both configs, 6.1.0-57 and
    // 6.12.118, seen 2026-12-03: no /sys/kernel/debug/sched/preempt), so the
    // preemption check runs at the built-in voluntary preemption, as on 5.10.
    KernelSpec {
        label: "6.1-arm64",
        sources: BOOKWORM,
        arch: &ARM64,
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-arm64-unsigned",
        image_glob: BOOT_VMLINUZ,
        families: &["kprobe"],
        absent: &["tracepoint", "fentry"],
        auto: "kprobe",
        preempted: &[],
        auto_exact_preempted: true,
        preempt_dynamic: false,
    },
    // Bookworm's backported kernel on arm64: every family (BPF trampolines since
    // 6.4). PREEMPT_VOLUNTARY without PREEMPT_DYNAMIC, as 6.1-arm64.
    KernelSpec {
        label: "6.12-arm64",
        sources: BOOKWORM,
        arch: &ARM64,
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-arm64-unsigned",
        image_glob: BOOT_VMLINUZ,
        families: &["tracepoint", "fentry", "kprobe"],
        absent: &[],
        auto: "tracepoint",
        preempted: &[],
        auto_exact_preempted: true,
        preempt_dynamic: false,
    },
];

pub fn run(opts: &Options) -> Result<()> {
    let root = workspace_root()?;
    let vm_dir = root.join("target/vm");
    fs::create_dir_all(vm_dir.join("debs"))?;
    let specs: Vec<&KernelSpec> = KERNELS
        .iter()
        .filter(|k| opts.kernels.is_empty() || opts.kernels.iter().any(|l| l == k.label))
        .collect();
    if specs.is_empty() {
        let labels: Vec<&str> = KERNELS.iter().map(|k| k.label).collect();
        bail!(
            "no kernel matches --kernel {:?}; known: {}",
            opts.kernels,
            labels.join(", ")
        );
    }
    // The selected kernels' architectures, each once, in the matrix's order.
    let mut archs: Vec<&Arch> = Vec::new();
    for spec in &specs {
        if !archs.iter().any(|a| a.deb == spec.arch.deb) {
            archs.push(spec.arch);
        }
    }
    ensure_tools(&root, &archs)?;
    let mut kernels = Vec::new();
    for spec in &specs {
        kernels.push((spec, fetch::fetch_kernel(spec, &vm_dir)?));
    }
    let bins = if opts.no_build {
        archs
            .iter()
            .map(|a| existing_binaries(&root, a))
            .collect::<Result<Vec<_>>>()?
    } else {
        build_static(&root, &archs)?
    };
    let mut initrds = Vec::new();
    for (arch, bins) in archs.iter().zip(&bins) {
        let busybox = fetch::fetch_busybox(arch.deb, &vm_dir)?;
        let initrd = vm_dir.join(format!("initrd-{}.gz", arch.deb));
        build_initramfs(arch, &busybox, bins, &initrd)?;
        initrds.push((arch.deb, initrd));
    }

    let mut runs = Vec::new();
    for (spec, (package, vmlinuz)) in kernels {
        let timeout = opts.timeout.unwrap_or(spec.arch.timeout);
        eprintln!("xtask: booting {package} (timeout {timeout}s)");
        let log = vm_dir.join(format!("console-{}.log", spec.label));
        let (_, initrd) = initrds
            .iter()
            .find(|(deb, _)| *deb == spec.arch.deb)
            .expect("an initramfs per selected architecture");
        let started = Instant::now();
        let console = boot(&vmlinuz, initrd, spec, timeout, opts.verbose, &log)?;
        eprintln!(
            "xtask: {} finished in {:.0?}; console log: {}",
            spec.label,
            started.elapsed(),
            log.display()
        );
        runs.push(KernelRun::judge(spec, &package, &console));
    }
    let table = report::table(&runs);
    println!("{table}");
    fs::write(vm_dir.join("matrix.md"), &table)?;
    let failed: Vec<String> = runs.iter().flat_map(KernelRun::failures).collect();
    if failed.is_empty() {
        println!("vm-test: every cell passed");
        Ok(())
    } else {
        bail!("vm-test failed:\n  {}", failed.join("\n  "))
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Each architecture's qemu (and cross linker) and the Debian package tools, `apt-get
/// install`ed if missing (this needs root, like the tests themselves); each
/// architecture's Rust target, `rustup target add`ed if missing.
fn ensure_tools(root: &Path, archs: &[&Arch]) -> Result<()> {
    let installed = output(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(root),
    )?;
    for arch in archs {
        if !installed.lines().any(|t| t.trim() == arch.triple) {
            eprintln!("xtask: rustup target add {}", arch.triple);
            run_cmd(
                Command::new("rustup")
                    .args(["target", "add", arch.triple])
                    .current_dir(root),
            )?;
        }
    }
    let tools = archs.iter().flat_map(|a| a.host_tools.iter());
    let mut missing = Vec::new();
    for (cmd, package) in tools.chain(&[("gzip", "gzip"), ("dpkg-deb", "dpkg"), ("tar", "tar")]) {
        if !have(cmd) {
            missing.push(*package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run_cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The guest's programs: name in /bin -> path on the host.
type Binaries = Vec<(String, PathBuf)>;

/// The guest's programs, all required.
const GUEST_BINS: [&str; 3] = ["flowtop", "flowtop-scenarios", "trafficgen"];

/// Builds flowtop and the test binaries statically for every architecture in one
/// cargo run (the host's build scripts once, both targets sharing the cores): the
/// guest has no libc. Each target's flags go through its own
/// `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`, which reaches neither the host's build scripts
/// nor aya-build's nested eBPF build (which sets its own CARGO_ENCODED_RUSTFLAGS).
/// The binaries, in the order of `archs`.
fn build_static(root: &Path, archs: &[&Arch]) -> Result<Vec<Binaries>> {
    let triples: Vec<&str> = archs.iter().map(|a| a.triple).collect();
    eprintln!(
        "xtask: building static binaries (release, {})",
        triples.join(", ")
    );
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args(["build", "--release"]);
    for arch in archs {
        cmd.args(["--target", arch.triple]);
        if let Some(flags) = arch.rustflags {
            let var = arch.triple.to_uppercase().replace('-', "_");
            cmd.env(format!("CARGO_TARGET_{var}_RUSTFLAGS"), flags);
        }
    }
    cmd.args(["-p", "flowtop", "-p", "flowtop-tests", "--bins"])
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped());
    let out = cmd.output().context("running cargo build")?;
    if !out.status.success() {
        bail!("static build failed ({})", out.status);
    }
    let mut bins = vec![Binaries::new(); archs.len()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(exe) = msg.get("executable").and_then(|e| e.as_str()) {
            let path = PathBuf::from(exe);
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // `target/<triple>/release/<name>`: the triple says whose it is.
            let arch = archs
                .iter()
                .position(|a| path.components().any(|c| c.as_os_str() == a.triple));
            if let (true, Some(i)) = (GUEST_BINS.contains(&&*name), arch) {
                bins[i].push((name.into_owned(), path));
            }
        }
    }
    archs
        .iter()
        .zip(bins)
        .map(|(arch, bins)| check_binaries(arch, bins))
        .collect()
}

fn existing_binaries(root: &Path, arch: &Arch) -> Result<Binaries> {
    let dir = root.join("target").join(arch.triple).join("release");
    let bins = GUEST_BINS
        .iter()
        .map(|n| (n.to_string(), dir.join(n)))
        .filter(|(_, p)| p.exists())
        .collect();
    check_binaries(arch, bins)
}

fn check_binaries(arch: &Arch, bins: Binaries) -> Result<Binaries> {
    for name in GUEST_BINS {
        if !bins.iter().any(|(n, _)| n == name) {
            bail!("the build produced no {name} binary for {}", arch.triple);
        }
    }
    for (_, path) in &bins {
        check_elf(path, arch)?;
    }
    Ok(bins)
}

/// The guest runs a binary only if it is a 64-bit ELF of its architecture without a
/// PT_INTERP program header (a dynamic loader the guest lacks).
fn check_elf(path: &Path, arch: &Arch) -> Result<()> {
    let elf = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes")) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        bail!("{} is not a 64-bit ELF", path.display());
    }
    if u16_at(0x12) != usize::from(arch.elf_machine) {
        bail!(
            "{} is not an {} binary (e_machine {})",
            path.display(),
            arch.deb,
            u16_at(0x12)
        );
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    if (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) == PT_INTERP)
    }) {
        bail!("{} is not statically linked", path.display());
    }
    Ok(())
}

/// newc cpio, gzip-compressed: one architecture's busybox, /init and binaries.
fn build_initramfs(arch: &Arch, busybox: &Path, bins: &Binaries, out: &Path) -> Result<()> {
    let mut archive = cpio::Writer::default();
    for dir in [
        "bin", "dev", "proc", "sys", "tmp", "run", "etc", "root", "var",
    ] {
        archive.dir(dir);
    }
    archive.file("init", 0o755, INIT_SH.as_bytes());
    archive.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    archive.file("etc/group", 0o644, b"root:x:0:\n");
    check_elf(busybox, arch)?;
    let busybox = fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    archive.file("bin/busybox", 0o755, &busybox);
    archive.symlink("bin/sh", "busybox");
    for (name, path) in bins {
        let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        archive.file(&format!("bin/{name}"), 0o755, &data);
    }
    let raw = archive.finish();
    let mut gzip = Command::new("gzip")
        .args(["-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(fs::File::create(out)?)
        .spawn()
        .context("running gzip")?;
    gzip.stdin
        .take()
        .expect("piped")
        .write_all(&raw)
        .context("writing to gzip")?;
    if !gzip.wait()?.success() {
        bail!("gzip failed");
    }
    eprintln!(
        "xtask: initramfs {} ({} MiB uncompressed)",
        out.display(),
        raw.len() >> 20
    );
    Ok(())
}

/// What one boot printed, and how it ended.
pub struct Console {
    pub lines: Vec<String>,
    pub panicked: bool,
    pub timed_out: bool,
}

fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    spec: &KernelSpec,
    timeout: u64,
    verbose: bool,
    log: &Path,
) -> Result<Console> {
    let append = format!(
        "console={} quiet loglevel=3 panic=-1 ft_families={} ft_absent={} ft_auto={} \
         ft_preempt={} ft_auto_exact={}",
        spec.arch.console,
        spec.families.join(","),
        spec.absent.join(","),
        spec.auto,
        u8::from(spec.preempt_dynamic),
        u8::from(spec.auto_exact_preempted)
    );
    let mut child = Command::new(spec.arch.qemu)
        .args(["-accel", "tcg,thread=multi"])
        .args(spec.arch.machine)
        .args(["-smp", "2", "-m", "1024"])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", spec.arch.qemu))?;
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut logfile = fs::File::create(log)?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut console = Console {
        lines: Vec::new(),
        panicked: false,
        timed_out: false,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                writeln!(logfile, "{line}")?;
                if verbose || line.starts_with("VMTEST") {
                    eprintln!("  [{}] {line}", spec.label);
                }
                if line.contains("Kernel panic") || line.contains("soft lockup") {
                    eprintln!("  [{}] kernel panic: killing qemu", spec.label);
                    console.panicked = true;
                    console.lines.push(line);
                    break;
                }
                console.lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!(
                    "  [{}] no verdict after {}s: killing qemu",
                    spec.label, timeout
                );
                console.timed_out = true;
                break;
            }
            // Both pipes closed: qemu exited (poweroff -f with -no-reboot).
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(console)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is an x86-64 ELF linked dynamically (a host build): the
    /// initramfs must refuse it for arm64 guests by its machine, and for x86-64
    /// guests because the guest has no dynamic loader.
    #[test]
    fn check_elf_refuses_a_foreign_or_dynamic_binary() {
        let exe = std::env::current_exe().expect("test binary path");
        let arm = check_elf(&exe, &ARM64).expect_err("an x86-64 binary is not arm64");
        assert!(
            arm.to_string()
                .contains("is not an arm64 binary (e_machine 62)"),
            "{arm}"
        );
        let x86 = check_elf(&exe, &AMD64).expect_err("the test binary is dynamic");
        assert!(
            x86.to_string().contains("is not statically linked"),
            "{x86}"
        );
    }

    #[test]
    fn labels_are_unique_and_arm64_cells_boot_arm64() {
        for (i, k) in KERNELS.iter().enumerate() {
            assert!(
                KERNELS[..i].iter().all(|o| o.label != k.label),
                "{}",
                k.label
            );
            assert_eq!(
                k.label.ends_with("-arm64"),
                k.arch.deb == "arm64",
                "{}",
                k.label
            );
        }
    }
}
