"""Output: atomic file writes, and the cluster report and the cluster plan for people."""

import json
import os
import tempfile
from typing import Any, Dict, List, Tuple


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
