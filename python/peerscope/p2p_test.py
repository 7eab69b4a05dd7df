"""The origin project's test script (test_p2p_tensor_parallel.py, console script
peerscope-p2p-test): the origin's report format line for line, then the recommended
tensor-parallel configuration, then the P2P enabled/disabled benchmark (not in this build:
it says so instead of printing numbers)."""

import argparse
import sys
from typing import List, Optional

from .errors import Error, NotAvailable
from .gpu_manager import GPUManager
from .vllm_manager import VLLMManager

BENCHMARK_MISSING = "P2P benchmark: not available in this build (benchmarks are not built yet)"


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
        try:
            figures = vm.benchmark_p2p_performance()
            print("P2P benchmark: %s" % figures)
        except NotAvailable:
            print(BENCHMARK_MISSING)
    except Error as exc:
        print("peerscope-p2p-test: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
