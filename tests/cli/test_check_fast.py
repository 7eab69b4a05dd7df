#!/usr/bin/env python3
"""peerscope check's fast paths over the fake drivers (issue 17, item 5): a cached check reads
only the machine key from NVML, never the full probe; a cold check starts its worker before
the probe and hands it the GPU and job lists on stdin; the worker makes its contexts in
parallel and a context that fails on some GPUs leaves the others their verdicts. Verdicts
only: the timings are tests/bench/check_latency.py's."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import clitest  # noqa: E402
from clitest import check, fixture, proc_tree, run, workers_left  # noqa: E402

WORKER = os.environ["PEERSCOPE_WORKER"]
FAKE_DIR = os.environ["PEERSCOPE_FAKE_DIR"]


def nvml_calls(log):
    """The NVML calls each load of the fake NVML made (PEERSCOPE_FAKE_CALLS_LOG), summed; 0
    when NVML was never loaded."""
    if not os.path.exists(log):
        return 0
    with open(log) as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("nvml "))


def checked(args, env, log):
    if os.path.exists(log):
        os.unlink(log)
    proc = run(["check"] + args, env_extra=dict(env, PEERSCOPE_FAKE_CALLS_LOG=log))
    return proc, nvml_calls(log)


def strip_run(text):
    """What may differ between a fresh and a cached check: copy times, the timing line."""
    text = re.sub(r"\s+[0-9.]+ us", "", text)
    text = text.replace(" (cached)", "")
    return "\n".join(line.rstrip() for line in text.splitlines() if not line.startswith("Checked "))


def test_cached_reads_only_the_key():
    env = {"PEERSCOPE_CACHE_DIR": tempfile.mkdtemp(dir=clitest.TMP), "PEERSCOPE_VERIFY_SEED": "5eed"}
    log = os.path.join(clitest.TMP, "calls.log")
    ex = fixture("example-4x-a100.topo")  # 4 GPUs
    cold, cold_calls = checked(["--fixture", ex], env, log)
    cached, cached_calls = checked(["--fixture", ex], env, log)
    check("fast: cold exit 0", cold.returncode == 0, cold.stderr)
    check("fast: cached exit 0", cached.returncode == 0, cached.stderr)
    check("fast: cached answer came from the cache", "12 from the cache" in cached.stdout,
          cached.stdout[-300:])
    check("fast: cached output equals the fresh one", strip_run(cold.stdout) == strip_run(
        cached.stdout), (strip_run(cold.stdout), strip_run(cached.stdout)))
    # init, driver version, count, and per GPU a handle and its UUID: nothing else.
    key_calls = 3 + 2 * 4
    check("fast: cached check calls NVML only for the key", cached_calls <= key_calls + 1,
          cached_calls)
    check("fast: a cold check probes fully", cold_calls > 4 * 10, cold_calls)
    refreshed, refresh_calls = checked(["--refresh", "--fixture", ex], env, log)
    check("fast: --refresh probes fully", refresh_calls > 4 * 10, refresh_calls)
    check("fast: --refresh tests again", "from the cache" not in refreshed.stdout)
    # A fixture with other content is another machine: no cached probe for it.
    other = os.path.join(clitest.TMP, "edited.topo")
    with open(ex) as f, open(other, "w") as g:
        g.write(f.read().replace("4x", "four", 1) + "\n# edited\n")
    _, edited_calls = checked(["--fixture", other], env, log)
    check("fast: an edited fixture is probed again", edited_calls > 4 * 10, edited_calls)
    # JSON: the cached report is the fresh one's, verdicts and probe alike.
    a = json.loads(run(["check", "--json", "--fixture", ex], env_extra=env).stdout)
    b = json.loads(run(["check", "--json", "--fixture", ex], env_extra=env).stdout)
    for doc in (a, b):
        doc.pop("timings_ms", None)
        for p in doc["pairs"]:
            p.pop("copy_us", None)
            p["from_cache"] = None
            for m in p.get("modes", {}).values():
                m.pop("from_cache", None)
        for g in doc["gpus"]:
            for v in g.values():
                if isinstance(v, dict):
                    v.pop("from_cache", None)
    check("fast: cached JSON equals the fresh", a["gpus"] == b["gpus"] and a["pairs"] == b["pairs"],
          (a["gpus"][0], b["gpus"][0]))


def test_cached_from_procfs():
    """The system driver's key comes from its kernel module's files: no NVML at all."""
    ex = fixture("example-4x-a100.topo")
    root = tempfile.mkdtemp(dir=clitest.TMP)
    proc_tree(root, ex)
    env = {"PEERSCOPE_CACHE_DIR": tempfile.mkdtemp(dir=clitest.TMP), "PEERSCOPE_PROC_ROOT": root}
    log = os.path.join(clitest.TMP, "calls-procfs.log")
    _, cold_calls = checked(["--fixture", ex], env, log)
    cached, cached_calls = checked(["--fixture", ex], env, log)
    check("procfs: cold probes fully", cold_calls > 4 * 10, cold_calls)
    check("procfs: cached check never loads NVML", cached_calls == 0, cached_calls)
    check("procfs: cached verdicts", "12 from the cache" in cached.stdout, cached.stdout[-300:])
    # Another GPU in the same slot (a new UUID): another machine, probed again.
    info = os.path.join(root, "proc/driver/nvidia/gpus",
                        sorted(os.listdir(os.path.join(root, "proc/driver/nvidia/gpus")))[0],
                        "information")
    with open(info) as f:
        text = f.read()
    with open(info, "w") as f:
        f.write(re.sub(r"GPU-[0-9a-f]", "GPU-0", text, count=1))
    _, swapped_calls = checked(["--fixture", ex], env, log)
    check("procfs: a changed UUID is probed again", swapped_calls > 4 * 10, swapped_calls)


def test_early_worker_unused():
    """A probe not cached but every verdict cached: the worker started early is killed."""
    cache = tempfile.mkdtemp(dir=clitest.TMP)
    env = {"PEERSCOPE_CACHE_DIR": cache}
    ex = fixture("example-4x-a100.topo")
    run(["check", "--fixture", ex], env_extra=env)
    for name in os.listdir(cache):
        if name.startswith("probe-"):
            os.unlink(os.path.join(cache, name))
    proc = run(["check", "--fixture", ex], env_extra=env)
    check("early: verdicts from the cache", "12 from the cache" in proc.stdout, proc.stdout[-300:])
    time.sleep(0.2)
    check("early: no worker left behind", not workers_left(), workers_left())


def test_worker_lists_on_stdin():
    """`--gpus - --jobs -`: the lists come on stdin after cuInit; no lists: it says so."""
    env = dict(os.environ, PEERSCOPE_FIXTURE=fixture("example-4x-a100.topo"))
    args = [WORKER, "--protocol", "1", "--driver-dir", FAKE_DIR, "--gpus", "-", "--jobs", "-"]
    with open(fixture("example-4x-a100.topo")) as f:
        buses = re.findall(r"bus=(\S+)", f.read())
    gpus = ",".join(buses[:2])
    proc = subprocess.run(args, input="%s\nL0,L1,P0.1\n" % gpus, capture_output=True, text=True,
                          env=env, timeout=60)
    lines = proc.stdout.splitlines()
    check("stdin lists: exit 0", proc.returncode == 0, proc.stderr)
    check("stdin lists: hello first, with its time", lines and re.match(r"hello 1 \d+ t=", lines[0]),
          lines[:1])
    check("stdin lists: mapped after init", any(l == "map 1 1" for l in lines), lines)
    check("stdin lists: the pair ran", any(l.startswith("result pair 0 1 ok") for l in lines), lines)
    check("stdin lists: both contexts made in parallel, steps first",
          [l for l in lines if l.startswith("step ctx")] == ["step ctx 0", "step ctx 1"] and
          lines.index("step ctx 1") < min(i for i, l in enumerate(lines) if l.startswith("ctx ")),
          lines)
    proc = subprocess.run(args, input="", capture_output=True, text=True, env=env, timeout=60)
    check("stdin lists: none: init failed (3)", proc.returncode == 3, (proc.returncode, proc.stderr))
    check("stdin lists: none: says so", "no GPU and job lists on stdin" in proc.stderr, proc.stderr)


def test_parallel_contexts_fail():
    """Contexts fail on two GPUs at once: their pairs error, every other pair is ok."""
    src = fixture("fault-gpu-lost.topo")
    path = os.path.join(clitest.TMP, "lost-two.topo")
    with open(src) as f, open(path, "w") as g:
        g.write(f.read().replace("fault gpu_lost 2 after=35", "fault gpu_lost 1-2 after=35"))
    proc = run(["check", "--json", "--fixture", path])
    doc = json.loads(proc.stdout) if proc.stdout else {"pairs": []}
    bad = sorted((p["from"], p["to"]) for p in doc["pairs"] if p["verdict"] != "ok")
    want = sorted((a, b) for a in range(4) for b in range(4)
                  if a != b and (a in (1, 2) or b in (1, 2)))
    check("parallel ctx: the pairs of GPUs 1 and 2 fail", bad == want, bad)
    check("parallel ctx: reason names the context",
          all("context creation" in p["reason"] for p in doc["pairs"] if p["verdict"] != "ok"),
          [p["reason"] for p in doc["pairs"]][:3])
    check("parallel ctx: GPUs 0 and 3 ok", all(p["verdict"] == "ok" for p in doc["pairs"]
                                              if p["from"] in (0, 3) and p["to"] in (0, 3)), bad)
    check("parallel ctx: exit 1", proc.returncode == 1, proc.returncode)


def main():
    for test in (test_cached_reads_only_the_key, test_cached_from_procfs, test_early_worker_unused,
                 test_worker_lists_on_stdin, test_parallel_contexts_fail):
        try:
            test()
        except Exception as e:  # a crash in one group must not hide the others
            check(test.__name__, False, "raised %r" % e)
    return clitest.finish()


if __name__ == "__main__":
    sys.exit(main())
