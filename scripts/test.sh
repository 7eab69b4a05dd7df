#!/usr/bin/env bash
# Installs what the build needs, builds, and runs every test: once in a normal build and
# once under AddressSanitizer + UndefinedBehaviorSanitizer; then checks the C formatting.
# Fails if ctest finds no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

echo "== build and test (RelWithDebInfo)"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build --output-on-failure --no-tests=error -j2

echo "== build and test under ASan/UBSan"
./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DPS_SANITIZE=address,undefined
ctest --test-dir build-asan --output-on-failure --no-tests=error -j2

echo "== formatting"
./scripts/check-format.sh
