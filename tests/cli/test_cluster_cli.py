#!/usr/bin/env python3
"""peerscope cluster, the C side: the command finds a Python with the package and execs
`python -c <bootstrap> ARGS`; when Python, the package or Ray is missing it says so in one
line and exits 127. Ray-free (the real cluster tests are tests/cluster, scripts/
test-cluster.sh): the package comes from the source tree with the build's libpeerscope, on
the system Python, which has no Ray."""
import json
import os
import subprocess
import sys
import tempfile

CLI = os.environ["PEERSCOPE_CLI"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
BUILD = os.environ["PEERSCOPE_BUILD_DIR"]
results = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    if not condition:
        print("FAIL %s %s" % (name, str(detail)[:2000]))


def run(args, **env):
    e = dict(os.environ)
    for k in ("PEERSCOPE_PYTHON", "PYTHONPATH", "PEERSCOPE_LIBRARY"):
        e.pop(k, None)
    e.update(env)
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=120, env=e)


def sanitizer_env():
    """A sanitizer build's libpeerscope needs the ASan/UBSan runtime loaded first in a Python
    that opens it with ctypes; Python's own allocations are not ours to leak-check."""
    out = subprocess.run(["ldd", CLI], capture_output=True, text=True).stdout
    libs = [line.split("=>")[1].split()[0] for line in out.splitlines()
            if "=>" in line and ("libasan" in line or "libubsan" in line)]
    return {"LD_PRELOAD": " ".join(libs), "ASAN_OPTIONS": "detect_leaks=0"} if libs else {}


def main():
    tmp = tempfile.mkdtemp(prefix="peerscope-cluster-cli-")
    py = sys.executable
    pkg = {"PEERSCOPE_PYTHON": py, "PYTHONPATH": os.path.join(SOURCE, "python"),
           "PEERSCOPE_LIBRARY": os.path.join(BUILD, "lib", "libpeerscope.so")}
    pkg.update(sanitizer_env())

    done = run(["--help"])
    check("usage lists cluster", "  cluster   several machines over a Ray cluster" in done.stdout, done.stdout)

    done = run(["cluster", "topo"], PEERSCOPE_PYTHON=os.path.join(tmp, "no-python"))
    check("no python: 127", done.returncode == 127, done)
    check("no python: one line", done.stderr.count("\n") == 1 and "PEERSCOPE_PYTHON" in done.stderr, done.stderr)

    done = run(["cluster", "topo", "--ray-address", "127.0.0.9:1"], PEERSCOPE_PYTHON=py, PYTHONPATH=tmp)
    if "No module named 'peerscope'" in done.stderr:  # the system Python has no installed package
        check("no package: 127", done.returncode == 127, done)
        check("no package: one line", done.stderr.count("\n") == 1 and "pip install" in done.stderr, done.stderr)

    done = run(["cluster", "--help"], **pkg)
    check("help", done.returncode == 0 and "topo" in done.stdout and "_driver" not in done.stdout, done)

    # Help is the C command's own: no Python in PATH, none named, and still an answer.
    bare = os.path.join(tmp, "bare-path")
    os.mkdir(bare)
    for args, first in ((["--help"], "usage: peerscope cluster {topo,plan,launch}"),
                        (["-h"], "usage: peerscope cluster {topo,plan,launch}"),
                        (["topo", "--help"], "usage: peerscope cluster topo"),
                        (["plan", "--report", "x.json", "-h"], "usage: peerscope cluster plan"),
                        (["launch", "--help"], "usage: peerscope cluster launch")):
        done = run(["cluster"] + args, PATH=bare)
        check("help without Python: %s" % " ".join(args),
              done.returncode == 0 and done.stdout.startswith(first) and not done.stderr, done)
    done = run(["cluster"], PATH=bare)
    check("no subcommand without Python: usage, 2", done.returncode == 2 and "topo" in done.stdout, done)
    done = run(["cluster", "nodes"], PATH=bare)
    check("unknown subcommand without Python: 2", done.returncode == 2 and "unknown command 'nodes'" in done.stderr, done)
    for sub in ("topo", "plan", "launch"):
        done = run(["cluster", sub, "--ray-address", "127.0.0.9:1"], PATH=bare)
        check("%s without Python: 127, one line" % sub, done.returncode == 127 and done.stderr.count("\n") == 1
              and "no python3 in PATH" in done.stderr, done)
    done = run(["cluster", "launch", "m", "--", "--help"], PATH=bare)
    check("vLLM's --help after -- is not ours", done.returncode == 127, done)
    done = run(["cluster"], **pkg)
    check("no subcommand: usage", done.returncode == 2, done)
    done = run(["cluster", "topo"], **pkg)
    check("topo without address: usage", done.returncode == 2 and "--ray-address" in done.stderr, done)
    done = run(["cluster", "plan", "--report", os.path.join(tmp, "missing.json"), "--model-size-gb", "10"], **pkg)
    check("missing report: bad input", done.returncode == 3 and "missing.json" in done.stderr, done)

    has_ray = subprocess.run([py, "-c", "import ray"], capture_output=True).returncode == 0
    if not has_ray:
        done = run(["cluster", "topo", "--ray-address", "127.0.0.9:1"], **pkg)
        check("no ray: 127", done.returncode == 127, done)
        check("no ray: one line", done.stderr.count("\n") == 1 and "Ray is not installed" in done.stderr, done.stderr)

    # Planning from a saved cluster report needs no Ray: two healthy nodes, one broken.
    reports = []
    for fixture in ("example-4x-a100", "example-4x-a100", "fault-corrupt"):
        env = dict(os.environ, PEERSCOPE_FIXTURE=os.path.join(SOURCE, "tests", "fixtures", fixture + ".topo"),
                   PEERSCOPE_CACHE_DIR=tempfile.mkdtemp(dir=tmp))
        out = subprocess.run([CLI, "check", "--json", "--live"], capture_output=True, text=True, timeout=120, env=env)
        reports.append(json.loads(out.stdout))
    raw = {"ray_address": "127.0.0.9:1", "ray_version": "test", "deadline_s": 5, "nodes": [
        {"node_id": "%056x" % (i + 1), "ip": "10.0.0.%d" % (i + 1), "is_head": i == 0, "ray_resources": {"GPU": 4},
         "state": "done", "result": {"hostname": "n%d" % i, "rc": 1 if i == 2 else 0, "stdout": json.dumps(r)}}
        for i, r in enumerate(reports)]}
    cluster_json = os.path.join(tmp, "cluster.json")
    done = subprocess.run([py, "-c", "import json,sys; from peerscope import cluster; "
                           "json.dump(cluster.build_report(json.load(open(sys.argv[1]))), open(sys.argv[2], 'w'))",
                           _write(os.path.join(tmp, "raw.json"), raw), cluster_json],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **pkg))
    check("build_report", done.returncode == 0, done.stderr)
    if done.returncode == 0:
        report = json.load(open(cluster_json))
        check("statuses", [n["status"] for n in report["nodes"]] == ["ok", "ok", "broken_pair"], report["nodes"])
        done = run(["cluster", "plan", "--report", cluster_json, "--model-size-gb", "100"], **pkg)
        check("refuses an unhealthy node", done.returncode == 1 and "n2 (10.0.0.3)" in done.stderr, done)
        done = run(["cluster", "plan", "--report", cluster_json, "--model-size-gb", "100", "--allow-partial",
                    "--json"], **pkg)
        ok = done.returncode == 0
        check("allow-partial plans", ok, done)
        if ok:
            # 100 GB fits one node of 4x 40 GB: one instance there, no Ray, a replica on the other
            plan = json.loads(done.stdout)
            check("one node when it fits", plan["plan"]["nodes"] == 1 and plan["plan"]["replicas"] == 2
                  and not plan["commands"] and [len(n["gpus"]) > 0 for n in plan["nodes"]] == [True, False],
                  plan["plan"])
        done = run(["cluster", "plan", "--report", cluster_json, "--model-size-gb", "200", "--allow-partial",
                    "--json"], **pkg)
        ok = done.returncode == 0
        check("allow-partial plans over two nodes", ok, done)
        if ok:
            plan = json.loads(done.stdout)
            check("PP across nodes", plan["plan"]["nodes"] == 2 and plan["plan"]["pp"] % 2 == 0
                  and plan["plan"]["tp"] == 4 and len(plan["commands"]) == 2, plan["plan"])
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


def _write(path, data):
    with open(path, "w") as f:
        json.dump(data, f)
    return path


if __name__ == "__main__":
    sys.exit(main())
