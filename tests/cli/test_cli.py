#!/usr/bin/env python3
"""End-to-end tests of the peerscope CLI over the fake drivers: golden output per fixture,
JSON Schema validation of every report, the fault-injection matrix (verdict, exit code,
deadline, no worker left behind) and the bad-input cases. Run by ctest (tests/CMakeLists.txt);
PEERSCOPE_UPDATE_GOLDEN=1 rewrites the golden files for review."""
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import clitest  # noqa: E402
import schema_check  # noqa: E402

CLI = os.environ["PEERSCOPE_CLI"]
FIXTURES = os.environ["PEERSCOPE_FIXTURES"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
GOLDEN = os.path.join(SOURCE, "tests", "golden")
UPDATE = os.environ.get("PEERSCOPE_UPDATE_GOLDEN") == "1"

results = {"passed": 0, "failed": 0, "skipped": 0}
TMP = tempfile.mkdtemp(prefix="peerscope-cli-test-")
atexit.register(shutil.rmtree, TMP, True)


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))


def skip(name, why):
    """Never a pass: says which check did not run here and why (scripts/skip-report.sh)."""
    results["skipped"] += 1
    print("SKIP %s: %s" % (name, why))


def run(args, timeout=60, env_extra=None):
    env = dict(os.environ)
    env.pop("PEERSCOPE_FIXTURE", None)
    env.pop("PEERSCOPE_DRIVER_DIR", None)
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    key, value = MARKER.split("=")
    env[key] = value
    env["PEERSCOPE_VERIFY_SEED"] = "5eed"  # same corrupt bytes every run
    env.update(env_extra or {})
    t0 = time.monotonic()
    proc = subprocess.run([CLI] + args, capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - t0


def normalise(text):
    """Masks what changes from run to run: timings, paths to this checkout."""
    text = text.replace(SOURCE, "<src>")
    text = re.sub(r" *\d+(\.\d+)? (ms|us)", " N \\2", text)
    return text


def fixture(name):
    return os.path.join(FIXTURES, name)


def golden_compare(name, actual):
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(actual)
    expected = open(path).read() if os.path.exists(path) else None
    check("golden " + name, expected == actual,
          "(differs from %s; PEERSCOPE_UPDATE_GOLDEN=1 to review a change)" % path)


MARKER = "PEERSCOPE_TEST_MARKER=%d-%d" % (os.getpid(), int(time.time()))


def workers_left():
    """Processes started by this test run (they inherit MARKER), other tests' excluded."""
    out = subprocess.run(["pgrep", "-f", "peerscope-worker"], capture_output=True, text=True)
    left = []
    for pid in out.stdout.split():
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if MARKER.encode() in f.read().split(b"\0"):
                    left.append(pid)
        except OSError:
            pass  # gone already
    return left


def normalise_json(doc):
    for key in doc["timings_ms"]:
        doc["timings_ms"][key] = None
    doc["host"] = {"hostname": "<host>", "boot_id": "<boot>"}
    doc["source"]["origin"] = normalise(doc["source"]["origin"] or "")
    for pair in doc["pairs"]:
        pair["copy_us"] = None
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


# ---- every shipped fixture: golden text, schema-valid JSON ------------------------------
def test_fixtures():
    names = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".topo"))
    check("fixtures present", len(names) >= 7, str(names))
    # The goldens are a build with the CUDA kernels; without them every sm verdict differs
    # (unavailable), which the JSON checks below verify instead, and the count says so.
    kernels = kernels_built()
    for name in names:
        if name.startswith("fault-nvml") or name.startswith("fault-cuda-init") or \
                name.startswith("fault-missing"):
            continue  # driver-level faults: see test_driver_faults
        proc, _ = run(["check", "--fixture", fixture(name)])
        check("check %s exit code" % name, proc.returncode in (0, 1), proc.stderr)
        if kernels:
            golden_compare("check/%s.txt" % name[:-5], normalise(proc.stdout))
        proc, _ = run(["topo", "--fixture", fixture(name)])
        golden_compare("topo/%s.txt" % name[:-5], normalise(proc.stdout))
        proc, _ = run(["check", "--json", "--fixture", fixture(name)])
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            check("json %s parses" % name, False, str(e))
            continue
        errors = schema_check.errors(doc)
        check("json %s matches the schema" % name, not errors, "; ".join(errors[:3]))
        if kernels:
            golden_compare("json/%s.json" % name[:-5], normalise_json(doc))
        else:
            sm = {p["modes"]["sm"]["verdict"] for p in doc["pairs"]} - {"skipped", "unsupported"}
            check("json %s: sm unavailable without kernels" % name, sm <= {"unavailable", "error"},
                  sm)


def pair(doc, a, b):
    return next(p for p in doc["pairs"] if p["from"] == a and p["to"] == b)


# ---- the fault-injection matrix ---------------------------------------------------------
def test_faults():
    proc, _ = run(["check", "--json", "--fixture", fixture("fault-corrupt.topo")])
    doc = json.loads(proc.stdout)
    p = pair(doc, 1, 2)
    check("corrupt verdict", p["verdict"] == "corrupt", p)
    check("corrupt detail", p["corrupt"] is not None and p["corrupt"]["expected"] !=
          p["corrupt"]["seen"], p)
    check("corrupt claimed OK", p["claims"]["read"] == "OK", p)
    check("corrupt exit 1", proc.returncode == 1, proc.returncode)
    check("other pairs ok", pair(doc, 0, 1)["verdict"] == "ok", pair(doc, 0, 1))

    proc, took = run(["check", "--json", "--timeout-ms", "1500", "--fixture",
                      fixture("fault-hang.topo")])
    doc = json.loads(proc.stdout)
    p = pair(doc, 0, 3)
    check("hang verdict", p["verdict"] == "hang", p)
    check("hang exit 1", proc.returncode == 1, proc.returncode)
    check("hang workers counted", doc["verification"]["hang_workers"] >= 1, doc["verification"])
    # 3->0 hangs too: its read-back leg is the copy 0->3
    check("hang in the read-back leg", pair(doc, 3, 0)["verdict"] == "hang", pair(doc, 3, 0))
    check("pairs after the hang still verified", pair(doc, 2, 1)["verdict"] == "ok",
          pair(doc, 2, 1))
    # two hung steps (0->3 and the read-back of 3->0) at 1.5 s each, plus start-up
    check("hang within deadline", took < 8.0, "%.2fs" % took)

    # 719 is sticky, as on real CUDA: the worker that met it can do nothing more, so a fresh
    # one must test the pairs left, and the report must say so.
    proc, _ = run(["check", "--json", "--fixture", fixture("fault-copy-error.topo")])
    doc = json.loads(proc.stdout)
    errs = sorted((p["from"], p["to"]) for p in doc["pairs"] if p["verdict"] == "error")
    # the failing copy is the out leg of one pair and the read-back leg of its reverse
    check("copy error verdict", errs == [(0, 2), (2, 0)] and all(
        p["error_name"] == "CUDA_ERROR_LAUNCH_FAILED" for p in doc["pairs"]
        if p["verdict"] == "error"), errs)
    check("copy error: every other pair ok", sum(p["verdict"] == "ok" for p in doc["pairs"]) == 10,
          [p["verdict"] for p in doc["pairs"]])
    restarts = doc["verification"].get("worker_restarts", [])
    check("copy error: restarts listed", [(x["cause"], x["from"], x["to"], x["error_name"])
                                          for x in restarts] ==
          [("sticky_error", 0, 2, "CUDA_ERROR_LAUNCH_FAILED"),
           ("sticky_error", 2, 0, "CUDA_ERROR_LAUNCH_FAILED")] * 3, restarts)
    # the fault breaks every transfer from 0 into 2, the sm mode's kernel stores and the ipc
    # peer's copies too: a restart in each mode (ipc: its poisoned peer), named as such, and
    # no other pair fails in any mode
    for mode in ("sm", "ipc"):
        check(f"copy error: the {mode} mode fails only 0<->2",
              sorted((p["from"], p["to"]) for p in doc["pairs"]
                     if p["modes"][mode]["verdict"] != "ok") == [(0, 2), (2, 0)], doc["pairs"])
    check("copy error: restarts name their mode", "on the sm pair 0->2" in restarts[2]["reason"] and
          "in the ipc peer process" in restarts[4]["reason"], restarts)
    proc, _ = run(["check", "--fixture", fixture("fault-copy-error.topo")])
    check("copy error: the text says a worker restarted and why",
          "Worker restarted (sticky_error) after GPU2->GPU0: CUDA_ERROR_LAUNCH_FAILED" in
          proc.stdout, proc.stdout)

    # One sticky error on 8 GPUs: the other pairs keep their true verdicts.
    proc, _ = run(["check", "--json", "--fixture", fixture("fault-sticky-8.topo")])
    doc = json.loads(proc.stdout)
    bad = sorted((p["from"], p["to"], p["error_name"]) for p in doc["pairs"] if p["verdict"] != "ok")
    check("sticky on 8 GPUs: only 3->5 and its reverse fail",
          bad == [(3, 5, "CUDA_ERROR_ILLEGAL_ADDRESS"), (5, 3, "CUDA_ERROR_ILLEGAL_ADDRESS")], bad)
    check("sticky on 8 GPUs: 54 pairs ok, locals ok",
          sum(p["verdict"] == "ok" for p in doc["pairs"]) == 54 and
          all(g["local_copy"]["verdict"] == "ok" for g in doc["gpus"]), doc["gpus"])
    check("sticky on 8 GPUs: two restarts in each mode",
          len(doc["verification"].get("worker_restarts", [])) == 6,
          doc["verification"])

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-peer-limit.topo")])
    doc = json.loads(proc.stdout)
    check("peer limit: every pair still ok", proc.returncode == 0 and
          all(p["verdict"] == "ok" for p in doc["pairs"]), [p["reason"] for p in doc["pairs"]])

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-nvlink-down.topo")])
    doc = json.loads(proc.stdout)
    check("nvlink down: NV2 left of NV4", pair(doc, 0, 1)["link"] == "NV2" and
          pair(doc, 1, 0)["nvlink"]["count"] == 2, pair(doc, 0, 1))
    check("nvlink down: all down is PCIe", pair(doc, 2, 3)["link"] == "NODE" and
          pair(doc, 2, 3)["claims"]["nvlink"] == "NS", pair(doc, 2, 3))
    check("nvlink down: P2P still verified", all(p["verdict"] == "ok" for p in doc["pairs"]),
          [p["verdict"] for p in doc["pairs"]])

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-unsupported.topo")])
    doc = json.loads(proc.stdout)
    uns = [p for p in doc["pairs"] if p["verdict"] == "unsupported"]
    check("unsupported verdict", len(uns) >= 1, [p["verdict"] for p in doc["pairs"]])
    check("unsupported while not claimed is not a failure", proc.returncode == 0,
          proc.returncode)

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-gpu-lost.topo")])
    doc = json.loads(proc.stdout) if proc.stdout else None
    lost = [p for p in doc["pairs"] if p["verdict"] in ("error", "skipped")] if doc else []
    check("gpu lost gives error verdicts", len(lost) >= 1, proc.stderr)
    # A lost GPU ends only the pairs that touch it, with CUDA's 999 everywhere.
    check("gpu lost: exactly the pairs of GPU 2", doc and sorted(
        (p["from"], p["to"]) for p in lost) == sorted(
        [(2, b) for b in (0, 1, 3)] + [(a, 2) for a in (0, 1, 3)]), lost)
    check("gpu lost: CUDA_ERROR_UNKNOWN", all(p["error_name"] == "CUDA_ERROR_UNKNOWN"
                                               for p in lost), [p["error_name"] for p in lost])
    check("gpu lost: others ok", doc and all(p["verdict"] == "ok" for p in doc["pairs"]
                                             if 2 not in (p["from"], p["to"])), doc)
    check("gpu lost exit 1", proc.returncode == 1, proc.returncode)

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-local-corrupt.topo")])
    doc = json.loads(proc.stdout)
    check("local corrupt", doc["gpus"][1]["local_copy"]["verdict"] == "corrupt", doc["gpus"][1])
    check("local corrupt exit 1", proc.returncode == 1, proc.returncode)

    time.sleep(0.2)
    check("no worker left behind", not workers_left(), workers_left())


def test_driver_faults():
    proc, _ = run(["check", "--fixture", fixture("fault-nvml-init.topo")])
    check("nvml init fails: exit 4", proc.returncode == 4, proc.returncode)
    check("nvml init fails: one line", proc.stderr.count("\n") == 1 and "nvmlInit" in
          proc.stderr, proc.stderr)
    proc, _ = run(["check", "--fixture", fixture("fault-cuda-init.topo")])
    check("cuda init fails: exit 4", proc.returncode == 4, proc.returncode)
    check("cuda init fails: says CUDA", "CUDA" in proc.stderr, proc.stderr)
    proc, _ = run(["check", "--fixture", fixture("fault-missing-symbol.topo")])
    check("missing symbol: exit 4", proc.returncode == 4, proc.returncode)
    check("missing symbol: named", "cuCtxEnablePeerAccess" in proc.stderr, proc.stderr)
    fake = os.path.join(os.environ["PEERSCOPE_FAKE_DIR"], "..", "fake-broken")
    proc, _ = run(["check"], env_extra={"PEERSCOPE_DRIVER_DIR": fake,
                                        "PEERSCOPE_FIXTURE": fixture("example-4x-a100.topo")})
    check("required NVML symbol missing: exit 4", proc.returncode == 4, proc.stderr)
    check("required NVML symbol missing: named", "nvmlDeviceGetHandleByIndex" in proc.stderr,
          proc.stderr)
    legacy = os.path.join(os.environ["PEERSCOPE_FAKE_DIR"], "..", "fake-legacy")
    proc, _ = run(["check", "--json"], env_extra={
        "PEERSCOPE_DRIVER_DIR": legacy, "PEERSCOPE_FIXTURE": fixture("example-4x-a100.topo")})
    check("legacy driver (no cuGetProcAddress, old NVML names) works", proc.returncode == 0,
          proc.stderr)
    proc, _ = run(["check", "--live"], env_extra={"PEERSCOPE_DRIVER_DIR": "/nonexistent"})
    check("no driver, --live: exit 4", proc.returncode == 4, proc.returncode)
    check("no driver, --live: message", "libnvidia-ml.so.1" in proc.stderr, proc.stderr)


def test_bundled_example():
    proc, _ = run(["check"], env_extra={"LD_LIBRARY_PATH": "/nonexistent"})
    if "no NVIDIA driver" not in proc.stdout.split("\n")[0]:
        skip("bundled example", "an NVIDIA driver is installed here, so the CLI does not show "
             "the bundled example (it runs on machines without one, as in CI)")
        return
    check("bundled example: first line says so", "bundled example" in proc.stdout.split("\n")[0],
          proc.stdout[:200])
    check("bundled example: origin format", "Detected 4 GPUs:" in proc.stdout and
          "GPU 0: NVIDIA A100-SXM4-40GB (40960MB)" in proc.stdout and
          "Recommended Tensor Parallel Size: 4" in proc.stdout, proc.stdout)
    check("bundled example: exit 0", proc.returncode == 0, proc.returncode)


def test_usage_errors():
    ex = fixture("example-4x-a100.topo")
    for args, needle in ((["check", "--frobnicate"], "unknown option"),
                         (["check", "--fixture", ex, "--gpus", "9"], "GPU 9 does not exist"),
                         (["check", "--fixture", ex, "--gpus", "x"], "not a GPU index"),
                         (["check", "--fixture", ex, "--tp", "8"], "larger than"),
                         (["check", "--tp", "0"], "positive integer"),
                         (["frob"], "unknown command"),
                         (["topo", "--bogus"], "unknown option")):
        proc, _ = run(args)
        check("usage %s exit 2" % " ".join(args[-2:]), proc.returncode == 2, proc.returncode)
        check("usage %s message" % " ".join(args[-2:]),
              needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr)
    # The shared machine options (apps/cli/source_args.c) answer alike in every command.
    for cmd in ("check", "topo", "doctor", "capture", "plan", "launch"):
        for args, needle in ((["--timeout-ms"], "option '--timeout-ms' needs a value"),
                             (["--timeout-ms", "0"], "--timeout-ms: '0' is not a positive"),
                             (["--frob"], "unknown option '--frob'")):
            proc, _ = run([cmd] + args)
            check("shared %s %s exit 2" % (cmd, args[0]), proc.returncode == 2, proc.returncode)
            check("shared %s %s message" % (cmd, " ".join(args)),
                  needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr)
    bad_dir = os.path.join(FIXTURES, "bad")
    for name in sorted(os.listdir(bad_dir)) if os.path.isdir(bad_dir) else []:
        proc, _ = run(["check", "--fixture", os.path.join(bad_dir, name)])
        check("bad fixture %s exit 3" % name, proc.returncode == 3, proc.returncode)
        check("bad fixture %s names file:line:col" % name,
              re.search(re.escape(name) + r":\d+:\d+: ", proc.stderr) is not None, proc.stderr)
    proc, _ = run(["check", "--fixture", "/nonexistent.topo"])
    check("missing fixture exit 3", proc.returncode == 3, proc.returncode)


def kernels_built():
    """Whether this build has the CUDA kernels (nvcc at build time): without them the sm mode
    says "unavailable" everywhere, never ok."""
    proc, _ = run(["check", "--json", "--modes", "sm", "--gpus", "0", "--fixture",
                   fixture("example-4x-a100.topo")])
    sm = json.loads(proc.stdout)["gpus"][0]["local_copy"]["modes"]["sm"]
    if sm["verdict"] == "unavailable":
        check("no kernels: said so", "built without CUDA kernels" in (sm["reason"] or ""), sm)
        print("note: this build has no CUDA kernels (no nvcc): sm verdicts are 'unavailable'")
        return False
    return True


def modes_of(p):
    return p["verdict"], p["modes"]["sm"]["verdict"], p["modes"]["ipc"]["verdict"]


# ---- the verification modes (ce, sm, ipc) ------------------------------------------------
def test_modes():
    kernels = kernels_built()
    sm_ok = "ok" if kernels else "unavailable"
    proc, _ = run(["check", "--json", "--fixture", fixture("fault-sm-corrupt.topo")])
    doc = json.loads(proc.stdout)
    check("modes: all three ran", doc["verification"]["modes"] == ["ce", "sm", "ipc"],
          doc["verification"])
    p = pair(doc, 0, 3)
    if kernels:
        check("sm corrupt: ce ok, sm corrupt, ipc ok", modes_of(p) == ("ok", "corrupt", "ok"), p)
        check("sm corrupt: the last byte, storing into the peer",
              "offset 1048575" in p["modes"]["sm"]["reason"] and
              "storing into GPU3" in p["modes"]["sm"]["reason"], p["modes"]["sm"])
        check("sm corrupt: exit 1", proc.returncode == 1, proc.returncode)
    others = [modes_of(q) for q in doc["pairs"] if (q["from"], q["to"]) != (0, 3)]
    check("sm corrupt: every other pair passes", all(m == ("ok", sm_ok, "ok") for m in others),
          others)

    proc, _ = run(["check", "--json", "--fixture", fixture("fault-ipc-fails.topo")])
    doc = json.loads(proc.stdout)
    bad = [q for q in doc["pairs"] if modes_of(q) != ("ok", sm_ok, "error") or
           q["modes"]["ipc"]["error_name"] != "CUDA_ERROR_INVALID_VALUE"]
    check("ipc fails: ce and sm pass, ipc errors on every pair", not bad, bad[:2])
    local = [g["local_copy"]["modes"]["ipc"]["verdict"] for g in doc["gpus"]]
    check("ipc fails: every local control too", local == ["error"] * 4, local)
    check("ipc fails: exit 1", proc.returncode == 1, proc.returncode)
    check("ipc fails: validates", not schema_check.errors(doc), schema_check.errors(doc)[:3])
    proc, _ = run(["check", "--fixture", fixture("fault-ipc-fails.topo")])
    check("ipc fails: the finding names --ipc=host", "--ipc=host" in proc.stdout, proc.stdout)
    proc, _ = run(["plan", "--json", "--params-b", "120", "--fixture",
                   fixture("fault-ipc-fails.topo")])
    plan = json.loads(proc.stdout) if proc.stdout else {}
    plan_text = json.dumps(plan)
    check("ipc fails: the plan turns NCCL P2P and custom all-reduce off",
          "NCCL_P2P_DISABLE" in plan_text and "--disable-custom-all-reduce" in plan_text and
          "ipc: error" in plan_text, plan_text[:400])

    proc, _ = run(["check", "--json", "--modes", "ce", "--fixture", fixture("fault-ipc-fails.topo")])
    doc = json.loads(proc.stdout)
    check("--modes ce: only ce ran", doc["verification"]["modes"] == ["ce"] and
          all(modes_of(q) == ("ok", "not_run", "not_run") for q in doc["pairs"]), doc["verification"])
    check("--modes ce: exit 0", proc.returncode == 0, proc.returncode)
    proc, _ = run(["check", "--modes", "ce,nvlink", "--fixture", fixture("fault-ipc-fails.topo")])
    check("--modes bad: exit 2 naming the list", proc.returncode == 2 and "--modes" in proc.stderr,
          proc.stderr)

    # One GPU: by default ce and sm run their local controls and ipc is left out (no pair
    # shares memory across processes there), said so; --modes all runs ipc's too (two
    # processes on one GPU).
    proc, _ = run(["check", "--gpus", "1", "--fixture", fixture("example-4x-a100.topo")])
    check("one GPU: the default leaves ipc out and says why",
          "ipc (across processes) not run on one GPU" in proc.stdout and "--modes all" in proc.stdout,
          proc.stdout)
    proc, _ = run(["check", "--json", "--gpus", "1", "--fixture", fixture("example-4x-a100.topo")])
    doc = json.loads(proc.stdout)
    g = doc["gpus"][1]["local_copy"]
    got = (g["verdict"], g["modes"]["sm"]["verdict"], g["modes"]["ipc"]["verdict"])
    check("one GPU, default modes: ce and sm local controls, ipc not run",
          got == ("ok", sm_ok, "not_run") and doc["verification"]["modes"] == ["ce", "sm"], g)
    proc, _ = run(["check", "--json", "--gpus", "1", "--modes", "all", "--fixture",
                   fixture("example-4x-a100.topo")])
    doc = json.loads(proc.stdout)
    g = doc["gpus"][1]["local_copy"]
    got = (g["verdict"], g["modes"]["sm"]["verdict"], g["modes"]["ipc"]["verdict"])
    check("one GPU, --modes all: a local control in each mode", got == ("ok", sm_ok, "ok"), g)

    proc, took = run(["check", "--json", "--timeout-ms", "1500", "--fixture",
                      fixture("fault-hang.topo")])
    doc = json.loads(proc.stdout)
    p = pair(doc, 0, 3)
    check("hang: the other modes skip the hung pair", modes_of(p) == ("hang", "skipped", "skipped")
          and "hung" in p["modes"]["ipc"]["reason"], p)
    check("hang: other pairs pass in every mode", modes_of(pair(doc, 1, 2)) == ("ok", sm_ok, "ok"),
          pair(doc, 1, 2))
    time.sleep(0.2)
    check("modes: no worker or ipc peer left behind", not workers_left(), workers_left())


def test_cache():
    env = {"PEERSCOPE_CACHE_DIR": tempfile.mkdtemp(dir=TMP)}
    ex = fixture("example-4x-a100.topo")
    first, _ = run(["check", "--json", "--fixture", ex], env_extra=env)
    second, _ = run(["check", "--json", "--fixture", ex], env_extra=env)
    third, _ = run(["check", "--json", "--refresh", "--fixture", ex], env_extra=env)
    d1, d2, d3 = (json.loads(p.stdout) for p in (first, second, third))
    check("cache: first run fresh", not d1["verification"]["cache_used"])
    check("cache: second run cached", d2["verification"]["cache_used"] and
          all(p["from_cache"] for p in d2["pairs"]))
    check("cache: --refresh tests again", not d3["verification"]["cache_used"])
    check("cache: the ipc verdicts too", all(p["modes"]["ipc"]["from_cache"] and
                                              p["modes"]["ipc"]["verdict"] == "ok"
                                              for p in d2["pairs"]), d2["pairs"][0])


def main():
    for test in (test_fixtures, test_faults, test_driver_faults, test_bundled_example,
                 test_usage_errors, test_modes, test_cache):
        try:
            test()
        except Exception as e:  # a crash in one group must not hide the others
            check(test.__name__, False, "raised %r" % e)
    return clitest.finish(results)  # the summary and exit code every script shares


if __name__ == "__main__":
    sys.exit(main())
