"""The origin's ``get_vllm_gpu_args`` answer, built from a plan dict (GPUManager.plan): the
engine arguments, the environment and a reason for each. Pure: no library calls."""

from typing import Any, Callable, Dict, List, Optional, Sequence

# The engine arguments the origin returns; the plan's other `vllm serve` flags are extras.
ENGINE_FLAGS = {
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--disable-custom-all-reduce",
    "--distributed-executor-backend",
    "--gpu-memory-utilization",
    "--max-model-len",
}


def _reason_from(plan: Dict[str, Any], prefix: str) -> Optional[str]:
    """The plan's reason line that starts with `prefix`, if any."""
    return next((line for line in plan["reasons"] if line.startswith(prefix)), None)


def _parallel(plan: Dict[str, Any], args: Dict[str, Dict[str, str]], reasons: Dict[str, str]) -> Dict[str, Any]:
    """TP, PP, custom all-reduce and the executor, with their reasons."""
    tp, pp = plan["tensor_parallel_size"], plan["pipeline_parallel_size"]
    t, p = args.get("--tensor-parallel-size"), args.get("--pipeline-parallel-size")
    reasons["tensor_parallel_size"] = t["why"] if t else "one GPU per replica: no tensor parallelism (vLLM's default, 1)"
    reasons["pipeline_parallel_size"] = p["why"] if p else "one pipeline stage (vLLM's default, 1)"
    car = args.get("--disable-custom-all-reduce")
    if car:
        reasons["disable_custom_all_reduce"] = car["why"]
    else:
        reasons["disable_custom_all_reduce"] = _reason_from(plan, "custom all-reduce") or (
            "custom all-reduce left to vLLM: no TP group" if tp <= 1 else "custom all-reduce stays on (vLLM's default)"
        )
    backend = args.get("--distributed-executor-backend")
    reasons["distributed_executor_backend"] = backend["why"] if backend else "one GPU: no distributed executor"
    return {
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "disable_custom_all_reduce": not plan["custom_all_reduce"],
        "distributed_executor_backend": backend["value"] if backend else None,
    }


def _memory(plan: Dict[str, Any], args: Dict[str, Dict[str, str]], reasons: Dict[str, str],
            no_model: bool, given_gmu: Optional[float]) -> Dict[str, Any]:
    """gpu_memory_utilization and max_model_len: the plan's, or vLLM's defaults without a model."""
    if no_model:
        reasons["gpu_memory_utilization"] = (
            "as configured (no model given: memory not checked)" if given_gmu else "no model given: vLLM's default (0.9)"
        )
        reasons["max_model_len"] = "no model given: vLLM's default (the model's maximum context)"
        return {"gpu_memory_utilization": float(given_gmu or 0.9), "max_model_len": None}
    g, m = args.get("--gpu-memory-utilization"), args.get("--max-model-len")
    reasons["gpu_memory_utilization"] = g["why"] if g else "vLLM's budget as a fraction of each GPU's memory"
    reasons["max_model_len"] = m["why"] if m else "not set: the model's shape is unknown, vLLM uses the model's maximum"
    return {"gpu_memory_utilization": plan["memory"]["gpu_memory_utilization"], "max_model_len": int(m["value"]) if m else None}


def _environment(plan: Dict[str, Any], gpus: Sequence[int], tp: int, reasons: Dict[str, str],
                 group_connected: Callable[[Sequence[int]], bool]) -> Dict[str, str]:
    """The plan's variables, and CUDA_VISIBLE_DEVICES naming its GPUs when the plan does not."""
    env: Dict[str, str] = {}
    for item in plan["env"]:
        env[item["name"]] = item["value"]
        reasons[item["name"]] = item["why"]
    if "CUDA_VISIBLE_DEVICES" not in env and gpus:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        reasons["CUDA_DEVICE_ORDER"] = "number the GPUs as nvidia-smi does, so CUDA_VISIBLE_DEVICES names the verified ones"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(x) for x in gpus)
        reasons["CUDA_VISIBLE_DEVICES"] = "the GPUs of the plan (%s)" % (
            "a group whose every pair verified P2P" if tp > 1 and group_connected(gpus[:tp]) else "rank order"
        )
    return env


def vllm_gpu_args(plan: Dict[str, Any], no_model: bool, given_gmu: Optional[float],
                  group_connected: Callable[[Sequence[int]], bool]) -> Dict[str, Any]:
    """The get_vllm_gpu_args dict (documented there) for `plan`."""
    args = {a["name"]: a for a in plan["args"]}
    reasons: Dict[str, str] = {}
    engine = _parallel(plan, args, reasons)
    engine.update(_memory(plan, args, reasons, no_model, given_gmu))
    tp, pp = engine["tensor_parallel_size"], engine["pipeline_parallel_size"]
    gpus: List[int] = plan["gpus"][: tp * pp] if plan["feasible"] else plan["gpus"]
    env = _environment(plan, gpus, tp, reasons, group_connected)
    result: Dict[str, Any] = dict(engine)
    result.update(
        {
            "engine_args": engine,
            "env": env,
            "reasons": reasons,
            "gpus": gpus,
            "feasible": plan["feasible"],
            "summary": plan["summary"] if not no_model else "topology only (no model given): "
            + "TP=%d PP=%d on GPUs %s" % (tp, pp, ",".join(str(x) for x in gpus)),
            "extra_args": {a["name"]: a["value"] for a in plan["args"] if a["name"] not in ENGINE_FLAGS},
            "command": plan["command"] if not no_model else "",
        }
    )
    return result
