#!/usr/bin/env bash
# Sets up (if needed) and runs every test: formatting and lints, unit tests, the
# integration tests against this machine's kernel (needs root), the churn soak, and
# the kernel matrix in VMs (Debian kernels 5.10 to 7.2 on x86-64, 6.1 and 6.12 on arm64,
# under qemu).
# FLOWTOP_SKIP_VM=1 skips the VM matrix (for quick local runs; CI always runs it).
# FLOWTOP_SKIP_RELEASE=1 skips the release artefacts' check (`cargo xtask
# release-test`: the static musl builds for x86_64 and aarch64 in one cargo run,
# the .deb installed and removed, the image run as the DaemonSet runs it under
# Prometheus; about 5-6 min on a cold 2-core run, 1 min warm: docs/packaging.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
quiet() { grep -v '^warning: flowtop@' || true; }

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --exclude flowtop-ebpf --all-targets -- -D warnings 2>&1 | quiet
echo "== build" >&2
cargo build --release -p flowtop 2>&1 | quiet
export FLOWTOP_BIN="$PWD/target/release/flowtop"
echo "== cargo test (unit + integration on $(uname -r))" >&2
cargo test --release 2>&1 | quiet
echo "== soak: 50,000 short-lived processes against a small map" >&2
cargo xtask soak --flowtop "$FLOWTOP_BIN"
echo "== soak, starved: unpaced, flowtop at nice 19 beside two busy loops, --max-entries 1024" >&2
cargo xtask soak --starved --flowtop "$FLOWTOP_BIN"
if [ "${FLOWTOP_SKIP_RELEASE:-0}" != 1 ]; then
  echo "== release artefacts: static binary, .deb, image + Prometheus, manifests" >&2
  scripts/setup.sh dist
  # Its host processes run the trafficgen `cargo test` built (no rebuild).
  FLOWTOP_TRAFFICGEN="$PWD/target/release/trafficgen" cargo xtask release-test 2>&1 | quiet
  deploy/kubernetes/validate.sh
fi
if [ "${FLOWTOP_SKIP_VM:-0}" != 1 ]; then
  echo "== kernel matrix in VMs" >&2
  cargo xtask vm-test
fi
