#!/usr/bin/env bash
# Quick start: install what the build needs, build, and run `peerscope check`.
# Without an NVIDIA driver, check runs on the bundled example machine and says so first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# A newcomer's compiler may warn where ours does not: no -Werror here (CI has it).
./scripts/build.sh build -DPS_WERROR=OFF
./build/bin/peerscope check "$@"
