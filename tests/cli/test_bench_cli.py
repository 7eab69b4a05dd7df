#!/usr/bin/env python3
"""peerscope bench end to end on the fake drivers (modelled timings, real code paths): every
kind of measurement, the output formats, waived paths, faults (hang, corrupt data, refused
peer access, CUDA that will not start, no NCCL), the health gate and bad command lines."""
import csv
import io
import json
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import schema_check  # noqa: E402
from clitest import TMP, check, finish, fixture, run, workers_left  # noqa: E402

FAST = ["--quick", "--trials", "2", "--iters", "2"]
KINDS = {"copy_ce", "copy_sm_read", "copy_sm_write", "local_ce", "local_sm", "h2d", "d2h",
         "latency_write", "latency_chase", "allreduce_nccl", "allreduce_oneshot"}
KERNEL_KINDS = {"copy_sm_read", "copy_sm_write", "local_sm", "latency_chase", "allreduce_oneshot"}
NO_KERNELS = "built without CUDA kernels"


def expected_outcome(bench, result):
    """A build without nvcc waives the kernel measurements, saying so; all else is measured."""
    if not bench["kernels"] and result["kind"] in KERNEL_KINDS:
        return "waived"
    return "ok"


def bench_json(args, **kw):
    proc = run(["bench", "--json"] + args, **kw)
    try:
        return proc, json.loads(proc.stdout)
    except ValueError:
        return proc, None


def results_of(doc, **match):
    return [r for r in doc["bench"]["results"] if all(r[k] == v for k, v in match.items())]


def test_nvlink_pair():
    proc, doc = bench_json(FAST + ["--fixture", fixture("rtx3090-2-nvlink.topo")])
    check("nvlink: exit 0", proc.returncode == 0, proc.stderr)
    if not doc:
        return check("nvlink: JSON", False, proc.stdout[-500:])
    check("nvlink: report validates", not schema_check.errors(doc), schema_check.errors(doc))
    bench = doc["bench"]
    check("nvlink: simulated", bench["simulated"] is True)
    check("nvlink: every kind", {r["kind"] for r in bench["results"]} == KINDS,
          {r["kind"] for r in bench["results"]})
    bad = [r for r in bench["results"] if r["outcome"] != expected_outcome(bench, r)]
    check("nvlink: all measured", not bad, bad[:3])
    if not bench["kernels"]:
        check("nvlink: no kernels, said so", all(NO_KERNELS in r["reason"] for r in
                                                 bench["results"] if r["kind"] in KERNEL_KINDS))
        print("note: this build has no CUDA kernels (no nvcc); kernel measurements waived")
    on = results_of(doc, kind="copy_ce", src=0, dst=1, p2p=True, bidirectional=False)
    off = results_of(doc, kind="copy_ce", src=0, dst=1, p2p=False, bidirectional=False)
    check("nvlink: P2P on beats staged", on and off and on[0]["gbps"] > 2 * off[0]["gbps"],
          (on, off))
    bi = results_of(doc, kind="copy_ce", src=0, dst=1, p2p=True, bidirectional=True)
    check("nvlink: bidirectional sums both", bi and bi[0]["gbps"] > 1.5 * on[0]["gbps"], bi)
    ar = results_of(doc, kind="allreduce_nccl", ranks=2)
    check("nvlink: NCCL in three environments",
          {r["env"] for r in ar} == {"default", "NCCL_P2P_DISABLE=1", "NCCL_P2P_LEVEL=NVL"}, ar[:2])
    check("nvlink: busbw = algbw for 2 ranks",
          all(abs(r["bus_gbps"] - r["gbps"]) < 1e-3 * r["gbps"] + 1e-3 for r in ar))
    if bench["kernels"]:
        one = results_of(doc, kind="allreduce_oneshot", ranks=2, virtual_ranks=False)
        check("nvlink: one-shot on the pair", one and all(r["us"]["median"] > 0 for r in one),
              one[:1])
        chase = results_of(doc, kind="latency_chase", src=0, dst=1)
        check("nvlink: pointer chase in ns", chase and chase[0]["ns_per_access"] > 100, chase)


# The fake libcuda's time model (tests/fake/fake_cuda_bench.c): bandwidth GB/s and fixed
# latency us of each path, and ns per dependent load.
PCIE_X16 = {0: 12, 1: 3, 2: 6, 3: 12, 4: 24, 5: 50, 6: 100, 7: 200}


def pcie_gbps(gpu):
    gen = gpu["pcie"]["gen_current"] or 0
    return PCIE_X16.get(gen, 12) * (gpu["pcie"]["width_current"] or 16) / 16


def nvlink_gbps(pair):
    nv = pair["nvlink"]
    per_link = 20 if nv["version"] == 1 else 50 if nv["version"] >= 7 else 25
    return nv["count"] * per_link * 0.85


def modelled(doc, r):
    """(GB/s or None, us per operation or None, ns per load or None) the model gives r."""
    gpus, b = doc["gpus"], r["bytes"]
    pair = next((p for p in doc["pairs"] if p["from"] == r["src"] and p["to"] == r["dst"]), None)
    local, host = (1500, 2.0), (pcie_gbps(gpus[r["src"]]), 5.0)
    peer = (nvlink_gbps(pair), 2.5) if pair else None
    staged = (min(pcie_gbps(gpus[r["src"]]), pcie_gbps(gpus[r["dst"]])) / 2, 15.0) if pair else None
    path, factor = {"local_ce": (local, 1), "local_sm": (local, 1.05), "h2d": (host, 1),
                    "d2h": (host, 1)}.get(r["kind"], (None, 1))
    if r["kind"] in ("copy_ce", "latency_write"):
        path = peer if r["p2p"] else staged
    elif r["kind"] in ("copy_sm_read", "copy_sm_write"):
        path, factor = (min(peer[0], local[0]), max(peer[1], local[1])), 1.05
    elif r["kind"] == "latency_chase":
        # a chase of many thousand loads: the 2 us launch is below the jitter
        return None, None, (500.0 if r["src"] == r["dst"] else 800.0)
    us = factor * (path[1] + b / (path[0] * 1e3))
    return b * (2 if r["bidirectional"] else 1) / (us * 1e3), us, None


def test_figures_match_model():
    """Every copy and latency figure, timed as nvbandwidth times it (spin latch, warm-up copies,
    median of trials), is the fake's modelled figure within its +-1% jitter."""
    proc, doc = bench_json(["copy", "latency", "--trials", "3", "--iters", "4",
                            "--fixture", fixture("rtx3090-2-nvlink.topo")])
    check("model: exit 0", proc.returncode == 0 and doc, proc.stderr)
    if not doc:
        return
    seen, off = set(), []
    for r in doc["bench"]["results"]:
        if r["outcome"] == "waived" and not doc["bench"]["kernels"]:
            continue
        gbps, us, ns = modelled(doc, r)
        seen.add(r["kind"])
        got, want = (r["ns_per_access"], ns) if ns else (r["us"]["median"], us)
        if r["outcome"] != "ok" or abs(got - want) > 0.02 * want or (
                r["gbps"] is not None and abs(r["gbps"] - gbps) > 0.02 * gbps + 0.001):
            off.append((r["kind"], r["src"], r["dst"], r["p2p"], r["bytes"], got, want,
                        r["gbps"], gbps))
    check("model: every figure within 2% of the model", not off, off[:4])
    want_kinds = {"copy_ce", "local_ce", "h2d", "d2h", "latency_write"}
    if doc["bench"]["kernels"]:
        want_kinds |= {"copy_sm_read", "copy_sm_write", "local_sm", "latency_chase"}
    check("model: every copy and latency kind compared", want_kinds <= seen, seen)


def test_formats():
    base = FAST + ["copy", "--fixture", fixture("rtx3090-2-nvlink.topo")]
    svg = os.path.join(TMP, "bench.svg")
    text = run(["bench", "--svg", svg] + base)
    check("text: exit 0", text.returncode == 0, text.stderr)
    check("text: simulated banner", "SIMULATED: fake drivers" in text.stdout, text.stdout[:400])
    check("text: bandwidth matrix", "Copy bandwidth (GB/s), copy engine, P2P on" in text.stdout)
    try:
        root = ET.parse(svg).getroot()
        rects = [e for e in root.iter() if e.tag.endswith("rect")]
        check("svg: heatmap cells", len(rects) >= 4, len(rects))
    except (OSError, ET.ParseError) as e:
        check("svg: well-formed", False, e)
    out = run(["bench", "--csv"] + base)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    proc, doc = bench_json(base)
    check("csv: one row per result", doc and len(rows) == len(doc["bench"]["results"]) + 1,
          (len(rows), doc and len(doc["bench"]["results"])))


def test_one_gpu_and_virtual_ranks():
    proc, doc = bench_json(["--trials", "1", "--iters", "2", "--gpus", "0",
                            "--fixture", fixture("rtx3090-2-nvlink.topo")])
    check("one GPU: exit 0", proc.returncode == 0, proc.stderr)
    if not doc:
        return
    waived = results_of(doc, kind="copy_ce", outcome="waived")
    check("one GPU: peer copies waived with a reason",
          waived and "one GPU" in waived[0]["reason"], waived)
    virtual = results_of(doc, kind="allreduce_oneshot", virtual_ranks=True)
    check("one GPU: one-shot with 2, 4, 8 virtual ranks, all checked",
          {r["ranks"] for r in virtual} == {2, 4, 8} and
          all(r["outcome"] == expected_outcome(doc["bench"], r) for r in virtual), virtual[:2])
    check("one GPU: virtual ranks eager and in a CUDA graph",
          {(r["ranks"], r["graph"]) for r in virtual} ==
          {(n, g) for n in (2, 4, 8) for g in (False, True)}, virtual[:2])
    nccl = results_of(doc, kind="allreduce_nccl")
    check("one GPU: NCCL on one rank, eager and graph",
          nccl and {r["graph"] for r in nccl} == {False, True} and
          all(r["ranks"] == 1 and r["outcome"] == "ok" for r in nccl), nccl[:2])


def test_graphs_and_two_shot():
    """Not --quick: the custom all-reduce eager and in a CUDA graph on the pair, compared with
    NCCL in the same mode; 4 and 8 virtual ranks at 512 KiB take the two-shot kernel."""
    args = ["allreduce", "--trials", "1", "--iters", "3", "--gpus", "0,1", "--sizes", "4K,512K",
            "--fixture", fixture("rtx3090-2-nvlink.topo")]
    proc, doc = bench_json(args)
    check("graphs: exit 0", proc.returncode == 0, (proc.stderr, doc and [
        (r["kind"], r["ranks"], r["graph"], r["bytes"], r["outcome"], r["reason"])
        for r in doc["bench"]["results"] if r["outcome"] != "ok"]))
    if not doc:
        return
    bench = doc["bench"]
    pair = results_of(doc, kind="allreduce_oneshot", virtual_ranks=False)
    check("graphs: one-shot on the pair eager and in a graph, checked",
          {r["graph"] for r in pair} == {False, True} and
          all(r["outcome"] == expected_outcome(bench, r) for r in pair), pair[:2])
    big = results_of(doc, kind="allreduce_oneshot", virtual_ranks=True, bytes=512 << 10)
    check("graphs: two-shot sizes checked on 4 and 8 virtual ranks",
          {r["ranks"] for r in big} == {2, 4, 8} and
          all(r["outcome"] == expected_outcome(bench, r) for r in big), big[:2])
    if bench["kernels"]:
        one = {r["graph"]: r["us"]["median"] for r in pair if r["bytes"] == 4096 and
               r["dtype"] == "bf16"}
        check("graphs: a graph replay is faster than eager launches", one[True] < one[False], one)
    text = run(["bench"] + args)
    check("graphs: text names what NCCL compares with",
          "compare: all_reduce_perf -g 2 -d bfloat16 -n 3 -G 20\n" in text.stdout and
          "compare: NCCL_P2P_DISABLE=1 all_reduce_perf -g 2 -d half -n 3\n" in text.stdout,
          text.stdout[:1500])


def test_faults():
    proc, doc = bench_json(FAST + ["copy", "--timeout-ms", "1500",
                                   "--fixture", fixture("fault-hang.topo")], timeout=240)
    check("hang: exit 1", proc.returncode == 1, proc.stderr)
    if doc:
        hung = results_of(doc, outcome="hang")
        check("hang: recorded on 0->3, the rest measured",
              hung and all(r["src"] == 0 and r["dst"] == 3 for r in hung) and
              results_of(doc, kind="copy_ce", src=1, dst=2, outcome="ok"), hung)
    check("hang: no worker left", not workers_left(), workers_left())

    proc, doc = bench_json(FAST + ["copy", "--fixture", fixture("fault-corrupt.topo")])
    check("corrupt: exit 1", proc.returncode == 1, proc.stderr)
    wrong = doc and results_of(doc, outcome="wrong")
    check("corrupt: data checked after the run", wrong and "differ" in wrong[0]["reason"], wrong)

    proc, doc = bench_json(FAST + ["copy", "--fixture", fixture("fault-unsupported.topo")])
    refused = doc and [r for r in results_of(doc, outcome="waived") if "refuses" in r["reason"]]
    check("unsupported: waived, not failed", proc.returncode in (0, 1) and refused, proc.stderr)

    proc = run(["bench"] + FAST + ["--fixture", fixture("fault-cuda-init.topo")])
    check("cuda init: exit 4, one line", proc.returncode == 4 and
          proc.stderr.count("peerscope bench:") == 1, (proc.returncode, proc.stderr))

    proc, doc = bench_json(FAST + ["allreduce", "--nccl", "/nonexistent/libnccl.so.2",
                                   "--fixture", fixture("rtx3090-2-nvlink.topo")])
    waived = doc and results_of(doc, kind="allreduce_nccl", outcome="waived")
    check("no NCCL: waived, exit 0", proc.returncode == 0 and waived and
          "NCCL" in waived[0]["reason"] and doc["bench"]["nccl_note"], proc.stderr)
    check("no NCCL: one-shot still measured", doc and (
        not doc["bench"]["kernels"] or results_of(doc, kind="allreduce_oneshot", outcome="ok")))


def fault_fixture(name, fault):
    """The 4-GPU PIX base of the fault fixtures with one fault line, in TMP."""
    with open(fixture("fault-copy-error.topo")) as f:
        base = [line for line in f if not line.startswith("fault ")]
    path = os.path.join(TMP, name + ".topo")
    with open(path, "w") as f:
        f.write("".join(base) + fault + "\n")
    return path


def test_nccl_faults():
    ar = FAST + ["allreduce", "--gpus", "0,1", "--sizes", "1K"]
    proc, doc = bench_json(ar + ["--fixture", fault_fixture("nccl-corrupt",
                                                            "fault nccl_corrupt 0 1 offset=8")])
    wrong = doc and results_of(doc, kind="allreduce_nccl", outcome="wrong")
    check("nccl corrupt: every NCCL all-reduce wrong, on rank 1", proc.returncode == 1 and wrong and
          len(wrong) == len(results_of(doc, kind="allreduce_nccl")) and
          all("rank 1" in r["reason"] for r in wrong), (proc.stderr, wrong))
    check("nccl corrupt: the one-shot kernel is not NCCL", doc and not results_of(
        doc, kind="allreduce_oneshot", outcome="wrong"))

    proc, doc = bench_json(ar + ["--timeout-ms", "500", "--fixture",
                                 fault_fixture("nccl-hang", "fault nccl_hang 1 0")], timeout=120)
    hung = doc and results_of(doc, kind="allreduce_nccl", outcome="hang")
    check("nccl hang: every NCCL all-reduce hangs", proc.returncode == 1 and hung and
          len(hung) == len(results_of(doc, kind="allreduce_nccl")), proc.stderr)
    check("nccl hang: no worker left", not workers_left(), workers_left())

    # A sticky error ends its worker; fresh ones measure the rest.
    proc, doc = bench_json(FAST + ["copy", "--fixture",
                                   fault_fixture("sticky", "fault illegal_address 0 1")])
    failed = doc and results_of(doc, outcome="failed")
    check("sticky: only the measurements copying 0 -> 1 fail", failed and all(
        r["src"] == 0 and r["dst"] == 1 and "CUDA_ERROR_ILLEGAL_ADDRESS" in r["reason"]
        for r in failed), failed)
    check("sticky: the rest measured", doc and len(results_of(doc, outcome="ok")) ==
          len(doc["bench"]["results"]) - len(failed), proc.stderr)

    # NCCL_P2P_LEVEL=NVL keeps a PCIe pair off P2P: as slow as NCCL_P2P_DISABLE=1.
    proc, doc = bench_json(FAST + ["allreduce", "--gpus", "0,1", "--sizes", "1M", "--fixture",
                                   fixture("dual-socket-8-pcie.topo")])
    eager = {r["env"]: r["us"]["median"] for r in (results_of(doc, kind="allreduce_nccl",
                                                               graph=False) if doc else [])}
    check("NCCL_P2P_LEVEL=NVL stages a PCIe pair", len(eager) == 3 and
          eager["NCCL_P2P_LEVEL=NVL"] == eager["NCCL_P2P_DISABLE=1"] > 1.5 * eager["default"],
          eager)


def test_gate():
    base = ["bench"] + FAST + ["copy", "--fixture", fixture("rtx3090-2-nvlink.topo")]
    low = run(base, env_extra={"PEERSCOPE_MIN_P2P_GBPS": "1"})
    check("gate: passes", low.returncode == 0 and "gate passed" in low.stderr, low.stderr)
    high = run(base, env_extra={"PEERSCOPE_MIN_P2P_GBPS": "100000"})
    check("gate: fails below", high.returncode == 1 and "gate failed" in high.stderr, high.stderr)
    bad = run(base, env_extra={"PEERSCOPE_MIN_P2P_GBPS": "fast"})
    check("gate: bad value", bad.returncode == 2, bad.stderr)


def test_bad_input():
    topo = ["--fixture", fixture("rtx3090-2-nvlink.topo")]
    for name, args in [("unknown benchmark", ["bandwidth"]), ("size not /16", ["--sizes", "3"]),
                       ("bad size", ["--sizes", "1X"]), ("iters 0", ["--iters", "0"]),
                       ("trials", ["--trials", "99"]), ("json and csv", ["--json", "--csv"]),
                       ("copy size", ["--copy-size", "1"]), ("unknown flag", ["--fast"]),
                       ("no such GPU", ["--gpus", "7"])]:
        proc = run(["bench"] + args + topo)
        check("bad input: " + name, proc.returncode == 2 and proc.stderr.startswith(
            "peerscope bench: ") and proc.stderr.count("\n") == 1, (proc.returncode, proc.stderr))
    svg = run(["bench", "copy", "--svg", "/nonexistent/dir/x.svg"] + FAST + topo)
    check("bad input: svg path", svg.returncode == 3, (svg.returncode, svg.stderr))


def main():
    for test in (test_nvlink_pair, test_figures_match_model, test_formats,
                 test_one_gpu_and_virtual_ranks, test_graphs_and_two_shot, test_faults,
                 test_nccl_faults, test_gate, test_bad_input):
        test()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
