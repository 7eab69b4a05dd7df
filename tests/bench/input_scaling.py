#!/usr/bin/env python3
"""Benchmark (not a test): how long `peerscope plan` takes on the large inputs of issue 18,
each made here: a model.safetensors.index.json naming 100,000 shards, `nvidia-smi topo -m`
texts of 64 GPUs (the most one node may have) and 1024 (refused at the header), and a 15 MB
fixture of `link all all` lines (refused past 4M pairs named). Medians of `runs` runs.
usage: input_scaling.py PEERSCOPE [runs]"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
          "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
          "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096,
          "torch_dtype": "bfloat16"}


def topo(path, n):
    with open(path, "w") as f:
        f.write("\t" + "\t".join("GPU%d" % i for i in range(n)) + "\tCPU Affinity\n")
        for r in range(n):
            cells = ("X" if c == r else "NV18" if c // 8 == r // 8 else "SYS" for c in range(n))
            f.write("GPU%d\t%s\t0-15\n" % (r, "\t".join(cells)))


def timed(cli, args, runs):
    """Median wall and CPU (user + system) seconds: CPU time tells on a loaded machine."""
    walls, cpus, rc = [], [], None
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen([cli] + args, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.monotonic() - t0)
        cpus.append(usage.ru_utime + usage.ru_stime)
        rc = os.waitstatus_to_exitcode(status)
    return statistics.median(walls), statistics.median(cpus), rc


def main():
    cli, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tmp = tempfile.mkdtemp(prefix="peerscope-bench-")
    model = os.path.join(tmp, "shards-100k")
    os.makedirs(model)
    json.dump(CONFIG, open(os.path.join(model, "config.json"), "w"))
    n = 100000
    wm = {"t%d" % i: "model-%06d-of-%06d.safetensors" % (i + 1, n) for i in range(n)}
    json.dump({"metadata": {"total_size": 13476839424}, "weight_map": wm},
              open(os.path.join(model, "model.safetensors.index.json"), "w"))
    for g in (8, 64, 1024):
        topo(os.path.join(tmp, "topo%d.txt" % g), g)
    mem = ["--gpu-mem", "80"]
    cases = [
        ("100,000-shard index, 8 GPUs", ["plan", "--model", model, "--topology",
                                         os.path.join(tmp, "topo8.txt")] + mem),
        ("64-GPU topo -m text", ["plan", "--model-size-gb", "10", "--topology",
                                 os.path.join(tmp, "topo64.txt")] + mem),
        ("1024-GPU topo -m text", ["plan", "--model-size-gb", "10", "--topology",
                                   os.path.join(tmp, "topo1024.txt")] + mem),
    ]
    for name, args in cases:
        wall, cpu, rc = timed(cli, args, runs)
        print("%-32s median wall %7.3f s, cpu %7.3f s  exit %d  (n=%d)" % (name, wall, cpu, rc,
                                                                        runs))
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
