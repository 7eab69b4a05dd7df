#!/usr/bin/env bash
# Configures and builds peerscope into build/ (or $1), passing any further arguments to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
ninja -C "$dir"
