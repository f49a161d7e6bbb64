#!/usr/bin/env bash
# Sets up (if needed), builds, and runs flowtop: by default a report every second,
# five times. Arguments are passed to flowtop: scripts/run.sh -p 1234 2 10
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cargo build --release -p flowtop 2>&1 | grep -v '^warning: flowtop@' >&2 || true
test -x target/release/flowtop || { echo "run: build failed" >&2; exit 1; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ $# -eq 0 ]; then set -- 1 5; fi
exec $SUDO target/release/flowtop "$@"
