"""The probe: the function Ray runs on every node (``peerscope check --json --live --all-gpus`` and
``nvidia-smi topo -m`` there). Shipped by value, so a node needs no peerscope Python package."""

from typing import Any, Callable, Dict, Optional


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
                # --all-gpus: the node's whole machine, whatever CUDA_VISIBLE_DEVICES Ray set for
                # a task that asked for no GPU ("").
                [cli, "check", "--json", "--live", "--all-gpus"],
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
