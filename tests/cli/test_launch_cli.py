#!/usr/bin/env python3
"""End-to-end tests of `peerscope launch` against the fake vLLM (tests/fake/vllm): happy
path, crash at start, errors vLLM reports, hang past the deadline, Ctrl-C and SIGTERM, port in
use, vLLM not installed, --dry-run and conflicting extra arguments. Every port is on 127.0.0.1
and picked free; every case is bounded in time; no process may be left behind (each run's
processes carry a marker in their environment). Run by ctest (tests/CMakeLists.txt)."""
import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLI = os.environ["PEERSCOPE_CLI"]
FIXTURES = os.environ["PEERSCOPE_FIXTURES"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
FAKE_VLLM = os.path.join(SOURCE, "tests", "fake", "vllm")
FIXTURE = os.path.join(FIXTURES, "example-4x-a100.topo")
MODEL = os.path.join(FIXTURES, "models", "Llama-3.1-8B-Instruct")
MARKER = "PEERSCOPE_TEST_MARKER=launch-%d-%d" % (os.getpid(), int(time.time()))

results = {"passed": 0, "failed": 0}
TMP = tempfile.mkdtemp(prefix="peerscope-launch-test-")
atexit.register(shutil.rmtree, TMP, True)


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(extra=None):
    env = dict(os.environ)
    for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "FAKE_VLLM_MODE", "NCCL_DEBUG"):
        env.pop(key, None)
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    key, value = MARKER.split("=")
    env[key] = value
    env.update(extra or {})
    return env


def base_args(port, *more):
    return ["launch", MODEL, "--fixture", FIXTURE, "--vllm", FAKE_VLLM, "--port", str(port),
            "--stop-grace", "3"] + list(more)


def run(args, timeout=60, extra_env=None):
    t0 = time.monotonic()
    proc = subprocess.run([CLI] + args, capture_output=True, text=True, timeout=timeout,
                          env=environment(extra_env))
    return proc, time.monotonic() - t0


def left_behind():
    """Processes of this run (they inherit MARKER) still alive; zombies do not count."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if MARKER.encode() not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                left.append("%s %s" % (pid, f.read().replace(b"\0", b" ").decode()))
        except OSError:
            pass  # gone already
    return left


def check_none_left(name):
    deadline = time.monotonic() + 3
    while left_behind() and time.monotonic() < deadline:
        time.sleep(0.1)
    check(name + ": no process left behind", not left_behind(), str(left_behind()))


class Launch:
    """peerscope launch in the background, its output read line by line with deadlines
    (os.read on the pipe: a buffered reader would hide lines from select)."""

    def __init__(self, args, extra_env=None):
        self.proc = subprocess.Popen([CLI] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=environment(extra_env))
        self.fd = self.proc.stdout.fileno()
        self.data = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.data and time.monotonic() < deadline:
            if self.sel.select(timeout=0.2):
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.data += chunk
        return text.encode() in self.data

    def finish(self, timeout=30):
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
            rest += b"<peerscope killed by the test after %d s>\n" % timeout
        self.data += rest or b""
        return self.proc.returncode

    def text(self):
        return self.data.decode(errors="replace")


def test_happy_path_and_ctrl_c():
    for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
        port = free_port()
        record = os.path.join(TMP, "record-%s.json" % name)
        launch = Launch(base_args(port, "--tp", "4", "--nccl-debug"),
                        {"FAKE_VLLM_MODE": "ok", "FAKE_VLLM_RECORD": record})
        up = launch.wait_for("Ctrl-C stops it", 30)
        check("%s: came up" % name, up, launch.text())
        if up:
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/models" % port, timeout=5) as r:
                models = json.load(r)
            check("%s: /v1/models" % name, models["data"][0]["id"] == MODEL, str(models))
        text = launch.text()
        check("%s: served URL printed" % name,
              "serving %s at http://127.0.0.1:%d/v1" % (MODEL, port) in text, text)
        check("%s: log streamed with prefix" % name,
              "[vllm] (APIServer pid=" in text and "vLLM API server version" in text, text)
        check("%s: summary" % name,
              "custom all-reduce: on" in text and "NCCL transport: P2P/IPC" in text and
              "KV cache: 435216 tokens" in text and
              "max concurrency: 3.32x at 131072 tokens per request" in text, text)
        t0 = time.monotonic()
        launch.proc.send_signal(sig)
        code = launch.finish(30)
        check("%s: exit 0 after stop" % name, code == 0, "%s %s" % (code, launch.text()))
        check("%s: stopped in time" % name, time.monotonic() - t0 < 10)
        check_none_left(name)
        with open(record) as f:
            rec = json.load(f)
        argv = rec["argv"]
        check("%s: argv array, no shell" % name,
              argv[1:4] == ["serve", MODEL, "--tensor-parallel-size"] and
              os.path.basename(argv[0]) == "vllm", str(argv))
        check("%s: port and host" % name,
              argv[argv.index("--port") + 1] == str(port) and
              argv[argv.index("--host") + 1] == "127.0.0.1", str(argv))
        check("%s: plan's arguments" % name,
              "--distributed-executor-backend" in argv and "--max-model-len" in argv, str(argv))
        check("%s: environment" % name,
              rec["env"].get("NCCL_DEBUG") == "INFO" and MARKER.split("=")[1] in
              rec["env"].values(), str(rec["env"].get("NCCL_DEBUG")))
        check("%s: own process group" % name, rec["pgid"] == rec["pid"], str(rec))


def test_plan_environment_reaches_vllm():
    port = free_port()
    record = os.path.join(TMP, "record-env.json")
    launch = Launch(base_args(port, "--gpus", "2,3"),
                    {"FAKE_VLLM_MODE": "ok", "FAKE_VLLM_RECORD": record})
    check("gpus 2,3: came up", launch.wait_for("Ctrl-C stops it", 30), launch.text())
    launch.proc.send_signal(signal.SIGINT)
    check("gpus 2,3: exit 0", launch.finish(30) == 0, launch.text())
    with open(record) as f:
        env = json.load(f)["env"]
    check("gpus 2,3: CUDA_VISIBLE_DEVICES", env.get("CUDA_VISIBLE_DEVICES") == "2" and
          env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID", str(env.get("CUDA_VISIBLE_DEVICES")))
    check_none_left("gpus 2,3")


def test_custom_all_reduce_off():
    port = free_port()
    launch = Launch(base_args(port, "--tp", "4"), {"FAKE_VLLM_MODE": "ok", "FAKE_VLLM_PCIE": "1"})
    check("PCIe TP=4: came up", launch.wait_for("Ctrl-C stops it", 30), launch.text())
    launch.proc.send_signal(signal.SIGINT)
    check("PCIe TP=4: exit 0", launch.finish(30) == 0, launch.text())
    check("PCIe TP=4: custom all-reduce off with vLLM's reason",
          "custom all-reduce: off (it's not supported on more than two PCIe-only GPUs.); the "
          "plan expected it on" in launch.text(), launch.text())
    check_none_left("PCIe TP=4")


def test_failures():
    cases = [
        ("crash", 1, "CUDA out of memory", "plan with more GPUs"),
        ("error", 1, "must be divisible by tensor parallel size", "attention heads"),
        ("kv", 1, "KV cache is needed", "--max-model-len 74640"),
        ("exit3", 3, None, None),
    ]
    for mode, want, failure, hint in cases:
        port = free_port()
        proc, took = run(base_args(port), 60, {"FAKE_VLLM_MODE": mode})
        out = proc.stdout + proc.stderr
        check("%s: exit %d (vLLM's status)" % (mode, want), proc.returncode == want,
              "%d %s" % (proc.returncode, out))
        check("%s: quick" % mode, took < 20, "%.1f s" % took)
        if failure:
            check("%s: failure classified" % mode, "failure: " in out and failure in out, out)
            check("%s: suggestion" % mode, "suggestion: " in out and hint in out, out)
        check("%s: says it did not come up" % mode, "without answering /health" in out, out)
        check_none_left(mode)


def test_hang_past_deadline():
    for ignore in ("0", "1"):
        name = "hang%s" % (" ignoring SIGTERM" if ignore == "1" else "")
        port = free_port()
        proc, took = run(base_args(port, "--timeout", "2", "--tp", "2", "--nccl-debug"), 60,
                         {"FAKE_VLLM_MODE": "hang", "FAKE_VLLM_IGNORE_TERM": ignore})
        out = proc.stdout + proc.stderr
        check("%s: exit 1" % name, proc.returncode == 1, "%d %s" % (proc.returncode, out))
        check("%s: bounded" % name, took < 2 + 3 + 8, "%.1f s" % took)
        check("%s: deadline reported" % name, "no answer from http://127.0.0.1:%d/health" % port
              in out, out)
        check("%s: NCCL suggestion" % name, "NCCL_P2P_DISABLE=1" in out, out)
        if ignore == "1":
            check("%s: SIGKILL escalation" % name, "SIGKILL" in out, out)
        check("%s: where it stopped" % name, "vLLM's last line: " in out and "NCCL INFO" in out,
              out)
        check_none_left(name)


def test_ctrl_c_before_ready():
    port = free_port()
    launch = Launch(base_args(port), {"FAKE_VLLM_MODE": "slow", "FAKE_VLLM_DELAY": "60"})
    check("early Ctrl-C: started", launch.wait_for("Initializing a V1 LLM engine", 30),
          launch.text())
    launch.proc.send_signal(signal.SIGINT)
    code = launch.finish(20)
    check("early Ctrl-C: exit 130", code == 130, "%s %s" % (code, launch.text()))
    check_none_left("early Ctrl-C")


def test_port_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        record = os.path.join(TMP, "record-port.json")
        proc, _ = run(base_args(port), 30, {"FAKE_VLLM_RECORD": record})
    check("port in use: exit 1", proc.returncode == 1, "%d %s" % (proc.returncode, proc.stderr))
    check("port in use: message", "127.0.0.1:%d is already in use" % port in proc.stderr and
          "--port" in proc.stderr, proc.stderr)
    check("port in use: vLLM not started", not os.path.exists(record))
    check_none_left("port in use")


def test_not_installed():
    proc, _ = run(base_args(free_port()) + ["--vllm", os.path.join(TMP, "no", "vllm")])
    check("missing --vllm: exit 127", proc.returncode == 127, "%d %s" % (proc.returncode,
                                                                       proc.stderr))
    check("missing --vllm: how to install", "pip install vllm" in proc.stderr, proc.stderr)
    empty = os.path.join(TMP, "empty-bin")
    os.makedirs(empty, exist_ok=True)
    args = ["launch", MODEL, "--fixture", FIXTURE, "--port", str(free_port())]
    proc, _ = run(args, 30, {"PATH": empty})
    check("no vllm in PATH: exit 127", proc.returncode == 127, "%d %s" % (proc.returncode,
                                                                        proc.stderr))
    check_none_left("not installed")


def test_dry_run_and_conflicts():
    record = os.path.join(TMP, "record-dry.json")
    port = free_port()
    proc, _ = run(base_args(port, "--dry-run", "--", "--tensor-parallel-size", "2",
                            "--enforce-eager"), 30, {"FAKE_VLLM_RECORD": record})
    check("dry-run: exit 0", proc.returncode == 0, proc.stderr)
    check("dry-run: nothing started", not os.path.exists(record))
    last = proc.stdout.strip().splitlines()[-1].strip()
    check("dry-run: command", last.startswith(FAKE_VLLM + " serve " + MODEL) and
          last.endswith("--port %d --tensor-parallel-size 2 --enforce-eager" % port), last)
    check("dry-run: the plan's TP dropped", last.count("--tensor-parallel-size") == 1, last)
    check("conflict reported", "--tensor-parallel-size 2 (after --) contradicts the plan's "
          "--tensor-parallel-size 1; your value wins" in proc.stderr, proc.stderr)
    # A model name (no such directory) goes to vLLM as is, with its size given.
    proc, _ = run(["launch", "meta-llama/Llama-3.1-8B-Instruct", "--model-size-gb", "16",
                   "--fixture", FIXTURE, "--dry-run"])
    check("model name: dry-run", proc.returncode == 0 and
          "vllm serve meta-llama/Llama-3.1-8B-Instruct " in proc.stdout, proc.stdout +
          proc.stderr)
    proc, _ = run(["launch", "my-model", "--fixture", FIXTURE])
    check("model name without size: usage", proc.returncode == 2 and "--model-size-gb" in
          proc.stderr, proc.stderr)
    # A Hugging Face id without a size is read (here from the catalog: tests run offline).
    proc, _ = run(["launch", "meta-llama/Llama-3.1-8B-Instruct", "--fixture", FIXTURE,
                   "--dry-run"])
    check("model id: dry-run", proc.returncode == 0 and
          "vllm serve meta-llama/Llama-3.1-8B-Instruct " in proc.stdout and
          "from the peerscope catalog" in proc.stderr, proc.stdout + proc.stderr)
    proc, _ = run(["launch", "--fixture", FIXTURE])
    check("no model: usage", proc.returncode == 2, proc.stderr)
    proc, _ = run(["launch", MODEL, "--bogus"])
    check("unknown option: usage", proc.returncode == 2 and "after --" in proc.stderr,
          proc.stderr)
    proc, _ = run(["launch", "--help"])
    check("--help", proc.returncode == 0 and "--dry-run" in proc.stdout, proc.stdout)
    proc, _ = run(["launch", MODEL, "--fixture", FIXTURE, "--gpu-memory-utilization", "0.05",
                   "--dry-run"])
    check("nothing fits: exit 1", proc.returncode == 1 and "nothing to launch" in proc.stderr,
          proc.stderr)


def main():
    tests = [test_dry_run_and_conflicts, test_not_installed, test_port_in_use, test_failures,
             test_happy_path_and_ctrl_c, test_plan_environment_reaches_vllm,
             test_custom_all_reduce_off,
             test_ctrl_c_before_ready, test_hang_past_deadline]
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
        except Exception as e:  # one broken case must not hide the others
            check(t.__name__, False, "raised %r" % e)
        print("%s: %.1f s" % (t.__name__, time.monotonic() - t0))
    print("launch cli: %d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
