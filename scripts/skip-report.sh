#!/usr/bin/env bash
# Counts the checks a ctest run skipped and says why: the tests ctest itself reports as
# "Skipped" (SKIP_RETURN_CODE: every check of a script skipped) and the single "SKIP <check>:
# <why>" lines the script tests print (tests/cli/clitest.py skip()). A skip is never a pass;
# this makes it visible in CI. Usage: scripts/skip-report.sh [BUILD_DIR] (default build).
set -euo pipefail
log=${1:-build}/Testing/Temporary/LastTest.log
if [ ! -f "$log" ]; then
  echo "skip-report: no ctest log at $log" >&2
  exit 2
fi
checks=$(grep -E '^SKIP [^:]+: ' "$log" || true)
# (ctest's log files a skipped test as passed; our scripts say so themselves.)
tests=$(grep -c '^every check was skipped$' "$log" || true)
count=$(printf '%s' "$checks" | grep -c . || true)
echo "skipped: $count check(s), ${tests:-0} of them in tests that had nothing else to run"
[ -n "$checks" ] && printf '%s\n' "$checks" | sed 's/^/  /'
exit 0
