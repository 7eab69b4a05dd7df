#!/usr/bin/env bash
# Configures and builds peerscope into build/ (or $1), passing any further arguments to cmake.
# Warnings are errors here (PS_WERROR=ON; a later -DPS_WERROR=OFF argument wins).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja -DPS_WERROR=ON "$@" >/dev/null
ninja -C "$dir"
