#!/usr/bin/env bash
# Installs every Debian package that building and testing peerscope needs. Idempotent:
# packages already present are skipped, and the package lists are refreshed only when
# something must be installed.
set -euo pipefail

packages=(
  build-essential   # gcc, make, libc headers
  cmake ninja-build pkg-config
  libjansson-dev    # JSON reading and writing (topology reports)
  libcmocka-dev     # unit-test framework
  libcurl4-openssl-dev  # peerscope launch: GET /health while vLLM starts (127.0.0.1 only)
  libarchive-dev    # peerscope capture / --replay: the tar.gz, read with member checks
  libmicrohttpd-dev # peerscope web: the dashboard's HTTP server (not a hand-written parser)
  chromium chromium-driver  # the dashboard's browser tests (headless, driven by Selenium)
  wrk               # the dashboard's load test (tests/web/load.sh)
  python3 python3-jsonschema  # JSON Schema validation of every report the CLI writes
  python3-yaml      # tests/cli/test_input_cli.py reads the plan's YAML back
  python3-venv python3-pip  # scripts/test-python.sh: pip install . into a venv, then pytest
  clang-format      # style check in CI
  clang             # fuzz targets (libFuzzer) and sanitizer builds
  procps            # pgrep/ps, used by the tests that check no worker is left behind
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
