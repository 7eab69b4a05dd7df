"""Shared helpers of the CLI script tests: counting checks, running the CLI on the fake
drivers in a clean environment, finding worker processes a test left behind, and a fake
kernel-module tree under PEERSCOPE_PROC_ROOT. (Older tests carry their own copies of these;
new ones import this.) tests/bench/check_latency.py imports it outside ctest too, where the
PEERSCOPE_* paths below are unset (None)."""
import atexit
import os
import re
import shutil
import subprocess
import tempfile
import time

CLI = os.environ.get("PEERSCOPE_CLI")
FIXTURES = os.environ.get("PEERSCOPE_FIXTURES")
SOURCE = os.environ.get("PEERSCOPE_SOURCE_DIR")

results = {"passed": 0, "failed": 0, "skipped": 0}
SKIP_EXIT = 77  # ctest's SKIP_RETURN_CODE for these scripts (tests/CMakeLists.txt)
TMP = tempfile.mkdtemp(prefix="peerscope-cli-test-")
atexit.register(shutil.rmtree, TMP, True)
MARKER = "PEERSCOPE_TEST_MARKER=%d-%d" % (os.getpid(), int(time.time()))


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, str(detail)[-3000:]))


def skip(name, why):
    """A check that could not run here: never a pass. One line says which and why;
    scripts/skip-report.sh counts these lines after ctest."""
    results["skipped"] += 1
    print("SKIP %s: %s" % (name, why))


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(args, timeout=120, env_extra=None):
    """Runs the CLI with its own cache directory and this run's marker; returns the process."""
    env = dict(os.environ)
    for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_NCCL",
                "PEERSCOPE_MIN_P2P_GBPS"):
        env.pop(key, None)
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    key, value = MARKER.split("=")
    env[key] = value
    env.update(env_extra or {})
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=timeout, env=env)


def workers_left():
    """peerscope-worker processes started by this run (they inherit MARKER)."""
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


def proc_tree(root, topo):
    """The kernel module's files of the fixture's machine under root (PEERSCOPE_PROC_ROOT): a
    cached check of the system driver reads its machine key there, without NVML."""
    with open(topo) as f:
        text = f.read()
    version = re.search(r"^driver version=(\S+)", text, re.M).group(1)
    for d in ("proc/sys/kernel/random", "proc/driver/nvidia", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "proc/sys/kernel/random/boot_id"), "w") as f:
        f.write("0d6cbd8c-1111-2222-3333-444455556666\n")
    with open(os.path.join(root, "proc/driver/nvidia/version"), "w") as f:
        f.write("NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Tue Jan 1 2024\n" % version)
    for i, (uuid, bus) in enumerate(re.findall(r"uuid=(\S+) bus=(\S+)", text)):
        d = os.path.join(root, "proc/driver/nvidia/gpus", bus.lower()[4:])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "information"), "w") as f:
            f.write("Model: \t\t NVIDIA X\nIRQ: \t\t 1\nGPU UUID: \t %s\n" % uuid)
        open(os.path.join(root, "dev", "nvidia%d" % i), "w").close()


def finish(counts=None):
    """The summary line and the exit code: 1 on a failure or when nothing ran, SKIP_EXIT when
    every check was skipped (ctest then reports the test as skipped, not passed)."""
    c = counts or results
    print("%d passed, %d failed, %d skipped" % (c["passed"], c["failed"], c.get("skipped", 0)))
    if c["failed"]:
        return 1
    if c["passed"] == 0 and c.get("skipped", 0):
        print("every check was skipped")
        return SKIP_EXIT
    if c["passed"] == 0:
        print("no checks ran")
        return 1
    return 0
