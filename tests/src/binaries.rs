//! Where the binaries under test are: flowtop (built by `cargo build -p flowtop`) and
//! trafficgen (built by cargo with this crate). A missing binary is a panic that says
//! how to build it, never a skipped test.
use std::{
    env,
    path::{Path, PathBuf},
};

/// `FLOWTOP_BIN`, else `<workspace>/target/release/flowtop`, else
/// `<workspace>/target/debug/flowtop` (`CARGO_TARGET_DIR` replaces `<workspace>/target`).
/// Panics with what to do when none exists.
pub fn find_flowtop() -> PathBuf {
    if let Some(p) = env::var_os("FLOWTOP_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FLOWTOP_BIN={} does not exist; build it with `cargo build -p flowtop`",
            p.display()
        );
        return p;
    }
    let target = target_dir();
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("flowtop");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "flowtop binary not found in {}/{{release,debug}}/flowtop and FLOWTOP_BIN is unset: \
         run `cargo build -p flowtop` first (these tests run the real binary)",
        target.display()
    );
}

fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ lives in the workspace")
            .join("target"),
    }
}

/// `FLOWTOP_TRAFFICGEN`, else `built` (cargo's `CARGO_BIN_EXE_trafficgen` in
/// integration tests), else `trafficgen` next to the running executable or one
/// directory up (integration tests run from `target/<profile>/deps`).
pub fn find_trafficgen(built: Option<&str>) -> PathBuf {
    if let Some(p) = env::var_os("FLOWTOP_TRAFFICGEN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FLOWTOP_TRAFFICGEN={} does not exist",
            p.display()
        );
        return p;
    }
    if let Some(p) = built.map(PathBuf::from).filter(|p| p.is_file()) {
        return p;
    }
    let exe = env::current_exe().expect("current executable");
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join("trafficgen");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "trafficgen not found next to {} and FLOWTOP_TRAFFICGEN is unset: \
         run `cargo build -p flowtop-tests --bins`",
        exe.display()
    );
}
