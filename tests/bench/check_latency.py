#!/usr/bin/env python3
"""Benchmark (not a test): the wall time of `peerscope check` on the fake drivers, cold
(--refresh: full probe, worker, contexts, copies) and cached (the verdicts of an earlier run;
the machine key from the fake NVML, and from kernel-module files as for a real driver),
with the fakes slowed down like a real driver (PEERSCOPE_FAKE_LATENCY_MS: nvmlInit, cuInit
and each cuDevicePrimaryCtxRetain sleep as on one H200; issue 17 item 5 measured cuInit
105 ms and a primary context 115 ms). Give two CLIs to compare a build before the change
with one after (both then play through the first one's fakes, which have the latency knob:
PEERSCOPE_DRIVER_DIR). Medians of `runs` runs, plus the report's own timings of the last run.
usage: check_latency.py PEERSCOPE [OLD_PEERSCOPE] [--runs N] [--latency SPEC]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from clitest import proc_tree  # noqa: E402
FIXTURES = os.path.join(HERE, "..", "fixtures")
LATENCY = "nvmlInit=30,cuInit=105,ctx=115"


def one_gpu_fixture(tmp):
    """The first GPU of the 4x A100 example alone: the H200 case of the issue."""
    path = os.path.join(tmp, "one-gpu.topo")
    with open(os.path.join(FIXTURES, "example-4x-a100.topo")) as f:
        lines = [l for l in f if not l.startswith(("gpu 1", "gpu 2", "gpu 3", "link", "p2p"))]
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def timed(cli, args, env, runs):
    walls, last = [], None
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.run([cli, "check", "--json"] + args, capture_output=True, text=True,
                              env=env)
        walls.append((time.monotonic() - t0) * 1e3)
        if proc.returncode not in (0, 1):
            raise SystemExit("%s check %s: exit %d: %s" % (cli, " ".join(args), proc.returncode,
                                                          proc.stderr.strip()))
        last = json.loads(proc.stdout).get("timings_ms", {})
    return statistics.median(walls), last


def fields(timings):
    return " ".join("%s=%.1f" % (k, v) for k, v in sorted(timings.items()) if v is not None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("old", nargs="?")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency", default=LATENCY)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="peerscope-check-latency-")
    fakes = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.cli))), "lib",
                         "peerscope", "fake")
    cases = [("1 GPU", one_gpu_fixture(tmp)),
             ("4 GPUs", os.path.join(FIXTURES, "example-4x-a100.topo")),
             ("8 GPUs", os.path.join(FIXTURES, "hgx-h100-8.topo"))]
    print("check wall time, median of %d runs; fake latency %s" % (a.runs, a.latency))
    for label, cli in (("after", a.cli), ("before", a.old)):
        if not cli:
            continue
        for name, fixture in cases:
            env = dict(os.environ, PEERSCOPE_FAKE_LATENCY_MS=a.latency, PEERSCOPE_DRIVER_DIR=fakes,
                       PEERSCOPE_CACHE_DIR=tempfile.mkdtemp(dir=tmp))
            env.pop("PEERSCOPE_FIXTURE", None)
            cold, t_cold = timed(cli, ["--refresh", "--fixture", fixture], env, a.runs)
            cached, t_cached = timed(cli, ["--fixture", fixture], env, a.runs)
            # The system driver's key from its kernel module's files: no nvmlInit (after only).
            root = tempfile.mkdtemp(dir=tmp)
            proc_tree(root, fixture)
            env["PEERSCOPE_PROC_ROOT"] = root
            timed(cli, ["--fixture", fixture], env, 1)  # caches the probe under that key
            procfs, t_procfs = timed(cli, ["--fixture", fixture], env, a.runs)
            print("%-6s %-6s cold %7.1f ms   cached %6.1f ms   cached, key from procfs %6.1f ms"
                  % (label, name, cold, cached, procfs))
            print("       cold:   %s" % fields(t_cold))
            print("       cached: %s" % fields(t_cached))
            print("       procfs: %s" % fields(t_procfs))


if __name__ == "__main__":
    main()
