#!/usr/bin/env bash
# Builds every CMake build type (Debug, Release, RelWithDebInfo, MinSizeRel) with the tests,
# with GCC and with clang, warnings as errors: 8 builds under build-types/<cc>-<type>/.
# Build only (ctest runs in scripts/test.sh); slow: about a full build per combination.
# Usage: scripts/check-build-types.sh [cc ...]   (default: gcc clang)
# Prints one line per combination and fails if any failed; logs in build-types/<name>.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
compilers=("$@")
[ ${#compilers[@]} -eq 0 ] && compilers=(gcc clang)
mkdir -p build-types
failed=0
for cc in "${compilers[@]}"; do
  for type in Debug Release RelWithDebInfo MinSizeRel; do
    name=$cc-$type
    log=build-types/$name.log
    start=$(date +%s)
    # As scripts/build.sh, but on past the first failure (ninja -k 0): every error at once.
    if CC=$cc cmake -S . -B "build-types/$name" -G Ninja -DPS_WERROR=ON \
      -DCMAKE_BUILD_TYPE="$type" -DPS_BUILD_TESTS=ON >"$log" 2>&1 &&
      ninja -C "build-types/$name" -k 0 >>"$log" 2>&1; then
      echo "ok      $name ($(($(date +%s) - start)) s)"
    else
      echo "FAILED  $name (see $log):"
      grep -E "error:|warning:" "$log" | sort -u | head -20
      failed=1
    fi
  done
done
exit $failed
