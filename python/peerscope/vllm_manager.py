"""VLLMManager: the origin project's vLLM manager API over a GPUManager.

vLLM runs as a server process started by ``peerscope launch`` (never in this process);
load_model refuses with NotAvailable when this build's ``peerscope`` has no ``launch``
command. benchmark_p2p_performance runs the measured benchmark (``peerscope bench``): every
figure it returns came from a transfer on this machine (or, on a played-back machine, from
the fake drivers' model, marked ``simulated``); none is made up.
"""

import asyncio
import os
import shutil
import signal
import subprocess
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional

from . import _lib
from .errors import InvalidArgument, NotAvailable
from .gpu_manager import GPUManager

# The origin's names of the plan request's tp and pp; every other planning key is the library's
# own field name (peerscope._lib.plan_fields, the one definition of the plan request).
_ALIASES = {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size"}


def find_cli() -> Optional[str]:
    """The ``peerscope`` executable: $PEERSCOPE_CLI, the one installed inside this package,
    then ``peerscope`` in PATH."""
    env = os.environ.get("PEERSCOPE_CLI")
    if env:
        return env
    inside = Path(__file__).resolve().parent / "bin" / "peerscope"
    if inside.is_file() and os.access(str(inside), os.X_OK):
        return str(inside)
    return shutil.which("peerscope")


def launch_help() -> str:
    """The text of ``peerscope launch --help``; raises NotAvailable when the command does not
    exist in this build (or there is no ``peerscope`` executable)."""
    cli = find_cli()
    if not cli:
        raise NotAvailable("no `peerscope` executable found (inside the package, $PEERSCOPE_CLI or PATH)")
    try:
        done = subprocess.run([cli, "launch", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotAvailable("`%s launch --help` did not run: %s" % (cli, exc))
    if done.returncode != 0 or "usage: peerscope launch" not in done.stdout:
        raise NotAvailable(
            "`peerscope launch` is not available in this build (%s launch --help: %s); load_model "
            "needs it to start vLLM as a server process" % (cli, (done.stderr or done.stdout).strip()[:200])
        )
    return done.stdout


class VLLMManager:
    """Plans and runs vLLM for the GPUs of a :class:`GPUManager`.

    Args:
        vllm_config: dict (may be None). Recognised keys: ``model`` / ``model_path`` (a
            Hugging Face directory), ``model_size_gb`` (float), ``tensor_parallel_size``,
            ``pipeline_parallel_size`` (int, 0 = chosen), ``gpu_memory_utilization``,
            ``max_model_len``, ``max_num_seqs``, ``kv_cache_dtype``, ``reserve_gb``,
            ``objective`` (planning), ``host``, ``port``, ``vllm`` (executable),
            ``extra_args`` (list of str passed to ``vllm serve``). Others are ignored.
        gpu_manager: the GPUManager whose verified topology is used (a new one with
            default settings when None).
    """

    def __init__(self, vllm_config: Optional[Dict[str, Any]] = None, gpu_manager: Optional[GPUManager] = None) -> None:
        self.config: Dict[str, Any] = dict(vllm_config or {})
        self.gpu_manager = gpu_manager if gpu_manager is not None else GPUManager()
        self._proc: Optional[asyncio.subprocess.Process] = None
        self._reader: Optional["asyncio.Task[None]"] = None
        self._log: Deque[str] = deque(maxlen=200)
        self._model: Optional[str] = None
        self._url: Optional[str] = None
        self._state = "not loaded"

    def _settings(self) -> Dict[str, Any]:
        keys = [k for k in _lib.plan_field_names("plan") if k not in _ALIASES and k != "gpus"]
        return {k: self.config.get(k) for k in keys if self.config.get(k) is not None}

    def get_p2p_status(self) -> Dict[str, Any]:
        """P2P as vLLM will see it: everything of GPUManager.check_p2p_connectivity(), plus
        ``claim_mismatches`` (pairs the driver claims but that failed a real transfer) and
        ``custom_all_reduce`` (bool: whether vLLM's custom all-reduce should run on the
        recommended group, and ``custom_all_reduce_reason``)."""
        info = self.gpu_manager.check_p2p_connectivity()
        info["claim_mismatches"] = sorted(k for k, v in info["links"].items() if v["claim_lies"])
        args = self.gpu_manager.get_vllm_gpu_args(info["recommended_tensor_parallel_size"], 1, topology_only=True)
        info["custom_all_reduce"] = not args["disable_custom_all_reduce"]
        info["custom_all_reduce_reason"] = args["reasons"]["disable_custom_all_reduce"]
        return info

    def optimize_tensor_parallelism(self, model_size_gb: Optional[float] = None) -> Dict[str, Any]:
        """The TP/PP configuration for the model: ``model_size_gb`` when given, else the
        config's ``model``, a directory (its config.json and safetensors headers are read) or a
        Hugging Face id ``org/name[@revision]`` (from the HF cache, peerscope's catalog, or the
        Hub's config and index: docs/models.md), else the config's ``model_size_gb``, else the
        topology alone.

        Returns a dict: ``recommended_tensor_parallel_size``, ``pipeline_parallel_size``,
        ``gpus``, ``cuda_visible_devices``, ``p2p_optimized`` (bool), ``feasible``,
        ``summary``, ``basis`` (``"model directory"``, ``"model id"``, ``"model size"`` or
        ``"topology only"``), ``memory`` (None for topology only), ``max_model_len``, and
        ``vllm_args`` (the GPUManager.get_vllm_gpu_args result for that configuration).
        """
        c = self.config
        model_path = c.get("model_path") or c.get("model")
        size = model_size_gb if model_size_gb is not None else (None if model_path else c.get("model_size_gb"))
        if size is not None:
            model_path = None
            basis = "model size"
        elif model_path:
            basis = "model directory" if os.path.isdir(str(model_path)) else "model id"
        else:
            basis = "topology only"
        tp = c.get("tensor_parallel_size") or 0
        pp = c.get("pipeline_parallel_size") or 0
        if basis == "topology only":
            tp = tp or self.gpu_manager.recommended_tensor_parallel_size()
            args = self.gpu_manager.get_vllm_gpu_args(tp, pp or 1, settings=self._settings(), topology_only=True)
            memory = None
        else:
            args = self.gpu_manager.get_vllm_gpu_args(tp, pp, model_size_gb=size, model_path=model_path, settings=self._settings())
            plan = self.gpu_manager.plan(size, model_path, tp, pp, settings=self._settings())
            memory = plan["memory"]
        gpus = args["gpus"]
        tp_v = args["tensor_parallel_size"]
        connected = tp_v > 1 and all(
            self.gpu_manager.check_p2p_connectivity()["p2p_matrix"].get("GPU%d->GPU%d" % (a, b), False)
            for a in gpus[:tp_v]
            for b in gpus[:tp_v]
            if a != b
        )
        return {
            "recommended_tensor_parallel_size": tp_v,
            "pipeline_parallel_size": args["pipeline_parallel_size"],
            "gpus": gpus,
            "cuda_visible_devices": ",".join(str(g) for g in gpus),
            "p2p_optimized": bool(args["feasible"] and connected),
            "feasible": args["feasible"],
            "summary": args["summary"],
            "basis": basis,
            "memory": memory,
            "max_model_len": args["max_model_len"],
            "vllm_args": args,
        }

    # ---- the server ------------------------------------------------------------------------

    def _launch_argv(self, help_text: str, model_path: str, config: Dict[str, Any]) -> List[str]:
        cli = find_cli()
        assert cli
        argv = [cli, "launch", model_path]
        merged = dict(self.config)
        merged.update(config or {})
        gm = self.gpu_manager.config
        # the plan request's options, named by the library's table (one definition)
        options = []
        for f in _lib.plan_fields():
            if f["group"] == "model":
                continue
            if f["name"] == "gpus":
                value = ",".join(str(g) for g in gm["gpus"]) if gm.get("gpus") else None
            else:
                value = merged.get(_ALIASES.get(f["name"], f["name"]))
            options.append((f["flag"], value))
        options += [
            ("--model-size-gb", merged.get("model_size_gb") if not os.path.isdir(model_path) else None),
            ("--fixture", gm.get("fixture")),
            ("--topology", gm.get("topology")),
            ("--host", merged.get("host")),
            ("--port", merged.get("port")),
            ("--vllm", merged.get("vllm")),
        ]
        for flag, value in options:
            if value is None or value == "" or value == 0 or value is False:
                continue
            if flag not in help_text:
                raise NotAvailable("this build's `peerscope launch` has no %s option" % flag)
            argv += [flag] if value is True else [flag, str(value)]
        extra = merged.get("extra_args") or []
        if extra:
            argv += ["--"] + [str(a) for a in extra]
        return argv

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.append(line)
            if self._url is None and "ready http" in line:
                self._url = line[line.index("http") :].split()[0]
                self._state = "ready"
        await self._proc.wait()
        if self._state in ("starting", "ready"):
            self._state = "exited"

    async def load_model(self, model_path: str, config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Starts vLLM for ``model_path`` as a server process through ``peerscope launch``
        (which plans, sets the environment, runs ``vllm serve`` and waits for /health).

        ``config`` overrides the manager's vllm_config for this launch (same keys, e.g.
        ``tensor_parallel_size``, ``port``) and may set ``wait`` (bool, default True: return
        once vLLM is ready or has exited) and ``timeout`` (seconds to wait, default 900).
        Returns :meth:`status`. Raises NotAvailable when ``peerscope launch`` is not in this
        build, InvalidArgument when a model is already loaded.
        """
        if self._proc is not None and self._proc.returncode is None:
            raise InvalidArgument("a model is already loaded (%s); unload_model() first" % self._model)
        help_text = launch_help()
        config = dict(config or {})
        argv = self._launch_argv(help_text, str(model_path), config)
        self._log.clear()
        self._url = None
        self._model = str(model_path)
        self._proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
        self._state = "starting"
        self._reader = asyncio.ensure_future(self._read())
        if config.get("wait", True):
            deadline = float(config.get("timeout", 900))
            loop = asyncio.get_event_loop()
            end = loop.time() + deadline
            while self._state == "starting" and loop.time() < end:
                await asyncio.sleep(0.2)
        return self.status()

    async def unload_model(self) -> Dict[str, Any]:
        """Stops the server: SIGTERM to ``peerscope launch``, which stops vLLM and all its
        workers, then waits for it. Returns :meth:`status`; a no-op when nothing runs."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=60)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
            if self._reader is not None:
                await self._reader
            self._state = "stopped"
        return self.status()

    def status(self) -> Dict[str, Any]:
        """``{"state": "not loaded" | "starting" | "ready" | "exited" | "stopped", "model",
        "pid", "url", "returncode", "log_tail" (last lines of peerscope launch's output)}``."""
        proc = self._proc
        return {
            "state": self._state,
            "model": self._model,
            "pid": proc.pid if proc is not None else None,
            "url": self._url,
            "returncode": proc.returncode if proc is not None else None,
            "log_tail": list(self._log)[-20:],
        }

    def benchmark_p2p_performance(self, quick: bool = True, gpus: Optional[List[int]] = None) -> Dict[str, Any]:
        """Measures what P2P and a custom all-reduce are worth here: copy bandwidth with P2P
        on and off, and all-reduce with NCCL (default, ``NCCL_P2P_DISABLE=1``,
        ``NCCL_P2P_LEVEL=NVL``) against peerscope's one-shot P2P kernel (the algorithm of
        vLLM's custom all-reduce), on the GPUs of the recommended tensor-parallel group
        (``gpus`` to choose others). Runs ``GPUManager.run_benchmark``; see docs/bench.md.

        Returns a dict:

        - ``simulated`` (bool): modelled by the fake drivers (no GPU here), not measured.
        - ``gpus`` (list of int), ``nccl_version`` (int or None), ``nccl_note`` (str or None).
        - ``p2p_copy`` (dict ``"GPU0->GPU1"`` -> dict): ``p2p_enabled_gbps``,
          ``p2p_disabled_gbps`` (staged through host memory), ``speedup`` (enabled /
          disabled), ``bidirectional_gbps`` (P2P on, both directions summed), ``latency_us``
          (4-byte copy, P2P on / off); a value not measured is None.
        - ``local_copy_gbps`` (dict ``"GPU0"`` -> float), ``h2d_gbps``, ``d2h_gbps``.
        - ``allreduce`` (list of dict, one per group, type and size): ``gpus``, ``ranks``,
          ``virtual_ranks``, ``dtype``, ``bytes``, ``nccl_us`` (dict env -> median us, eager),
          ``oneshot_us``, ``oneshot_speedup`` (NCCL default / one-shot), ``p2p_speedup``
          (NCCL with P2P disabled / default).
        - ``problems`` (list of str): measurements waived, failed, hung or wrong, with why.
        - ``results``: every raw result (GPUManager.run_benchmark's ``results``).
        """
        if gpus is None:
            tp = self.gpu_manager.recommended_tensor_parallel_size()
            gpus = self.gpu_manager.best_group(tp) if tp > 1 else self.gpu_manager.selected_gpus()[:1]
        bench = self.gpu_manager.run_benchmark(("copy", "latency", "allreduce"), gpus=gpus, quick=quick)
        return summarise_benchmark(bench, list(gpus))


def _median(result: Dict[str, Any]) -> Optional[float]:
    us = result.get("us")
    return us["median"] if us and result["outcome"] == "ok" else None


def summarise_benchmark(bench: Dict[str, Any], gpus: List[int]) -> Dict[str, Any]:
    """Condenses ``run_benchmark``'s results into the figures benchmark_p2p_performance
    documents; only measured (``ok``) results contribute."""
    ok = [r for r in bench["results"] if r["outcome"] == "ok"]
    copy: Dict[str, Dict[str, Any]] = {}

    def pair(r: Dict[str, Any]) -> Dict[str, Any]:
        key = "GPU%d->GPU%d" % (r["src"], r["dst"])
        return copy.setdefault(key, {"p2p_enabled_gbps": None, "p2p_disabled_gbps": None, "speedup": None,
                                     "bidirectional_gbps": None, "latency_us": {"p2p_enabled": None, "p2p_disabled": None}})

    for r in ok:
        if r["kind"] == "copy_ce" and not r["bidirectional"]:
            pair(r)["p2p_enabled_gbps" if r["p2p"] else "p2p_disabled_gbps"] = r["gbps"]
        elif r["kind"] == "copy_ce" and r["p2p"]:
            pair(r)["bidirectional_gbps"] = r["gbps"]
        elif r["kind"] == "latency_write" and r["bytes"] == 4:
            pair(r)["latency_us"]["p2p_enabled" if r["p2p"] else "p2p_disabled"] = _median(r)
    for figures in copy.values():
        on, off = figures["p2p_enabled_gbps"], figures["p2p_disabled_gbps"]
        figures["speedup"] = round(on / off, 2) if on and off else None
    per_gpu = {kind: {"GPU%d" % r["src"]: r["gbps"] for r in ok if r["kind"] == kind} for kind in ("local_ce", "h2d", "d2h")}

    groups: Dict[Any, Dict[str, Any]] = {}
    for r in ok:
        if not r["kind"].startswith("allreduce") or r["graph"]:
            continue
        key = (tuple(r["group"]), r["virtual_ranks"], r["dtype"], r["bytes"])
        g = groups.setdefault(key, {"gpus": sorted(set(r["group"])), "ranks": r["ranks"], "virtual_ranks": r["virtual_ranks"],
                                    "dtype": r["dtype"], "bytes": r["bytes"], "nccl_us": {}, "oneshot_us": None})
        if r["kind"] == "allreduce_nccl":
            g["nccl_us"][r["env"]] = _median(r)
        else:
            g["oneshot_us"] = _median(r)
    allreduce = []
    for g in groups.values():
        nccl, one = g["nccl_us"].get("default"), g["oneshot_us"]
        staged = g["nccl_us"].get("NCCL_P2P_DISABLE=1")
        g["oneshot_speedup"] = round(nccl / one, 2) if nccl and one else None
        g["p2p_speedup"] = round(staged / nccl, 2) if nccl and staged else None
        allreduce.append(g)
    problems = ["%s %s: %s" % (r["kind"], r["outcome"], r["reason"]) for r in bench["results"] if r["outcome"] != "ok"]
    return {
        "simulated": bench["simulated"],
        "gpus": gpus,
        "nccl_version": bench["nccl_version"],
        "nccl_note": bench["nccl_note"],
        "p2p_copy": copy,
        "local_copy_gbps": per_gpu["local_ce"],
        "h2d_gbps": per_gpu["h2d"],
        "d2h_gbps": per_gpu["d2h"],
        "allreduce": allreduce,
        "problems": problems,
        "results": bench["results"],
    }
