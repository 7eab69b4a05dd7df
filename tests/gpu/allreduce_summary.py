#!/usr/bin/env python3
"""The all-reduce figures of a `peerscope bench --json` side by side: for each group and size,
the one-shot (two-shot above vLLM's threshold) kernel and NCCL, eager and in a CUDA graph, in us
per operation (the bench's median), and the kernel's speed-up over NCCL in the same mode."""
import json
import sys


def key(r):
    return (r.get("ranks"), bool(r.get("virtual_ranks")), r.get("dtype"), r.get("bytes"))


def main(path):
    bench = json.load(open(path))["bench"]
    rows = {}
    for r in bench["results"]:
        if r.get("outcome") != "ok" or not r.get("us"):
            continue
        if r["kind"] == "allreduce_oneshot":
            name = "kernel"
        elif r["kind"] == "allreduce_nccl" and r.get("env") == "default":
            name = "nccl"
        else:
            continue
        mode = "graph" if r.get("graph") else "eager"
        rows.setdefault(key(r), {})[name + "_" + mode] = r["us"]["median"]
    print("%-6s %-5s %-5s %9s %9s %9s %9s %9s %7s %7s" % (
        "ranks", "virt", "dtype", "bytes", "kern_eag", "kern_gra", "nccl_eag", "nccl_gra",
        "x_eager", "x_graph"))
    for k in sorted(rows, key=lambda k: tuple(str(x) for x in k[:3]) + (k[3] or 0,)):
        v = rows[k]

        def ratio(mode):
            a, b = v.get("kernel_" + mode), v.get("nccl_" + mode)
            return "%7.2f" % (b / a) if a and b else "%7s" % "-"

        def us(n):
            return "%9.2f" % v[n] if n in v else "%9s" % "-"
        print("%-6s %-5s %-5s %9s %s %s %s %s %s %s" % (
            k[0], "v" if k[1] else "", k[2], k[3], us("kernel_eager"), us("kernel_graph"),
            us("nccl_eager"), us("nccl_graph"), ratio("eager"), ratio("graph")))


if __name__ == "__main__":
    main(sys.argv[1])
