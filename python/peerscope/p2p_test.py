"""The origin project's test script (test_p2p_tensor_parallel.py, console script
peerscope-p2p-test): the origin's report format line for line, then the recommended
tensor-parallel configuration, then the P2P enabled/disabled benchmark, measured (peerscope
bench --quick on the recommended group; modelled and marked SIMULATED on a played-back
machine)."""

import argparse
import sys
from typing import Any, Dict, List, Optional

from .errors import Error
from .gpu_manager import GPUManager
from .vllm_manager import VLLMManager


def origin_block(gm: GPUManager, ascii_marks: bool = False) -> List[str]:
    """The origin document's "Expected Output" lines for this manager's GPUs."""
    info = gm.check_p2p_connectivity()
    ok, bad = ("OK", "FAIL") if ascii_marks else ("\u2713", "\u2717")
    gpus = info["gpus"]
    lines = ["Testing P2P Connectivity Detection", "=" * 60]
    lines.append("Detected %d GPU%s:" % (len(gpus), "" if len(gpus) == 1 else "s"))
    for g in gpus:
        memory = "(%dMB)" % g["memory_total_mb"] if g["memory_total_mb"] is not None else "(n/a)"
        lines.append("  GPU %d: %s %s" % (g["index"], g["name"] if g["name"] is not None else "n/a", memory))
    lines.append("")
    lines.append("P2P Enabled: %s" % info["p2p_enabled"])
    lines.append("Tensor Parallel Group Connected: %s" % info["tensor_parallel_group_connected"])
    lines.append("")
    lines.append("P2P Connectivity Matrix:")
    for key, usable in info["p2p_matrix"].items():
        lines.append("  %s: %s" % (key, ok if usable else bad))
    tp = info["recommended_tensor_parallel_size"]
    lines.append("")
    lines.append("Recommended Tensor Parallel Size: %d" % tp)
    lines.append("P2P Optimized: %s" % (tp > 1))
    return lines


def recommendation(vm: VLLMManager) -> List[str]:
    opt = vm.optimize_tensor_parallelism()
    args = opt["vllm_args"]
    lines = ["Recommended Tensor Parallel Configuration", "=" * 60]
    lines.append("Basis: %s" % opt["basis"])
    lines.append("Plan: %s" % opt["summary"])
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "disable_custom_all_reduce",
                 "distributed_executor_backend", "gpu_memory_utilization", "max_model_len"):
        lines.append("  %s=%s  (%s)" % (name, args[name], args["reasons"][name]))
    for name, value in args["env"].items():
        lines.append("  export %s=%s  (%s)" % (name, value, args["reasons"].get(name, "")))
    status = vm.get_p2p_status()
    for key in status["claim_mismatches"]:
        link = status["links"][key]
        lines.append("  warning: %s is claimed P2P by the driver but failed a real transfer (%s)" % (
            key, link["reason"] or link["verdict"]))
    return lines


def _num(value: Optional[float], fmt: str) -> str:
    return fmt % value if value is not None else "n/a"


def benchmark_lines(figures: Dict[str, Any]) -> List[str]:
    """The P2P enabled/disabled benchmark: copies per pair, then all-reduce per size."""
    lines = ["P2P Benchmark (measured: P2P enabled vs disabled)", "=" * 60]
    if figures["simulated"]:
        lines.append("SIMULATED: fake drivers, modelled timings, not measurements of a machine")
    lines.append("GPUs: %s" % ",".join(str(g) for g in figures["gpus"]))
    for key, f in figures["p2p_copy"].items():
        lines.append("  %s copy: P2P enabled %s GB/s, disabled %s GB/s (%sx); 4 B latency %s / %s us" % (
            key, _num(f["p2p_enabled_gbps"], "%.1f"), _num(f["p2p_disabled_gbps"], "%.1f"),
            _num(f["speedup"], "%.1f"), _num(f["latency_us"]["p2p_enabled"], "%.2f"),
            _num(f["latency_us"]["p2p_disabled"], "%.2f")))
    for key, gbps in figures["local_copy_gbps"].items():
        lines.append("  %s local copy %.1f GB/s, host to GPU %s GB/s, GPU to host %s GB/s" % (
            key, gbps, _num(figures["h2d_gbps"].get(key), "%.1f"), _num(figures["d2h_gbps"].get(key), "%.1f")))
    for g in sorted(figures["allreduce"], key=lambda g: (g["virtual_ranks"], g["ranks"], g["dtype"], g["bytes"])):
        where = ("GPU %d as %d virtual ranks" % (g["gpus"][0], g["ranks"]) if g["virtual_ranks"]
                 else "GPUs %s" % ",".join(str(x) for x in g["gpus"]))
        nccl = g["nccl_us"]
        lines.append("  all-reduce %s %s %d KiB: NCCL %s us (P2P disabled %s us), one-shot P2P kernel %s us%s" % (
            where, g["dtype"], g["bytes"] // 1024, _num(nccl.get("default"), "%.1f"),
            _num(nccl.get("NCCL_P2P_DISABLE=1"), "%.1f"), _num(g["oneshot_us"], "%.1f"),
            " (%.2fx NCCL)" % g["oneshot_speedup"] if g["oneshot_speedup"] else ""))
    for problem in figures["problems"][:10]:
        lines.append("  not measured: %s" % problem)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="peerscope-p2p-test",
        description="Check P2P between every GPU pair (with real transfers), recommend the "
        "tensor-parallel configuration and run the P2P benchmark.",
    )
    parser.add_argument("--fixture", help="play back a described machine (*.topo) through the fake drivers")
    parser.add_argument("--live", action="store_true", help="use this machine's driver or fail")
    parser.add_argument("--model", help="a Hugging Face model directory to plan for")
    parser.add_argument("--model-size-gb", type=float, help="a model known only by its size")
    parser.add_argument("--ascii", action="store_true", help="OK/FAIL instead of check marks")
    parser.add_argument("--no-benchmark", action="store_true", help="skip the P2P enabled/disabled benchmark")
    opts = parser.parse_args(argv)
    config = {"fixture": opts.fixture, "live": opts.live}
    try:
        gm = GPUManager(config)
        if gm.notice:
            print(gm.notice)
        print("\n".join(origin_block(gm, opts.ascii)))
        vm = VLLMManager({"model": opts.model, "model_size_gb": opts.model_size_gb}, gm)
        print()
        print("\n".join(recommendation(vm)))
        print()
        if not opts.no_benchmark:
            print("\n".join(benchmark_lines(vm.benchmark_p2p_performance(quick=True))))
    except Error as exc:
        print("peerscope-p2p-test: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
