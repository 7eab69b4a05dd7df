#!/usr/bin/env python3
"""Side by side: peerscope bench --json against NVIDIA's reference tools run in the same job on
the same GPUs (tests/gpu/bench.sh): nvbandwidth --json, nccl-tests' all_reduce_perf (its -J JSON
file or its stdout; eager and CUDA graph) and cuda-samples' p2pBandwidthLatencyTest (stdout).
One table per figure: figure, size, peerscope, reference, ratio (peerscope / reference) and the
reference tool. Standard library only.

  compare_ref.py BENCH_JSON [--nvbandwidth FILE] [--nccl FILE] [--nccl-graph FILE] [--p2p FILE]

A missing or unreadable reference file is named on one line and its rows are left out; exit 0
when the peerscope file was read (the tables are for people, not a pass/fail gate), 1 if not.
"""
import argparse
import json
import statistics
import re
import sys

MIB = 1 << 20


def size_text(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d B" % n


def first_json(text):
    """The first JSON object in text (a tool may print lines before it)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def number(cell):
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None  # "N/A": not measured


# ---- nvbandwidth --json -------------------------------------------------------------------

def parse_nvbandwidth(text):
    """{testcase name: matrix of floats or None}, only the testcases that passed."""
    doc = first_json(text)["nvbandwidth"]
    out = {}
    for case in doc.get("testcases", []):
        if case.get("status") == "Passed" and "bandwidth_matrix" in case:
            out[case["name"]] = [[number(c) for c in row] for row in case["bandwidth_matrix"]]
    return out


# ---- all_reduce_perf: -J JSON or stdout ---------------------------------------------------

def parse_nccl(text):
    """(ngpus, graph launches, {bytes: out-of-place us})."""
    if text.lstrip().startswith("{"):
        doc = json.loads(text)
        cfg = doc.get("config", {})
        times = {r["size"]: r["out_of_place"]["time"] for r in doc.get("results", [])
                 if r.get("out_of_place")}
        return cfg.get("ngpus"), cfg.get("graph", 0), times
    ngpus = graph = None
    times = {}
    for line in text.splitlines():
        m = re.search(r"nGpus (\d+) .* graph: (\d+)", line)
        if m:
            ngpus, graph = int(m.group(1)), int(m.group(2))
        fields = line.split()
        if len(fields) >= 9 and not line.startswith("#") and fields[0].isdigit():
            times[int(fields[0])] = float(fields[5])
    if not times:
        raise ValueError("no result lines")
    return ngpus, graph, times


# ---- p2pBandwidthLatencyTest stdout -------------------------------------------------------

def parse_p2p(text):
    """{section title: square matrix}; for latency sections the GPU block (not the CPU one)."""
    sections, title, rows = {}, None, None
    for line in text.splitlines():
        fields = line.split()
        if re.search(r"Matrix \((GB/s|us)\)$", line.strip()):
            if title and rows:
                sections[title] = rows
            title, rows = line.strip(), None
        elif title and fields and fields[0] in ("D\\D", "GPU") and rows is None:
            rows = []
        elif title and rows is not None and fields and fields[0].isdigit():
            rows.append([number(c) for c in fields[1:]])
        elif title and rows is not None:
            sections[title] = rows
            title, rows = None, None
    if title and rows:
        sections[title] = rows
    if not sections:
        raise ValueError("no matrices")
    return sections


P2P_UNI_OFF = "Unidirectional P2P=Disabled Bandwidth Matrix (GB/s)"
P2P_UNI_ON = "Unidirectional P2P=Enabled Bandwidth (P2P Writes) Matrix (GB/s)"
P2P_BI_OFF = "Bidirectional P2P=Disabled Bandwidth Matrix (GB/s)"
P2P_BI_ON = "Bidirectional P2P=Enabled Bandwidth Matrix (GB/s)"
P2P_LAT_OFF = "P2P=Disabled Latency Matrix (us)"
P2P_LAT_ON = "P2P=Enabled Latency (P2P Writes) Matrix (us)"


# ---- the tables ---------------------------------------------------------------------------

MISSING = object()  # the tool or its test did not run: no row, rather than a row of dashes


def cell(matrix, row, col):
    if matrix is None:
        return MISSING
    try:
        return matrix[row][col]
    except (IndexError, TypeError):
        return None


class Tables:
    def __init__(self):
        self.tables = []  # (title, unit, rows)

    def add(self, title, unit, rows):
        """A table unless peerscope measured nothing of the kind (one GPU has no pairs)."""
        rows = [r for r in rows if r[2] is not None and r[3] is not MISSING]
        if rows:
            self.tables.append((title, unit, rows))

    def render(self):
        out = []
        for title, unit, rows in self.tables:
            better = "lower" if unit in ("us", "ns") else "higher"
            out.append("== %s (%s, %s is better; ratio = peerscope / reference)"
                       % (title, unit, better))
            out.append("%-22s %9s %11s %11s %7s  %s" % ("figure", "size", "peerscope", "reference",
                                                       "ratio", "reference tool"))
            for figure, size, ours, ref, tool in rows:
                ratio = "%.3f" % (ours / ref) if ref else "-"
                ref = "%.2f" % ref if ref is not None else "-"
                out.append("%-22s %9s %11.2f %11s %7s  %s" % (figure, size_text(size), ours, ref,
                                                             ratio, tool))
        return "\n".join(out)


def ours(results, kind, **match):
    return [r for r in results if r["kind"] == kind and r["outcome"] == "ok"
            and all(r.get(k) == v for k, v in match.items())]


def copy_tables(t, results, nvb, p2p):
    local = []
    for r in ours(results, "local_ce"):
        g = r["src"]
        local.append(("GPU %d" % g, r["bytes"], r["gbps"],
                      cell(nvb.get("device_local_copy"), 0, g), "nvbandwidth device_local_copy"))
        diag = cell(p2p.get(P2P_UNI_OFF), g, g)
        # p2pBandwidthLatencyTest counts a local copy's read and write: halve it.
        half = diag / 2 if diag not in (None, MISSING) else diag
        local.append(("GPU %d" % g, r["bytes"], r["gbps"], half,
                      "p2pBandwidthLatencyTest diagonal / 2"))
    t.add("local copy, copy engine", "GB/s", local)
    for kind, title, ce, sm in (("h2d", "host to device", "host_to_device_memcpy_ce",
                                 "host_to_device_memcpy_sm"),
                                ("d2h", "device to host", "device_to_host_memcpy_ce",
                                 "device_to_host_memcpy_sm")):
        rows = []
        for r in ours(results, kind):
            for test in (ce, sm):
                rows.append(("GPU %d" % r["src"], r["bytes"], r["gbps"],
                             cell(nvb.get(test), 0, r["src"]), "nvbandwidth " + test))
        t.add(title + " (peerscope: copy engine)", "GB/s", rows)


def pair_tables(t, results, nvb, p2p):
    def pairs(kind, bidir, on, refs):
        rows = []
        for r in ours(results, kind, bidirectional=bidir, p2p=on):
            s, d = r["src"], r["dst"]
            for tool, matrix, row, col in refs(s, d):
                figure = "GPU%d %s GPU%d" % (s, "<->" if bidir else "->", d)
                rows.append((figure, r["bytes"], r["gbps"], cell(matrix, row, col), tool))
        return rows

    # nvbandwidth's read tests put the reading (destination) GPU in the row, writes the source.
    t.add("GPU to GPU copy engine, P2P on, one direction", "GB/s", pairs(
        "copy_ce", False, True, lambda s, d: [
            ("nvbandwidth device_to_device_memcpy_write_ce",
             nvb.get("device_to_device_memcpy_write_ce"), s, d),
            ("nvbandwidth device_to_device_memcpy_read_ce",
             nvb.get("device_to_device_memcpy_read_ce"), d, s),
            ("p2pBandwidthLatencyTest P2P=Enabled writes", p2p.get(P2P_UNI_ON), s, d)]))
    t.add("GPU to GPU copy engine, P2P on, both directions", "GB/s", pairs(
        "copy_ce", True, True, lambda s, d: [
            ("p2pBandwidthLatencyTest bidirectional P2P=Enabled", p2p.get(P2P_BI_ON), s, d)]))
    t.add("GPU to GPU copy engine, P2P off (staged), one direction", "GB/s", pairs(
        "copy_ce", False, False, lambda s, d: [
            ("p2pBandwidthLatencyTest P2P=Disabled", p2p.get(P2P_UNI_OFF), s, d)]))
    t.add("GPU to GPU copy engine, P2P off (staged), both directions", "GB/s", pairs(
        "copy_ce", True, False, lambda s, d: [
            ("p2pBandwidthLatencyTest bidirectional P2P=Disabled", p2p.get(P2P_BI_OFF), s, d)]))
    t.add("GPU to GPU SM kernel copy, P2P on", "GB/s",
          pairs("copy_sm_read", False, True, lambda s, d: [
              ("nvbandwidth device_to_device_memcpy_read_sm",
               nvb.get("device_to_device_memcpy_read_sm"), d, s)]) +
          pairs("copy_sm_write", False, True, lambda s, d: [
              ("nvbandwidth device_to_device_memcpy_write_sm",
               nvb.get("device_to_device_memcpy_write_sm"), s, d)]))


def latency_tables(t, results, nvb, p2p):
    rows = []
    for on, title in ((True, P2P_LAT_ON), (False, P2P_LAT_OFF)):
        smallest = {}  # p2pBandwidthLatencyTest copies 16 bytes: our smallest copy per pair
        for r in ours(results, "latency_write", p2p=on):
            key = (r["src"], r["dst"])
            if key not in smallest or r["bytes"] < smallest[key]["bytes"]:
                smallest[key] = r
        for r in smallest.values():
            s, d = r["src"], r["dst"]
            rows.append(("GPU%d -> GPU%d %s" % (s, d, "P2P" if on else "staged"), r["bytes"],
                         r["us"]["median"], cell(p2p.get(title), s, d),
                         "p2pBandwidthLatencyTest " + title.split(" Matrix")[0] + ", 16 B"))
    t.add("small copy latency", "us", rows)
    rows = []
    for r in ours(results, "latency_chase"):
        s, d = r["src"], r["dst"]
        if s != d:  # nvbandwidth chases pointers in peers' memory only
            rows.append(("GPU%d reads GPU%d" % (s, d), r["bytes"], r["ns_per_access"],
                         cell(nvb.get("device_to_device_latency_sm"), s, d),
                         "nvbandwidth device_to_device_latency_sm"))
    t.add("pointer chase latency over the link", "ns", rows)


def allreduce_tables(t, results, nccl_runs):
    for graph, run in ((False, nccl_runs.get("eager")), (True, nccl_runs.get("graph"))):
        if not run:
            continue
        ngpus, launches, times = run
        rows = []
        for r in ours(results, "allreduce_nccl", graph=graph, env="default", dtype="fp16",
                      virtual_ranks=False, ranks=ngpus):
            if r["group"] == list(range(ngpus)) and r["us"]:
                rows.append(("%d rank%s" % (ngpus, "s" if ngpus != 1 else ""), r["bytes"],
                             r["us"]["median"], times.get(r["bytes"], MISSING),
                             "all_reduce_perf -g %d%s, out of place" %
                             (ngpus, " -G %d" % launches if launches else "")))
        rows.sort(key=lambda row: row[1])
        t.add("all-reduce, NCCL %s, fp16, time per operation" % ("in a CUDA graph" if graph
                                                                   else "eager"), "us", rows)


def median_nccl(runs):
    """Several all_reduce_perf runs as one: the median time per size (one run of it is a single
    timing, which moves by 10-30% between runs at a few microseconds)."""
    ngpus, graph = runs[0][0], runs[0][1]
    sizes = set.intersection(*(set(r[2]) for r in runs))
    return ngpus, graph, {b: statistics.median(r[2][b] for r in runs) for b in sizes}


def read(path, parser, name, errors):
    """The parsed file; PATH1,PATH2,... for repeated all_reduce_perf runs (their median)."""
    if not path:
        return {}
    try:
        if "," in path and parser is parse_nccl:
            return median_nccl([read_one(p, parser) for p in path.split(",") if p])
        return read_one(path, parser)
    except (OSError, ValueError, KeyError, TypeError) as e:
        errors.append("reference: %s: %s unreadable (%s)" % (name, path, e))
        return {}


def read_one(path, parser):
    with open(path) as f:
        return parser(f.read())


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bench_json")
    ap.add_argument("--nvbandwidth")
    ap.add_argument("--nccl", help="all_reduce_perf, eager")
    ap.add_argument("--nccl-graph", help="all_reduce_perf -G N")
    ap.add_argument("--p2p", help="p2pBandwidthLatencyTest stdout")
    args = ap.parse_args(argv)
    try:
        with open(args.bench_json) as f:
            results = first_json(f.read())["bench"]["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("compare_ref: %s: no peerscope bench results (%s)" % (args.bench_json, e))
        return 1
    errors = []
    nvb = read(args.nvbandwidth, parse_nvbandwidth, "nvbandwidth", errors)
    p2p = read(args.p2p, parse_p2p, "p2pBandwidthLatencyTest", errors)
    nccl = {"eager": read(args.nccl, parse_nccl, "all_reduce_perf", errors) or None,
            "graph": read(args.nccl_graph, parse_nccl, "all_reduce_perf -G", errors) or None}
    t = Tables()
    copy_tables(t, results, nvb, p2p)
    pair_tables(t, results, nvb, p2p)
    latency_tables(t, results, nvb, p2p)
    allreduce_tables(t, results, nccl)
    print("\n".join(errors + [t.render() or "compare_ref: no figure in common"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
