//! The guest architectures of the VM matrix: which QEMU emulates each and how, which
//! Rust target builds the guest's static binaries, and what the host needs for both.
//! A kernel spec names its architecture; everything per architecture lives here so
//! that adding one is one more constant.

/// One guest architecture.
pub struct Arch {
    /// Debian's name: the kernel and busybox packages are fetched for it, and it
    /// names the architecture's initramfs.
    pub deb: &'static str,
    /// Rust target of the guest's static binaries (flowtop, the scenario runner,
    /// trafficgen). aya-build builds the eBPF object for the same target's
    /// architecture (`bpf_target_arch`), which kprobe programs need: `pt_regs`
    /// differs per architecture.
    pub triple: &'static str,
    /// Rust flags for that target only (`CARGO_TARGET_<TRIPLE>_RUSTFLAGS`): they
    /// must reach neither the host's build scripts nor aya-build's eBPF build.
    pub rustflags: Option<&'static str>,
    /// ELF `e_machine` of the target's binaries: the initramfs takes no binary of
    /// another architecture.
    pub elf_machine: u16,
    /// QEMU's system emulator, and the arguments that choose machine and CPU.
    pub qemu: &'static str,
    pub machine: &'static [&'static str],
    /// The serial console the guest's result lines come out of.
    pub console: &'static str,
    /// (command, Debian package) the host needs for this architecture: the
    /// emulator, and a cross linker where the target needs one.
    pub host_tools: &'static [(&'static str, &'static str)],
    /// Default seconds one boot may take, scenarios included.
    pub timeout: u64,
}

pub const AMD64: Arch = Arch {
    deb: "amd64",
    // glibc with `+crt-static`, as the matrix has always built its x86-64 guests.
    triple: "x86_64-unknown-linux-gnu",
    rustflags: Some("-C target-feature=+crt-static"),
    elf_machine: 62, // EM_X86_64
    qemu: "qemu-system-x86_64",
    machine: &["-cpu", "max"],
    console: "ttyS0",
    host_tools: &[("qemu-system-x86_64", "qemu-system-x86")],
    timeout: 900,
};

pub const ARM64: Arch = Arch {
    deb: "arm64",
    // musl, static by default: the release's aarch64 target (`cargo xtask dist`, same
    // build directory and flags, linked by Debian's cross gcc per .cargo/config.toml),
    // so the guests run what arm64 users get.
    triple: "aarch64-unknown-linux-musl",
    rustflags: None,
    elf_machine: 183, // EM_AARCH64
    qemu: "qemu-system-aarch64",
    // `virt` with a PL011 serial port (ttyAMA0); pauth-impdef: pointer
    // authentication with QEMU's cheap hash instead of emulated QARMA, which makes
    // every kernel function entry and return much slower under TCG.
    machine: &["-M", "virt", "-cpu", "max,pauth-impdef=on"],
    console: "ttyAMA0",
    host_tools: &[
        ("qemu-system-aarch64", "qemu-system-arm"),
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ],
    timeout: 900,
};
