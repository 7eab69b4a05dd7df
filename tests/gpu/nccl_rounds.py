#!/usr/bin/env python3
"""NCCL all-reduce, peerscope against all_reduce_perf, in interleaved rounds.

One run of either tool is a single timing per size, and at a few microseconds an eager
all-reduce on one host moves by 10-30% from one process to the next (host clock, CPU
frequency, what else runs). So the two tools run in turn, ROUNDS times, the order swapped
every round, each with its default counts (20 operations after its warm-up), eager and in a
CUDA graph (-G 20); the table gives each tool's median over the rounds per size, their ratio,
and the spread (25th-75th percentile) of the per-round ratios. all_reduce_perf runs as a user
runs it, its data check on (-c 1: a kernel writes the buffers right before each timing). Both
settings were tried on an H200 (tests/gpu/results/h200-x1-2026-12-04-nccl-rounds*.txt): with
-c 1 the reference is 0.5-1.3 us slower per eager operation from 64 KiB; with -c 0 it times
buffers it never wrote and is 3-20% faster in a graph at 16 KiB-16 MiB; peerscope, which writes
its inputs once per group and checks the outputs after the timing, sits between the two.
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_ref import first_json, ours, parse_nccl, size_text  # noqa: E402

SIZES = [1 << k for k in range(10, 27, 2)]  # 1K .. 64M, x4
TIMEOUT_S = 120


def run(cmd, out_path):
    with open(out_path, "w") as out:
        p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d (see %s)" % (cmd[0], p.returncode, out_path))
    with open(out_path) as f:
        return f.read()


def peerscope_round(ps, out_dir, r):
    text = run([ps, "bench", "allreduce", "--live", "--json",
                "--sizes", ",".join(str(s) for s in SIZES)],
               os.path.join(out_dir, "ps-%d.json" % r))
    results = first_json(text)["bench"]["results"]
    times = {}
    for graph in (False, True):
        for x in ours(results, "allreduce_nccl", graph=graph, env="default", dtype="fp16",
                      virtual_ranks=False, ranks=1):
            if x["us"]:
                times[(graph, x["bytes"])] = x["us"]["median"]
    return times


def reference_round(arp, out_dir, r):
    times = {}
    base = [arp, "-b", str(SIZES[0]), "-e", str(SIZES[-1]), "-f", "4", "-g", "1", "-d", "half"]
    for graph, extra in ((False, []), (True, ["-G", "20"])):
        name = "ref-%s-%d.txt" % ("graph" if graph else "eager", r)
        _, _, t = parse_nccl(run(base + extra, os.path.join(out_dir, name)))
        times.update({(graph, b): us for b, us in t.items()})
    return times


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return q[0], q[2]


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1])
        return 2
    ps, arp, out_dir = argv[:3]
    rounds = int(argv[3]) if len(argv) > 3 else 10
    os.makedirs(out_dir, exist_ok=True)
    ours_t, ref_t = [], []
    for r in range(rounds):
        order = ("ps", "ref") if r % 2 == 0 else ("ref", "ps")
        got = {}
        for who in order:
            got[who] = (peerscope_round(ps, out_dir, r) if who == "ps"
                        else reference_round(arp, out_dir, r))
        ours_t.append(got["ps"])
        ref_t.append(got["ref"])
    with open(os.path.join(out_dir, "rounds.json"), "w") as f:
        json.dump({"ours": [{"%d/%d" % k: v for k, v in t.items()} for t in ours_t],
                   "reference": [{"%d/%d" % k: v for k, v in t.items()} for t in ref_t]}, f)
    print("NCCL all-reduce, 1 rank, fp16, out of place: peerscope bench vs all_reduce_perf "
          "-g 1 -d half (-G 20 in a graph), %d interleaved rounds" % rounds)
    print("%-6s %-7s %11s %11s %7s %17s %s" % ("mode", "size", "peerscope", "reference",
                                              "ratio", "per-round 25-75%", "within 5%"))
    worst = 0.0
    for graph in (False, True):
        for size in SIZES:
            key = (graph, size)
            pairs = [(o[key], f[key]) for o, f in zip(ours_t, ref_t) if key in o and key in f]
            if not pairs:
                print("%-6s %-7s no timing in every round" % ("graph" if graph else "eager",
                                                               size_text(size)))
                continue
            mo = statistics.median(p[0] for p in pairs)
            mr = statistics.median(p[1] for p in pairs)
            lo, hi = quartiles([p[0] / p[1] for p in pairs])
            ratio = mo / mr
            worst = max(worst, abs(ratio - 1))
            print("%-6s %-7s %9.2fus %9.2fus %7.3f %8.3f-%-8.3f %s" % (
                "graph" if graph else "eager", size_text(size), mo, mr, ratio, lo, hi,
                "yes" if abs(ratio - 1) <= 0.05 else "NO"))
    print("largest deviation of the median ratio from 1: %.1f%%" % (100 * worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
