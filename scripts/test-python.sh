#!/usr/bin/env bash
# Builds and installs the Python package the way a user does (`pip install .` in a venv,
# which builds the C library through scikit-build-core), then runs its tests against the
# fake drivers. Fails when pytest collects no tests (pytest's exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q pytest
echo "== pip install . (builds libpeerscope with CMake through scikit-build-core)"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps .

echo "== pytest python/tests"
# Run from python/tests' parent with the source package out of the way: the tests must use
# the installed package (its bundled library, worker, fake drivers and fixtures).
export PEERSCOPE_CACHE_DIR
PEERSCOPE_CACHE_DIR=$(mktemp -d)
trap 'rm -rf "$PEERSCOPE_CACHE_DIR"' EXIT
unset PEERSCOPE_LIBRARY PEERSCOPE_DRIVER_DIR PEERSCOPE_FIXTURE PEERSCOPE_WORKER PEERSCOPE_CLI
set +e
(cd python/tests && PATH="$PWD/../../$venv/bin:$PATH" ../../"$venv"/bin/python -m pytest -q -rs -p no:cacheprovider .)  # -rs: say why a test was skipped
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test-python: pytest collected no tests" >&2
  exit 1
fi
exit $rc
