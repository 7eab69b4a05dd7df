# shellcheck shell=bash
# Sourced by tests/gpu/bench.sh after peerscope's bench, same job, same GPUs: runs the reference
# tools tests/gpu/ref-build.sh built into $refbuild at peerscope's sizes, then prints the tables of
# tests/gpu/compare_ref.py (ref-compare.txt). Needs $OUT, $refbuild and log(); NCCL_NVLS_ENABLE=0
# is exported by bench.sh. A tool that did not build or fails is named and the others still run.
# PEERSCOPE_REF_GRAPH_LAUNCHES: all_reduce_perf -G (graph launches of its 20 operations; 20, as peerscope replays its graph up to 1 MiB).
# PEERSCOPE_NCCL_ROUNDS: interleaved rounds of peerscope's and all_reduce_perf's NCCL timings
# on one GPU (tests/gpu/nccl_rounds.py, nccl-rounds.txt; default 10, 0 = none).
# shellcheck disable=SC1091,SC2154 # env.sh is written by ref-build.sh; bench.sh sets refbuild
. "$refbuild/env.sh" 2>/dev/null
refbin=$refbuild/bin
ngpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
# As peerscope bench, only the GPUs CUDA_VISIBLE_DEVICES leaves (the tools number those alone).
[ -z "${CUDA_VISIBLE_DEVICES+x}" ] ||
  ngpus=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
[ "$ngpus" -ge 1 ] || ngpus=1
# The copy size peerscope measured (its local copy), so both sides move the same buffer.
copy_bytes=$(python3 -c 'import json, sys
r = [r for r in json.load(open(sys.argv[1]))["bench"]["results"] if r["kind"] == "local_ce"]
print(r[0]["bytes"] if r else 64 << 20)' "$OUT/bench.json" 2>/dev/null || echo $((64 << 20)))
ref_timeout=${PEERSCOPE_REF_TIMEOUT:-300}

# $1 name, $2 output file, then the command: runs it with a deadline, says how it ended.
ref_run() {
  local name=$1 out=$2 t0 rc
  shift 2
  if [ ! -x "$1" ]; then
    echo "reference: $name not built (see ref-build.txt)" | tee -a "$OUT/summary.txt"
    return 1
  fi
  t0=$(date +%s%N)
  timeout "$ref_timeout" "$@" > "$out" 2> "$out.err"
  rc=$?
  echo "reference: $name exit code $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms" |
    tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || tail -n 5 "$out.err" "$out"
}

log "reference tools: run ($ngpus GPU(s), copies of $((copy_bytes >> 20)) MiB)"
nvb_tests=(device_local_copy host_to_device_memcpy_ce device_to_host_memcpy_ce
  host_to_device_memcpy_sm device_to_host_memcpy_sm)
if [ "$ngpus" -ge 2 ]; then
  nvb_tests+=(device_to_device_memcpy_read_ce device_to_device_memcpy_write_ce
    device_to_device_memcpy_read_sm device_to_device_memcpy_write_sm device_to_device_latency_sm)
fi
ref_run nvbandwidth "$OUT/ref-nvbandwidth.json" "$refbin/nvbandwidth" --json \
  -b $((copy_bytes >> 20)) -t "${nvb_tests[@]}"
# fp16 as peerscope's all-reduce; -J writes JSON beside the usual table on stdout.
# Three runs each: one run is a single timing per size (peerscope reports a median of trials).
ar=("$refbin/all_reduce_perf" -b 1K -e 64M -f 2 -g "$ngpus" -d half)
for i in 1 2 3; do
  ref_run "all_reduce_perf ($i)" "$OUT/ref-allreduce-$i.txt" "${ar[@]}" -J "$OUT/ref-allreduce-$i.json"
  ref_run "all_reduce_perf -G ($i)" "$OUT/ref-allreduce-graph-$i.txt" "${ar[@]}" \
    -G "${PEERSCOPE_REF_GRAPH_LAUNCHES:-20}" -J "$OUT/ref-allreduce-graph-$i.json"
done
ref_run p2pBandwidthLatencyTest "$OUT/ref-p2p.txt" "$refbin/p2pBandwidthLatencyTest" \
  --numElems=$((copy_bytes / 4))

# JSON where the tool wrote it, else its stdout (compare_ref.py reads both).
pick() { if [ -s "$1" ]; then echo "$1"; else echo "$2"; fi; }
log "peerscope beside the reference tools (ratio = peerscope / reference)"
python3 tests/gpu/compare_ref.py "$OUT/bench.json" --nvbandwidth "$OUT/ref-nvbandwidth.json" \
  --nccl "$(for i in 1 2 3; do printf '%s,' "$(pick "$OUT/ref-allreduce-$i.json" "$OUT/ref-allreduce-$i.txt")"; done)" \
  --nccl-graph "$(for i in 1 2 3; do printf '%s,' "$(pick "$OUT/ref-allreduce-graph-$i.json" "$OUT/ref-allreduce-graph-$i.txt")"; done)" \
  --p2p "$OUT/ref-p2p.txt" > "$OUT/ref-compare.txt" 2>&1
cat "$OUT/ref-compare.txt"

rounds=${PEERSCOPE_NCCL_ROUNDS:-10}
if [ "$rounds" -gt 0 ] && [ "$ngpus" -eq 1 ] && [ -x "$refbin/all_reduce_perf" ]; then
  log "NCCL: $rounds interleaved rounds of peerscope bench allreduce and all_reduce_perf"
  t0=$(date +%s%N)
  python3 tests/gpu/nccl_rounds.py "$ps" "$refbin/all_reduce_perf" "$OUT/nccl-rounds" "$rounds" \
    > "$OUT/nccl-rounds.txt" 2>&1
  echo "nccl_rounds exit code $? in $(( ($(date +%s%N) - t0) / 1000000 )) ms" |
    tee -a "$OUT/summary.txt"
  cat "$OUT/nccl-rounds.txt"
fi
