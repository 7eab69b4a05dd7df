#!/usr/bin/env bash
# Everything a GPU session measures, in one device command: tests/gpu/run.sh (check, plan,
# doctor, timings) and tests/gpu/bench.sh (bench beside the reference tools), then a summary of
# the one-shot kernel against NCCL. The device tool returns a few files: the summaries and the
# comparison table come back as files, everything else packed in all.tgz.
set -uo pipefail
FINAL=${OUT:-/tmp/peerscope-gpu}
work=$(mktemp -d)
cd "$(dirname "$0")/../.."
OUT=$work/run bash tests/gpu/run.sh > "$work/run-log.txt" 2>&1
echo "run.sh exit $?" >> "$work/run/summary.txt"
OUT=$work/bench bash tests/gpu/bench.sh > "$work/bench-log.txt" 2>&1
echo "bench.sh exit $?" >> "$work/bench/summary.txt"
python3 tests/gpu/allreduce_summary.py "$work/bench/bench.json" > "$work/allreduce.txt" 2>&1
cp "$work/run/summary.txt" "$FINAL/run-summary.txt"
cp "$work/bench/summary.txt" "$FINAL/bench-summary.txt"
cp "$work/bench/ref-compare.txt" "$work/bench/nccl-rounds.txt" "$work/allreduce.txt" "$FINAL/" \
  2>/dev/null
tar czf "$FINAL/all.tgz" -C "$work" .
