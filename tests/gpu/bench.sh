#!/usr/bin/env bash
# peerscope bench on a real GPU machine (run through the `device` tool), beside what it is
# compared with, in the same run on the same card: the plain cuMemcpy loop (plain_copy.c), and,
# when .ref/ was carried (tests/gpu/fetch-ref.sh gathers it; carry: [".ref"]), NVIDIA's
# reference tools built there from their public sources by tests/gpu/ref-build.sh (nvbandwidth,
# nccl-tests' all_reduce_perf, p2pBandwidthLatencyTest; never committed), set side by side with
# peerscope's figures by tests/gpu/compare_ref.py (ref-compare.txt). Everything in $OUT.
set -uo pipefail
FINAL=${OUT:-/tmp/peerscope-gpu}
OUT=$FINAL/raw # the device tool returns 8 files: everything goes into raw.tgz at the end
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
cd "$(dirname "$0")/../.."
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "machine"
nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,driver_version,clocks.max.sm \
  --format=csv | tee -a "$OUT/summary.txt"
. tests/gpu/build.sh
export PEERSCOPE_CACHE_DIR=/tmp/peerscope-cache

# NCCL: PyTorch's copy (nvidia.nccl) when the system has none.
nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null)
[ -n "$nccl" ] && [ -e "$nccl" ] || nccl=$(ldconfig -p | awk '/libnccl.so.2/ {print $NF; exit}')
[ -n "$nccl" ] && export PEERSCOPE_NCCL="$nccl"
log "NCCL: ${nccl:-none found}"

# The reference tools are built before anything is measured, so the measurements run back to back.
refbuild=/tmp/peerscope-ref-build
if [ -d .ref/src ]; then
  log "reference tools: build (tests/gpu/ref-build.sh)"
  tests/gpu/ref-build.sh "$refbuild" > "$OUT/ref-build.txt" 2>&1
  grep '^ref-build:' "$OUT/ref-build.txt" | tee -a "$OUT/summary.txt"
else
  log "reference tools: .ref/ not carried (tests/gpu/fetch-ref.sh), none run"
fi

log "peerscope bench --live (default)"
t0=$(date +%s%N)
$ps bench --live --json --svg "$OUT/bench.svg" > "$OUT/bench.json" 2> "$OUT/bench.err"
echo "exit code $? in $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
tail -3 "$OUT/bench.err"
python3 - "$OUT/bench.json" <<'PY' > "$OUT/bench.txt"
import json, sys
try:
    b = json.load(open(sys.argv[1]))["bench"]
except (ValueError, KeyError) as e:
    sys.exit("no bench results: %s" % e)
print("simulated", b["simulated"], "kernels", b["kernels"], "nccl", b["nccl_version"], b["nccl_note"], "wall_ms", round(b["wall_ms"]))
for r in b["results"]:
    us = r["us"]["median"] if r["us"] else None
    print(r["kind"], r["outcome"], "src", r["src"], "dst", r["dst"], "ranks", r["ranks"], "v" if r["virtual_ranks"] else "", "p2p" if r["p2p"] else "", "graph" if r["graph"] else "", r["env"], r["dtype"], r["bytes"], "us", us, "gbps", r["gbps"], "bus", r["bus_gbps"], "ns", r["ns_per_access"], "cv", r["cv"], r["reason"])
PY
cat "$OUT/bench.txt" | head -80
log "peerscope bench --live --quick (timing)"
t0=$(date +%s%N)
$ps bench --live --quick > "$OUT/bench-quick.txt" 2>&1
echo "quick exit code $? in $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
cat "$OUT/bench-quick.txt"

log "plain cuMemcpy loop (64 MiB x 16, median of 5)"
cc -O2 -I/usr/local/cuda/include tests/gpu/plain_copy.c -L/usr/local/cuda/lib64/stubs -lcuda \
  -o "$OUT/plain_copy" 2>&1 | tail -3
"$OUT/plain_copy" $((64 << 20)) 16 5 | tee "$OUT/plain.txt"
"$OUT/plain_copy" $((64 << 20)) 16 5 | tee -a "$OUT/plain.txt"
rm -f "$OUT/plain_copy"
if [ -d .ref/src ]; then
  . tests/gpu/bench-ref.sh
fi
cp "$OUT/summary.txt" "$OUT/bench.json" "$OUT/bench.svg" "$OUT/bench.txt" "$OUT/ref-compare.txt" \
  "$OUT/nccl-rounds.txt" "$FINAL/" 2>/dev/null
tar czf "$FINAL/raw.tgz" -C "$FINAL" raw && rm -rf "$OUT"
ls -la "$FINAL"
