#!/usr/bin/env bash
# peerscope cluster against a real local Ray cluster: installs Ray (the package's `cluster`
# extra, pinned) and the package (`pip install .`) into build-venv/, then runs
# tests/cluster with pytest. The tests start a head and worker nodes with `ray start` on
# loopback addresses, each with its own fake machine, and end every process they started.
# Fails when pytest collects no tests (pytest's exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${PEERSCOPE_CLUSTER_VENV:-build-venv}
ray_version=2.40.0  # has wheels for the Python 3.9-3.12 that CI and developers run
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "== pip install pytest ray==$ray_version (plain ray: ray start and tasks need no extras)"
"$venv/bin/python" -m pip install -q pytest "ray==$ray_version"
if [ "${PEERSCOPE_CLUSTER_SKIP_INSTALL:-0}" != 1 ]; then
  echo "== pip install . (the package the nodes run)"
  "$venv/bin/python" -m pip install -q --force-reinstall --no-deps .
fi

echo "== pytest tests/cluster"
# The installed package, never the source tree; no variable of the caller picks the CLI or
# the drivers (each node's environment sets its own).
unset PEERSCOPE_LIBRARY PEERSCOPE_DRIVER_DIR PEERSCOPE_FIXTURE PEERSCOPE_WORKER PEERSCOPE_CLI RAY_ADDRESS
export RAY_USAGE_STATS_ENABLED=0
set +e
(cd tests/cluster && PATH="$PWD/../../$venv/bin:$PATH" ../../"$venv"/bin/python -m pytest -q -rs -p no:cacheprovider --durations=5 .)
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test-cluster: pytest collected no tests" >&2
  exit 1
fi
exit $rc
