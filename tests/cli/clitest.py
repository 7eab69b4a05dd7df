"""Shared helpers of the CLI script tests: counting checks, running the CLI on the fake
drivers in a clean environment, and finding worker processes a test left behind.
(Older tests carry their own copies of these; new ones import this.)"""
import atexit
import os
import shutil
import subprocess
import tempfile
import time

CLI = os.environ["PEERSCOPE_CLI"]
FIXTURES = os.environ["PEERSCOPE_FIXTURES"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]

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
