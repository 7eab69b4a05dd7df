#!/usr/bin/env python3
"""The Python API on a real GPU, inside a process where PyTorch already initialised CUDA:
check_p2p_connectivity() must work (the worker is spawned, never forked) and enable_p2p() must
report per pair. usage: PEERSCOPE_LIBRARY=build/lib/libpeerscope.so python3 python_check.py"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

import torch  # noqa: E402

x = torch.ones(1 << 20, device="cuda")
torch.cuda.synchronize()
print("torch %s: CUDA initialised on %s, %d device(s)" % (
    torch.__version__, torch.cuda.get_device_name(0), torch.cuda.device_count()))

import peerscope  # noqa: E402

t0 = time.monotonic()
gm = peerscope.GPUManager({"refresh": True})  # a fresh worker, not the cache
info = gm.check_p2p_connectivity()
took = time.monotonic() - t0
print("check_p2p_connectivity in %.0f ms (with torch holding a context):" % (took * 1e3))
print(json.dumps({k: info[k] for k in ("p2p_enabled", "p2p_matrix",
                                        "tensor_parallel_group_connected")}, indent=1))
for gpu in info["gpus"]:
    print("GPU", gpu.get("index"), gpu.get("name"), gpu.get("local_copy", gpu.get("local_verdict")))
report = json.loads(gm.report_json())
print("verification from cache: %s; worker spawn %s ms, cuInit %s ms" % (
    report["verification"]["cache_used"], report["timings_ms"]["worker_spawn"],
    report["timings_ms"]["cuda_init"]))
print("enable_p2p:", gm.enable_p2p())
print("torch still works after peerscope:", float(x.sum().item()) == float(1 << 20))
print("1 passed, 0 failed")
