"""Ray, lazily: the driver child (the only process that imports Ray; it runs the probe on
every alive node) and its supervision by :func:`_run_driver` in this process (deadline,
GCS port watch, the child's process group killed on the way out)."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import NotAvailable
from .common import EXIT_NOT_INSTALLED, ClusterLost, _first_lines
from .probe import _make_probe


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


# ---- the driver: the only process that imports Ray --------------------------------------------


def _driver(address: str, deadline_s: float, cli: Optional[str], node_ip: Optional[str] = None,
            connected_file: Optional[str] = None) -> Dict[str, Any]:
    """Connects to the cluster, runs the probe on every alive node, waits until the deadline.
    Runs in the child process started by :func:`gather`; returns the raw results."""
    import ray

    _connect(address, node_ip, connected_file)
    try:
        driver_node = _driver_node_id()
        refs, nodes = _start_probes(deadline_s, cli)
        pending = _collect(refs, deadline_s)
        _mark_dead(refs, pending)
        _cancel(pending)
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


def _connect(address: str, node_ip: Optional[str], connected_file: Optional[str]) -> None:
    """ray.init, then the marker file that tells the parent a later failure is a loss mid-way."""
    import logging

    import ray

    kwargs = {"_node_ip_address": node_ip} if node_ip else {}
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, namespace="peerscope", **kwargs)
    if connected_file:
        with open(connected_file, "w") as f:
            f.write("connected\n")


def _driver_node_id() -> Optional[str]:
    import ray

    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - older Ray
        return None


def _node_entry(n: Dict[str, Any]) -> Dict[str, Any]:
    """A node's raw entry from Ray's node table; "timeout" until its probe answers."""
    res = dict(n.get("Resources") or {})
    return {
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


def _start_probes(deadline_s: float, cli: Optional[str]) -> Tuple[Dict[Any, Dict[str, Any]], List[Dict[str, Any]]]:
    """One probe task pinned to each alive node (no CPU taken, never retried): (ref -> entry, entries)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [n for n in ray.nodes() if n.get("Alive")]
    probe = ray.remote(_make_probe())
    refs = {}
    nodes: List[Dict[str, Any]] = []
    for n in alive:
        entry = _node_entry(n)
        nodes.append(entry)
        ref = probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
            num_cpus=0,
            max_retries=0,
            name="peerscope-check",
        ).remote(deadline_s, cli)
        refs[ref] = entry
    return refs, nodes


def _collect(refs: Dict[Any, Dict[str, Any]], deadline_s: float) -> List[Any]:
    """Records each probe's answer as it comes, until all answered or the deadline; returns
    the refs still pending."""
    import ray

    end = time.monotonic() + deadline_s
    pending = list(refs)
    gone: Dict[Any, int] = {}
    while pending:
        left = end - time.monotonic()
        if left <= 0:
            break
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=min(left, 1.0))
        for ref in ready:
            _record_answer(ref, refs[ref])
        _drop_gone_nodes(refs, pending, gone)
    return pending


def _record_answer(ref: Any, entry: Dict[str, Any]) -> None:
    import ray

    try:
        entry["result"] = ray.get(ref, timeout=5)
        entry["state"] = "done"
    except Exception as exc:  # noqa: BLE001 - every Ray failure is a node's error
        entry["state"] = "failed"
        entry["failure"] = "%s: %s" % (type(exc).__name__, _first_lines(str(exc), 3))


def _drop_gone_nodes(refs: Dict[Any, Dict[str, Any]], pending: List[Any], gone: Dict[Any, int]) -> None:
    """A node whose raylet stopped listening (twice in a row) died under its task: say so now
    rather than at the deadline (Ray itself marks it dead only after its health checks)."""
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


def _mark_dead(refs: Dict[Any, Dict[str, Any]], pending: List[Any]) -> None:
    """At the deadline: a node Ray now lists as dead failed, rather than timed out."""
    import ray

    if not pending:
        return
    dead = {n["NodeID"] for n in ray.nodes() if not n.get("Alive")}
    for ref in pending:
        entry = refs[ref]
        if entry["node_id"] in dead:
            entry["state"] = "failed"
            entry["failure"] = "the node died during the check (Ray lists it as dead)"


def _cancel(pending: List[Any]) -> None:
    import ray

    for ref in pending:
        try:
            ray.cancel(ref, force=False)
        except Exception:  # noqa: BLE001
            pass


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
    out_fd, out_path = tempfile.mkstemp(prefix="peerscope-cluster-", suffix=".json")
    os.close(out_fd)
    connected = out_path + ".connected"
    argv = _driver_argv(address, deadline_s, cli, node_ip) + ["--raw-out", out_path, "--connected-file", connected]
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=_driver_env(),
                            start_new_session=True)
    try:
        lost = _watch_driver(proc, address, connected, connect_timeout_s, deadline_s)
        if lost is not None:
            _kill_group(proc)
            raise ClusterLost(lost)
        err.seek(0)
        return _driver_results(proc.returncode, err.read(), out_path, connected, address)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        err.close()
        for path in (out_path, connected):
            try:
                os.unlink(path)
            except OSError:
                pass


def _driver_env() -> Dict[str, str]:
    env = dict(os.environ)
    # A driver whose GCS is gone gives up after this many seconds (Ray's default is 60).
    env.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "10")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _driver_argv(address: str, deadline_s: float, cli: Optional[str], node_ip: Optional[str]) -> List[str]:
    argv = [sys.executable, "-m", "peerscope.cluster", "_driver", "--ray-address", address, "--deadline", repr(float(deadline_s))]
    if cli:
        argv += ["--peerscope-cli", cli]
    if node_ip:
        argv += ["--node-ip", node_ip]
    return argv


def _watch_driver(proc: "subprocess.Popen[Any]", address: str, connected: str, connect_timeout_s: float,
                  deadline_s: float) -> Optional[str]:
    """Waits for the driver child; returns why the cluster is lost (past the hard deadline,
    or the GCS port refusing twice in a row), or None once the child has exited."""
    endpoint = _gcs_endpoint(address)
    hard_deadline = time.monotonic() + connect_timeout_s + deadline_s + 15
    refused = 0
    while proc.poll() is None:
        if time.monotonic() > hard_deadline:
            return "no answer from the Ray cluster at %s within %.0f s (connect %g s + deadline %g s)" % (
                address, connect_timeout_s + deadline_s + 15, connect_timeout_s, deadline_s)
        if endpoint is not None:
            refused = refused + 1 if _port_refuses(endpoint) else 0
            if refused >= 2:
                if os.path.exists(connected):
                    return ("lost the connection to the Ray cluster at %s mid-way: nothing listens at %s:%d any more "
                            "(the head node is gone)" % ((address,) + endpoint))
                return ("cannot reach the Ray cluster at %s: nothing listens at %s:%d (is the head running? "
                        "ray start --head)" % ((address,) + endpoint))
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    return None


def _driver_results(returncode: int, stderr: str, out_path: str, connected: str, address: str) -> Dict[str, Any]:
    """The raw results the driver child wrote, or the error its exit status and stderr say."""
    with open(out_path) as f:
        text = f.read()
    if returncode != 0 or not text.strip():
        why = _ray_error_line(stderr) or "the Ray driver exited with status %d" % returncode
        if returncode == EXIT_NOT_INSTALLED:
            raise NotAvailable(why)
        if os.path.exists(connected):
            raise ClusterLost("lost the connection to the Ray cluster at %s mid-way: %s" % (address, why))
        raise ClusterLost("cannot reach the Ray cluster at %s: %s" % (address, why))
    return json.loads(text)


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
