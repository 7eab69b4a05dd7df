"""peerscope.cluster: several machines over the Ray cluster the user already runs.

- :func:`gather` runs ``peerscope check --json --live`` on every alive node of a Ray cluster
  (one Ray task per node, pinned with ``NodeAffinitySchedulingStrategy(soft=False)``, using
  the ``peerscope`` installed on that node) and gathers the verified reports into one
  ``peerscope.cluster/1`` report: nodes, GPUs, verified matrices, the NICs near each GPU
  (from ``nvidia-smi topo -m`` on the node, where it exists), and every node that is not
  healthy, by name (timeout, no GPUs, version mismatch, broken pair, error).
- :func:`plan` plans vLLM over the healthy nodes (``ps_plan_make_cluster``: TP inside a node,
  PP across nodes), refusing while a node is unhealthy unless ``allow_partial``.
- :func:`launch` starts ``vllm serve`` here (the head) with the plan, ``--distributed-executor-
  backend ray`` and the plan's environment handed to every Ray worker through the job's
  runtime environment (``RAY_JOB_CONFIG_JSON_ENV_VAR``, the variable ``ray job submit`` uses),
  then watches ``/health`` with the same library code as ``peerscope launch``.

Ray is imported lazily and only in a child process (the "driver"), so a cluster that dies
mid-way can never leave this process hung or half-way: the child is killed at the deadline
and the caller gets :class:`ClusterLost`. Command line: ``python -m peerscope.cluster``, also
reached as ``peerscope cluster`` (docs/cluster.md).
"""

import argparse
import collections
import ctypes
import datetime
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from ctypes import POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_int, c_int64, c_uint32, c_void_p
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _lib
from ._lib import Ctx, lib
from ._version import __version__
from .errors import ERR_IO, Error, InvalidArgument, IOFailure, NotAvailable

SCHEMA = "peerscope.cluster/1"
PLAN_SCHEMA = "peerscope.cluster-plan/1"

# Exit codes (README's table, plus the two that only cluster commands use).
EXIT_OK = 0
EXIT_FINDING = 1  # a node is not healthy (topo), nothing fits or unhealthy nodes (plan)
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_NO_DRIVER = 4
EXIT_INTERNAL = 5
EXIT_CLUSTER = 6  # the Ray cluster could not be reached, or was lost mid-way
EXIT_NOT_INSTALLED = 127  # Ray (or vLLM, for launch) is not installed
EXIT_INTERRUPTED = 130

STATUSES = ("ok", "timeout", "no_gpus", "version_mismatch", "broken_pair", "error")
_BROKEN_VERDICTS = ("corrupt", "error", "hang")
_LINK_RANK = {"PIX": 0, "PXB": 1, "PHB": 2, "NODE": 3, "SYS": 4, "SOC": 4}
# Variables that are per node and set by Ray itself (GPU assignment): never job-wide.
_PER_NODE_VARS = ("CUDA_VISIBLE_DEVICES",)


class ClusterLost(IOFailure):
    """The Ray cluster could not be reached, or stopped answering mid-way (exit code 6)."""

    default_status = ERR_IO


class ClusterRefused(Error):
    """Planning refused: a node is not healthy and ``allow_partial`` is off, or no node is
    healthy (exit code 1, a finding)."""


# ---- Ray, lazily ---------------------------------------------------------------------------


def ray_available() -> bool:
    """Whether ``import ray`` would work in this Python (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def _require_ray() -> None:
    if not ray_available():
        raise NotAvailable(
            "Ray is not installed in %s: pip install 'peerscope[cluster]' (or pip install ray); "
            "peerscope cluster uses the Ray cluster you already run" % sys.executable
        )


# ---- the task that runs on every node --------------------------------------------------------


def _make_probe() -> Callable[..., Dict[str, Any]]:
    """The function Ray runs on each node. Defined inside a function so that Ray's
    cloudpickle ships it by value: a node needs only the ``peerscope`` executable and the
    Python standard library, not this exact Python package (whose version may differ)."""

    def probe(deadline_s: float, cli_override: Optional[str]) -> Dict[str, Any]:
        import importlib.util as iu
        import json as js
        import os as o
        import shutil as sh
        import socket as so
        import subprocess as sp
        import time as tm

        out: Dict[str, Any] = {"hostname": so.gethostname(), "pid": o.getpid()}
        cli = cli_override or o.environ.get("PEERSCOPE_CLI") or sh.which("peerscope")
        if not cli:
            try:
                spec = iu.find_spec("peerscope")
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin:
                inside = o.path.join(o.path.dirname(spec.origin), "bin", "peerscope")
                if o.access(inside, o.X_OK):
                    cli = inside
        out["cli"] = cli
        if not cli:
            out["error"] = "no peerscope executable on this node ($PEERSCOPE_CLI, PATH, or the installed Python package)"
            return out
        start = tm.monotonic()
        try:
            done = sp.run(
                [cli, "check", "--json", "--live"],
                capture_output=True, text=True, timeout=max(1.0, deadline_s), stdin=sp.DEVNULL,
            )
        except sp.TimeoutExpired:
            out["timed_out"] = True
            out["error"] = "`%s check` did not finish within %g s" % (cli, deadline_s)
            return out
        except OSError as exc:
            out["error"] = "`%s check` did not start: %s" % (cli, exc)
            return out
        out["rc"] = done.returncode
        out["stdout"] = done.stdout
        out["stderr"] = done.stderr[-4000:]
        out["seconds"] = round(tm.monotonic() - start, 3)
        try:
            parsed = js.loads(done.stdout) if done.stdout.strip() else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            try:
                ver = sp.run([cli, "--version"], capture_output=True, text=True, timeout=10, stdin=sp.DEVNULL)
                out["version_text"] = ver.stdout.strip()
            except (OSError, sp.TimeoutExpired):
                pass
        smi = sh.which("nvidia-smi")
        if smi:
            try:
                topo = sp.run([smi, "topo", "-m"], capture_output=True, text=True, timeout=20, stdin=sp.DEVNULL)
                out["topo_m"] = topo.stdout if topo.returncode == 0 else None
                if topo.returncode != 0:
                    out["topo_m_error"] = (topo.stderr or topo.stdout).strip()[-300:]
            except (OSError, sp.TimeoutExpired) as exc:
                out["topo_m_error"] = str(exc)
        return out

    return probe


# ---- the driver: the only process that imports Ray --------------------------------------------


def _driver(address: str, deadline_s: float, cli: Optional[str], node_ip: Optional[str] = None,
            connected_file: Optional[str] = None) -> Dict[str, Any]:
    """Connects to the cluster, runs the probe on every alive node, waits until the deadline.
    Runs in the child process started by :func:`gather`; returns the raw results."""
    import logging

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    kwargs = {"_node_ip_address": node_ip} if node_ip else {}
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, namespace="peerscope", **kwargs)
    if connected_file:
        with open(connected_file, "w") as f:
            f.write("connected\n")
    try:
        try:
            driver_node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - older Ray
            driver_node = None
        alive = [n for n in ray.nodes() if n.get("Alive")]
        probe = ray.remote(_make_probe())
        refs = {}
        nodes: List[Dict[str, Any]] = []
        for n in alive:
            res = dict(n.get("Resources") or {})
            entry = {
                "node_id": n["NodeID"],
                "ip": n.get("NodeManagerAddress"),
                "node_name": n.get("NodeName") or n.get("NodeManagerHostname"),
                "ray_hostname": n.get("NodeManagerHostname"),
                "raylet_port": n.get("NodeManagerPort"),
                "is_head": res.get("node:__internal_head__", 0) > 0,
                "ray_resources": {k: v for k, v in res.items() if k in ("CPU", "GPU", "memory") or not k.startswith("node:")},
                "state": "timeout",
                "result": None,
                "failure": None,
            }
            nodes.append(entry)
            ref = probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
                num_cpus=0,
                max_retries=0,
                name="peerscope-check",
            ).remote(deadline_s, cli)
            refs[ref] = entry
        end = time.monotonic() + deadline_s
        pending = list(refs)
        gone: Dict[Any, int] = {}
        while pending:
            left = end - time.monotonic()
            if left <= 0:
                break
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=min(left, 1.0))
            for ref in ready:
                entry = refs[ref]
                try:
                    entry["result"] = ray.get(ref, timeout=5)
                    entry["state"] = "done"
                except Exception as exc:  # noqa: BLE001 - every Ray failure is a node's error
                    entry["state"] = "failed"
                    entry["failure"] = "%s: %s" % (type(exc).__name__, _first_lines(str(exc), 3))
            # A node whose raylet stopped listening died under its task: say so now rather
            # than at the deadline (Ray itself marks it dead only after its health checks).
            for ref in list(pending):
                entry = refs[ref]
                if entry["ip"] and entry["raylet_port"] and _port_refuses((entry["ip"], int(entry["raylet_port"]))):
                    gone[ref] = gone.get(ref, 0) + 1
                    if gone[ref] >= 2:
                        entry["state"] = "failed"
                        entry["failure"] = "the node died during the check: its raylet at %s:%s is gone" % (
                            entry["ip"], entry["raylet_port"])
                        pending.remove(ref)
                else:
                    gone.pop(ref, None)
        if pending:
            dead = {n["NodeID"] for n in ray.nodes() if not n.get("Alive")}
            for ref in pending:
                entry = refs[ref]
                if entry["node_id"] in dead:
                    entry["state"] = "failed"
                    entry["failure"] = "the node died during the check (Ray lists it as dead)"
        for ref in pending:
            try:
                ray.cancel(ref, force=False)
            except Exception:  # noqa: BLE001
                pass
        return {
            "ray_address": address,
            "ray_version": ray.__version__,
            "driver_node_id": driver_node,
            "driver_ip": ray.util.get_node_ip_address() if hasattr(ray, "util") else None,
            "deadline_s": deadline_s,
            "nodes": nodes,
        }
    finally:
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _first_lines(text: str, n: int) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n])[:600]


def _gcs_endpoint(address: str) -> Optional[Tuple[str, int]]:
    """host and port of a plain "host:port" GCS address (None for auto, ray://, ...)."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def _port_refuses(endpoint: Tuple[str, int]) -> bool:
    try:
        with socket.create_connection(endpoint, timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # unknown (slow network, ...): the deadline decides


def _run_driver(address: str, deadline_s: float, cli: Optional[str], connect_timeout_s: float,
                node_ip: Optional[str] = None) -> Dict[str, Any]:
    """Starts the driver child, watches it and the GCS port, and returns its raw results.
    Raises ClusterLost when the cluster cannot be reached or goes away mid-way."""
    _require_ray()
    env = dict(os.environ)
    # A driver whose GCS is gone gives up after this many seconds (Ray's default is 60).
    env.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "10")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "peerscope.cluster", "_driver", "--ray-address", address, "--deadline", repr(float(deadline_s))]
    if cli:
        argv += ["--peerscope-cli", cli]
    if node_ip:
        argv += ["--node-ip", node_ip]
    out_fd, out_path = tempfile.mkstemp(prefix="peerscope-cluster-", suffix=".json")
    os.close(out_fd)
    connected = out_path + ".connected"
    argv += ["--raw-out", out_path, "--connected-file", connected]
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
    endpoint = _gcs_endpoint(address)
    hard_deadline = time.monotonic() + connect_timeout_s + deadline_s + 15
    refused = 0
    lost = None
    try:
        while proc.poll() is None:
            if time.monotonic() > hard_deadline:
                lost = "no answer from the Ray cluster at %s within %.0f s (connect %g s + deadline %g s)" % (
                    address, connect_timeout_s + deadline_s + 15, connect_timeout_s, deadline_s)
                break
            if endpoint is not None:
                refused = refused + 1 if _port_refuses(endpoint) else 0
                if refused >= 2:
                    if os.path.exists(connected):
                        lost = ("lost the connection to the Ray cluster at %s mid-way: nothing listens at %s:%d any more "
                                "(the head node is gone)" % ((address,) + endpoint))
                    else:
                        lost = ("cannot reach the Ray cluster at %s: nothing listens at %s:%d (is the head running? "
                                "ray start --head)" % ((address,) + endpoint))
                    break
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if lost is not None:
            _kill_group(proc)
            raise ClusterLost(lost)
        err.seek(0)
        stderr = err.read()
        with open(out_path) as f:
            text = f.read()
        if proc.returncode != 0 or not text.strip():
            why = _ray_error_line(stderr) or "the Ray driver exited with status %d" % proc.returncode
            if proc.returncode == EXIT_NOT_INSTALLED:
                raise NotAvailable(why)
            if os.path.exists(connected):
                raise ClusterLost("lost the connection to the Ray cluster at %s mid-way: %s" % (address, why))
            raise ClusterLost("cannot reach the Ray cluster at %s: %s" % (address, why))
        return json.loads(text)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        err.close()
        for path in (out_path, connected):
            try:
                os.unlink(path)
            except OSError:
                pass


def _ray_error_line(stderr: str) -> str:
    """The line of a driver's stderr that says what went wrong (the last exception line)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("peerscope cluster:"):
            return ln[len("peerscope cluster:"):].strip()
    for ln in reversed(lines):
        if "Error" in ln.split(":")[0] or "Exception" in ln.split(":")[0]:
            return ln[:600]
    return lines[-1][:600] if lines else ""


def _kill_group(proc: "subprocess.Popen[Any]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


# ---- NICs from `nvidia-smi topo -m` ----------------------------------------------------------


def parse_topo_nics(text: str) -> List[Dict[str, Any]]:
    """The NICs of an ``nvidia-smi topo -m`` output: for each NIC column, its device name
    (from the ``NIC Legend``, when there is one), its link to every GPU (from the GPU rows)
    and the nearest GPUs. Empty when the output has no NIC columns."""
    lines = text.splitlines()
    columns: List[str] = []
    header_at = -1
    for i, line in enumerate(lines):
        tokens = line.split()
        if tokens and tokens[0] == "GPU0":
            for t in tokens:
                if t in ("CPU", "NUMA", "Affinity") or t.startswith("CPU"):
                    break
                columns.append(t)
            header_at = i
            break
    if header_at < 0:
        return []
    legend: Dict[str, str] = {}
    for line in lines[header_at + 1:]:
        t = line.strip()
        if t.startswith("NIC") and ":" in t:
            key, _, value = t.partition(":")
            if key.strip()[3:].isdigit():
                legend[key.strip()] = value.strip()
    nic_cols = [(j, c) for j, c in enumerate(columns) if not c.startswith("GPU")]
    if not nic_cols:
        return []
    links: Dict[str, Dict[int, str]] = {c: {} for _, c in nic_cols}
    for line in lines[header_at + 1:]:
        tokens = line.split()
        if not tokens or not tokens[0].startswith("GPU") or not tokens[0][3:].isdigit():
            continue
        gpu = int(tokens[0][3:])
        cells = tokens[1:1 + len(columns)]
        for j, c in nic_cols:
            if j < len(cells):
                links[c][gpu] = cells[j]
    nics = []
    for _, c in nic_cols:
        gl = links[c]
        ranked = [(_LINK_RANK.get(v, 9), g) for g, v in gl.items()]
        best = min((r for r, _ in ranked), default=9)
        nearest = sorted(g for r, g in ranked if r == best) if best < 9 else []
        nics.append({
            "nic": c,
            "device": legend.get(c) or (None if c.startswith("NIC") else c),
            "links": {str(g): v for g, v in sorted(gl.items())},
            "nearest_gpus": nearest,
            "nearest_link": next((v for g, v in gl.items() if nearest and g == nearest[0]), None),
        })
    return nics


# ---- the cluster report ------------------------------------------------------------------------


def _broken(report: Dict[str, Any]) -> List[str]:
    """What failed verification in a topology report, one short phrase each."""
    bad = []
    for g in report.get("gpus") or []:
        local = (g.get("local_copy") or {}).get("verdict")
        if local in _BROKEN_VERDICTS:
            bad.append("GPU %s local copy %s" % (g.get("index"), local))
    for p in report.get("pairs") or []:
        v = p.get("verdict")
        claimed = (p.get("claims") or {}).get("read") == "OK"
        if v in _BROKEN_VERDICTS or (v == "unsupported" and claimed):
            bad.append("GPU %s->%s %s" % (p.get("from"), p.get("to"), "refused while claimed" if v == "unsupported" else v))
    return bad


def _node_name(entry: Dict[str, Any], hostname: Optional[str]) -> str:
    host = hostname or entry.get("ray_hostname") or entry.get("ip") or "?"
    ip = entry.get("ip")
    where = "%s (%s)" % (host, ip) if ip and ip != host else host
    return "%s node %s" % (where, str(entry.get("node_id", ""))[:8])


def build_report(raw: Dict[str, Any], allow_partial: bool = False) -> Dict[str, Any]:
    """The peerscope.cluster/1 report from the driver's raw per-node results (pure)."""
    deadline = raw.get("deadline_s")
    entries = list(raw.get("nodes") or [])
    entries.sort(key=lambda e: (not e.get("is_head"), str(e.get("ip")), str(e.get("node_id"))))
    parsed: List[Optional[Dict[str, Any]]] = []
    for e in entries:
        rep = None
        res = e.get("result") or {}
        if e.get("state") == "done" and res.get("rc") in (0, 1) and res.get("stdout"):
            try:
                rep = json.loads(res["stdout"])
            except ValueError:
                rep = None
            if not isinstance(rep, dict) or rep.get("schema") != "peerscope.topology/1":
                rep = None
        parsed.append(rep)
    # The reference versions: the head's, else this package's and the commonest driver.
    head_rep = next((r for e, r in zip(entries, parsed) if e.get("is_head") and r), None)
    if head_rep is not None:
        ref_ver = (head_rep.get("generator") or {}).get("version")
        ref_drv = (head_rep.get("driver") or {}).get("version")
        ref_from = "the head"
    else:
        ref_ver = __version__
        drivers = collections.Counter((r.get("driver") or {}).get("version") for r in parsed if r)
        ref_drv = drivers.most_common(1)[0][0] if drivers else None
        ref_from = "this peerscope and most nodes"
    nodes = []
    for e, rep in zip(entries, parsed):
        res = e.get("result") or {}
        name = _node_name(e, res.get("hostname"))
        node: Dict[str, Any] = {
            "node_id": e.get("node_id"),
            "name": name,
            "hostname": res.get("hostname") or e.get("ray_hostname"),
            "ip": e.get("ip"),
            "head": bool(e.get("is_head")),
            "status": "ok",
            "reason": None,
            "peerscope_version": None,
            "driver_version": None,
            "gpu_count": None,
            "gpu_names": [],
            "ray_gpus": (e.get("ray_resources") or {}).get("GPU", 0),
            "cli": res.get("cli"),
            "check_seconds": res.get("seconds"),
            "report": rep,
            "nics": [],
            "nic_source": None,
            "nic_note": None,
        }
        state = e.get("state")
        if rep is not None:
            node["peerscope_version"] = (rep.get("generator") or {}).get("version")
            node["driver_version"] = (rep.get("driver") or {}).get("version")
            gpus = rep.get("gpus") or []
            node["gpu_count"] = len(gpus)
            node["gpu_names"] = sorted({g.get("name") for g in gpus if g.get("name")})
        elif res.get("version_text", "").startswith("peerscope "):
            node["peerscope_version"] = res["version_text"].split()[1]
        if res.get("topo_m"):
            node["nics"] = parse_topo_nics(res["topo_m"])
            node["nic_source"] = "nvidia-smi topo -m"
            if not node["nics"]:
                node["nic_note"] = "nvidia-smi topo -m lists no NIC"
        elif state == "done":
            node["nic_note"] = "no NIC information: %s" % (
                "nvidia-smi topo -m failed (%s)" % res["topo_m_error"] if res.get("topo_m_error") else "nvidia-smi not found on the node")
        else:
            node["nic_note"] = "no NIC information (the node did not answer)"
        # Status, the first that applies.
        if state == "timeout":
            node["status"], node["reason"] = "timeout", "no answer within the %g s deadline" % deadline
        elif state == "failed":
            node["status"], node["reason"] = "error", "the Ray task failed: %s" % e.get("failure")
        elif res.get("timed_out"):
            node["status"], node["reason"] = "timeout", res.get("error")
        elif res.get("error"):
            node["status"], node["reason"] = "error", res["error"]
        elif rep is None:
            err = _first_lines(res.get("stderr") or "", 2) or "no report on stdout"
            if res.get("rc") == EXIT_NO_DRIVER and "no NVIDIA driver" in err:
                node["status"], node["reason"] = "no_gpus", "no NVIDIA driver: " + err
            else:
                node["status"], node["reason"] = "error", "peerscope check exited with %s: %s" % (res.get("rc"), err)
        elif node["gpu_count"] == 0:
            node["status"], node["reason"] = "no_gpus", "the driver is there, but no GPU is visible"
        elif ref_ver and node["peerscope_version"] != ref_ver:
            node["status"], node["reason"] = "version_mismatch", "peerscope %s, %s runs %s" % (node["peerscope_version"], ref_from, ref_ver)
        elif ref_drv and node["driver_version"] != ref_drv:
            node["status"], node["reason"] = "version_mismatch", "driver %s, %s runs %s" % (node["driver_version"], ref_from, ref_drv)
        else:
            broken = _broken(rep)
            if broken or res.get("rc") == 1:
                node["status"] = "broken_pair"
                node["reason"] = "verification failed: %s" % (", ".join(broken[:8]) or "peerscope check exited with 1")
        nodes.append(node)
    healthy = [n["node_id"] for n in nodes if n["status"] == "ok"]
    problems = [{"node_id": n["node_id"], "name": n["name"], "status": n["status"], "reason": n["reason"]} for n in nodes if n["status"] != "ok"]
    head = next((n["node_id"] for n in nodes if n["head"]), None)
    return {
        "schema": SCHEMA,
        "generator": {"name": "peerscope", "version": __version__},
        "gathered_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "ray_address": raw.get("ray_address"),
        "ray_version": raw.get("ray_version"),
        "driver_node_id": raw.get("driver_node_id"),
        "driver_ip": raw.get("driver_ip"),
        "deadline_s": deadline,
        "allow_partial": bool(allow_partial),
        "head": head,
        "nodes": nodes,
        "healthy": healthy,
        "problems": problems,
        "summary": "%d of %d node%s healthy%s" % (
            len(healthy), len(nodes), "" if len(nodes) == 1 else "s",
            "" if not problems else "; " + "; ".join("%s: %s" % (p["name"], p["status"]) for p in problems)),
    }


def gather(address: str, deadline_s: float = 60, allow_partial: bool = False, peerscope_cli: Optional[str] = None,
           connect_timeout_s: float = 60, node_ip: Optional[str] = None) -> Dict[str, Any]:
    """Runs the verified check on every alive node of the Ray cluster at ``address`` and
    returns the ``peerscope.cluster/1`` report (a dict; see docs/cluster.md).

    ``deadline_s`` bounds the checks (a node that has not answered by then is ``timeout``);
    ``connect_timeout_s`` bounds connecting. ``peerscope_cli`` is the path of the
    ``peerscope`` executable on the nodes (default: ``$PEERSCOPE_CLI``, ``peerscope`` in PATH,
    then the one inside the node's installed Python package). ``allow_partial`` is recorded
    in the report (it decides the exit code of ``peerscope cluster topo``). ``node_ip`` is
    this machine's address in the cluster, for when Ray's guess is wrong (Ray's
    ``ray.init(_node_ip_address=...)``).

    Raises NotAvailable when Ray is not installed, ClusterLost when the cluster cannot be
    reached or stops answering mid-way (nothing partial is returned).
    """
    if not deadline_s > 0:
        raise InvalidArgument("deadline_s must be positive, not %r" % deadline_s)
    raw = _run_driver(address, float(deadline_s), peerscope_cli, float(connect_timeout_s), node_ip)
    return build_report(raw, allow_partial)


def load_report(path: str) -> Dict[str, Any]:
    """A cluster report written by ``peerscope cluster topo --out FILE`` (or --json)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise IOFailure("%s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise _lib_bad_input("%s: not JSON: %s" % (path, exc))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise _lib_bad_input("%s: not a %s report" % (path, SCHEMA))
    return data


def _lib_bad_input(msg: str) -> Error:
    from .errors import BadInput

    return BadInput(msg)


# ---- planning ---------------------------------------------------------------------------------

_lib_declared = False


class ps_log_summary(Structure):
    _fields_ = [
        ("custom_all_reduce", c_int),
        ("custom_all_reduce_reason", c_char * 256),
        ("nccl_transports", c_uint32),
        ("kv_cache_tokens", c_int64),
        ("max_concurrency", c_double),
        ("concurrency_tokens", c_int64),
        ("kv_available_gib", c_double),
        ("failure", c_int),
        ("failure_line", c_char * 512),
        ("heads", c_int),
        ("heads_tp", c_int),
        ("kv_needed_gib", c_double),
        ("estimated_max_len", c_int64),
        ("ready", c_bool),
    ]


class ps_launch_result(Structure):
    _fields_ = [
        ("outcome", c_int),
        ("came_up", c_bool),
        ("up_after_s", c_double),
        ("exit_code", c_int),
        ("url", c_char * 128),
        ("summary", ps_log_summary),
    ]


_ON_LINE = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
_ON_READY = ctypes.CFUNCTYPE(None, c_void_p, POINTER(ps_launch_result))

PS_LAUNCH_MAX_ARGV = 320
PS_LAUNCH_MAX_CONFLICTS = 8


class ps_launch_opts(Structure):
    _fields_ = [
        ("vllm", c_char_p),
        ("host", c_char_p),
        ("port", c_int),
        ("extra", POINTER(c_char_p)),
        ("extra_count", c_int),
        ("health_timeout_s", c_int),
        ("stop_grace_s", c_int),
        ("nccl_debug", c_bool),
        ("stop", POINTER(c_int)),
        ("on_line", _ON_LINE),
        ("on_ready", _ON_READY),
        ("user", c_void_p),
    ]


class ps_launch_conflict(Structure):
    _fields_ = [("flag", c_char * 64), ("plan_value", c_char * 128), ("user_value", c_char * 128)]


class ps_launch_cmd(Structure):
    _fields_ = [
        ("argc", c_int),
        ("argv", c_char_p * (PS_LAUNCH_MAX_ARGV + 1)),
        ("envc", c_int),
        ("env", c_char_p * (_lib.PS_PLAN_MAX_ITEMS + 2)),
        ("conflict_count", c_int),
        ("conflicts", ps_launch_conflict * PS_LAUNCH_MAX_CONFLICTS),
    ]


PS_LAUNCH_EXITED, PS_LAUNCH_STOPPED, PS_LAUNCH_INTERRUPTED, PS_LAUNCH_HUNG, PS_LAUNCH_NOT_FOUND, PS_LAUNCH_PORT_IN_USE = range(6)


def _declare() -> None:
    global _lib_declared
    if _lib_declared:
        return
    rp = POINTER(_lib.ps_report)
    table = [
        ("ps_plan_make_cluster", c_int, [c_void_p, POINTER(rp), c_int, POINTER(_lib.ps_plan_request), POINTER(_lib.ps_plan)]),
        ("ps_launch_argv", c_int, [c_void_p, POINTER(_lib.ps_plan), POINTER(ps_launch_opts), POINTER(ps_launch_cmd)]),
        ("ps_launch_cmd_free", None, [POINTER(ps_launch_cmd)]),
        ("ps_launch_run", c_int, [c_void_p, POINTER(ps_launch_cmd), POINTER(ps_launch_opts), POINTER(ps_launch_result)]),
        ("ps_log_suggest", None, [POINTER(ps_log_summary), POINTER(_lib.ps_plan), c_char_p, ctypes.c_size_t]),
    ]
    for name, restype, argtypes in table:
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib_declared = True


def _select_nodes(cluster: Dict[str, Any], allow_partial: bool) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    nodes = cluster.get("nodes") or []
    healthy = [n for n in nodes if n.get("status") == "ok" and n.get("report")]
    excluded = [n for n in nodes if n not in healthy]
    if excluded and not allow_partial:
        raise ClusterRefused(
            "not planning over a cluster with unhealthy nodes (--allow-partial plans over the %d healthy one%s): %s"
            % (len(healthy), "" if len(healthy) == 1 else "s",
               "; ".join("%s: %s (%s)" % (n.get("name"), n.get("status"), n.get("reason")) for n in excluded)),
        )
    if not healthy:
        raise ClusterRefused("no healthy node to plan on (%s)" % (cluster.get("summary") or "empty cluster"))
    return healthy, excluded


def _model(ctx: Ctx, model_dir: Optional[str], model_size_gb: Optional[float], params_b: Optional[float], dtype: Optional[str]) -> _lib.ps_model:
    model = _lib.ps_model()
    given = [x is not None for x in (model_dir, model_size_gb, params_b)]
    if sum(given) != 1:
        raise InvalidArgument("give exactly one of model_dir, model_size_gb or params_b (with dtype)")
    if dtype and params_b is None:
        raise InvalidArgument("dtype goes with params_b")
    if model_dir is not None:
        ctx.check(lib.ps_model_load(ctx.ptr, str(model_dir).encode(), ctypes.byref(model)))
    elif model_size_gb is not None:
        if not float(model_size_gb) > 0:
            raise InvalidArgument("model_size_gb must be positive, not %r" % model_size_gb)
        ctx.check(lib.ps_model_synthetic(ctx.ptr, 0.0, None, float(model_size_gb), ctypes.byref(model)))
    else:
        if not float(params_b) > 0:  # type: ignore[arg-type]
            raise InvalidArgument("params_b must be positive, not %r" % params_b)
        ctx.check(lib.ps_model_synthetic(ctx.ptr, float(params_b), (dtype or "bf16").encode(), 0.0, ctypes.byref(model)))  # type: ignore[arg-type]
    return model


def _make_plan(cluster: Dict[str, Any], allow_partial: bool, model_dir: Optional[str], model_size_gb: Optional[float],
               params_b: Optional[float], dtype: Optional[str], settings: Dict[str, Any], model_arg: Optional[str]):
    """(ps_plan, nodes used, nodes excluded): ps_plan_make_cluster over the healthy nodes."""
    _declare()
    healthy, excluded = _select_nodes(cluster, allow_partial)
    objective = settings.get("objective") or "throughput"
    if objective not in _lib.PS_OBJECTIVES:
        raise InvalidArgument("objective must be 'throughput' or 'latency', not %r" % objective)
    plan = _lib.ps_plan()
    with tempfile.TemporaryDirectory(prefix="peerscope-cluster-plan-") as tmp, Ctx() as ctx:
        reports = []
        try:
            for i, n in enumerate(healthy):
                path = os.path.join(tmp, "node%d.json" % i)
                with open(path, "w") as f:
                    json.dump(n["report"], f)
                r = POINTER(_lib.ps_report)()
                ctx.check(lib.ps_report_read_json(ctx.ptr, path.encode(), ctypes.byref(r)), "node %s" % n.get("name"))
                reports.append(r)
            model = _model(ctx, model_dir, model_size_gb, params_b, dtype)
            req = _lib.ps_plan_request()
            req.model = ctypes.pointer(model)
            req.tp = int(settings.get("tp") or 0)
            req.pp = int(settings.get("pp") or 0)
            req.gpus = None
            req.gpu_count = 0
            req.gpu_memory_utilization = float(settings.get("gpu_memory_utilization") or 0.0)
            req.max_model_len = int(settings.get("max_model_len") or 0)
            req.max_num_seqs = int(settings.get("max_num_seqs") or 0)
            kv = settings.get("kv_cache_dtype")
            req.kv_cache_dtype = kv.encode() if kv else None
            req.reserve_gib = float(settings.get("reserve_gb") or 0.0)
            req.objective = _lib.PS_OBJECTIVES[objective]
            arg = model_arg or model_dir
            req.model_path = str(arg).encode() if arg else None
            arr = (POINTER(_lib.ps_report) * len(reports))(*reports)
            ctx.check(lib.ps_plan_make_cluster(ctx.ptr, arr, len(reports), ctypes.byref(req), ctypes.byref(plan)))
        finally:
            for r in reports:
                lib.ps_report_free(r)
    return plan, healthy, excluded


def _plan_text(plan: _lib.ps_plan, fmt: int) -> str:
    with Ctx() as ctx:
        out = c_void_p()
        ctx.check(lib.ps_plan_write(ctx.ptr, ctypes.byref(plan), fmt, ctypes.byref(out)))
        return _lib.take_string(out)


def runtime_env_vars(plan_env: Sequence[Dict[str, str]], nccl_debug: bool = False) -> Dict[str, str]:
    """The plan's environment as it goes to every Ray worker of vLLM (job runtime env):
    everything except the per-node GPU selection, which Ray makes itself."""
    env = {e["name"]: e["value"] for e in plan_env if e["name"] not in _PER_NODE_VARS}
    if nccl_debug:
        env["NCCL_DEBUG"] = "INFO"
    return env


def _nics_near(node: Dict[str, Any], gpus: Sequence[int]) -> List[Dict[str, Any]]:
    """The NICs nearest to the given GPUs of a node (best link to any of them first)."""
    out = []
    for nic in node.get("nics") or []:
        links = [(nic["links"].get(str(g)), g) for g in gpus if nic["links"].get(str(g))]
        if not links:
            continue
        best = min(links, key=lambda lg: _LINK_RANK.get(lg[0], 9))
        out.append({"nic": nic["nic"], "device": nic.get("device"), "link": best[0], "rank": _LINK_RANK.get(best[0], 9)})
    out.sort(key=lambda d: (d["rank"], d["nic"]))
    if out:
        top = out[0]["rank"]
        out = [d for d in out if d["rank"] == top]
    for d in out:
        d.pop("rank")
    return out


def plan(cluster: Dict[str, Any], model_dir: Optional[str] = None, model_size_gb: Optional[float] = None,
         allow_partial: bool = False, params_b: Optional[float] = None, dtype: Optional[str] = None,
         model_arg: Optional[str] = None, **settings: Any) -> Dict[str, Any]:
    """Plans vLLM over the healthy nodes of a cluster report (TP inside a node, PP across
    nodes; ``ps_plan_make_cluster``, the same planner as ``peerscope plan --topology ...``).

    ``settings``: ``tp``, ``pp``, ``gpu_memory_utilization``, ``max_model_len``,
    ``max_num_seqs``, ``kv_cache_dtype``, ``reserve_gb``, ``objective``. Raises
    ClusterRefused while a node is unhealthy (unless ``allow_partial``) or none is healthy,
    InvalidArgument / BadInput for impossible requests or a bad model directory.

    Returns a ``peerscope.cluster-plan/1`` dict: ``feasible``, ``summary``, ``plan`` (the
    ``peerscope.plan/1`` JSON), ``text`` (the plan for people), ``nodes`` (the nodes used,
    plan node index order, with the GPUs each gives and the NICs nearest to them),
    ``excluded``, ``warnings``, ``runtime_env`` (what every Ray worker of vLLM receives) and
    ``commands``.
    """
    unknown = set(settings) - {"tp", "pp", "gpu_memory_utilization", "max_model_len", "max_num_seqs", "kv_cache_dtype", "reserve_gb", "objective"}
    if unknown:
        raise InvalidArgument("unknown planning setting(s): %s" % ", ".join(sorted(unknown)))
    p, healthy, excluded = _make_plan(cluster, allow_partial, model_dir, model_size_gb, params_b, dtype, settings, model_arg)
    pj = json.loads(_plan_text(p, _lib.PS_PLAN_JSON))
    text = _plan_text(p, 0)
    warnings: List[str] = []
    used = []
    for i, n in enumerate(healthy):
        gpus = [g for g, node in zip(pj.get("gpus") or [], pj.get("gpu_node") or [0] * len(pj.get("gpus") or [])) if node == i]
        if not pj.get("feasible"):
            gpus = []
        entry = {"index": i, "node_id": n["node_id"], "name": n["name"], "ip": n.get("ip"), "gpus": gpus,
                 "gpu_count": n.get("gpu_count"), "ray_gpus": n.get("ray_gpus"), "nics": _nics_near(n, gpus)}
        if not n.get("nics"):
            entry["nic_note"] = n.get("nic_note") or "no NIC information"
        used.append(entry)
        if pj.get("feasible") and gpus and (n.get("ray_gpus") or 0) < len(gpus):
            warnings.append("%s: Ray offers %g GPU(s) there but the plan uses %d: start Ray on it with --num-gpus=%d" % (
                n["name"], n.get("ray_gpus") or 0, len(gpus), len(gpus)))
        if pj.get("feasible") and gpus and len(gpus) < (n.get("gpu_count") or 0):
            warnings.append("%s: the plan uses GPUs %s of %d; Ray places vLLM's workers on any GPU it offers there, so for "
                            "exactly these restart Ray on that node with CUDA_VISIBLE_DEVICES (the node command below)" % (
                                n["name"], ",".join(str(g) for g in gpus), n.get("gpu_count")))
    if excluded:
        warnings.append("planned without %s" % "; ".join("%s (%s)" % (n.get("name"), n.get("status")) for n in excluded))
    env = runtime_env_vars(pj.get("env") or [])
    return {
        "schema": PLAN_SCHEMA,
        "feasible": bool(pj.get("feasible")),
        "summary": pj.get("summary"),
        "ray_address": cluster.get("ray_address"),
        "nodes": used,
        "excluded": [{"node_id": n.get("node_id"), "name": n.get("name"), "status": n.get("status"), "reason": n.get("reason")} for n in excluded],
        "warnings": warnings,
        "runtime_env": {"env_vars": env},
        "commands": pj.get("node_commands") or [],
        "plan": pj,
        "text": text,
    }


# ---- launching --------------------------------------------------------------------------------


def _launch_environment(address: Optional[str], env_vars: Dict[str, str]) -> Dict[str, str]:
    """What is added to vLLM's environment so that its Ray executor connects to the cluster
    and every worker it starts gets the plan's variables: RAY_ADDRESS, and the job's
    runtime environment in RAY_JOB_CONFIG_JSON_ENV_VAR (merged with one already set, as
    inside a `ray job submit` entrypoint). RAY_OVERRIDE_JOB_RUNTIME_ENV=1 lets vLLM's own
    ray.init(runtime_env=...) combine with it instead of failing on a shared key."""
    job: Dict[str, Any] = {}
    existing = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if existing:
        try:
            job = json.loads(existing) or {}
        except ValueError:
            job = {}
    rt = dict(job.get("runtime_env") or {})
    merged = dict(rt.get("env_vars") or {})
    merged.update(env_vars)
    rt["env_vars"] = merged
    job["runtime_env"] = rt
    out = {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job, sort_keys=True), "RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}
    if address and address != "auto":
        out["RAY_ADDRESS"] = address
    return out


def _display(word: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%")
    if word and all(ch in safe for ch in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def _summary_lines(s: ps_log_summary, plan_c: _lib.ps_plan) -> List[str]:
    lines = ["Start-up summary:"]
    if s.custom_all_reduce < 0:
        lines.append("  custom all-reduce: not stated (one GPU, or vLLM did not say)")
    else:
        reason = s.custom_all_reduce_reason.decode("utf-8", "replace")
        lines.append("  custom all-reduce: %s%s" % ("on" if s.custom_all_reduce else "off", " (%s)" % reason if reason else ""))
    if s.nccl_transports:
        lines.append("  NCCL transport:%s%s%s" % (" P2P/IPC" if s.nccl_transports & 1 else "", " SHM" if s.nccl_transports & 2 else "",
                                                 " NET" if s.nccl_transports & 4 else ""))
    else:
        lines.append("  NCCL transport: not logged (--nccl-debug sets NCCL_DEBUG=INFO)")
    if s.kv_cache_tokens >= 0:
        lines.append("  KV cache: %d tokens (planned %d)" % (s.kv_cache_tokens, plan_c.kv_tokens))
    if s.max_concurrency >= 0:
        lines.append("  max concurrency: %.2fx at %d tokens per request" % (s.max_concurrency, s.concurrency_tokens))
    if s.failure:
        hint = ctypes.create_string_buffer(1024)
        lib.ps_log_suggest(ctypes.byref(s), ctypes.byref(plan_c), hint, len(hint))
        lines.append("  failure: %s" % s.failure_line.decode("utf-8", "replace"))
        lines.append("  suggestion: %s" % hint.value.decode("utf-8", "replace"))
    return lines


def launch(cluster: Dict[str, Any], model: str, allow_partial: bool = False, model_size_gb: Optional[float] = None,
           params_b: Optional[float] = None, dtype: Optional[str] = None, ray_address: Optional[str] = None,
           vllm: Optional[str] = None, host: Optional[str] = None, port: int = 0, timeout_s: int = 0,
           stop_grace_s: int = 0, nccl_debug: bool = False, extra_args: Sequence[str] = (), dry_run: bool = False,
           on_line: Optional[Callable[[str], None]] = None, stop: Optional[threading.Event] = None,
           **settings: Any) -> Dict[str, Any]:
    """Plans over the healthy nodes of ``cluster`` (as :func:`plan`) and starts ``vllm serve``
    on this machine (the head) with the plan: ``--distributed-executor-backend ray``, the
    plan's arguments and environment, RAY_ADDRESS, and the plan's environment for every Ray
    worker through the job's runtime environment. Then waits for ``/health`` and stays until
    vLLM exits or ``stop`` is set, exactly as ``peerscope launch`` (``ps_launch_run``: own
    process group, SIGTERM then SIGKILL after ``stop_grace_s``).

    ``model`` is a Hugging Face directory or a name for vLLM (then ``model_size_gb`` or
    ``params_b`` is needed). ``on_line`` gets every log line (``"[vllm] ..."`` and
    ``"[peerscope] ..."``), default print. Returns a dict: ``outcome`` (``exited``,
    ``stopped``, ``interrupted``, ``hung``, ``not_found``, ``port_in_use``, ``dry_run``),
    ``exit_code`` (the code ``peerscope cluster launch`` exits with), ``came_up``, ``url``,
    ``argv``, ``env`` (added to vLLM's environment), ``runtime_env``, ``plan``, ``summary``.
    """
    emit = on_line or (lambda line: print(line, flush=True))
    is_dir = os.path.isdir(model)
    if is_dir and (model_size_gb is not None or params_b is not None):
        raise InvalidArgument("%s is a model directory: its size comes from its files, drop model_size_gb / params_b" % model)
    if not is_dir and model_size_gb is None and params_b is None:
        raise InvalidArgument("'%s' is not a directory: it goes to vLLM as a model name, and peerscope needs its size "
                              "(--model-size-gb X or --params-b N)" % model)
    address = ray_address or cluster.get("ray_address")
    p, healthy, excluded = _make_plan(cluster, allow_partial, model if is_dir else None, model_size_gb, params_b, dtype,
                                      settings, None if is_dir else model)
    if not p.feasible:
        raise ClusterRefused("nothing to launch: %s" % p.summary.decode("utf-8", "replace"))
    pj = json.loads(_plan_text(p, _lib.PS_PLAN_JSON))
    env_vars = runtime_env_vars(pj.get("env") or [], nccl_debug)
    added = _launch_environment(address, env_vars)
    for n in excluded:
        emit("[peerscope] left out %s: %s (%s)" % (n.get("name"), n.get("status"), n.get("reason")))
    local = cluster.get("driver_ip")
    head = healthy[0]
    if local and head.get("ip") and local != head.get("ip"):
        emit("[peerscope] note: vLLM's engine runs on this machine (%s) and the plan's first node is %s" % (local, head["name"]))

    extras = [str(a) for a in extra_args]
    c_extra = (c_char_p * max(1, len(extras)))(*[a.encode() for a in extras])
    stop_flag = c_int(0)
    opts = ps_launch_opts()
    opts.vllm = vllm.encode() if vllm else None
    opts.host = host.encode() if host else None
    opts.port = int(port or 0)
    opts.extra = ctypes.cast(c_extra, POINTER(c_char_p))
    opts.extra_count = len(extras)
    opts.health_timeout_s = int(timeout_s or 0)
    opts.stop_grace_s = int(stop_grace_s or 0)
    opts.nccl_debug = bool(nccl_debug)
    opts.stop = ctypes.pointer(stop_flag)
    cmd = ps_launch_cmd()
    with Ctx() as ctx:
        st = lib.ps_launch_argv(ctx.ptr, ctypes.byref(p), ctypes.byref(opts), ctypes.byref(cmd))
        if st != 0:
            raise InvalidArgument(ctx.error() or "ps_launch_argv failed")
    try:
        argv = [cmd.argv[i].decode() for i in range(cmd.argc)]
        env_list = [cmd.env[i].decode() for i in range(cmd.envc)] + ["%s=%s" % kv for kv in sorted(added.items())]
        for i in range(cmd.conflict_count):
            c = cmd.conflicts[i]
            emit("[peerscope] %s %s (after --) contradicts the plan's %s %s; your value wins" % (
                c.flag.decode(), c.user_value.decode(), c.flag.decode(), c.plan_value.decode()))
        result: Dict[str, Any] = {"argv": argv, "env": env_list, "runtime_env": {"env_vars": env_vars}, "plan": pj,
                                  "nodes": [n["name"] for n in healthy], "excluded": [n["name"] for n in excluded],
                                  "came_up": False, "url": None}
        shown = " \\\n  ".join([_display(e) for e in env_list] + [" ".join(_display(a) for a in argv)])
        if dry_run:
            emit("# %s" % p.summary.decode("utf-8", "replace"))
            emit(shown)
            result.update(outcome="dry_run", exit_code=EXIT_OK)
            return result
        emit("[peerscope] plan: %s" % p.summary.decode("utf-8", "replace"))
        emit("[peerscope] starting: %s" % shown)

        def line_cb(_user, stream, text):
            emit("%s %s" % ("[peerscope]" if stream == 0 else "[vllm]", (text or b"").decode("utf-8", "replace")))

        def ready_cb(_user, res_p):
            r = res_p.contents
            for ln in _summary_lines(r.summary, p):
                emit(ln)
            emit("[peerscope] serving %s at %s/v1 (up after %.1f s); Ctrl-C stops it" % (
                p.model_arg.decode("utf-8", "replace"), r.url.decode(), r.up_after_s))

        on_line_c = _ON_LINE(line_cb)
        on_ready_c = _ON_READY(ready_cb)
        opts.on_line = on_line_c
        opts.on_ready = on_ready_c
        res = ps_launch_result()
        saved = {k: os.environ.get(k) for k in added}
        os.environ.update(added)
        status = [None]
        errors: List[str] = []

        def run() -> None:
            with Ctx() as c2:
                status[0] = lib.ps_launch_run(c2.ptr, ctypes.byref(cmd), ctypes.byref(opts), ctypes.byref(res))
                if status[0] != 0:
                    errors.append(c2.error())

        worker = threading.Thread(target=run, name="peerscope-launch", daemon=True)
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            def on_signal(_sig, _frame):
                stop_flag.value = 1
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                handlers[sig] = signal.signal(sig, on_signal)
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.2)
                if stop is not None and stop.is_set():
                    stop_flag.value = 1
        finally:
            for sig, h in handlers.items():
                signal.signal(sig, h)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if status[0] != 0:
            raise Error(errors[0] if errors else "ps_launch_run failed")
        outcome = ["exited", "stopped", "interrupted", "hung", "not_found", "port_in_use"][res.outcome]
        code = {PS_LAUNCH_STOPPED: EXIT_OK, PS_LAUNCH_INTERRUPTED: EXIT_INTERRUPTED, PS_LAUNCH_HUNG: EXIT_FINDING,
                PS_LAUNCH_NOT_FOUND: EXIT_NOT_INSTALLED, PS_LAUNCH_PORT_IN_USE: EXIT_FINDING}.get(res.outcome, res.exit_code)
        result.update(outcome=outcome, exit_code=code, came_up=bool(res.came_up), url=res.url.decode() or None,
                      up_after_s=res.up_after_s, vllm_exit_code=res.exit_code,
                      summary={"custom_all_reduce": res.summary.custom_all_reduce,
                               "failure_line": res.summary.failure_line.decode("utf-8", "replace") or None,
                               "kv_cache_tokens": res.summary.kv_cache_tokens})
        if res.outcome == PS_LAUNCH_NOT_FOUND:
            emit("peerscope cluster launch: '%s' not found: install vLLM (pip install vllm) or give --vllm PATH" % argv[0])
        elif res.outcome == PS_LAUNCH_PORT_IN_USE:
            emit("peerscope cluster launch: %s: choose another with --port" % res.summary.failure_line.decode("utf-8", "replace"))
        else:
            if not res.came_up or res.summary.failure:
                for ln in _summary_lines(res.summary, p):
                    emit(ln)
            if res.came_up:
                emit("[peerscope] served %s/v1 (%s), up after %.1f s; %s" % (
                    res.url.decode(), p.model_arg.decode("utf-8", "replace"), res.up_after_s,
                    "stopped on request" if res.outcome == PS_LAUNCH_STOPPED else "vLLM has exited"))
            else:
                emit("[peerscope] vLLM %s without answering /health (exit %d)" % (
                    "was stopped at the deadline" if res.outcome == PS_LAUNCH_HUNG else "ended", code))
        return result
    finally:
        lib.ps_launch_cmd_free(ctypes.byref(cmd))


# ---- output -----------------------------------------------------------------------------------


def write_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same directory and a
    rename: the file is either the old one (or absent) or complete, never half-written."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _matrix_lines(report: Dict[str, Any]) -> List[str]:
    gpus = report.get("gpus") or []
    n = len(gpus)
    if n == 0:
        return []
    cell: Dict[Tuple[int, int], str] = {}
    for p in report.get("pairs") or []:
        mark = {"ok": "", "not_run": "?", "unsupported": "-", "skipped": "?"}.get(p.get("verdict"), "!")
        cell[(p.get("from"), p.get("to"))] = "%s%s" % (p.get("link") or "?", mark)
    width = max([4] + [len(v) for v in cell.values()]) + 1
    lines = ["      " + "".join(("GPU%d" % j).rjust(width) for j in range(n))]
    for i in range(n):
        row = "".join(("X" if i == j else cell.get((i, j), "?")).rjust(width) for j in range(n))
        lines.append(("GPU%d" % i).ljust(6) + row)
    return lines


def report_text(report: Dict[str, Any]) -> str:
    """The cluster report for people."""
    out = ["Ray cluster %s (Ray %s): %s" % (report.get("ray_address"), report.get("ray_version"), report.get("summary"))]
    for n in report.get("nodes") or []:
        gpus = "%dx %s" % (n["gpu_count"], " + ".join(n["gpu_names"])) if n.get("gpu_count") else "no GPU report"
        out.append("")
        out.append("%-16s %s%s" % (n["status"], n["name"], " (Ray head)" if n.get("head") else ""))
        out.append("    %s; driver %s; peerscope %s; Ray offers %g GPU(s)" % (
            gpus, n.get("driver_version") or "?", n.get("peerscope_version") or "?", n.get("ray_gpus") or 0))
        if n.get("reason"):
            out.append("    why: %s" % n["reason"])
        if n.get("nics"):
            for nic in n["nics"]:
                out.append("    NIC %s%s: nearest GPU%s %s (%s)" % (
                    nic["nic"], " = %s" % nic["device"] if nic.get("device") and nic["device"] != nic["nic"] else "",
                    "" if len(nic["nearest_gpus"]) == 1 else "s", ",".join(str(g) for g in nic["nearest_gpus"]) or "-",
                    nic.get("nearest_link") or "?"))
        else:
            out.append("    NICs: %s" % (n.get("nic_note") or "no NIC information"))
        if n.get("report"):
            out.extend("    " + ln for ln in _matrix_lines(n["report"]))
    out.append("")
    out.append("Matrix cells: the link; '!' verification failed, '-' no P2P (driver says so), '?' not tested.")
    return "\n".join(out) + "\n"


def plan_text(result: Dict[str, Any]) -> str:
    out = []
    for n in result["nodes"]:
        near = ", ".join("%s%s (%s)" % (d["nic"], "=" + d["device"] if d.get("device") else "", d["link"]) for d in n["nics"])
        out.append("node %d: %s, GPUs %s; NICs nearest to them: %s" % (
            n["index"], n["name"], ",".join(str(g) for g in n["gpus"]) or "-", near or n.get("nic_note") or "none listed"))
    for n in result["excluded"]:
        out.append("left out: %s: %s (%s)" % (n["name"], n["status"], n["reason"]))
    for w in result["warnings"]:
        out.append("warning: %s" % w)
    out.append("")
    out.append(result["text"].rstrip("\n"))
    if result["feasible"]:
        out.append("")
        out.append("On the head, with the Ray cluster as it runs now (the plan's environment reaches every worker "
                   "through the job's runtime environment: %s):" % (json.dumps(result["runtime_env"]["env_vars"], sort_keys=True)))
        out.append("  peerscope cluster launch MODEL --ray-address %s [the same plan options]" % (result.get("ray_address") or "ADDR"))
    return "\n".join(out) + "\n"


# ---- command line -----------------------------------------------------------------------------


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message)


def _add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="a Hugging Face model directory")
    p.add_argument("--model-size-gb", type=float, metavar="X", help="a model known only by its weight size")
    p.add_argument("--params-b", type=float, metavar="N", help="a model known by its parameter count (billions)")
    p.add_argument("--dtype", metavar="D", help="with --params-b: bf16, fp16, fp8, int4")
    p.add_argument("--tp", type=int, default=0, metavar="N")
    p.add_argument("--pp", type=int, default=0, metavar="N")
    p.add_argument("--gpu-memory-utilization", type=float, metavar="F")
    p.add_argument("--max-model-len", type=int, metavar="N")
    p.add_argument("--max-num-seqs", type=int, metavar="N")
    p.add_argument("--kv-cache-dtype", metavar="D")
    p.add_argument("--reserve-gb", type=float, metavar="X")
    p.add_argument("--objective", choices=("throughput", "latency"), default="throughput")


def _add_cluster_options(p: argparse.ArgumentParser, report: bool = True) -> None:
    p.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster (host:port of the head's GCS, or auto)")
    if report:
        p.add_argument("--report", metavar="FILE", help="a cluster report from `peerscope cluster topo --out` instead of gathering")
    p.add_argument("--deadline", type=float, default=60.0, metavar="S", help="seconds for every node to answer (default 60)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="S", help="seconds to connect to Ray (default 60)")
    p.add_argument("--allow-partial", action="store_true", help="go on with the healthy nodes when some are not")
    p.add_argument("--peerscope-cli", metavar="PATH", help="the peerscope executable on the nodes (default: PATH, then the package's)")
    p.add_argument("--node-ip", metavar="IP", help="this machine's address in the Ray cluster, when Ray guesses wrong")


def _parser() -> _Parser:
    top = _Parser(prog="peerscope cluster", description="Several machines over the Ray cluster you already run (docs/cluster.md).")
    sub = top.add_subparsers(dest="command", metavar="{topo,plan,launch}")
    t = sub.add_parser("topo", help="verified check on every node, one cluster report")
    _add_cluster_options(t, report=False)
    t.add_argument("--json", action="store_true", help="the peerscope.cluster/1 report on stdout")
    t.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE (atomically)")
    pl = sub.add_parser("plan", help="plan vLLM across the healthy nodes (TP inside a node, PP across)")
    _add_cluster_options(pl)
    _add_plan_options(pl)
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--out", metavar="FILE", help="also write the JSON plan to FILE (atomically)")
    la = sub.add_parser("launch", help="vllm serve on the head with the plan, Ray executor, health watch")
    la.add_argument("model_pos", nargs="?", metavar="MODEL", help="a model directory or a name for vLLM")
    _add_cluster_options(la)
    _add_plan_options(la)
    la.add_argument("--port", type=int, default=0)
    la.add_argument("--host")
    la.add_argument("--vllm", metavar="PATH")
    la.add_argument("--timeout", type=int, default=0, metavar="S", help="seconds to wait for /health (default 900)")
    la.add_argument("--stop-grace", type=int, default=0, metavar="S")
    la.add_argument("--nccl-debug", action="store_true")
    la.add_argument("--dry-run", action="store_true")
    dr = sub.add_parser("_driver")  # no help: not listed
    dr.add_argument("--ray-address", required=True)
    dr.add_argument("--deadline", type=float, required=True)
    dr.add_argument("--peerscope-cli")
    dr.add_argument("--raw-out", required=True)
    dr.add_argument("--node-ip")
    dr.add_argument("--connected-file")
    return top


def _settings(a: argparse.Namespace) -> Dict[str, Any]:
    return {k: getattr(a, k) for k in ("tp", "pp", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
                                       "kv_cache_dtype", "reserve_gb", "objective") if getattr(a, k) not in (None, 0)}


def _cluster_for(a: argparse.Namespace) -> Dict[str, Any]:
    if getattr(a, "report", None):
        return load_report(a.report)
    if not a.ray_address:
        raise _Usage("give --ray-address ADDR (or --report FILE)")
    return gather(a.ray_address, a.deadline, a.allow_partial, a.peerscope_cli, a.connect_timeout, a.node_ip)


def _error_exit(exc: Error) -> int:
    if isinstance(exc, ClusterLost):
        return EXIT_CLUSTER
    if isinstance(exc, NotAvailable):
        return EXIT_NOT_INSTALLED
    if isinstance(exc, ClusterRefused):
        return EXIT_FINDING
    return {1: EXIT_USAGE, 5: EXIT_BAD_INPUT, 6: EXIT_BAD_INPUT, 3: EXIT_NO_DRIVER, 4: EXIT_NO_DRIVER, 10: EXIT_NO_DRIVER}.get(exc.status, EXIT_INTERNAL)


def _run_driver_command(a: argparse.Namespace) -> int:
    if not ray_available():
        print("peerscope cluster: Ray is not installed in %s (pip install 'peerscope[cluster]')" % sys.executable, file=sys.stderr)
        return EXIT_NOT_INSTALLED
    try:
        raw = _driver(a.ray_address, a.deadline, a.peerscope_cli, a.node_ip, a.connected_file)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as the cluster's error
        print("peerscope cluster: %s: %s" % (type(exc).__name__, _first_lines(str(exc), 2)), file=sys.stderr)
        return EXIT_CLUSTER
    write_atomic(a.raw_out, json.dumps(raw))
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1:]
    parser = _parser()
    try:
        a = parser.parse_args(args)
        if a.command is None:
            parser.print_help()
            return EXIT_USAGE
        if a.command == "_driver":
            return _run_driver_command(a)
        if extra and a.command != "launch":
            raise _Usage("arguments after -- are for `cluster launch` (vLLM's own options)")
        if a.deadline <= 0:
            raise _Usage("--deadline must be positive")
        if a.command == "topo":
            if not a.ray_address:
                raise _Usage("give --ray-address ADDR (the head's host:port, or auto)")
            report = gather(a.ray_address, a.deadline, a.allow_partial, a.peerscope_cli, a.connect_timeout, a.node_ip)
            text = json.dumps(report, indent=2) + "\n"
            if a.out:
                write_atomic(a.out, text)
            sys.stdout.write(text if a.json else report_text(report))
            if not report["problems"]:
                return EXIT_OK
            return EXIT_OK if a.allow_partial and report["healthy"] else EXIT_FINDING
        if a.command == "plan":
            if sum(x is not None for x in (a.model, a.model_size_gb, a.params_b)) != 1:
                raise _Usage("give one of --model DIR, --model-size-gb X or --params-b N")
            cluster = _cluster_for(a)
            result = plan(cluster, model_dir=a.model, model_size_gb=a.model_size_gb, allow_partial=a.allow_partial,
                          params_b=a.params_b, dtype=a.dtype, **_settings(a))
            text = json.dumps({k: v for k, v in result.items() if k != "text"}, indent=2) + "\n"
            if a.out:
                write_atomic(a.out, text)
            sys.stdout.write(text if a.json else plan_text(result))
            return EXIT_OK if result["feasible"] else EXIT_FINDING
        # launch
        model = a.model_pos or a.model
        if a.model_pos and a.model:
            raise _Usage("give MODEL or --model DIR, not both")
        if not model:
            raise _Usage("no model (peerscope cluster launch MODEL ...)")
        cluster = _cluster_for(a)
        result = launch(cluster, model, allow_partial=a.allow_partial, model_size_gb=a.model_size_gb, params_b=a.params_b,
                        dtype=a.dtype, ray_address=a.ray_address, vllm=a.vllm, host=a.host, port=a.port,
                        timeout_s=a.timeout, stop_grace_s=a.stop_grace, nccl_debug=a.nccl_debug, extra_args=extra,
                        dry_run=a.dry_run, **_settings(a))
        return int(result["exit_code"])
    except _Usage as exc:
        print("peerscope cluster: %s (see peerscope cluster %s --help)" % (exc, (args[:1] or [""])[0] if args and not args[0].startswith("-") else ""),
              file=sys.stderr)
        return EXIT_USAGE
    except Error as exc:
        print("peerscope cluster: %s" % exc.detail, file=sys.stderr)
        return _error_exit(exc)
    except KeyboardInterrupt:
        print("peerscope cluster: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
