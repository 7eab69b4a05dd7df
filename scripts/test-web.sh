#!/usr/bin/env bash
# The web dashboard in a real browser: tests/web/test_browser.py drives headless Chromium
# (Debian's chromium and chromium-driver, scripts/install-deps.sh) through Selenium, installed
# into build-venv/ as scripts/test-python.sh does, against `peerscope web` of build/ (or $1),
# which is built first (a no-op when it is up to date: the page is embedded in the binary).
# Screenshots go to $PEERSCOPE_WEB_ARTIFACTS (default <build>/web-artifacts). Fails when the
# browser test fails or runs no checks.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
venv=build-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q selenium
for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "test-web: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
./scripts/build.sh "$build" >/dev/null

export PEERSCOPE_CLI=$PWD/$build/bin/peerscope
export PEERSCOPE_SOURCE_DIR=$PWD
export PEERSCOPE_WEB_ARTIFACTS=${PEERSCOPE_WEB_ARTIFACTS:-$PWD/$build/web-artifacts}
# Selenium must use the driver given, never download one.
export SE_OFFLINE=true
unset PEERSCOPE_FIXTURE PEERSCOPE_DRIVER_DIR PEERSCOPE_WORKER PEERSCOPE_LIBRARY
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
timeout 300 "$venv/bin/python" tests/web/test_browser.py 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if ! grep -Eq '^[1-9][0-9]* passed, [0-9]+ failed$' "$log"; then
  echo "test-web: the browser test ran no checks" >&2
  exit 1
fi
exit "$rc"
