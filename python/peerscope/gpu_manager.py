"""GPUManager: the origin project's GPU manager API over libpeerscope.

Differences from the origin (see docs/python.md): constructing a GPUManager never enables
peer access (call :meth:`GPUManager.enable_p2p`); ``p2p_matrix`` holds the *verified*
result of a real transfer per directed pair, not the driver's claim; the vLLM arguments
never select Ray because P2P works, and never emit ``NCCL_P2P_DISABLE=0``.
"""

import ctypes
import os
from typing import Any, Dict, List, Optional, Sequence

from . import _lib
from ._lib import Ctx, lib, text
from ._source import Report, int_array, load_report, scoped_env
from ._vllm_args import vllm_gpu_args
from .errors import InvalidArgument

GIB = float(1 << 30)

_CONFIG_KEYS = {
    "fixture",
    "topology",
    "live",
    "verify",
    "gpus",
    "timeout_ms",
    "refresh",
    "cache_dir",
    "model",
    "model_path",
    "model_size_gb",
    "gpu_memory_utilization",
    "max_model_len",
    "max_num_seqs",
    "kv_cache_dtype",
    "reserve_gb",
    "objective",
}


def pair_key(a: int, b: int) -> str:
    """The key of a directed pair in every dict this package returns: ``"GPU0->GPU1"``."""
    return "GPU%d->GPU%d" % (a, b)


def _claim(value: int) -> str:
    return lib.ps_claim_name(value).decode()


def _gib(value: int) -> float:
    return round(value / GIB, 3)


class GPUManager:
    """Which GPUs of this machine (or of a described one) can really talk peer-to-peer, and
    how to run vLLM on them.

    The topology is read and every directed pair verified with a real transfer (in
    peerscope's worker process) when the manager is constructed; :meth:`refresh` does it
    again. Without an NVIDIA driver (and without ``fixture``, ``topology`` or ``live``) it
    plays back the bundled example machine through peerscope's fake drivers and says so in
    :attr:`notice`.

    Args:
        config: optional dict. Recognised keys (others are ignored, so the origin's GPU
            config can be passed as is):

            - ``fixture`` (str): a ``*.topo`` file played back through the fake drivers.
            - ``topology`` (str): a saved peerscope report (JSON) or ``nvidia-smi topo -m``
              text; nothing is verified then (the driver's claims decide).
            - ``live`` (bool): use this machine's driver or raise; never the example.
            - ``verify`` (bool, default True): run the real transfers.
            - ``gpus`` (list of int): only these GPUs (report indexes, nvidia-smi order).
              Without it, the GPUs the process's ``CUDA_VISIBLE_DEVICES`` allows (CUDA
              itself says which; :attr:`notice` names them); GPUs it hides are never
              touched, and naming one raises ``InvalidArgument``.
            - ``all_gpus`` (bool): the whole machine, whatever ``CUDA_VISIBLE_DEVICES`` says.
            - ``timeout_ms`` (int), ``refresh`` (bool), ``cache_dir`` (str): verification.
            - ``model`` / ``model_path`` (str): a model directory, or a Hugging Face id
              ``org/name[@revision]`` (HF cache, peerscope's catalog, or the Hub), to plan for.
            - ``model_size_gb`` (float): a model known only by its weight size.
            - ``gpu_memory_utilization`` (float), ``max_model_len`` (int),
              ``max_num_seqs`` (int), ``kv_cache_dtype`` (str), ``reserve_gb`` (float),
              ``objective`` (``"throughput"`` or ``"latency"``): planning.

    Raises:
        peerscope.Error subclasses carrying the C status: ``NoDriver`` with ``live`` and no
        driver, ``NotFound`` for a missing fixture, ``BadInput`` for a malformed one,
        ``InvalidArgument`` for a GPU index that does not exist, ``WorkerFailed``...
    """

    def __init__(self, config: Optional[Dict[str, Any]] = None) -> None:
        self.config: Dict[str, Any] = dict(config or {})
        gpus = self.config.get("gpus")
        if gpus is not None:
            if not isinstance(gpus, (list, tuple)) or not all(isinstance(g, int) for g in gpus):
                raise InvalidArgument("config['gpus'] must be a list of GPU indexes")
            self.config["gpus"] = sorted(set(gpus))
        # the planning keys through the library's one definition of the plan request
        _lib.PlanInput(self._plan_settings()).close()
        self._report: Optional[Report] = None
        self.refresh()

    # ---- the report ------------------------------------------------------------------

    def refresh(self) -> None:
        """Reads the topology and verifies every pair again (honours ``refresh`` to bypass
        the verification cache)."""
        c = self.config
        report = load_report(
            fixture=c.get("fixture"),
            topology=c.get("topology"),
            live=bool(c.get("live", False)),
            verify=bool(c.get("verify", True)) and not c.get("topology"),
            gpus=c.get("gpus"),
            timeout_ms=int(c.get("timeout_ms") or 0),
            refresh=bool(c.get("refresh", False)),
            cache_dir=c.get("cache_dir"),
            all_gpus=bool(c.get("all_gpus", False)),
        )
        if self._report is not None:
            self._report.close()
        self._report = report

    @property
    def notice(self) -> str:
        """Non-empty when the manager runs on the bundled example instead of this machine's
        GPUs (no driver installed), or on the GPUs ``CUDA_VISIBLE_DEVICES`` allows: the
        sentences saying so."""
        assert self._report is not None
        return self._report.notice

    @property
    def source(self) -> str:
        """``"live"``, ``"fixture"`` or ``"file"``."""
        return _lib.PS_SOURCE_NAMES.get(self._r.source, "unknown")

    @property
    def _r(self) -> _lib.ps_report:
        assert self._report is not None
        return self._report.r

    def selected_gpus(self) -> List[int]:
        """The GPU indexes this manager considers: ``config['gpus']``, else those
        ``CUDA_VISIBLE_DEVICES`` allows (nvidia-smi's numbers, ascending), else all."""
        sel = self.config.get("gpus")
        if sel:
            return list(sel)
        assert self._report is not None
        return [g for g in range(self._r.gpu_count) if lib.ps_gpu_allowed(self._report.ptr, g)]

    def report_json(self) -> str:
        """The whole report as peerscope.topology/1 JSON (docs/topology.schema.json)."""
        assert self._report is not None
        out = ctypes.c_void_p()
        with Ctx() as ctx:
            ctx.check(lib.ps_report_to_json(ctx.ptr, self._report.ptr, ctypes.byref(out)))
        return _lib.take_string(out)

    def _gpu_dict(self, g: _lib.ps_gpu) -> Dict[str, Any]:
        v = g.valid

        def opt(bit: int, value: Any) -> Any:
            return value if v & bit else None

        return {
            "index": g.index,
            "name": opt(_lib.PS_GPU_NAME, text(g.name)),
            "uuid": opt(_lib.PS_GPU_UUID, text(g.uuid)),
            "pci_bus_id": opt(_lib.PS_GPU_PCI_BUS_ID, text(g.pci_bus_id)),
            "memory_total_mb": opt(_lib.PS_GPU_MEMORY_TOTAL, g.memory_total_bytes // (1 << 20)),
            "memory_total_bytes": opt(_lib.PS_GPU_MEMORY_TOTAL, g.memory_total_bytes),
            "memory_free_bytes": opt(_lib.PS_GPU_MEMORY_FREE, g.memory_free_bytes),
            "compute_capability": opt(_lib.PS_GPU_COMPUTE_CAP, "%d.%d" % (g.cc_major, g.cc_minor)),
            "numa_node": opt(_lib.PS_GPU_NUMA_NODE, g.numa_node),
            "cpu_affinity": opt(_lib.PS_GPU_CPU_AFFINITY, text(g.cpu_affinity)),
            "cuda_ordinal": opt(_lib.PS_GPU_CUDA_ORDINAL, g.cuda_ordinal),
            "local_verdict": lib.ps_verdict_name(g.local_verdict).decode() if self._r.verified else None,
        }

    def _pairs(self) -> List[_lib.ps_pair]:
        r = self._r
        sel = set(self.selected_gpus())
        return [r.pairs[i] for i in range(r.pair_count) if r.pairs[i].from_ in sel and r.pairs[i].to in sel]

    def _group_connected(self, group: Sequence[int]) -> bool:
        assert self._report is not None
        return bool(group) and all(
            self._report.usable(a, b) for a in group for b in group if a != b
        )

    def recommended_tensor_parallel_size(self) -> int:
        """ps_recommend_tp: the largest power-of-two TP with a fully usable group."""
        assert self._report is not None
        arr, n = int_array(self.config.get("gpus"))
        return int(lib.ps_recommend_tp(self._report.ptr, arr, n))

    def best_group(self, size: int = 0) -> List[int]:
        """ps_best_group: the largest (or ``size``) group of GPUs whose every directed pair
        is usable, in ascending order; ties go to the best links."""
        assert self._report is not None
        arr, n = int_array(self.config.get("gpus"))
        cap = max(self._r.gpu_count, 1)
        out = (ctypes.c_int * cap)()
        got = lib.ps_best_group(self._report.ptr, arr, n, int(size), out, cap)
        return [out[i] for i in range(max(got, 0))]

    # ---- the origin API ----------------------------------------------------------------

    def check_p2p_connectivity(self) -> Dict[str, Any]:
        """P2P between every directed pair of the selected GPUs.

        Returns a dict:

        - ``p2p_enabled`` (bool): at least one pair can carry P2P traffic.
        - ``p2p_matrix`` (dict str -> bool): ``"GPU0->GPU1"`` -> the pair verified ok with a
          real transfer (for an unverified, imported topology: claimed OK read and write).
        - ``tensor_parallel_group_connected`` (bool): every pair of the selected GPUs is
          usable (the origin's one group of all GPUs).
        - ``claims`` (dict str -> dict): the driver's claims per pair: ``read``, ``write``,
          ``nvlink``, ``atomics`` (``"OK"``, ``"CNS"``, ... or None when not read) and
          ``cuda_can_access`` (bool or None).
        - ``links`` (dict str -> dict): ``link`` (``"NV4"``, ``"PIX"``, ``"SYS"``...),
          ``nvlink_count``, ``verdict`` (``"ok"``, ``"corrupt"``, ``"error"``, ``"hang"``,
          ``"unsupported"``, ``"skipped"``, ``"not run"``), ``reason``, ``error_name``,
          ``copy_us`` (float or None), ``from_cache``, ``failed`` (bool) and ``claim_lies``
          (the driver claims P2P but the transfer failed).
        - ``gpus`` (list of dict): index, name, uuid, pci_bus_id, memory_total_mb, ...;
          a value the driver could not give is None.
        - ``verified`` (bool), ``source`` (``"live"``/``"fixture"``/``"file"``), ``notice``
          (str, non-empty when running on the bundled example),
          ``recommended_tensor_parallel_size`` (int), ``best_group`` (list of int).
        """
        assert self._report is not None
        r = self._r
        pairs = self._pairs()
        matrix: Dict[str, bool] = {}
        claims: Dict[str, Dict[str, Any]] = {}
        links: Dict[str, Dict[str, Any]] = {}
        for p in pairs:
            key = pair_key(p.from_, p.to)
            usable = self._report.usable(p.from_, p.to)
            failed = self._report.failed(p.from_, p.to)
            matrix[key] = usable
            have_claims = bool(p.valid & _lib.PS_PAIR_CLAIMS)
            claims[key] = {
                "read": _claim(p.claim_read) if have_claims else None,
                "write": _claim(p.claim_write) if have_claims else None,
                "nvlink": _claim(p.claim_nvlink) if have_claims else None,
                "atomics": _claim(p.claim_atomics) if have_claims else None,
                "cuda_can_access": bool(p.cuda_can_access) if p.valid & _lib.PS_PAIR_CUDA_CLAIM else None,
            }
            buf = ctypes.create_string_buffer(16)
            link = lib.ps_link_name(p.link, p.nvlink_count, buf, len(buf)).decode()
            claimed = have_claims and p.claim_read == _lib.PS_CLAIM_OK and p.claim_write == _lib.PS_CLAIM_OK
            links[key] = {
                "link": link if p.valid & _lib.PS_PAIR_LINK else None,
                "nvlink_count": p.nvlink_count if p.valid & _lib.PS_PAIR_NVLINK else None,
                "nvswitch": bool(p.nvswitch) if p.valid & _lib.PS_PAIR_NVLINK else None,
                "verdict": lib.ps_verdict_name(p.verdict).decode(),
                "reason": text(p.reason),
                "error_name": text(p.error_name) or None,
                "copy_us": p.copy_us if p.valid & _lib.PS_PAIR_COPY_TIME else None,
                "from_cache": bool(p.from_cache),
                "failed": failed,
                "claim_lies": bool(failed and claimed),
            }
        sel = self.selected_gpus()
        return {
            "p2p_enabled": any(matrix.values()),
            "p2p_matrix": matrix,
            "tensor_parallel_group_connected": self._group_connected(sel),
            "claims": claims,
            "links": links,
            "gpus": [self._gpu_dict(r.gpus[g]) for g in sel],
            "verified": bool(r.verified),
            "source": self.source,
            "notice": self.notice,
            "recommended_tensor_parallel_size": self.recommended_tensor_parallel_size(),
            "best_group": self.best_group(),
        }

    # ---- planning ------------------------------------------------------------------------

    def _config_model(self) -> Dict[str, Any]:
        c = self.config
        return {"model_path": c.get("model_path") or c.get("model"), "model_size_gb": c.get("model_size_gb")}

    def _plan_settings(self, settings: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The config's planning keys (the library's "plan" fields), overridden by `settings`."""
        c = dict(self.config)
        c.update({k: v for k, v in (settings or {}).items() if v is not None})
        return {k: c[k] for k in _lib.plan_field_names("plan") if c.get(k) is not None}

    def plan(
        self,
        model_size_gb: Optional[float] = None,
        model_path: Optional[str] = None,
        tensor_parallel_size: int = 0,
        pipeline_parallel_size: int = 0,
        settings: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """ps_plan_make for a model (a directory, or a size in GB) on the selected GPUs.

        Returns the plan as a dict: ``feasible``, ``summary``, ``tensor_parallel_size``,
        ``pipeline_parallel_size``, ``gpus``, ``replicas``, ``memory`` (GiB per GPU on the
        tightest GPU: ``budget_gib``, ``weights_gib``, ``overhead_gib``, ``kv_gib``, and
        ``kv_tokens``, ``gpu_memory_utilization``, ``gpu_memory_total_gib``),
        ``max_model_len``, ``custom_all_reduce``, ``env`` and ``args`` (lists of
        ``{"name", "value", "why"}``), ``reasons`` (list of str), ``alternatives`` (list of
        ``{"tensor_parallel_size", "pipeline_parallel_size", "gpus", "feasible", "why"}``)
        and ``command`` (the shell lines). ``settings`` overrides the config's planning keys
        (``gpu_memory_utilization``, ``max_model_len``, ...) for this call. Every input goes
        through the library's one parser of the plan request (ranges, types, exactly one
        model source). Raises InvalidArgument for impossible requests.
        """
        assert self._report is not None
        if model_path is None and model_size_gb is None:
            defaults = self._config_model()
            model_path, model_size_gb = defaults["model_path"], defaults["model_size_gb"]
        fields = self._plan_settings(settings)
        fields.update(tp=tensor_parallel_size, pp=pipeline_parallel_size,
                      model_dir=str(model_path) if model_path else None,
                      model_size_gb=None if model_path else model_size_gb)
        with _lib.PlanInput(fields) as given:
            model = given.model()
            req = given.request(model)
            with Ctx() as ctx:
                plan = _lib.plan_make(ctx, self._report.ptr, req)
                out = ctypes.c_void_p()
                command = ""
                if plan.feasible:
                    ctx.check(lib.ps_plan_write(ctx.ptr, ctypes.byref(plan), _lib.PS_PLAN_SHELL, ctypes.byref(out)))
                    command = _lib.take_string(out)
        return self._plan_dict(plan, command)

    def _plan_dict(self, plan: _lib.ps_plan, command: str) -> Dict[str, Any]:
        def items(arr: Any, count: int) -> List[Dict[str, str]]:
            return [{"name": text(arr[i].name), "value": text(arr[i].value), "why": text(arr[i].why)} for i in range(count)]

        gpus = [plan.gpus[i] for i in range(plan.gpu_count)]
        totals = [self._r.gpus[g].memory_total_bytes for g in gpus if self._r.gpus[g].valid & _lib.PS_GPU_MEMORY_TOTAL]
        return {
            "feasible": bool(plan.feasible),
            "summary": text(plan.summary),
            "tensor_parallel_size": plan.tp,
            "pipeline_parallel_size": plan.pp,
            "gpus": gpus,
            "replicas": plan.replicas,
            "memory": {
                "gpu_memory_total_gib": _gib(min(totals)) if totals else None,
                "gpu_memory_utilization": plan.gpu_memory_utilization,
                "budget_gib": _gib(plan.budget_bytes),
                "weights_gib": _gib(plan.weights_bytes),
                "overhead_gib": _gib(plan.overhead_bytes),
                "kv_gib": _gib(plan.kv_bytes),
                # None when the KV size per token is unknown (a model given by size only)
                "kv_tokens": None if plan.feasible and plan.max_model_len == 0 else plan.kv_tokens,
            },
            "max_model_len": plan.max_model_len,
            "max_num_seqs": plan.max_num_seqs,
            "custom_all_reduce": bool(plan.custom_all_reduce),
            "pp_layer_partition": text(plan.pp_layer_partition) or None,
            "env": items(plan.env, plan.env_count),
            "args": items(plan.args, plan.arg_count),
            "model_arg": text(plan.model_arg),
            "reasons": [text(plan.reasons[i].value) for i in range(plan.reason_count)],
            "alternatives": [
                {
                    "tensor_parallel_size": a.tp,
                    "pipeline_parallel_size": a.pp,
                    "gpus": [a.gpus[j] for j in range(a.gpu_count)],
                    "feasible": bool(a.feasible),
                    "why": text(a.why),
                }
                for a in (plan.alts[i] for i in range(plan.alt_count))
            ],
            "command": command,
        }

    def optimize_gpu_placement(self, model_size_gb: float) -> Dict[str, Any]:
        """The GPUs to run a model of ``model_size_gb`` GB of weights on.

        Returns a dict: ``gpus`` (list of int, rank order), ``cuda_visible_devices`` (str,
        ``"0,1,2,3"``; with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), ``recommended_tensor_parallel_size``
        (int), ``pipeline_parallel_size`` (int), ``p2p_optimized`` (bool: TP > 1 over a group
        whose every pair verified P2P), ``feasible`` (bool) and ``summary`` (str, with the
        numbers when nothing fits), ``memory`` (the plan's memory analysis per GPU, GiB),
        ``max_p2p_tensor_parallel_size`` (the topology's limit), ``reasons``,
        ``alternatives``. Raises InvalidArgument when ``model_size_gb`` is not positive.
        """
        plan = self.plan(model_size_gb=model_size_gb)
        gpus = plan["gpus"]
        tp = plan["tensor_parallel_size"]
        group_ok = self._group_connected(gpus[:tp]) if tp > 1 else False
        return {
            "feasible": plan["feasible"],
            "summary": plan["summary"],
            "gpus": gpus,
            "cuda_visible_devices": ",".join(str(g) for g in gpus),
            "recommended_tensor_parallel_size": tp,
            "pipeline_parallel_size": plan["pipeline_parallel_size"],
            "replicas": plan["replicas"],
            "p2p_optimized": bool(plan["feasible"] and group_ok),
            "max_p2p_tensor_parallel_size": self.recommended_tensor_parallel_size(),
            "memory": plan["memory"],
            "reasons": plan["reasons"],
            "alternatives": plan["alternatives"],
        }

    def get_vllm_gpu_args(
        self,
        user_tensor_parallel: Optional[int] = None,
        user_pipeline_parallel: Optional[int] = None,
        model_size_gb: Optional[float] = None,
        model_path: Optional[str] = None,
        *,
        settings: Optional[Dict[str, Any]] = None,
        topology_only: bool = False,
    ) -> Dict[str, Any]:
        """The vLLM engine arguments and environment for the selected GPUs, each with its
        reason.

        The model is ``model_path`` / ``model_size_gb``, else the config's ``model`` /
        ``model_size_gb``; with no model at all the arguments come from the topology only
        (``gpu_memory_utilization`` and ``max_model_len`` are then vLLM's defaults: 0.9 and
        None, the model's maximum). ``user_tensor_parallel`` / ``user_pipeline_parallel``
        fix TP and PP (None or 0: chosen). ``topology_only=True`` ignores any model, also
        the config's.

        Returns a dict:

        - ``engine_args`` (dict): ``tensor_parallel_size`` (int), ``pipeline_parallel_size``
          (int), ``disable_custom_all_reduce`` (bool), ``distributed_executor_backend``
          (``"mp"`` or ``"ray"``), ``gpu_memory_utilization`` (float), ``max_model_len``
          (int or None); ready for ``vllm.LLM(model, **engine_args)``. The same six keys
          are also at the top level, as in the origin.
        - ``env`` (dict str -> str): the environment to set (``CUDA_VISIBLE_DEVICES``,
          ``CUDA_DEVICE_ORDER``, ``NCCL_P2P_DISABLE=1`` only where P2P is broken, ...).
        - ``reasons`` (dict str -> str): why, for every engine argument and variable.
        - ``gpus`` (list of int), ``feasible`` (bool), ``summary`` (str), ``extra_args``
          (other ``vllm serve`` flags of the plan, dict flag -> value), ``command`` (str).

        Raises InvalidArgument for a TP/PP the selected GPUs cannot hold (e.g. TP larger
        than the GPUs), BadInput for a malformed model directory.
        """
        tp = user_tensor_parallel or 0  # 0: chosen; the library's parser checks the rest
        pp = user_pipeline_parallel or 0
        if topology_only:
            model_path = model_size_gb = None
        elif model_path is None and model_size_gb is None:
            defaults = self._config_model()
            model_path, model_size_gb = defaults["model_path"], defaults["model_size_gb"]
        no_model = model_path is None and model_size_gb is None
        if no_model:
            # The smallest synthetic model: the plan's GPUs, TP/PP, custom all-reduce and
            # environment depend on the topology; its memory numbers are not reported.
            plan = self.plan(model_size_gb=0.001, tensor_parallel_size=tp, pipeline_parallel_size=pp, settings=settings)
        else:
            plan = self.plan(
                model_size_gb=model_size_gb,
                model_path=model_path,
                tensor_parallel_size=tp,
                pipeline_parallel_size=pp,
                settings=settings,
            )
        given_gmu = (settings or {}).get("gpu_memory_utilization") or self.config.get("gpu_memory_utilization")
        return vllm_gpu_args(plan, no_model, given_gmu, self._group_connected)

    # ---- peer access in this process -------------------------------------------------------

    def enable_p2p(self, gpus: Optional[Sequence[int]] = None) -> Dict[str, Dict[str, Any]]:
        """Enables CUDA peer access between every ordered pair of ``gpus`` (default: the
        selected GPUs) in the *calling* process, through the CUDA driver API (primary
        contexts, cuCtxEnablePeerAccess). Explicit: constructing a manager never does it.

        Only for pairs this process will use; for vLLM, which runs its own processes, it is
        not needed. GPUs are matched to CUDA devices by PCI bus id, so CUDA_DEVICE_ORDER and
        CUDA_VISIBLE_DEVICES are honoured. On a played-back machine it runs against the fake
        drivers.

        Returns ``{"GPU0->GPU1": {"enabled": bool, "result": "CUDA_SUCCESS" | error name,
        "can_access": bool | None, "verified": bool | None}}``; ``verified`` is the pair's
        usable verdict from the report, so a pair the driver enables but that failed a real
        transfer is visible.

        Raises DriverUnavailable (or its subclass NoDriver) when libcuda cannot be loaded or
        lacks an entry point, or when the report is an imported topology of another machine;
        InvalidArgument for an unknown GPU or one CUDA does not see.
        """
        from ._cuda import enable_peer_access

        assert self._report is not None
        if self.source == "file":
            from .errors import DriverUnavailable

            raise DriverUnavailable("the report is an imported topology, not this machine's GPUs: nothing to enable")
        sel = list(gpus) if gpus is not None else self.selected_gpus()
        r = self._r
        bus_ids = []
        for g in sel:
            if not 0 <= g < r.gpu_count:
                raise InvalidArgument("GPU %d does not exist" % g)
            gpu = r.gpus[g]
            if not gpu.valid & _lib.PS_GPU_PCI_BUS_ID:
                raise InvalidArgument("GPU %d has no PCI bus id to find it in CUDA" % g)
            bus_ids.append(text(gpu.pci_bus_id))
        with scoped_env(self._report.env):
            driver_dir = os.environ.get("PEERSCOPE_DRIVER_DIR")
            results = enable_peer_access(bus_ids, driver_dir)
        out: Dict[str, Dict[str, Any]] = {}
        for (i, j), res in results.items():
            a, b = sel[i], sel[j]
            res["verified"] = self._report.usable(a, b) if r.verified else None
            out[pair_key(a, b)] = res
        return out

    def run_benchmark(
        self,
        tests: Sequence[str] = ("copy", "latency", "allreduce"),
        gpus: Optional[Sequence[int]] = None,
        quick: bool = True,
        sizes: Optional[Sequence[int]] = None,
        iters: int = 0,
        trials: int = 0,
        nccl_path: Optional[str] = None,
        timeout_ms: int = 0,
    ) -> Dict[str, Any]:
        """Runs ``peerscope bench`` (ps_bench_run) on this manager's machine and attaches the
        results to its report. Every figure is measured in a worker process with the data
        checked afterwards (docs/bench.md); on a played-back machine they are modelled and
        ``simulated`` is True.

        Args:
            tests: any of ``"copy"``, ``"latency"``, ``"allreduce"``, ``"all"``.
            gpus: GPU indexes (default: the selected GPUs).
            quick: smaller buffers and fewer sizes (seconds rather than a minute).
            sizes: all-reduce message sizes in bytes (multiples of 16).
            iters, trials, timeout_ms: as ``peerscope bench``; 0 = default.
            nccl_path: libnccl.so.2 to load (default: PEERSCOPE_NCCL, then the system's).

        Returns the report's ``bench`` section as a dict (docs/bench-output.md): ``simulated``,
        ``kernels``, ``nccl_version``, ``nccl_note``, ``started``, ``wall_ms`` and
        ``results`` (one dict per measurement: ``kind``, ``outcome``, ``src``, ``dst``,
        ``group``, ``p2p``, ``bidirectional``, ``env``, ``graph``, ``dtype``, ``bytes``,
        ``us`` (median, p10, p90, min, max), ``gbps``, ``bus_gbps``, ``ns_per_access``,
        ``reason``).

        Raises InvalidArgument for an unknown test, GPU or size; DriverUnavailable when the
        report is an imported topology (nothing to measure) or CUDA cannot start.
        """
        import json

        assert self._report is not None
        if self.source == "file":
            from .errors import DriverUnavailable

            raise DriverUnavailable("the report is an imported topology, not this machine's GPUs: nothing to measure")
        bits = 0
        for t in tests:
            if t not in _lib.PS_BENCH_TESTS:
                raise InvalidArgument("unknown benchmark %r (copy, latency, allreduce or all)" % t)
            bits |= _lib.PS_BENCH_TESTS[t]
        opts = _lib.ps_bench_opts()
        opts.tests = bits
        sel = list(gpus) if gpus is not None else self.config.get("gpus")
        arr, n = int_array(sel)
        opts.gpus, opts.gpu_count = arr, n
        size_arr = (ctypes.c_uint64 * len(sizes))(*sizes) if sizes else None
        if size_arr is not None:
            opts.sizes, opts.size_count = size_arr, len(sizes)
        opts.quick, opts.iters, opts.trials, opts.timeout_ms = bool(quick), int(iters), int(trials), int(timeout_ms)
        opts.nccl_path = nccl_path.encode() if nccl_path else None
        with scoped_env(self._report.env), Ctx() as ctx:
            ctx.check(lib.ps_bench_run(ctx.ptr, self._report.ptr, ctypes.byref(opts)))
        return json.loads(self.report_json())["bench"]

    def close(self) -> None:
        """Frees the report (also done when the manager is garbage collected)."""
        if self._report is not None:
            self._report.close()
