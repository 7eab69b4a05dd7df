#!/usr/bin/env bash
# Real-driver check on a GPU machine (run through the `device` tool; see tests/gpu/README.md).
# Builds peerscope (no tests, no toolkit needed), runs check/topo on the live driver,
# compares device facts with nvidia-smi, times the check, and leaves everything in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/peerscope-gpu}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
cd "$(dirname "$0")/../.."
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
# A check returns before its worker has released its CUDA context (~100-200 ms on an H200, a
# detached reaper waits for it); the next timed run would share the driver with that teardown,
# which a user running check once never sees. Wait for the last worker to go (at most 2 s).
settle() {
  for _ in $(seq 1 40); do
    pgrep -x peerscope-worke >/dev/null 2>&1 || pgrep -f bin/peerscope-worker >/dev/null 2>&1 ||
      return 0
    sleep 0.05
  done
}

log "machine"
nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,driver_version --format=csv \
  | tee -a "$OUT/summary.txt"
nvidia-smi --query-gpu=name,uuid,pci.bus_id,memory.total --format=csv,noheader > "$OUT/smi.csv"
{ nvidia-smi topo -m; echo; nvidia-smi topo -p2p r; } > "$OUT/smi-topo.txt" 2>&1

. tests/gpu/build.sh
export PEERSCOPE_CACHE_DIR="$OUT/cache"

log "peerscope check --live --refresh"
$ps check --live --refresh 2>&1 | tee "$OUT/check.txt"
echo "exit code: ${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
$ps check --live --refresh --json > "$OUT/check.json" 2> "$OUT/check-json.err"
echo "json exit code: $?" | tee -a "$OUT/summary.txt"
$ps topo --live > "$OUT/topo.txt" 2>&1; echo "topo exit code: $?" >> "$OUT/summary.txt"
cat "$OUT/topo.txt"

log "device facts vs nvidia-smi"
python3 tests/gpu/compare_smi.py "$OUT/check.json" "$OUT/smi.csv" "$OUT/smi-topo.txt" | tee -a "$OUT/summary.txt"

log "plan Llama-3.1-8B-Instruct (config only) on the live, verified GPU"
$ps plan --live --model tests/fixtures/models/Llama-3.1-8B-Instruct 2>&1 | tee "$OUT/plan.txt" | head -30
$ps plan --live --model tests/fixtures/models/Llama-3.1-8B-Instruct --json > "$OUT/plan.json" 2>&1
echo "plan exit code: $?" | tee -a "$OUT/summary.txt"

log "doctor on the live machine"
$ps doctor --live > "$OUT/doctor.txt" 2>&1; echo "doctor exit code: $?" | tee -a "$OUT/summary.txt"
head -40 "$OUT/doctor.txt"

log "Python API inside a PyTorch process that already owns a CUDA context"
PEERSCOPE_LIBRARY="$PWD/build-gpu/lib/libpeerscope.so" python3 tests/gpu/python_check.py \
  2>&1 | tee "$OUT/python.txt" | tail -30

log "timing: 10 runs of check --live --refresh --json (wall, ms), then 10 cached"
for mode in --refresh ""; do
  for i in $(seq 1 10); do
    settle
    t0=$(date +%s%N)
    $ps check --live $mode --json > "$OUT/run.json" 2>/dev/null
    t1=$(date +%s%N)
    python3 - "$OUT/run.json" $(( (t1 - t0) / 1000 )) "${mode:-cached}" <<'PY' >> "$OUT/timing.txt"
import json, sys
r = json.load(open(sys.argv[1])); t = r["timings_ms"]
print(sys.argv[3], "wall_ms=%.1f" % (int(sys.argv[2]) / 1000),
      " ".join("%s=%s" % (k, "null" if v is None else "%.2f" % v) for k, v in t.items()),
      "local=" + ",".join("/".join([str(g.get("local_copy", {}).get("verdict"))] +
                                   ["%s:%s" % (m, v.get("verdict")) for m, v in
                                    sorted(g.get("local_copy", {}).get("modes", {}).items())])
                          for g in r["gpus"]))
PY
  done
done
log "timing: 5 runs of check --live --refresh --modes all (the ipc mode's local control too)"
for i in 1 2 3 4 5; do
  settle
  t0=$(date +%s%N)
  $ps check --live --refresh --modes all --json > "$OUT/run-all.json" 2>/dev/null
  echo "all-modes wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))" >> "$OUT/timing.txt"
done
cat "$OUT/timing.txt" | tee -a "$OUT/summary.txt"

log "each verification mode alone (ce, sm, ipc): 3 runs each, --refresh"
for m in ce sm ipc; do
  for i in 1 2 3; do
    settle
    t0=$(date +%s%N)
    $ps check --live --refresh --modes $m > "$OUT/mode-$m.txt" 2>&1
    echo "mode $m: exit $? wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))" | tee -a "$OUT/summary.txt"
  done
  grep -E "local|Verification modes|Checked" "$OUT/mode-$m.txt" | tee -a "$OUT/summary.txt"
done

log "the cache key without NVML: /proc/driver/nvidia readable? probe cached? NVML opened when cached?"
grep -h "GPU UUID" /proc/driver/nvidia/gpus/*/information 2>&1 | head -4 | tee -a "$OUT/summary.txt"
ls "$PEERSCOPE_CACHE_DIR" | tee -a "$OUT/summary.txt"
if command -v strace >/dev/null; then
  echo "libnvidia-ml opens in a cached check: $(strace -f -e trace=openat $ps check --live 2>&1 |
    grep -c libnvidia-ml)" | tee -a "$OUT/summary.txt"
else
  echo "no strace on this machine" | tee -a "$OUT/summary.txt"
fi
