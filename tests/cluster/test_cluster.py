"""peerscope cluster against a real local Ray cluster (Ray from PyPI), started and stopped here.

One machine plays several: a head and worker nodes, each a `ray start` with its own loopback
address (127.0.0.2, .3, ...; Ray rewrites 127.0.0.1 to the machine's outside address, these
it keeps) and its own environment: PEERSCOPE_FIXTURE (the node's fake machine), the
installed package's fake drivers, its own cache, and for some a PATH whose first `peerscope`
is a test wrapper (another version, a hang). Ray's worker processes inherit the environment
of the raylet that `ray start` spawns, so each node's task sees its own machine.

Every process started here carries PEERSCOPE_CLUSTER_TEST=<uuid> in its environment; the
teardown ends exactly those (never `ray stop`, which would end every Ray on the machine) and
checks that none is left. Run by scripts/test-cluster.sh (pytest, installed package).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest

ray = pytest.importorskip("ray")

import peerscope  # noqa: E402
from peerscope import cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
PKG = os.path.dirname(os.path.abspath(peerscope.__file__))
CLI = os.path.join(PKG, "bin", "peerscope")
FAKE_DRIVERS = os.path.join(PKG, "lib", "peerscope", "fake")
FIXTURES = os.path.join(PKG, "share", "peerscope", "fixtures")
MODELS = os.path.join(SOURCE, "tests", "fixtures", "models")
TOPO_PASTES = os.path.join(SOURCE, "tests", "fixtures", "topo")
FAKE_VLLM = os.path.join(SOURCE, "tests", "fake", "vllm")
RAY_BIN = os.path.join(os.path.dirname(sys.executable), "ray")
MARKER_KEY = "PEERSCOPE_CLUSTER_TEST"
MARKER = uuid.uuid4().hex
HEAD_IP = "127.0.0.2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def marked_pids(node=None):
    """Processes of this test run (by the marker in their environment), optionally of one
    node (PEERSCOPE_TEST_NODE)."""
    want = ("%s=%s" % (MARKER_KEY, MARKER)).encode()
    node_want = ("PEERSCOPE_TEST_NODE=%s" % node).encode() if node else None
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in env and (node_want is None or node_want in env):
            out.append(int(d))
    return out


def kill_marked(node=None, first=signal.SIGTERM, grace=8.0):
    for sig in (first, signal.SIGKILL):
        for pid in marked_pids(node):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        end = time.monotonic() + (grace if sig != signal.SIGKILL else 5)
        while time.monotonic() < end and marked_pids(node):
            time.sleep(0.2)
        if not marked_pids(node):
            return


def write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


class Cluster:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="psclu", dir="/tmp")  # short: Ray's socket paths
        self.port = free_port()
        self.address = "%s:%d" % (HEAD_IP, self.port)
        self.nodes = {}
        self.next_ip = 3

    def env(self, name, fixture=None, path_dir=None, driver_dir=None, extra=None):
        env = dict(os.environ)
        for k in ("PEERSCOPE_CLI", "PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_LIBRARY", "RAY_ADDRESS"):
            env.pop(k, None)
        env.update({MARKER_KEY: MARKER, "PEERSCOPE_TEST_NODE": name, "RAY_USAGE_STATS_ENABLED": "0",
                    "PEERSCOPE_DRIVER_DIR": driver_dir or FAKE_DRIVERS,
                    "PEERSCOPE_CACHE_DIR": os.path.join(self.tmp, "cache-" + name)})
        if fixture:
            env["PEERSCOPE_FIXTURE"] = fixture
        if path_dir:
            env["PATH"] = path_dir + os.pathsep + env.get("PATH", "")
        env.update(extra or {})
        return env

    def start(self, name, gpus, head=False, **kw):
        ip = HEAD_IP if head else "127.0.0.%d" % self.next_ip
        if not head:
            self.next_ip += 1
        argv = [RAY_BIN, "start", "--node-ip-address", ip, "--num-cpus", "1", "--num-gpus", str(gpus),
                "--disable-usage-stats", "--resources", json.dumps({"peerscope_test_" + name: 1})]
        if head:
            argv += ["--head", "--port", str(self.port), "--include-dashboard=false", "--temp-dir", os.path.join(self.tmp, "ray")]
        else:
            argv += ["--address", self.address]
        done = subprocess.run(argv, env=self.env(name, **kw), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "ray start %s failed:\n%s\n%s" % (name, done.stdout[-2000:], done.stderr[-2000:])
        self.nodes[name] = ip
        return ip

    def kill(self, name):
        kill_marked(name, first=signal.SIGKILL)


def fixture_path(name):
    return os.path.join(FIXTURES, name + ".topo")


@pytest.fixture(scope="module")
def cl():
    assert os.access(CLI, os.X_OK), CLI
    c = Cluster()
    try:
        c.start("head", 4, head=True, fixture=fixture_path("example-4x-a100"))
        c.start("l40s", 8, fixture=fixture_path("dual-socket-8-pcie"))
        c.start("rtx3090", 2, fixture=fixture_path("rtx3090-2-nvlink"))
        yield c
    finally:
        kill_marked()
        left = marked_pids()
        shutil.rmtree(c.tmp, ignore_errors=True)
        assert not left, "Ray processes of this test left behind: %s" % left


def run_cli(args, timeout=180, env=None):
    e = dict(os.environ)
    e.pop("PEERSCOPE_CLI", None)
    e.update({MARKER_KEY: MARKER, "RAY_USAGE_STATS_ENABLED": "0"})
    e.update(env or {})
    return subprocess.run([CLI, "cluster"] + args, capture_output=True, text=True, timeout=timeout, env=e)


HEALTHY = {"head": (4, ["NVIDIA A100-SXM4-40GB"]), "l40s": (8, ["NVIDIA L40S"]), "rtx3090": (2, ["NVIDIA GeForce RTX 3090"])}


def by_ip(report, c):
    ips = {ip: name for name, ip in c.nodes.items()}
    return {ips.get(n["ip"], n["ip"]): n for n in report["nodes"]}


# ---- without a cluster ------------------------------------------------------------------------


def test_nic_parser_on_real_pastes():
    with open(os.path.join(TOPO_PASTES, "stelline-4x-rtx6000ada-nics.txt")) as f:
        nics = cluster.parse_topo_nics(f.read())
    assert [n["device"] for n in nics] == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"]
    assert nics[0]["nearest_gpus"] == [0, 1] and nics[0]["nearest_link"] == "NODE"
    assert nics[2]["nearest_gpus"] == [2, 3]
    with open(os.path.join(TOPO_PASTES, "go-gpuallocator-17-8x-rtx4090-nics.txt")) as f:
        nics = cluster.parse_topo_nics(f.read())
    assert [(n["nic"], n["device"], n["nearest_gpus"], n["nearest_link"]) for n in nics] == [
        ("NIC0", None, [6], "PHB"), ("NIC1", None, [6], "PHB")]
    with open(os.path.join(TOPO_PASTES, "training-on-eks-p4d-8x-a100.txt")) as f:
        assert cluster.parse_topo_nics(f.read()) == []  # no NIC columns: nothing invented


def test_not_installed_paths(tmp_path):
    # No Python at all, and a Python without the package: one line, exit 127.
    done = run_cli(["topo", "--ray-address", "127.0.0.9:1"], env={"PEERSCOPE_PYTHON": str(tmp_path / "nope")})
    assert done.returncode == 127 and "PEERSCOPE_PYTHON" in done.stderr
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare:
        done = run_cli(["topo", "--ray-address", "127.0.0.9:1"], env={"PEERSCOPE_PYTHON": bare, "PYTHONPATH": ""})
        if "No module named 'peerscope'" in done.stderr:
            assert done.returncode == 127 and "pip install" in done.stderr
    # The package without Ray: the source package on a Python that has no ray.
    if bare and subprocess.run([bare, "-c", "import ray"], capture_output=True).returncode != 0:
        done = run_cli(["topo", "--ray-address", "127.0.0.9:1"],
                       env={"PEERSCOPE_PYTHON": bare, "PYTHONPATH": os.path.join(SOURCE, "python"),
                            "PEERSCOPE_LIBRARY": os.path.join(PKG, "lib", "libpeerscope.so")})
        assert done.returncode == 127, done.stderr
        assert "Ray is not installed" in done.stderr and done.stderr.count("\n") == 1


def test_unreachable_cluster_is_a_clear_error(tmp_path):
    out = tmp_path / "r.json"
    start = time.monotonic()
    # 127.0.0.9, not .1: Ray replaces 127.0.0.1 by the machine's outside address.
    done = run_cli(["topo", "--ray-address", "127.0.0.9:%d" % free_port(), "--connect-timeout", "5",
                    "--deadline", "5", "--out", str(out)], timeout=120)
    assert done.returncode == cluster.EXIT_CLUSTER, done.stderr
    assert done.stderr.startswith("peerscope cluster: cannot reach the Ray cluster at 127.0.0.9:"), done.stderr
    assert done.stderr.count("\n") == 1
    assert not out.exists() and not list(tmp_path.iterdir())
    assert time.monotonic() - start < 60


# ---- a healthy cluster of three machines ----------------------------------------------------------


def test_three_machines(cl, tmp_path):
    out = tmp_path / "cluster.json"
    done = run_cli(["topo", "--ray-address", cl.address, "--node-ip", HEAD_IP, "--deadline", "60", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    assert "3 of 3 nodes healthy" in done.stdout
    report = json.loads(out.read_text())
    assert report["schema"] == "peerscope.cluster/1" and report["ray_version"] == ray.__version__
    nodes = by_ip(report, cl)
    assert set(nodes) == set(HEALTHY)
    assert report["nodes"][0]["head"] and report["nodes"][0]["ip"] == HEAD_IP
    for name, (count, names) in HEALTHY.items():
        n = nodes[name]
        assert n["status"] == "ok" and n["reason"] is None, n
        assert n["gpu_count"] == count and n["gpu_names"] == names
        assert n["report"]["schema"] == "peerscope.topology/1" and n["report"]["verification"]["ran"]
        assert n["peerscope_version"] == peerscope.__version__ and n["driver_version"] == "550.54.15"
        assert n["nics"] == [] and n["nic_note"] == "no NIC information: nvidia-smi not found on the node"
    assert len({n["node_id"] for n in report["nodes"]}) == 3
    assert sorted(report["healthy"]) == sorted(n["node_id"] for n in report["nodes"]) and report["problems"] == []
    # The same from Python, as JSON on stdout.
    done = run_cli(["topo", "--ray-address", cl.address, "--node-ip", HEAD_IP, "--json"])
    assert done.returncode == 0 and json.loads(done.stdout)["healthy"]
    cl.report = report
    cl.report_path = str(out)


def test_plan_across_nodes(cl):
    model = os.path.join(MODELS, "Llama-3.1-70B-Instruct")
    # 70B fits the head's 4x A100 40 GB with a short context: one node, no Ray (issue 14).
    result = cluster.plan(cl.report, model_dir=model)
    p = result["plan"]
    assert result["feasible"] and p["tp"] == 4 and p["pp"] == 1 and p["nodes"] == 1 and not result["commands"]
    assert set(p["gpu_node"]) == {0} and [len(n["gpus"]) for n in result["nodes"]] == [4, 0, 0]
    assert {"name": "--distributed-executor-backend", "value": "mp"} in [{k: a[k] for k in ("name", "value")} for a in p["args"]]
    # The whole context takes two nodes: the head and the L40S node (the most GPUs), 4 GPUs each.
    result = cluster.plan(cl.report, model_dir=model, max_model_len=131072)
    p = result["plan"]
    assert result["feasible"] and p["tp"] == 4 and p["pp"] == 2 and p["nodes"] == 2
    assert sorted(set(p["gpu_node"])) == [0, 1]
    # TP inside a node: each stage's TP group is on one node.
    for s in range(p["pp"]):
        assert len(set(p["gpu_node"][s * p["tp"]:(s + 1) * p["tp"]])) == 1
    assert {"name": "--distributed-executor-backend", "value": "ray"} in [{k: a[k] for k in ("name", "value")} for a in p["args"]]
    assert result["runtime_env"]["env_vars"]["VLLM_PP_LAYER_PARTITION"] == p["pp_layer_partition"]
    assert [c["name"] for c in result["commands"]] == ["head", "worker 1"]
    assert any("node 1 has NVIDIA L40S" in r for r in p["reasons"])  # nodes differ: said so
    assert [n["index"] for n in result["nodes"]] == [0, 1, 2] and not result["excluded"]
    # The CLI from a saved report, and a model that fits nowhere.
    done = run_cli(["plan", "--report", cl.report_path, "--model", model, "--max-model-len", "131072"])
    assert done.returncode == 0, done.stderr
    assert "TP=4 PP=2" in done.stdout and "peerscope cluster launch" in done.stdout
    done = run_cli(["plan", "--report", cl.report_path, "--model-size-gb", "5000", "--json"])
    assert done.returncode == 1 and json.loads(done.stdout)["feasible"] is False


def test_launch_on_ray_with_the_plans_environment(cl, tmp_path):
    """`cluster launch` runs vllm serve here with --distributed-executor-backend ray; the
    'vLLM' is a Ray driver as vLLM's executor is (ray.init with its own runtime_env), which
    runs a task on every node and records what the workers' environment holds, then execs
    the fake vLLM that serves /health."""
    record, env_record = tmp_path / "vllm.json", tmp_path / "workers.json"
    ray_vllm = write_script(tmp_path / "vllm", "#!%s\n" % sys.executable + """
import json, logging, os, sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(logging_level=logging.ERROR, log_to_driver=False, _node_ip_address=%r,
         runtime_env={"env_vars": {"VLLM_OWN_VAR": "1"}})
@ray.remote(num_cpus=0, max_retries=0)
def env_of():
    import os, ray
    return {"node": ray.get_runtime_context().get_node_id(),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("NCCL_", "VLLM_"))}}
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
got = ray.get([env_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
               for n in nodes], timeout=90)
json.dump(got, open(os.environ["RAY_ENV_RECORD"], "w"))
ray.shutdown()
os.execv(%r, [%r] + sys.argv[1:])
""" % (HEAD_IP, FAKE_VLLM, FAKE_VLLM))
    port = free_port()
    env = dict(os.environ)
    env.pop("PEERSCOPE_CLI", None)
    env.update({MARKER_KEY: MARKER, "FAKE_VLLM_RECORD": str(record), "RAY_ENV_RECORD": str(env_record),
                "FAKE_VLLM_MODE": "ok", "RAY_USAGE_STATS_ENABLED": "0"})
    model = os.path.join(MODELS, "Llama-3.1-70B-Instruct")
    proc = subprocess.Popen([CLI, "cluster", "launch", model, "--ray-address", cl.address, "--node-ip", HEAD_IP,
                             "--vllm", str(ray_vllm), "--port", str(port), "--timeout", "120", "--nccl-debug",
                             "--max-model-len", "131072",
                             "--", "--enforce-eager"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        end = time.monotonic() + 150
        for line in proc.stdout:
            lines.append(line)
            if "[peerscope] serving" in line or time.monotonic() > end:
                break
        assert any("[peerscope] serving" in ln for ln in lines), "".join(lines[-40:])
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    assert proc.returncode == 0, text[-3000:]
    assert "stopped on request" in text
    rec = json.loads(record.read_text())
    argv = rec["argv"]
    assert argv[1:3] == ["serve", model]
    pairs = dict(zip(argv[3::1], argv[4::1]))
    assert pairs["--distributed-executor-backend"] == "ray"
    assert pairs["--tensor-parallel-size"] == "4" and pairs["--pipeline-parallel-size"] == "2"
    assert argv[-1] == "--enforce-eager"
    assert rec["env"]["RAY_ADDRESS"] == cl.address
    job = json.loads(rec["env"]["RAY_JOB_CONFIG_JSON_ENV_VAR"])
    partition = rec["env"]["VLLM_PP_LAYER_PARTITION"]
    assert job["runtime_env"]["env_vars"] == {"NCCL_DEBUG": "INFO", "VLLM_PP_LAYER_PARTITION": partition}
    # Every node's Ray worker received the plan's environment (and vLLM's own runtime_env too).
    workers = json.loads(env_record.read_text())
    assert len(workers) == 3 and len({w["node"] for w in workers}) == 3
    for w in workers:
        assert w["env"] == {"NCCL_DEBUG": "INFO", "VLLM_PP_LAYER_PARTITION": partition, "VLLM_OWN_VAR": "1"}, w


def test_launch_refusals(cl, tmp_path):
    done = run_cli(["launch", "some-model", "--report", cl.report_path, "--model-size-gb", "5000"])
    assert done.returncode == 1 and "nothing to launch" in done.stderr
    done = run_cli(["launch", "some-model", "--report", cl.report_path, "--model-size-gb", "30",
                    "--vllm", str(tmp_path / "no-vllm"), "--port", str(free_port())])
    assert done.returncode == 127 and "not found" in done.stdout
    done = run_cli(["launch", "some-model", "--report", cl.report_path])
    assert done.returncode == 2 and "--model-size-gb" in done.stderr
    done = run_cli(["launch", "m", "--report", cl.report_path, "--model-size-gb", "200", "--dry-run"])
    assert done.returncode == 0 and "RAY_JOB_CONFIG_JSON_ENV_VAR" in done.stdout and "--distributed-executor-backend ray" in done.stdout
    # 30 GB fits the head: vLLM there without Ray (issue 14), none of Ray's environment
    done = run_cli(["launch", "m", "--report", cl.report_path, "--model-size-gb", "30", "--dry-run"])
    assert done.returncode == 0 and "RAY_" not in done.stdout and "--distributed-executor-backend ray" not in done.stdout


def test_node_killed_during_gathering(cl):
    """A node whose check is running when its raylet and workers are killed: reported by
    name (error or timeout), every other node as before."""
    started = os.path.join(cl.tmp, "victim-started")
    hang_dir = os.path.join(cl.tmp, "victim-bin")
    os.makedirs(hang_dir)
    write_script(os.path.join(hang_dir, "peerscope"), '#!/bin/sh\ntouch "$PS_TEST_STARTED"\nexec sleep 600\n')
    cl.start("victim", 4, fixture=fixture_path("example-4x-a100"), path_dir=hang_dir,
                 extra={"PS_TEST_STARTED": started})
    box = {}

    def run():
        try:
            start = time.monotonic()
            box["report"] = cluster.gather(cl.address, deadline_s=20, node_ip=HEAD_IP)
            box["seconds"] = time.monotonic() - start
        except Exception as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    end = time.monotonic() + 60
    while not os.path.exists(started) and time.monotonic() < end and t.is_alive():
        time.sleep(0.2)
    assert os.path.exists(started), "the victim's check never started"
    cl.kill("victim")
    t.join(90)
    assert not t.is_alive() and "error" not in box, box.get("error")
    nodes = by_ip(box["report"], cl)
    victim = nodes["victim"]
    # Ray's NodeDiedError, or peerscope's own finding that the node's raylet is gone.
    assert victim["status"] == "error" and ("NodeDiedError" in victim["reason"] or "the node died" in victim["reason"]), victim
    assert box["seconds"] < 15  # noticed when its raylet went, not at the 20 s deadline
    assert victim["name"] in [p["name"] for p in box["report"]["problems"]]
    for name in ("head", "l40s", "rtx3090"):
        assert nodes[name]["status"] == "ok"


# ---- faults -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty(cl):
    """Six more nodes, each with one fault; one gather (through the CLI) over all nine."""
    d = os.path.join(cl.tmp, "bin")
    for sub in ("other", "hang", "nics"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    # Another peerscope version: the real check, its generator version rewritten.
    write_script(os.path.join(d, "other", "peerscope"), "#!%s\n" % sys.executable + """
import json, subprocess, sys
done = subprocess.run([%r] + sys.argv[1:], capture_output=True, text=True)
out = done.stdout
if "--json" in sys.argv and out.strip():
    data = json.loads(out)
    data["generator"]["version"] = "0.0.9-other"
    out = json.dumps(data)
sys.stdout.write(out)
sys.stderr.write(done.stderr)
sys.exit(done.returncode)
""" % CLI)
    # A check that never answers; says when it started.
    write_script(os.path.join(d, "hang", "peerscope"), '#!/bin/sh\ntouch "$PS_TEST_STARTED"\nexec sleep 600\n')
    # nvidia-smi topo -m of a real 4-GPU machine with four NICs.
    write_script(os.path.join(d, "nics", "nvidia-smi"), '#!/bin/sh\nexec cat %s\n'
                 % os.path.join(TOPO_PASTES, "stelline-4x-rtx6000ada-nics.txt"))
    zero = os.path.join(cl.tmp, "zero-gpus.topo")
    with open(zero, "w") as f:
        f.write('peerscope-fixture 1\nmachine "CPU-only node"\ndriver version=550.54.15 cuda=12.4\n')
    empty = os.path.join(cl.tmp, "no-driver")
    os.makedirs(empty, exist_ok=True)
    cl.hang_started = os.path.join(cl.tmp, "hang-started")
    cl.start("corrupt", 4, fixture=fixture_path("fault-corrupt"), path_dir=os.path.join(d, "nics"))
    cl.start("zero", 0, fixture=zero)
    cl.start("nodriver", 0, driver_dir=empty)
    cl.start("other", 4, fixture=fixture_path("example-4x-a100"), path_dir=os.path.join(d, "other"))
    cl.start("olddriver", 8, fixture=fixture_path("hgx-h100-8"))
    cl.start("hang", 4, fixture=fixture_path("example-4x-a100"), path_dir=os.path.join(d, "hang"),
             extra={"PS_TEST_STARTED": cl.hang_started})
    out = os.path.join(cl.tmp, "faults.json")
    start = time.monotonic()
    done = run_cli(["topo", "--ray-address", cl.address, "--node-ip", HEAD_IP, "--deadline", "15", "--out", out])
    cl.faults_seconds = time.monotonic() - start
    cl.faults_done = done
    cl.faults = cluster.load_report(out)
    cl.faults_path = out
    return cl


def test_each_fault_reported_by_name(faulty):
    done, report = faulty.faults_done, faulty.faults
    assert done.returncode == 1, done.stderr  # a finding: not every node is healthy
    assert faulty.faults_seconds < 60
    nodes = by_ip(report, faulty)
    victim = nodes.pop("victim", None)  # killed by an earlier test; Ray may not have noticed yet
    assert len(nodes) == 9
    expect = {"head": "ok", "l40s": "ok", "rtx3090": "ok", "corrupt": "broken_pair", "zero": "no_gpus",
              "nodriver": "no_gpus", "other": "version_mismatch", "olddriver": "version_mismatch", "hang": "timeout"}
    assert {k: nodes[k]["status"] for k in expect} == expect, {k: (nodes[k]["status"], nodes[k]["reason"]) for k in nodes}
    assert "GPU 1->2 corrupt" in nodes["corrupt"]["reason"]
    assert "0.0.9-other" in nodes["other"]["reason"] and peerscope.__version__ in nodes["other"]["reason"]
    assert "driver 535.129.03" in nodes["olddriver"]["reason"] and "550.54.15" in nodes["olddriver"]["reason"]
    assert "no NVIDIA driver" in nodes["nodriver"]["reason"]
    assert "15 s deadline" in nodes["hang"]["reason"] and nodes["hang"]["report"] is None
    assert nodes["zero"]["gpu_count"] == 0
    problems = {p["name"]: p["status"] for p in report["problems"] if not victim or p["node_id"] != victim["node_id"]}
    assert len(problems) == 6 and all(nodes[k]["name"] in problems for k in expect if expect[k] != "ok")
    for k in expect:
        if expect[k] != "ok":
            assert nodes[k]["name"] in done.stdout  # the text names every faulty node
    # NICs: the node with nvidia-smi shows the NICs next to its GPUs.
    nics = nodes["corrupt"]["nics"]
    assert nodes["corrupt"]["nic_source"] == "nvidia-smi topo -m"
    assert [(n["device"], n["nearest_gpus"]) for n in nics] == [
        ("mlx5_0", [0, 1]), ("mlx5_1", [0, 1]), ("mlx5_2", [2, 3]), ("mlx5_3", [2, 3])]
    assert "NIC NIC0 = mlx5_0: nearest GPUs 0,1 (NODE)" in done.stdout


def test_allow_partial(faulty):
    # topo: with --allow-partial a usable subset is success.
    report = faulty.faults
    with pytest.raises(cluster.ClusterRefused) as info:
        cluster.plan(report, model_size_gb=100)
    for n in report["problems"]:
        assert n["name"] in str(info.value)
    result = cluster.plan(report, model_size_gb=200, allow_partial=True)
    assert result["feasible"] and result["plan"]["pp"] == 2 and len(result["nodes"]) == 3
    assert {n["status"] for n in result["excluded"]} - {"error"} == {"broken_pair", "no_gpus", "version_mismatch", "timeout"}
    done = run_cli(["plan", "--report", faulty.faults_path, "--model-size-gb", "100"])
    assert done.returncode == 1 and "--allow-partial" in done.stderr and "broken_pair" in done.stderr
    done = run_cli(["plan", "--report", faulty.faults_path, "--model-size-gb", "200", "--allow-partial", "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"]["pp"] == 2


def test_losing_the_head_mid_way(faulty, tmp_path):
    """The head (GCS) dies while a gather waits for a node: a clear error, exit 6, and no
    output file (not even a half-written one). Runs last: the cluster is gone after it."""
    if os.path.exists(faulty.hang_started):
        os.unlink(faulty.hang_started)
    out = tmp_path / "never.json"
    env = dict(os.environ)
    env.pop("PEERSCOPE_CLI", None)
    env.update({MARKER_KEY: MARKER, "RAY_USAGE_STATS_ENABLED": "0"})
    proc = subprocess.Popen([CLI, "cluster", "topo", "--ray-address", faulty.address, "--node-ip", HEAD_IP,
                             "--deadline", "120", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        end = time.monotonic() + 60
        while not os.path.exists(faulty.hang_started) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.2)
        assert os.path.exists(faulty.hang_started), "the gather never reached the hanging node"
        killed_at = time.monotonic()
        faulty.kill("head")
        stdout, stderr = proc.communicate(timeout=90)
        took = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == cluster.EXIT_CLUSTER, (proc.returncode, stderr)
    assert stderr.startswith("peerscope cluster: lost the connection to the Ray cluster"), stderr
    assert stderr.count("\n") == 1 and stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert took < 30, took
