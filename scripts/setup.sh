#!/usr/bin/env bash
# Installs what building and testing flowtop needs on a Debian machine, and nothing
# that is already there (quick on a second run).
#   scripts/setup.sh            build deps: the pinned stable and nightly (rust-src),
#                               bpf-linker (+ LLVM 22 to build it)
#   scripts/setup.sh test       + what the tests need (qemu for x86-64 and arm64 guests,
#                               busybox-static, the Debian archive keyring for the VM kernels'
#                               private apt state, the aarch64 musl target and cross linker for
#                               the arm64 guests' binaries, cpio, tmux, setpriv, prometheus,
#                               podman + runc, setcap)
#   scripts/setup.sh bench      + what the benchmarks need (iperf3, bpftrace, bpftool)
#   scripts/setup.sh dist       + what `cargo xtask dist|image|release-test` need: the
#                               musl targets, the aarch64 cross linker and strip,
#                               qemu-user (the aarch64 binary's --version), podman +
#                               runc, prometheus, and kubernetes-validate (PyPI) in
#                               /opt/flowtop-venv for deploy/kubernetes
#   scripts/setup.sh docs       build deps, then install flowtop's man page and shell
#                               completions under /usr/local
set -euo pipefail

what=${1:-build}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

packages=(llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev libc6-dev gcc)
case "$what" in
  build|docs) ;;
  test) packages+=(qemu-system-x86 qemu-system-arm gcc-aarch64-linux-gnu busybox-static debian-archive-keyring cpio tmux util-linux iproute2 prometheus podman runc libcap2-bin) ;;
  dist) packages+=(gcc-aarch64-linux-gnu binutils dpkg-dev qemu-user-static podman runc systemd prometheus libcap2-bin python3-venv) ;;
  bench) packages+=(qemu-system-x86 busybox-static cpio tmux util-linux iproute2 python3 iperf3 bpftrace bpftool) ;;
  *) echo "usage: $0 [build|test|bench|docs|dist]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The toolchains are pinned so that every machine compiles the same code: stable in
# rust-toolchain.toml (userspace), a dated nightly in flowtop/build.rs (the eBPF object,
# -Z build-std=core needs rust-src). That nightly's LLVM (22) must be the one bpf-linker
# is built against: a nightly on LLVM 23 writes bitcode bpf-linker cannot read.
root=$(cd "$(dirname "$0")/.." && pwd)
stable=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$root/rust-toolchain.toml")
nightly=$(sed -n 's/^const EBPF_NIGHTLY: &str = "\(.*\)";/\1/p' "$root/flowtop/build.rs")
if ! rustup component list --installed --toolchain "$stable" 2>/dev/null | grep -q '^clippy'; then
  echo "setup: installing Rust $stable (rustfmt, clippy)" >&2
  rustup toolchain install "$stable" --profile minimal -c rustfmt -c clippy
fi
if ! rustup component list --installed --toolchain "$nightly" 2>/dev/null | grep -q '^rust-src'; then
  echo "setup: installing Rust $nightly with rust-src (eBPF build)" >&2
  rustup toolchain install "$nightly" --profile minimal -c rust-src
fi

# bpf-linker links the eBPF object; built against the system's LLVM 22.
if [ "$(bpf-linker --version 2>/dev/null)" != "bpf-linker 0.13.0" ]; then
  echo "setup: installing bpf-linker (about a minute)" >&2
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version 0.13.0 --locked \
    --no-default-features --features llvm-22
fi

# Static (musl) binaries: dist's release binaries, and test's arm64 VM guests (`cargo
# xtask vm-test`); the aarch64 one links with the cross gcc (.cargo/config.toml). The
# targets belong to the toolchain of rust-toolchain.toml.
targets=()
case "$what" in
  test) targets=(aarch64-unknown-linux-musl) ;;
  dist) targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl) ;;
esac
for t in "${targets[@]}"; do
  rustup target list --installed --toolchain "$stable" | grep -qx "$t" ||
    rustup target add --toolchain "$stable" "$t"
done

if [ "$what" = dist ]; then
  # The Kubernetes API schema validator for deploy/kubernetes/validate.sh.
  if [ ! -x /opt/flowtop-venv/bin/kubernetes-validate ]; then
    echo "setup: installing kubernetes-validate into /opt/flowtop-venv" >&2
    $SUDO python3 -m venv /opt/flowtop-venv
    $SUDO /opt/flowtop-venv/bin/pip install -q kubernetes-validate==1.37.0
  fi
fi

if [ "$what" = docs ]; then
  cd "$root"
  $SUDO env "PATH=$PATH" cargo xtask docs --prefix /usr/local
fi
