#!/usr/bin/env bash
# Quick start: install what the build needs, build, and run `peerscope check`.
# Without an NVIDIA driver, check runs on the bundled example machine and says so first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
./build/bin/peerscope check "$@"
