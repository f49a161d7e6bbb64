//! `cargo xtask vm-test`: flowtop's kernel matrix.
//!
//! From a fresh machine: installs qemu and busybox-static if missing, downloads
//! Debian's cloud kernels with `apt-get download` through a private apt state per
//! series (see `vm/fetch.rs`; cached under `target/vm/`), builds
//! flowtop and the test binaries statically, packs them with busybox and an `/init`
//! script into an initramfs, and boots each kernel with QEMU (software emulation).
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

mod cpio;
mod fetch;
mod report;

use report::KernelRun;

/// The guest's `/init` (see the script).
const INIT_SH: &str = include_str!("vm/init.sh");

/// Static binaries go to their own target directory: a `--target` build with
/// `+crt-static` must not invalidate the host's dynamic builds.
const TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Only kernels whose label (5.10, 6.1, 6.12, 7.2) matches; repeatable. Default: all.
    #[arg(long = "kernel", value_name = "LABEL")]
    kernels: Vec<String>,
    /// Seconds one boot may take, scenarios included (TCG is slow).
    #[arg(long, default_value_t = 900)]
    timeout: u64,
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
    /// Debian architecture of the packages.
    arch: &'static str,
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
    /// programs now and then (7.2: lazy preemption; fexit and tracepoint programs):
    /// a scenario of theirs that is not exact passes only if flowtop reported the
    /// skipped calls. `--probe auto` must stay exact everywhere.
    pub preempted: &'static [&'static str],
    /// Whether `--probe auto` must be exact in the preemption check: false where no
    /// family always is (6.1: fentry skips calls, reported, kprobes lost some
    /// silently; 7.2: every family had calls skipped, reported), and auto must then
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
const BOOKWORM: &[&str] = &[
    "http://deb.debian.org/debian bookworm",
    "http://deb.debian.org/debian bookworm-updates",
    "http://deb.debian.org/debian-security bookworm-security",
];
const SID: &[&str] = &["http://deb.debian.org/debian sid"];
/// Debian's x86-64 packages before 7.x keep the image in /boot.
const BOOT_VMLINUZ: &str = "./boot/vmlinuz-*";

pub const KERNELS: [KernelSpec; 4] = [
    // Bullseye's kernel (Debian 11, like Amazon Linux 2's 5.10): no sock tracepoints,
    // no bpf_get_func_ret (fexit reads the return value from its context), no
    // lookup-and-delete on hash maps, built PREEMPT_VOLUNTARY without
    // PREEMPT_DYNAMIC. The `-unsigned` package is gone from the security pool; the
    // signed one boots the same way.
    KernelSpec {
        label: "5.10",
        sources: BULLSEYE,
        arch: "amd64",
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
        arch: "amd64",
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
        arch: "amd64",
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
    // tracepoint programs are skipped while preempted there, so auto picks kprobes,
    // which were exact under full preemption with 16 threads.
    KernelSpec {
        label: "7.2",
        sources: SID,
        arch: "amd64",
        prefix: "linux-binary-7.2.",
        suffix: "+deb14-cloud-amd64",
        image_glob: "./usr/lib/modules/*/vmlinuz",
        families: &["tracepoint", "fentry", "kprobe"],
        absent: &[],
        auto: "kprobe",
        // kprobe programs are skipped too, rarely (seen in the conn scenarios, while
        // flowtop's own map reads were preempted, a guess), reported as well.
        preempted: &["tracepoint", "fentry", "kprobe", "auto"],
        auto_exact_preempted: false,
        preempt_dynamic: true,
    },
];

pub fn run(opts: &Options) -> Result<()> {
    let root = workspace_root()?;
    let vm_dir = root.join("target/vm");
    fs::create_dir_all(vm_dir.join("debs"))?;
    ensure_tools()?;
    let specs: Vec<&KernelSpec> = KERNELS
        .iter()
        .filter(|k| opts.kernels.is_empty() || opts.kernels.iter().any(|l| l == k.label))
        .collect();
    if specs.is_empty() {
        bail!("no kernel matches --kernel {:?}", opts.kernels);
    }
    let mut kernels = Vec::new();
    for spec in &specs {
        kernels.push((spec, fetch::fetch_kernel(spec, &vm_dir)?));
    }
    let bins = if opts.no_build {
        existing_binaries(&root)?
    } else {
        build_static(&root)?
    };
    let initrd = vm_dir.join("initrd.gz");
    build_initramfs(&bins, &initrd)?;

    let mut runs = Vec::new();
    for (spec, (package, vmlinuz)) in kernels {
        eprintln!("xtask: booting {package} (timeout {}s)", opts.timeout);
        let log = vm_dir.join(format!("console-{}.log", spec.label));
        let started = Instant::now();
        let console = boot(&vmlinuz, &initrd, spec, opts, &log)?;
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

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("install ok installed"))
}

/// qemu, a static busybox and the Debian package tools; `apt-get install` what is
/// missing (this needs root, like the tests themselves).
fn ensure_tools() -> Result<()> {
    let mut missing = Vec::new();
    if !have("qemu-system-x86_64") {
        missing.push("qemu-system-x86");
    }
    if !installed("busybox-static") {
        missing.push("busybox-static");
    }
    for (cmd, package) in [("gzip", "gzip"), ("dpkg-deb", "dpkg"), ("tar", "tar")] {
        if !have(cmd) {
            missing.push(package);
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

/// Builds flowtop and the test binaries statically (glibc, `+crt-static`): the guest
/// has no libc. aya-build's nested eBPF build sets its own CARGO_ENCODED_RUSTFLAGS,
/// which take precedence over RUSTFLAGS, so the flag does not reach it.
fn build_static(root: &Path) -> Result<Binaries> {
    eprintln!("xtask: building static binaries (release, {TARGET})");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET])
        .args(["-p", "flowtop", "-p", "flowtop-tests", "--bins"])
        .args(["--message-format", "json-render-diagnostics"])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdout(Stdio::piped());
    let out = cmd.output().context("running cargo build")?;
    if !out.status.success() {
        bail!("static build failed ({})", out.status);
    }
    let mut bins = Binaries::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(exe) = msg.get("executable").and_then(|e| e.as_str()) {
            let path = PathBuf::from(exe);
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if GUEST_BINS.contains(&&*name) {
                bins.push((name.into_owned(), path));
            }
        }
    }
    check_binaries(bins)
}

fn existing_binaries(root: &Path) -> Result<Binaries> {
    let dir = root.join("target").join(TARGET).join("release");
    let bins = GUEST_BINS
        .iter()
        .map(|n| (n.to_string(), dir.join(n)))
        .filter(|(_, p)| p.exists())
        .collect();
    check_binaries(bins)
}

fn check_binaries(bins: Binaries) -> Result<Binaries> {
    for name in GUEST_BINS {
        if !bins.iter().any(|(n, _)| n == name) {
            bail!("the build produced no {name} binary");
        }
    }
    for (name, path) in &bins {
        if is_dynamic(path)? {
            bail!("{name} ({}) is not statically linked", path.display());
        }
    }
    Ok(bins)
}

/// An ELF with a PT_INTERP program header needs a dynamic loader the guest lacks.
fn is_dynamic(path: &Path) -> Result<bool> {
    let elf = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes")) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        bail!("{} is not a 64-bit ELF", path.display());
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    Ok((0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) == PT_INTERP)
    }))
}

/// newc cpio, gzip-compressed: busybox, /init and the binaries.
fn build_initramfs(bins: &Binaries, out: &Path) -> Result<()> {
    let mut archive = cpio::Writer::default();
    for dir in [
        "bin", "dev", "proc", "sys", "tmp", "run", "etc", "root", "var",
    ] {
        archive.dir(dir);
    }
    archive.file("init", 0o755, INIT_SH.as_bytes());
    archive.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    archive.file("etc/group", 0o644, b"root:x:0:\n");
    let busybox = fs::read("/bin/busybox").context("reading /bin/busybox")?;
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
    opts: &Options,
    log: &Path,
) -> Result<Console> {
    let append = format!(
        "console=ttyS0 quiet loglevel=3 panic=-1 ft_families={} ft_absent={} ft_auto={} \
         ft_preempt={} ft_auto_exact={}",
        spec.families.join(","),
        spec.absent.join(","),
        spec.auto,
        u8::from(spec.preempt_dynamic),
        u8::from(spec.auto_exact_preempted)
    );
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-m",
            "1024",
        ])
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
        .context("starting qemu-system-x86_64")?;
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
    let deadline = Instant::now() + Duration::from_secs(opts.timeout);
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
                if opts.verbose || line.starts_with("VMTEST") {
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
                    spec.label, opts.timeout
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
