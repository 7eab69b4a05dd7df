#!/usr/bin/env python3
"""Hostile inputs end to end (issue 18): a model directory whose name holds a newline, quotes,
$(...), escapes or a leading dash is emitted so that YAML, sh and JSON read back exactly that
path (never a key or an option); absurd or escaping model files, a 1024-GPU topology text and
a 100,000-shard index end in one line and exit 3, or in a plan, never in a wrong "fits"."""
import json
import os
import shlex
import subprocess
import sys

import yaml

import clitest
from clitest import CLI, TMP, check

TOPO = os.path.join(TMP, "two-gpus.txt")
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
          "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
          "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096,
          "torch_dtype": "bfloat16"}
# The keys a plan's YAML may hold (vLLM's flags without the dashes).
YAML_KEYS = {"tensor-parallel-size", "pipeline-parallel-size", "gpu-memory-utilization",
             "max-model-len", "max-num-seqs", "kv-cache-dtype", "disable-custom-all-reduce",
             "distributed-executor-backend", "revision"}


def run_in(cwd, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERSCOPE_FIXTURE")}
    env["PEERSCOPE_CACHE_DIR"] = os.path.join(TMP, "cache")
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd)


def model_dir(parent, name, config=None, files=None):
    path = os.path.join(parent, name)
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config or CONFIG, f)
    for file_name, data in (files or {}).items():
        with open(os.path.join(path, file_name), "wb") as f:
            f.write(data)
    return path


def shell_argv(script, cwd):
    """What `vllm` receives when sh runs the plan's shell output."""
    out = os.path.join(TMP, "argv")
    stub = "vllm() { printf '%%s\\0' \"$@\" > '%s'; }\n" % out
    proc = subprocess.run(["sh", "-c", stub + script], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        return ["sh failed: " + proc.stderr]
    with open(out, "rb") as f:
        return f.read().decode().split("\0")[:-1]


def test_emitters():
    parent = os.path.join(TMP, "models")
    os.makedirs(parent)
    names = ["m\ntrust-remote-code: true", "q'\"$(touch pwned)`touch pwned2`\x1b[2J;x",
             "-evil", "--trust-remote-code", "tab\there #comment"]
    for name in names:
        model_dir(parent, name)
        arg = name if name.startswith("-") else os.path.join(parent, name)
        want = "./" + name if name.startswith("-") else arg
        base = ["plan", "--model=" + arg, "--topology", TOPO, "--gpu-mem", "80"]
        label = repr(name)
        proc = run_in(parent, base + ["--format", "yaml"])
        doc = yaml.safe_load(proc.stdout) if proc.returncode == 0 else None
        check("yaml %s parses to known keys" % label,
              isinstance(doc, dict) and set(doc) <= YAML_KEYS, proc.stdout + proc.stderr)
        use = [line for line in proc.stdout.splitlines() if line.startswith("# Use: ")]
        check("yaml %s: the command stays in its comment" % label,
              len(use) == 1 and all(c >= " " for c in use[0]), proc.stdout)
        proc = run_in(parent, base + ["--format", "shell"])
        argv = shell_argv(proc.stdout, parent)
        check("shell %s: vllm gets the path" % label, argv[:2] == ["serve", want], argv)
        proc = run_in(parent, base + ["--format", "json"])
        check("json %s" % label, proc.returncode == 0 and json.loads(proc.stdout)["model"] == want,
              proc.stdout + proc.stderr)
        proc = run_in(parent, ["launch", "--dry-run", "--model=" + arg, "--topology", TOPO,
                               "--gpu-mem", "80"])
        words = shlex.split(proc.stdout.split("\n", 1)[1]) if proc.returncode == 0 else []
        at = words.index("serve") if "serve" in words else -1
        check("launch --dry-run %s" % label, at > 0 and words[at + 1] == want,
              proc.stdout + proc.stderr)
    check("nothing ran", not os.path.exists(os.path.join(parent, "pwned")) and
          not os.path.exists(os.path.join(parent, "pwned2")))


def safetensors(header, data_len):
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + b"\0" * data_len


def refused(name, args, must, cwd=None):
    proc = run_in(cwd or TMP, args)
    err = proc.stderr.strip()
    check(name, proc.returncode == 3 and len(err.splitlines()) == 1 and must in err,
          "rc=%d %r" % (proc.returncode, err))
    return err


def test_bad_models():
    parent = os.path.join(TMP, "bad")
    os.makedirs(parent)
    plan = ["--topology", TOPO, "--gpu-mem", "80"]
    experts = dict(CONFIG, num_local_experts=1 << 30, num_experts_per_tok=2)
    d = model_dir(parent, "experts", experts)
    refused("2^30 experts", ["plan", "--model", d] + plan,
            d + "/config.json: num_local_experts: 1073741824 is too large (at most 65536)")
    claims = {"w": {"dtype": "U8", "shape": [1800000000000], "data_offsets": [0, 1800000000000]}}
    d = model_dir(parent, "claims", files={"model.safetensors": safetensors(claims, 0)})
    refused("1.8 TB claimed", ["plan", "--model", d] + plan,
            d + "/model.safetensors: offset ")
    big = {"w": {"dtype": "U8", "shape": [1 << 62], "data_offsets": [0, 1 << 62]}}
    index = {"weight_map": {"a": "a.safetensors", "b": "b.safetensors", "c": "c.safetensors",
                            "d": "d.safetensors"}}
    files = {k + ".safetensors": safetensors(big, 0) for k in "abcd"}
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    d = model_dir(parent, "shards-2-62", files=files)
    refused("four shards of 2^62 bytes", ["plan", "--model", d] + plan, "no model is that large")
    index = {"weight_map": {"w": "../../../../../../../../etc/passwd"}}
    d = model_dir(parent, "escape", files={"model.safetensors.index.json":
                                           json.dumps(index).encode()})
    err = refused("weight_map ../", ["plan", "--model", d] + plan,
                  d + "/model.safetensors.index.json: weight_map: '../../../../../../../../etc/"
                  "passwd' is not a file inside the model directory")
    check("no byte of /etc/passwd quoted", "root" not in err, err)
    index = {"metadata": {"total_size": 1 << 62}, "weight_map": {}}
    d = model_dir(parent, "total", files={"model.safetensors.index.json":
                                          json.dumps(index).encode()})
    refused("total_size 2^62", ["plan", "--model", d] + plan, "is absurd")


def test_big_inputs():
    rows = ["\t" + "\t".join("GPU%d" % i for i in range(1024))]
    for r in range(1024):
        rows.append("GPU%d\t" % r + "\t".join("X" if c == r else "SYS" for c in range(1024)))
    path = os.path.join(TMP, "topo-1024.txt")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")
    refused("1024-GPU topology", ["plan", "--model-size-gb", "10", "--topology", path,
                                  "--gpu-mem", "80"], "more than 64 GPUs in one node")
    n = 100000
    weight_map = {"t%d" % i: "model-%06d-of-%06d.safetensors" % (i + 1, n) for i in range(n)}
    index = {"metadata": {"total_size": 13476839424}, "weight_map": weight_map}
    d = model_dir(TMP, "shards-100k", files={"model.safetensors.index.json":
                                              json.dumps(index).encode()})
    proc = run_in(TMP, ["plan", "--model", d, "--topology", TOPO, "--gpu-mem", "80", "--json"])
    check("100,000-shard index plans", proc.returncode == 0 and
          json.loads(proc.stdout)["memory"]["weights_bytes"] > 0, proc.stderr)


def main():
    with open(TOPO, "w") as f:
        f.write("\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tNV4\t0-7\nGPU1\tNV4\t X \t0-7\n")
    for test in (test_emitters, test_bad_models, test_big_inputs):
        test()
    return clitest.finish()


if __name__ == "__main__":
    sys.exit(main())
