#!/usr/bin/env python3
"""The caller's CUDA_VISIBLE_DEVICES end to end (issue 18, item 8): check, bench, plan and
launch use only the GPUs it allows, the fake libcuda records every context a worker makes
($PEERSCOPE_FAKE_CONTEXT_LOG) so a context on another GPU fails the test, output names GPUs by
nvidia-smi's numbers, and the emitted CUDA_VISIBLE_DEVICES selects the planned physical GPUs.
Forms: indexes (fastest-first and PCI_BUS_ID), reordered lists, GPU- UUIDs and prefixes,
MIG- devices, invalid entries, the empty string; --all-gpus. Run by ctest."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CLI, FIXTURES, SOURCE, TMP, check, finish, fixture, run  # noqa: E402

HGX = fixture("hgx-h100-8.topo")
MIXED = fixture("mixed-8-mig.topo")  # A100s 0-3, faster H100s 4-7, GPU 7 in MIG mode
MODELS = os.path.join(FIXTURES, "models")
HGX_UUID = {4: "GPU-0925e474-9b57-4bd1-b653-f8dd9b1f282e",
            6: "GPU-cdbd47d3-64be-4049-a372-db8f6e405d93"}
MIG_7 = "MIG-9c0d1e2f-0000-4000-8000-0000000c7002"
counter = [0]


def context_log():
    counter[0] += 1
    return os.path.join(TMP, "contexts-%d.log" % counter[0])


def contexts(log):
    """Fixture GPUs on which a worker made a primary context."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return sorted(int(line.split()[1]) for line in f if line.startswith("ctx "))


def run_visible(args, cvd, order=None, log=None, timeout=120):
    env = {"CUDA_VISIBLE_DEVICES": cvd} if cvd is not None else {}
    if order:
        env["CUDA_DEVICE_ORDER"] = order
    if log:
        env["PEERSCOPE_FAKE_CONTEXT_LOG"] = log
    return run(args, timeout=timeout, env_extra=env)


def test_check_indexes():
    log = context_log()
    proc = run_visible(["check", "--fixture", HGX, "--ascii"], "4,5,6,7", log=log)
    out = proc.stdout
    check("check 4-7: exit 0", proc.returncode == 0, proc.stderr)
    check("check 4-7: says so", "using the 4 GPUs CUDA_VISIBLE_DEVICES allows: 4,5,6,7" in out, out)
    check("check 4-7: 4 GPUs by nvidia-smi's numbers",
          "Detected 4 GPUs:" in out and "  GPU 4: " in out and "  GPU 0: " not in out, out)
    check("check 4-7: 12 pairs", "Checked 12 directed pairs" in out and "GPU0->" not in out, out)
    check("check 4-7: group", "CUDA_VISIBLE_DEVICES=4,5,6,7)" in out, out)
    # Each GPU's context is made once per worker; none on GPUs 0-3.
    made = contexts(log)
    check("check 4-7: contexts only on 4-7", set(made) == {4, 5, 6, 7}, made)

    log = context_log()
    proc = run_visible(["check", "--fixture", HGX, "--ascii", "--all-gpus"], "4,5,6,7", log=log)
    check("--all-gpus: the whole machine, said",
          "--all-gpus: using all 8 GPUs" in proc.stdout and "Checked 56 directed pairs" in proc.stdout,
          proc.stdout)
    check("--all-gpus: contexts on all 8", set(contexts(log)) == set(range(8)), contexts(log))

    proc = run_visible(["check", "--fixture", HGX, "--json"], "6,4")
    doc = json.loads(proc.stdout)
    ordinals = [g.get("visible_ordinal", "absent") for g in doc["gpus"]]
    check("check --json: visible_ordinal per GPU in the caller's order",
          ordinals == [None, None, None, None, 1, None, 0, None], ordinals)
    check("check --json: the notice on stderr", "allows: 6,4" in proc.stderr, proc.stderr)
    proc = run(["check", "--fixture", HGX, "--json"])
    check("unrestricted JSON has no visible_ordinal",
          all("visible_ordinal" not in g for g in json.loads(proc.stdout)["gpus"]))


def allowed(proc):
    """The list after 'allows: ' in the notice, or None."""
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        if "CUDA_VISIBLE_DEVICES allows: " in line:
            return line.split("allows: ")[1].split(" ")[0]
    return None


def test_forms():
    cases = [
        # (what, fixture, CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, allowed GPUs)
        ("fastest-first indexes", MIXED, "4,5,6,7", None, "0,1,2,3"),
        ("PCI_BUS_ID indexes", MIXED, "4,5,6,7", "PCI_BUS_ID", "4,5,6,7"),
        ("fastest-first, reordered", MIXED, "2,0", None, "6,4"),
        ("reordered", HGX, "7,5", "PCI_BUS_ID", "7,5"),
        ("invalid entry ends the list", HGX, "5,9,4", None, "5"),
        ("repeated entry ends the list", HGX, "5,3,5,4", None, "5,3"),
        ("UUID and a prefix", HGX, HGX_UUID[6] + "," + HGX_UUID[4][:12], None, "6,4"),
        ("MIG device", MIXED, MIG_7, None, "7"),
        ("old MIG form", MIXED, "MIG-GPU-5e6f7a8b-0000-4000-8000-00000000b107/0/0,1", None, "7,5"),
    ]
    for what, fix, cvd, order, want in cases:
        log = context_log()
        proc = run_visible(["check", "--fixture", fix, "--ascii"], cvd, order, log)
        got = allowed(proc)
        check("%s: allows %s" % (what, want), got == want, "%s %s" % (got, proc.stderr))
        touched = sorted(set(contexts(log)))
        check("%s: contexts only there" % what,
              touched == sorted(int(g) for g in want.split(",")), touched)
    proc = run_visible(["check", "--fixture", MIXED, "--ascii"], MIG_7)
    check("MIG device: no P2P, TP 1", "Recommended Tensor Parallel Size: 1" in proc.stdout, proc.stdout)

    for what, cvd in (("empty", ""), ("invalid first entry", "x,1"), ("unknown UUID", "GPU-ffff")):
        log = context_log()
        proc = run_visible(["check", "--fixture", HGX], cvd, log=log)
        check("%s: exit 2, one line" % what,
              proc.returncode == 2 and "hides every GPU" in proc.stderr and
              len(proc.stderr.strip().splitlines()) == 1, proc.stderr)
        check("%s: no context" % what, contexts(log) == [], contexts(log))
        proc = run_visible(["check", "--fixture", HGX, "--all-gpus", "--ascii"], cvd)
        check("%s: --all-gpus still works" % what, proc.returncode == 0, proc.stderr)


def test_gpus_within_the_list():
    proc = run_visible(["check", "--fixture", HGX, "--gpus", "0,4"], "4,5,6,7")
    check("--gpus outside: exit 2", proc.returncode == 2 and
          "GPU 0 is not among the GPUs CUDA_VISIBLE_DEVICES=4,5,6,7 allows" in proc.stderr,
          proc.stderr)
    log = context_log()
    proc = run_visible(["check", "--fixture", HGX, "--gpus", "5,6", "--ascii"], "4,5,6,7", log=log)
    check("--gpus inside", proc.returncode == 0 and "Detected 2 GPUs" in proc.stdout, proc.stderr)
    check("--gpus inside: contexts", set(contexts(log)) == {5, 6}, contexts(log))


def plan_env(proc):
    doc = json.loads(proc.stdout)
    return doc["gpus"], {e["name"]: e["value"] for e in doc["env"]}


def test_plan():
    mixtral = os.path.join(MODELS, "Mixtral-8x7B-Instruct-v0.1")
    # The user's 2nd and 3rd visible GPUs (fastest-first 1,2 = physical 5,6).
    proc = run_visible(["plan", "--model", mixtral, "--fixture", MIXED, "--format", "json"], "1,2")
    gpus, env = plan_env(proc)
    check("plan: on the allowed GPUs", gpus == [5, 6], gpus)
    check("plan: emitted as physical indexes, PCI order",
          env.get("CUDA_VISIBLE_DEVICES") == "5,6" and env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID",
          env)
    proc = run_visible(["plan", "--model", mixtral, "--fixture", HGX, "--format", "json"],
                       "4,5,6,7")
    gpus, env = plan_env(proc)
    check("plan 4-7: picks among them", set(gpus) <= {4, 5, 6, 7} and len(gpus) == 2, gpus)
    check("plan 4-7: emitted", env.get("CUDA_VISIBLE_DEVICES") == ",".join(map(str, gpus)), env)
    # Every visible GPU used: still emitted, since the caller's own list may be fastest-first.
    seventy = os.path.join(MODELS, "Llama-3.1-70B-Instruct")
    proc = run_visible(["plan", "--model", seventy, "--fixture", HGX, "--format", "json"],
                       "7,6,5,4", "PCI_BUS_ID")
    gpus, env = plan_env(proc)
    check("plan TP4 on 7,6,5,4", sorted(gpus) == [4, 5, 6, 7] and
          env.get("CUDA_VISIBLE_DEVICES") == ",".join(map(str, gpus)), (gpus, env))
    proc = run_visible(["plan", "--model", mixtral, "--fixture", HGX, "--gpus", "1"], "4,5,6,7")
    check("plan --gpus outside: exit 2", proc.returncode == 2, proc.stderr)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launch():
    record = os.path.join(TMP, "vllm-record.json")
    env = dict(os.environ)
    for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "CUDA_DEVICE_ORDER"):
        env.pop(key, None)
    env.update({"CUDA_VISIBLE_DEVICES": "4,5,6,7", "FAKE_VLLM_MODE": "ok",
                "FAKE_VLLM_RECORD": record, "PEERSCOPE_CACHE_DIR": os.path.join(TMP, "lc")})
    args = [CLI, "launch", os.path.join(MODELS, "Mixtral-8x7B-Instruct-v0.1"), "--fixture", HGX,
            "--vllm", os.path.join(SOURCE, "tests", "fake", "vllm"), "--port", str(free_port()),
            "--stop-grace", "3"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while not os.path.exists(record) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.3)  # the record is written in one go; let it land
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    text = out.decode(errors="replace")
    check("launch: vLLM started", os.path.exists(record), text)
    if os.path.exists(record):
        with open(record) as f:
            venv = json.load(f)["env"]
        got = venv.get("CUDA_VISIBLE_DEVICES", "")
        check("launch: vLLM sees two of 4-7 by PCI number",
              venv.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" and len(got.split(",")) == 2 and
              set(got.split(",")) <= {"4", "5", "6", "7"}, got)
    check("launch: notice", "CUDA_VISIBLE_DEVICES allows: 4,5,6,7" in text, text)


def test_bench():
    log = context_log()
    proc = run_visible(["bench", "copy", "--quick", "--fixture", HGX, "--json"], "6,7", log=log,
                       timeout=240)
    check("bench 6,7: exit 0", proc.returncode == 0, proc.stderr[-2000:])
    check("bench 6,7: contexts only there", set(contexts(log)) <= {6, 7} and contexts(log),
          contexts(log))


if __name__ == "__main__":
    test_check_indexes()
    test_forms()
    test_gpus_within_the_list()
    test_plan()
    test_launch()
    test_bench()
    sys.exit(finish())
