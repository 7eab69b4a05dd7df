"""The ``peerscope.cluster/1`` report: built from the driver's raw per-node results (each
node's status, first that applies), gathered from a live cluster, or loaded from a file."""

import collections
import datetime
import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from .._version import __version__
from ..errors import Error, InvalidArgument, IOFailure
from .common import _BROKEN_VERDICTS, EXIT_NO_DRIVER, SCHEMA, _first_lines
from .driver import _run_driver
from .nics import parse_topo_nics


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


class _Reference(NamedTuple):
    """The versions every node is compared with, and whose they are (for the reason text)."""

    version: Optional[str]
    driver: Optional[str]
    source: str


def _sorted_entries(raw: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The driver's node entries, head first, then by address: a stable report order."""
    entries = list(raw.get("nodes") or [])
    entries.sort(key=lambda e: (not e.get("is_head"), str(e.get("ip")), str(e.get("node_id"))))
    return entries


def _parse_topology(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The node's peerscope.topology/1 report, or None when its check gave none."""
    res = entry.get("result") or {}
    if entry.get("state") != "done" or res.get("rc") not in (0, 1) or not res.get("stdout"):
        return None
    try:
        rep = json.loads(res["stdout"])
    except ValueError:
        return None
    if not isinstance(rep, dict) or rep.get("schema") != "peerscope.topology/1":
        return None
    return rep


def _reference_versions(entries: List[Dict[str, Any]], parsed: List[Optional[Dict[str, Any]]]) -> _Reference:
    """The head's versions, else this package's and the commonest driver."""
    head_rep = next((r for e, r in zip(entries, parsed) if e.get("is_head") and r), None)
    if head_rep is not None:
        return _Reference((head_rep.get("generator") or {}).get("version"),
                          (head_rep.get("driver") or {}).get("version"), "the head")
    drivers = collections.Counter((r.get("driver") or {}).get("version") for r in parsed if r)
    ref_drv = drivers.most_common(1)[0][0] if drivers else None
    return _Reference(__version__, ref_drv, "this peerscope and most nodes")


def _node_fields(entry: Dict[str, Any], rep: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A node's entry before its versions, NICs and status are filled in (all keys, in order)."""
    res = entry.get("result") or {}
    return {
        "node_id": entry.get("node_id"),
        "name": _node_name(entry, res.get("hostname")),
        "hostname": res.get("hostname") or entry.get("ray_hostname"),
        "ip": entry.get("ip"),
        "head": bool(entry.get("is_head")),
        "status": "ok",
        "reason": None,
        "peerscope_version": None,
        "driver_version": None,
        "gpu_count": None,
        "gpu_names": [],
        "ray_gpus": (entry.get("ray_resources") or {}).get("GPU", 0),
        "cli": res.get("cli"),
        "check_seconds": res.get("seconds"),
        "report": rep,
        "nics": [],
        "nic_source": None,
        "nic_note": None,
    }


def _fill_versions(node: Dict[str, Any], rep: Optional[Dict[str, Any]], res: Dict[str, Any]) -> None:
    """Versions and GPUs from the node's report; without one, the version `peerscope --version` said."""
    if rep is not None:
        node["peerscope_version"] = (rep.get("generator") or {}).get("version")
        node["driver_version"] = (rep.get("driver") or {}).get("version")
        gpus = rep.get("gpus") or []
        node["gpu_count"] = len(gpus)
        node["gpu_names"] = sorted({g.get("name") for g in gpus if g.get("name")})
    elif res.get("version_text", "").startswith("peerscope "):
        node["peerscope_version"] = res["version_text"].split()[1]


def _fill_nics(node: Dict[str, Any], state: Optional[str], res: Dict[str, Any]) -> None:
    """The node's NICs from `nvidia-smi topo -m`, or a note that says why there are none."""
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


def _node_status(entry: Dict[str, Any], node: Dict[str, Any], rep: Optional[Dict[str, Any]], ref: _Reference,
                 deadline: Any) -> Tuple[str, Optional[str]]:
    """(status, reason) of a node: the first that applies, from the task's fate to the report's verdicts."""
    state = entry.get("state")
    res = entry.get("result") or {}
    if state == "timeout":
        return "timeout", "no answer within the %g s deadline" % deadline
    if state == "failed":
        return "error", "the Ray task failed: %s" % entry.get("failure")
    if res.get("timed_out"):
        return "timeout", res.get("error")
    if res.get("error"):
        return "error", res["error"]
    if rep is None:
        err = _first_lines(res.get("stderr") or "", 2) or "no report on stdout"
        if res.get("rc") == EXIT_NO_DRIVER and "no NVIDIA driver" in err:
            return "no_gpus", "no NVIDIA driver: " + err
        return "error", "peerscope check exited with %s: %s" % (res.get("rc"), err)
    if node["gpu_count"] == 0:
        return "no_gpus", "the driver is there, but no GPU is visible"
    if ref.version and node["peerscope_version"] != ref.version:
        return "version_mismatch", "peerscope %s, %s runs %s" % (node["peerscope_version"], ref.source, ref.version)
    if ref.driver and node["driver_version"] != ref.driver:
        return "version_mismatch", "driver %s, %s runs %s" % (node["driver_version"], ref.source, ref.driver)
    broken = _broken(rep)
    if broken or res.get("rc") == 1:
        return "broken_pair", "verification failed: %s" % (", ".join(broken[:8]) or "peerscope check exited with 1")
    return "ok", None


def _node_entry(entry: Dict[str, Any], rep: Optional[Dict[str, Any]], ref: _Reference, deadline: Any) -> Dict[str, Any]:
    """One node of the report: who it is, its versions and GPUs, its NICs, its status."""
    res = entry.get("result") or {}
    node = _node_fields(entry, rep)
    _fill_versions(node, rep, res)
    _fill_nics(node, entry.get("state"), res)
    node["status"], node["reason"] = _node_status(entry, node, rep, ref, deadline)
    return node


def _summary(nodes: List[Dict[str, Any]], problems: List[Dict[str, Any]], healthy: List[Any]) -> str:
    """The report's one-line verdict: '2 of 3 nodes healthy; <name>: <status>'."""
    return "%d of %d node%s healthy%s" % (
        len(healthy), len(nodes), "" if len(nodes) == 1 else "s",
        "" if not problems else "; " + "; ".join("%s: %s" % (p["name"], p["status"]) for p in problems))


def build_report(raw: Dict[str, Any], allow_partial: bool = False) -> Dict[str, Any]:
    """The peerscope.cluster/1 report from the driver's raw per-node results (pure)."""
    deadline = raw.get("deadline_s")
    entries = _sorted_entries(raw)
    parsed = [_parse_topology(e) for e in entries]
    ref = _reference_versions(entries, parsed)
    nodes = [_node_entry(e, rep, ref, deadline) for e, rep in zip(entries, parsed)]
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
        "summary": _summary(nodes, problems, healthy),
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
