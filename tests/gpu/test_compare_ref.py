#!/usr/bin/env python3
"""tests/gpu/compare_ref.py on captured outputs (tests/gpu/samples/): peerscope bench --json from
the fake drivers beside nvbandwidth --json, all_reduce_perf (stdout and -J JSON, eager and -G)
and p2pBandwidthLatencyTest written in those tools' own print formats. Checks each parser, the
pairing of figures (which matrix cell, the halved p2pBandwidthLatencyTest diagonal, the GPU and
not the CPU latency block), one GPU, broken inputs, and the whole 2-GPU output against a golden
file (PEERSCOPE_UPDATE_GOLDEN=1 rewrites it)."""
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "samples")
sys.path.insert(0, HERE)
import compare_ref  # noqa: E402

failures = []


def check(name, ok, detail=""):
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": %s" % (detail,)))
    if not ok:
        failures.append(name)


def sample(name):
    return os.path.join(SAMPLES, name)


def text(name):
    with open(sample(name)) as f:
        return f.read()


def run(*args):
    out = io.StringIO()
    with redirect_stdout(out):
        rc = compare_ref.main(list(args))
    return rc, out.getvalue()


def args_for(n, **override):
    files = {"--nvbandwidth": "nvbandwidth-%dgpu.json" % n,
             "--nccl": "all_reduce_perf-%dgpu.%s" % (n, "txt" if n == 2 else "json"),
             "--nccl-graph": "all_reduce_perf-%dgpu-graph.%s" % (n, "json" if n == 2 else "txt"),
             "--p2p": "p2pBandwidthLatencyTest-%dgpu.txt" % n}
    files.update(override)
    out = [sample("peerscope-%dgpu.json" % n)]
    for flag, name in files.items():
        if name:
            out += [flag, name if os.path.isabs(name) else sample(name)]
    return out


def tables(output):
    """{title: [row fields]} from the rendered output."""
    out, title = {}, None
    for line in output.splitlines():
        if line.startswith("== "):
            title = line[3:].split(" (")[0]
            out[title] = []
        elif title and not line.startswith("figure"):
            out[title].append(line)
    return out


def row(rows, figure, tool):
    for line in rows:
        if line.startswith(figure + " ") and line.endswith(tool):
            return line
    return None


def ratio_of(line):
    return float(re.split(r"\s{2,}", line.strip())[4])


def check_median_of_runs():
    """Repeated runs (PATH,PATH,...): the median per size; the text and JSON of one table twice
    and a third run twice as slow give the table itself."""
    slow = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    doc = json.loads(text("all_reduce_perf-1gpu.json"))
    for r in doc["results"]:
        if r.get("out_of_place"):
            r["out_of_place"]["time"] *= 2
    json.dump(doc, slow)
    slow.close()
    errors = []
    merged = compare_ref.read(",".join([sample("all_reduce_perf-1gpu.json")] * 2 + [slow.name]),
                              compare_ref.parse_nccl, "all_reduce_perf", errors)
    os.unlink(slow.name)
    check("nccl: the median of three runs", not errors and
          merged[2] == compare_ref.parse_nccl(text("all_reduce_perf-1gpu.json"))[2], errors)


def bench_gbps(bench, kind, src, **match):
    """The one result of that kind from GPU src (and the other fields given) in GB/s."""
    return [r for r in bench if r["kind"] == kind and r["src"] == src and
            all(r[k] == v for k, v in match.items())][0]["gbps"]


def check_ratio(name, rows, figure, tool, ours, theirs):
    """The row of that figure against that tool shows ours / theirs (to its printed digits)."""
    line = row(rows, figure, tool)
    check(name, line and abs(ratio_of(line) - ours / theirs) < 6e-4, line)


def test_parsers():
    nvb = compare_ref.parse_nvbandwidth(text("nvbandwidth-2gpu.json"))
    check("nvbandwidth: passed testcases only", "device_local_copy" in nvb and len(nvb) == 10,
          sorted(nvb))
    check("nvbandwidth: N/A diagonal is None",
          nvb["device_to_device_memcpy_write_ce"][0][0] is None and
          nvb["device_to_device_memcpy_write_ce"][0][1] > 0)
    one = compare_ref.parse_nvbandwidth(text("nvbandwidth-1gpu.json"))
    check("nvbandwidth: waived testcases left out",
          "device_to_device_memcpy_read_ce" not in one and len(one["device_local_copy"][0]) == 1)

    for name, ngpus, graph in (("all_reduce_perf-2gpu.txt", 2, 0),
                               ("all_reduce_perf-2gpu-graph.json", 2, 1),
                               ("all_reduce_perf-1gpu.json", 1, 0),
                               ("all_reduce_perf-1gpu-graph.txt", 1, 1)):
        n, g, times = compare_ref.parse_nccl(text(name))
        sizes = sorted(times)
        check("%s: ranks and graph launches" % name, (n, g) == (ngpus, graph), (n, g))
        check("%s: 1 KiB .. 64 MiB by 2" % name,
              sizes == [1024 << i for i in range(17)] and all(t > 0 for t in times.values()),
              sizes[:3])
    # The text and JSON forms of the same table agree (out-of-place time, not in-place).
    line = [ln for ln in text("all_reduce_perf-2gpu.txt").splitlines()
            if ln.split() and ln.split()[0] == "65536"][0]
    check("nccl text: out-of-place column",
          compare_ref.parse_nccl(text("all_reduce_perf-2gpu.txt"))[2][65536] ==
          float(line.split()[5]))

    check_median_of_runs()

    p2p = compare_ref.parse_p2p(text("p2pBandwidthLatencyTest-2gpu.txt"))
    check("p2p: six matrices", len(p2p) == 6 and all(len(m) == 2 and len(m[0]) == 2
                                                     for m in p2p.values()), sorted(p2p))
    # The latency sections print a GPU block then a CPU block: the GPU one is taken.
    gpu_block = [ln for ln in text("p2pBandwidthLatencyTest-2gpu.txt").splitlines()
                 if ln.startswith("P2P=Enabled Latency")]
    lines = text("p2pBandwidthLatencyTest-2gpu.txt").splitlines()
    first = lines[lines.index(gpu_block[0]) + 2].split()
    check("p2p: latency is the GPU block",
          p2p[compare_ref.P2P_LAT_ON][0] == [float(x) for x in first[1:]], first)


def test_two_gpus():
    rc, out = run(*args_for(2))
    check("2 GPUs: exit 0", rc == 0, out[-300:])
    t = tables(out)
    want = {"local copy, copy engine", "host to device", "device to host",
            "GPU to GPU copy engine, P2P on, one direction",
            "GPU to GPU copy engine, P2P on, both directions",
            "GPU to GPU copy engine, P2P off", "GPU to GPU SM kernel copy, P2P on",
            "small copy latency", "pointer chase latency over the link",
            "all-reduce, NCCL eager, fp16, time per operation",
            "all-reduce, NCCL in a CUDA graph, fp16, time per operation"}
    check("2 GPUs: every figure", want <= set(t), sorted(want - set(t)))

    bench = json.loads(text("peerscope-2gpu.json"))["bench"]["results"]
    nvb = compare_ref.parse_nvbandwidth(text("nvbandwidth-2gpu.json"))
    check_median_of_runs()

    p2p = compare_ref.parse_p2p(text("p2pBandwidthLatencyTest-2gpu.txt"))
    check_ratio("local copy: ratio against nvbandwidth", t["local copy, copy engine"], "GPU 0",
                "nvbandwidth device_local_copy", bench_gbps(bench, "local_ce", 0),
                nvb["device_local_copy"][0][0])
    check_ratio("local copy: p2pBandwidthLatencyTest diagonal halved",
                t["local copy, copy engine"], "GPU 1", "p2pBandwidthLatencyTest diagonal / 2",
                bench_gbps(bench, "local_ce", 1), p2p[compare_ref.P2P_UNI_OFF][1][1] / 2)
    # nvbandwidth's read test puts the reader (the copy's destination) in the row.
    check_ratio("P2P copy: read matrix transposed",
                t["GPU to GPU copy engine, P2P on, one direction"], "GPU0 -> GPU1",
                "nvbandwidth device_to_device_memcpy_read_ce",
                bench_gbps(bench, "copy_ce", 0, dst=1, p2p=True, bidirectional=False),
                nvb["device_to_device_memcpy_read_ce"][1][0])
    check("P2P both directions: one row per pair, <->",
          [ln.split("  ")[0] for ln in t["GPU to GPU copy engine, P2P on, both directions"]] ==
          ["GPU0 <-> GPU1"], t["GPU to GPU copy engine, P2P on, both directions"])
    sm = t["GPU to GPU SM kernel copy, P2P on"]
    check("SM copies: one direction only (bidirectional writes not mixed in)",
          len(sm) == 4 and all(0.8 < ratio_of(ln) < 1.25 for ln in sm), sm)
    lat = t["small copy latency"]
    check("latency: our smallest copy beside the 16 B one",
          len(lat) == 4 and all(" 4 B " in ln for ln in lat), lat)
    eager = t["all-reduce, NCCL eager, fp16, time per operation"]
    check("all-reduce eager: peerscope's sizes, 2 ranks, eager reference",
          len(eager) == 4 and all(ln.startswith("2 ranks") and ln.endswith("-g 2, out of place")
                                  for ln in eager), eager)
    graph = t["all-reduce, NCCL in a CUDA graph, fp16, time per operation"]
    check("all-reduce graph: against the -G run",
          len(graph) == 4 and all("-G 1" in ln for ln in graph), graph)

    golden = sample("compare-2gpu.txt")
    if os.environ.get("PEERSCOPE_UPDATE_GOLDEN") == "1":
        with open(golden, "w") as f:
            f.write(out)
    with open(golden) as f:
        check("2 GPUs: output as in samples/compare-2gpu.txt", f.read() == out,
              "rerun with PEERSCOPE_UPDATE_GOLDEN=1 if the change is intended")


def test_one_gpu():
    rc, out = run(*args_for(1))
    t = tables(out)
    check("1 GPU: exit 0", rc == 0, out[-300:])
    check("1 GPU: no pair tables", not any(title.startswith("GPU to GPU") for title in t),
          sorted(t))
    check("1 GPU: all-reduce on one rank, both modes",
          len(t.get("all-reduce, NCCL eager, fp16, time per operation", [])) == 4 and
          all(ln.startswith("1 rank ") for ln in
              t.get("all-reduce, NCCL in a CUDA graph, fp16, time per operation", [None])), out)


def test_broken_inputs():
    with tempfile.TemporaryDirectory() as tmp:
        cut = os.path.join(tmp, "nvb.json")
        with open(cut, "w") as f:
            f.write(text("nvbandwidth-2gpu.json")[:500])
        rc, out = run(*args_for(2, **{"--nvbandwidth": cut, "--p2p": os.path.join(tmp, "none")}))
        check("broken reference: exit 0", rc == 0, out[-300:])
        check("broken reference: named on one line each",
              out.count("reference: nvbandwidth: %s unreadable" % cut) == 1 and
              "reference: p2pBandwidthLatencyTest: " in out, out[:400])
        t = tables(out)
        check("broken reference: its rows left out, the others kept",
              "nvbandwidth" not in out.split("unreadable")[-1] and
              "all-reduce, NCCL eager, fp16, time per operation" in t, sorted(t))
        bad = os.path.join(tmp, "bench.json")
        with open(bad, "w") as f:
            f.write('{"schema": "peerscope.topology/1"}')
        rc, out = run(bad)
        check("no bench results: exit 1, one line", rc == 1 and out.count("\n") == 1, out)
        rc, out = run(sample("peerscope-2gpu.json"))
        check("no reference at all: says so", rc == 0 and "no figure in common" in out, out)
    # The script runs as bench.sh runs it: a process, stdlib only.
    proc = subprocess.run([sys.executable, "-I", os.path.join(HERE, "compare_ref.py")] +
                          args_for(1), capture_output=True, text=True)
    check("as a script: exit 0", proc.returncode == 0 and "== local copy" in proc.stdout,
          proc.stderr[-300:])


test_parsers()
test_two_gpus()
test_one_gpu()
test_broken_inputs()
print("%d failed" % len(failures) if failures else "all passed")
sys.exit(1 if failures else 0)
