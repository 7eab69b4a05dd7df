#!/usr/bin/env bash
# Installs what the build needs, builds, and runs every test: once in a normal build (then
# installs it and builds a program against it), a Release build (build only), once under
# AddressSanitizer + UndefinedBehaviorSanitizer, a short fuzz run of every parser,
# the Python package's tests, the web dashboard in a browser, the Ray cluster tests, the
# mutation check (tests/mutants: the tests catch each deliberate bug), then the C formatting.
# Fails if ctest finds no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

echo "== build and test (RelWithDebInfo)"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build --output-on-failure --no-tests=error -j2
./scripts/skip-report.sh build

echo "== the installed library in another project (tests/consumer: pkg-config, find_package)"
./tests/consumer/run.sh build

echo "== build only: Release with GCC (-O3 warns where -O2 does not; clang builds below for"
echo "   fuzzing; every build type with both: scripts/check-build-types.sh)"
CC=gcc ./scripts/build.sh build-release -DCMAKE_BUILD_TYPE=Release

echo "== build and test under ASan/UBSan"
./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DPS_SANITIZE=address,undefined
ctest --test-dir build-asan --output-on-failure --no-tests=error -j2
./scripts/skip-report.sh build-asan

echo "== the planner's concurrent plans under ThreadSanitizer (one test, its own build)"
cmake -S . -B build-tsan -G Ninja -DPS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DPS_SANITIZE=thread \
  >/dev/null
ninja -C build-tsan test_plan_threads && ctest --test-dir build-tsan -R '^test_plan_threads$' --output-on-failure

echo "== fuzz smoke: every parser of untrusted input, ${PS_FUZZ_SECONDS:-20} s each (libFuzzer)"
CC=clang ./scripts/build.sh build-fuzz -DPS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
for target in fixture report protocol import safetensors config web model_id vllm_log; do
  scratch=$(mktemp -d)
  dict=tests/fuzz/$target.dict
  # The finding (sanitizer report, input name) is in the last lines, not only the last one.
  if ! ./build-fuzz/bin/fuzz_$target -max_total_time="${PS_FUZZ_SECONDS:-20}" -print_final_stats=0 \
    $( [ -f "$dict" ] && echo "-dict=$dict" ) -artifact_prefix="$scratch/" "$scratch" \
    "tests/fuzz/corpus/$target" >"$scratch.log" 2>&1; then
    grep -v '^#' "$scratch.log" | tail -25 | sed "s/^/fuzz_$target: /"
    echo "fuzz_$target found an input that fails (above); keep it in tests/fuzz/corpus/$target" >&2
    exit 1
  fi
  tail -1 "$scratch.log" | sed "s/^/fuzz_$target: /"
  rm -rf "$scratch" "$scratch.log"
done

echo "== Python package (pip install . into build-venv/, pytest python/tests)"
./scripts/test-python.sh

echo "== web dashboard in headless Chromium (Selenium in build-venv/)"
./scripts/test-web.sh

echo "== peerscope cluster on a local Ray cluster (ray into build-venv/, pytest tests/cluster)"
PEERSCOPE_CLUSTER_SKIP_INSTALL=1 ./scripts/test-cluster.sh

echo "== mutation check: each deliberate bug of tests/mutants/mutants.json makes a test fail"
echo "   (scripts/mutate.py in a scratch copy: ~2 min of CPU, 3-5 min on 2 shared cores)"
./scripts/mutate.py

echo "== formatting"
./scripts/check-format.sh
