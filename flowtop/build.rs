//! Builds the eBPF object (flowtop-ebpf) with nightly + bpf-linker via aya-build and
//! leaves it in OUT_DIR, where main.rs embeds it: flowtop ships as one binary.
fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../flowtop-ebpf");
    println!("cargo:rerun-if-changed={root}/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "flowtop-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
