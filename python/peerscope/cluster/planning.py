"""Planning vLLM over the healthy nodes of a cluster report (``ps_plan_make_cluster``: one node
when the model fits one, else TP inside a node and PP across the fewest nodes), with the NICs
nearest to the GPUs each node gives."""

import ctypes
import json
import os
import tempfile
from ctypes import POINTER, c_void_p
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _lib
from .._lib import Ctx, lib
from ..errors import InvalidArgument
from .clib import _declare
from .common import _LINK_RANK, _PER_NODE_VARS, PLAN_SCHEMA, ClusterRefused


# ---- planning ---------------------------------------------------------------------------------


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


def _make_plan(cluster: Dict[str, Any], allow_partial: bool, model_dir: Optional[str], model_size_gb: Optional[float],
               params_b: Optional[float], dtype: Optional[str], settings: Dict[str, Any], model_arg: Optional[str]):
    """(ps_plan, nodes used, nodes excluded): ps_plan_make_cluster over the healthy nodes. The
    model and settings go through the library's one parser of the plan request."""
    _declare()
    healthy, excluded = _select_nodes(cluster, allow_partial)
    fields = dict(settings, model_dir=str(model_dir) if model_dir is not None else None,
                  model_size_gb=model_size_gb, params_b=params_b, dtype=dtype)
    with _lib.PlanInput(fields) as given, tempfile.TemporaryDirectory(prefix="peerscope-cluster-plan-") as tmp, \
            Ctx() as ctx:
        model = given.model()
        reports = []
        try:
            for i, n in enumerate(healthy):
                path = os.path.join(tmp, "node%d.json" % i)
                with open(path, "w") as f:
                    json.dump(n["report"], f)
                r = POINTER(_lib.ps_report)()
                ctx.check(lib.ps_report_read_json(ctx.ptr, path.encode(), ctypes.byref(r)), "node %s" % n.get("name"))
                reports.append(r)
            req = given.request(model)
            if model_arg:
                req.model_path = str(model_arg).encode()
            arr = (POINTER(_lib.ps_report) * len(reports))(*reports)
            out = POINTER(_lib.ps_plan)()
            ctx.check(lib.ps_plan_make_cluster(ctx.ptr, arr, len(reports), ctypes.byref(req), ctypes.byref(out)))
            plan = _lib.take(out, _lib.ps_plan, lib.ps_plan_free)
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
    """Plans vLLM over the healthy nodes of a cluster report (one instance on the head when the
    model fits one node, the other nodes for replicas; else TP inside a node and PP across the
    fewest nodes; ``ps_plan_make_cluster``, the same planner as ``peerscope plan --topology ...``).

    ``settings``: the plan fields of the library's plan request (``tp``, ``pp``,
    ``gpu_memory_utilization``, ``max_model_len``, ``max_num_seqs``, ``kv_cache_dtype``,
    ``reserve_gb``, ``objective``, ...; ``peerscope._lib.plan_fields()``) but ``gpus``. Raises
    ClusterRefused while a node is unhealthy (unless ``allow_partial``) or none is healthy,
    InvalidArgument / BadInput for impossible requests or a bad model directory.

    Returns a ``peerscope.cluster-plan/1`` dict: ``feasible``, ``summary``, ``plan`` (the
    ``peerscope.plan/1`` JSON), ``text`` (the plan for people), ``nodes`` (the nodes used,
    plan node index order, with the GPUs each gives and the NICs nearest to them),
    ``excluded``, ``warnings``, ``runtime_env`` (what every Ray worker of vLLM receives) and
    ``commands``.
    """
    unknown = set(settings) - (set(_lib.plan_field_names("plan")) - {"gpus"})
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
