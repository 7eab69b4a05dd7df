#!/usr/bin/env python3
"""peerscope plan end to end: golden plans for every model config in tests/fixtures/models on
the fixture machines (through the fake drivers) and on imported topologies, JSON plans valid
against docs/plan.schema.json, every output format, and the bad-input cases.
PEERSCOPE_UPDATE_GOLDEN=1 rewrites the golden files for review."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from jsonschema import Draft202012Validator

CLI = os.environ["PEERSCOPE_CLI"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
MODELS = os.path.join(FIXTURES, "models")
GOLDEN = os.path.join(SOURCE, "tests", "golden", "plan")
UPDATE = os.environ.get("PEERSCOPE_UPDATE_GOLDEN") == "1"
SCHEMA = Draft202012Validator(json.load(open(os.path.join(SOURCE, "docs", "plan.schema.json"))))
TMP = tempfile.mkdtemp(prefix="peerscope-plan-test-")

MACHINES = ["example-4x-a100", "hgx-h100-8", "dgx1-v100-8", "pcie-4-consumer-cns",
            "mixed-gpus", "fault-corrupt"]
results = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    if not condition:
        print("FAIL %s %s" % (name, str(detail)[:2000]))


def run(args):
    env = dict(os.environ)
    env.pop("PEERSCOPE_FIXTURE", None)
    env.pop("PEERSCOPE_DRIVER_DIR", None)
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    env["PEERSCOPE_VERIFY_SEED"] = "5eed"
    return subprocess.run([CLI, "plan"] + args, capture_output=True, text=True, timeout=120,
                          env=env)


def golden_compare(name, actual):
    actual = actual.replace(SOURCE, "<src>")
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(actual)
    expected = open(path).read() if os.path.exists(path) else None
    check("golden " + name, expected == actual, "(differs from %s)" % path)


def models():
    if not os.path.isdir(MODELS):
        return []
    return sorted(d for d in os.listdir(MODELS) if os.path.isfile(
        os.path.join(MODELS, d, "config.json")))


def kernels_built():
    """The goldens are a build with the CUDA kernels; without them the sm verification mode is
    unavailable, and the plans' custom all-reduce reasons say so instead."""
    proc = subprocess.run([CLI, "check", "--json", "--modes", "sm", "--gpus", "0", "--fixture",
                           os.path.join(FIXTURES, "example-4x-a100.topo")],
                          capture_output=True, text=True, timeout=120)
    sm = json.loads(proc.stdout)["gpus"][0]["local_copy"]["modes"]["sm"]["verdict"]
    if sm == "unavailable":
        print("note: no CUDA kernels in this build: plan goldens checked for the sm reason only")
    return sm != "unavailable"


def test_golden_plans():
    names = models()
    check("model configs present", len(names) >= 6, names)
    kernels = kernels_built()
    for model in names:
        for machine in MACHINES:
            args = ["--model", os.path.join(MODELS, model), "--fixture",
                    os.path.join(FIXTURES, machine + ".topo")]
            proc = run(args)
            check("plan %s on %s exit" % (model, machine), proc.returncode in (0, 1), proc.stderr)
            if kernels:
                golden_compare("%s/%s.txt" % (model, machine), proc.stdout)
            else:
                check("plan %s on %s: sm unavailable said" % (model, machine),
                      "built without CUDA kernels" in proc.stdout or
                      "verification modes passed" not in proc.stdout, proc.stdout[-300:])
            proc = run(args + ["--json"])
            try:
                doc = json.loads(proc.stdout)
            except ValueError as e:
                check("plan json %s %s" % (model, machine), False, e)
                continue
            errors = [e.message for e in SCHEMA.iter_errors(doc)]
            check("plan json %s on %s matches the schema" % (model, machine), not errors, errors)
            check("plan json feasible matches exit code", doc["feasible"] == (proc.returncode == 0))


def test_formats():
    model = os.path.join(MODELS, "Llama-3.1-8B-Instruct")
    base = ["--model", model, "--fixture", os.path.join(FIXTURES, "hgx-h100-8.topo")]
    shell = run(base + ["--format", "shell"])
    check("shell format", shell.returncode == 0 and "vllm serve" in shell.stdout, shell.stdout)
    check("shell is valid sh", subprocess.run(["sh", "-n"], input=shell.stdout,
                                              text=True).returncode == 0)
    args = run(base + ["--format", "args"])
    check("args format", args.stdout.startswith("--tensor-parallel-size"), args.stdout)
    yaml = run(base + ["--format", "yaml"])
    check("yaml format", "tensor-parallel-size:" in yaml.stdout, yaml.stdout)


def test_imported_topology():
    topo_dir = os.path.join(FIXTURES, "topo")
    if not os.path.isdir(topo_dir):
        return
    model = os.path.join(MODELS, "Llama-3.1-70B-Instruct")
    for name in sorted(f for f in os.listdir(topo_dir) if f.endswith(".txt"))[:4]:
        proc = run(["--model", model, "--topology", os.path.join(topo_dir, name),
                    "--gpu-mem", "80"])
        check("plan on imported %s" % name, proc.returncode in (0, 1), proc.stderr)
        check("imported says not verified", "not verified" in proc.stdout, proc.stdout[:300])


def test_topo_without_p2p_section():
    # A real `nvidia-smi topo -m` paste without -p2p (issue 14): NV# means P2P, so of GPUs
    # 1,2,3 the NVLink pair 2,3 is chosen over the NODE pair 1,2, custom all-reduce is left to
    # vLLM, and the plan says what it assumed and how to confirm it.
    dump = os.path.join(FIXTURES, "topo", "dask-cuda-1381-8x-a100-pcie-slurm.txt")
    proc = run(["--params-b", "7", "--topology", dump, "--gpu-mem", "80", "--tp", "2",
                "--gpus", "1,2,3"])
    first = next((l for l in proc.stdout.split("\n") if l.startswith("Plan:")), "")
    check("no -p2p: says links only", "links only (no -p2p section" in proc.stdout,
          proc.stdout[:300])
    check("no -p2p: exit 0", proc.returncode == 0, proc.stderr)
    check("no -p2p: the NVLink pair", "on GPUs 2,3" in first, first)
    check("no -p2p: custom all-reduce not disabled",
          "--disable-custom-all-reduce" not in proc.stdout, proc.stdout[:800])
    check("no -p2p: says how to confirm", "nvidia-smi topo -p2p r" in proc.stdout,
          proc.stdout[:800])


def test_cluster():
    node = os.path.join(SOURCE, "tests", "golden", "json", "hgx-h100-8.json")
    model = os.path.join(MODELS, "DeepSeek-V3")
    proc = run(["--model", model, "--topology", node, "--topology", node])
    check("cluster plan: exit 0", proc.returncode == 0, proc.stderr)
    check("cluster plan: ray commands", "ray start --head" in proc.stdout and
          "ray start --address=HEAD_IP:6379" in proc.stdout, proc.stdout[:500])
    check("cluster plan: TP inside a node", "TP=8 PP=2" in proc.stdout.split("\n")[0],
          proc.stdout[:300])
    golden_compare("cluster/DeepSeek-V3-2x-hgx-h100-8.txt", proc.stdout)
    proc = run(["--model", model, "--topology", node, "--topology", node, "--json"])
    doc = json.loads(proc.stdout)
    check("cluster json schema", not [e.message for e in SCHEMA.iter_errors(doc)])
    check("cluster json nodes", doc["nodes"] == 2 and len(doc["node_commands"]) == 2)
    proc = run(["--model", model, "--topology", node, "--topology", node, "--gpus", "0"])
    check("cluster with --gpus: exit 2", proc.returncode == 2, proc.stderr)


def test_cluster_one_node():
    # issue 14: Llama-3.1-70B on four nodes of 8 H100s is TP=4 on one node (no Ray), with
    # replicas on the rest, not TP=1 PP=4 over the network.
    node = os.path.join(SOURCE, "tests", "golden", "json", "hgx-h100-8.json")
    model = os.path.join(MODELS, "Llama-3.1-70B-Instruct")
    proc = run(["--model", model] + ["--topology", node] * 4)
    first = proc.stdout.split("\n")[0]
    check("4 nodes, 70B: exit 0", proc.returncode == 0, proc.stderr)
    check("4 nodes, 70B: TP=4 on node 0", "TP=4 PP=1 on GPUs 0,1,2,3 of node 0" in first, first)
    check("4 nodes, 70B: no Ray", "ray start" not in proc.stdout and
          "--distributed-executor-backend mp" in proc.stdout, proc.stdout[:2000])
    check("4 nodes, 70B: replicas", "the other 3 nodes 2 each: 8 in all" in proc.stdout,
          proc.stdout[:3000])
    golden_compare("cluster/Llama-3.1-70B-Instruct-4x-hgx-h100-8.txt", proc.stdout)
    # Mixed nodes: the head's 4x A100 40 GB, 8x V100 16 GB, 8x H100; the whole context
    # takes two nodes, the head and the H100s, with layers by each stage's room.
    json_dir = os.path.join(SOURCE, "tests", "golden", "json")
    mixed = []
    for name in ("example-4x-a100", "dgx1-v100-8", "hgx-h100-8"):
        mixed += ["--topology", os.path.join(json_dir, name + ".json")]
    proc = run(["--model", model, "--max-model-len", "131072"] + mixed)
    check("mixed nodes: exit 0", proc.returncode == 0, proc.stderr)
    check("mixed nodes: TP=4 PP=2", "TP=4 PP=2" in proc.stdout.split("\n")[0], proc.stdout[:300])
    golden_compare("cluster/Llama-3.1-70B-Instruct-mixed-3-nodes.txt", proc.stdout)


def test_cluster_many_nodes():
    # A Ray cluster of 16 nodes gets a plan (more than 8 were refused); 1025 are refused by the
    # planner with one line.
    node = os.path.join(SOURCE, "tests", "golden", "json", "hgx-h100-8.json")
    model = os.path.join(MODELS, "DeepSeek-V3")
    proc = run(["--model", model, "--json"] + ["--topology", node] * 16)
    check("16 nodes: exit 0", proc.returncode == 0, proc.stderr)
    try:
        doc = json.loads(proc.stdout)
    except ValueError as e:
        check("16 nodes: json", False, e)
        return
    check("16 nodes: schema", not [e.message for e in SCHEMA.iter_errors(doc)])
    check("16 nodes: TP=8 PP=2 over 2", doc["nodes"] == 2 and doc["tp"] == 8 and doc["pp"] == 2
          and len(doc["node_commands"]) == 2 and doc["replicas"] == 8, doc.get("summary"))
    proc = run(["--model", model] + ["--topology", node] * 1025)
    check("1025 nodes: exit 2", proc.returncode == 2, proc.returncode)
    check("1025 nodes: one line", "1025 nodes: peerscope plans 1 to 1024" in proc.stderr and
          proc.stderr.count("\n") == 1, proc.stderr)


def test_bad_inputs():
    empty = tempfile.mkdtemp(dir=TMP)
    proc = run(["--model", empty, "--fixture", os.path.join(FIXTURES, "example-4x-a100.topo")])
    check("model dir without config.json: exit 3", proc.returncode == 3, proc.returncode)
    check("model dir without config.json: names it", "config.json" in proc.stderr and
          proc.stderr.count("\n") == 1, proc.stderr)
    broken = tempfile.mkdtemp(dir=TMP)
    with open(os.path.join(broken, "config.json"), "w") as f:
        f.write('{"num_hidden_layers": 32,\n  "hidden_size": }\n')
    proc = run(["--model", broken, "--fixture", os.path.join(FIXTURES, "example-4x-a100.topo")])
    check("broken config.json: exit 3", proc.returncode == 3, proc.returncode)
    check("broken config.json: line and column",
          re.search(r"config\.json:2:\d+", proc.stderr) is not None, proc.stderr)
    for args, needle in ((["--model-size-gb", "10", "--frob"], "unknown option"),
                         (["--model-size-gb", "x"], "not a size"),
                         ([], "exactly one of"),
                         (["--params-b", "7", "--dtype", "int3", "--fixture",
                           os.path.join(FIXTURES, "example-4x-a100.topo")], "int3"),
                         (["--model-size-gb", "10", "--gpus", "9", "--fixture",
                           os.path.join(FIXTURES, "example-4x-a100.topo")], "GPU 9"),
                         (["--model-size-gb", "10", "--tp", "8", "--fixture",
                           os.path.join(FIXTURES, "example-4x-a100.topo")], "TP=8")):
        proc = run(args)
        label = " ".join(args[:2]) or "(no model)"
        check("usage %s: exit 2" % label, proc.returncode == 2, (proc.returncode, proc.stderr))
        check("usage %s: message" % label, needle in proc.stderr and
              proc.stderr.count("\n") == 1, proc.stderr)
    proc = run(["--model-size-gb", "900", "--fixture",
                os.path.join(FIXTURES, "example-4x-a100.topo")])
    check("too big: exit 1", proc.returncode == 1, proc.returncode)
    check("too big: numbers", "GiB" in proc.stdout.split("\n")[0], proc.stdout[:300])


def test_synthetic_kv_unknown():
    # A model known only by size has no KV size per token: say so, never "(0 tokens)".
    proc = run(["--params-b", "8", "--fixture", os.path.join(FIXTURES, "example-4x-a100.topo")])
    check("synthetic: exit 0", proc.returncode == 0, proc.stderr)
    check("synthetic: tokens unknown", "(tokens unknown" in proc.stdout and
          "(0 tokens)" not in proc.stdout, proc.stdout[:600])


def test_multimodal_encoder():
    """vLLM profiles a multimodal model's vision encoder before the text forward: the plan adds
    the derived term for Qwen2.5-VL and flags towers it cannot size (docs/vllm-memory.md)."""
    src = os.path.join(FIXTURES, "vllm-logs", "heldout2", "configs",
                       "Qwen--Qwen2.5-VL-7B-Instruct.json")
    base = json.load(open(src))

    def plan(name, config, length=2048, version="0.9.2"):
        d = os.path.join(TMP, "mm-" + name)
        os.makedirs(d)
        json.dump(config, open(os.path.join(d, "config.json"), "w"))
        json.dump({"metadata": {"total_size": 16779448320}, "weight_map": {}},
                  open(os.path.join(d, "model.safetensors.index.json"), "w"))
        proc = run(["--model", d, "--fixture", os.path.join(FIXTURES, "example-4x-a100.topo"),
                    "--tp", "1", "--vllm-version", version, "--max-model-len", str(length),
                    "--json"])
        check("mm %s: exit 0" % name, proc.returncode == 0, proc.stderr)
        doc = json.loads(proc.stdout)
        check("mm %s: schema" % name, not list(SCHEMA.iter_errors(doc)), proc.stdout[:300])
        return doc, "\n".join(doc.get("reasons", []))

    text_only = {k: v for k, v in base.items() if k != "vision_config"}
    t, _ = plan("text", text_only)
    check("mm text: no encoder", t["memory"]["encoder_profile"] is None and
          t["memory"]["encoder_profile_bytes"] == 0, t["memory"])
    m, why = plan("qwen25vl", base)
    # qwen2_5_vl.py@0.9.2: 1 image of 16384 tokens = 65536 patches of 3x2x14x14 fp32 pixels
    # + 2 x (2 x 1280 + max(9 x 1280, 3 x 3420 + 1280)) bytes; outputs 16384 x 3584 x 2 held
    run_bytes = 65536 * (4 * 1176 + 2 * (2 * 1280 + max(9 * 1280, 3 * 3420 + 1280)))
    held = 16384 * 3584 * 2
    text = t["memory"]["activation_bytes"]
    want = max(run_bytes, held + text) - text
    got = m["memory"]
    check("mm qwen25vl: modelled", got["encoder_profile"] == "modelled", got)
    check("mm qwen25vl: bytes", abs(got["encoder_profile_bytes"] - want) <= 1,
          (got["encoder_profile_bytes"], want))
    check("mm qwen25vl: in activation",
          got["activation_bytes"] == text + got["encoder_profile_bytes"], got)
    check("mm qwen25vl: fewer tokens", got["kv_tokens"] < t["memory"]["kv_tokens"], got)
    check("mm qwen25vl: reason", "1 image of 16384 tokens" in why and
          "--limit-mm-per-prompt" in why, why)
    e, why = plan("qwen25vl-long", base, 65536)
    check("mm long: estimated (a video may outrank the image)",
          e["memory"]["encoder_profile"] == "estimated" and "video" in why, why)
    # Qwen2-VL: embed_dim is the width, hidden_size the output, fc1/act without a gate
    q2 = dict(base, model_type="qwen2_vl", vision_config={
        "depth": 32, "embed_dim": 1280, "hidden_size": 3584, "mlp_ratio": 4, "num_heads": 16,
        "in_chans": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2})
    q, why = plan("qwen2vl", q2)
    run2 = 65536 * (4 * 1176 + 2 * (2 * 1280 + max(9 * 1280, 2 * 5120 + 1280)))
    want2 = max(run2, 65536 * 4 * 1176 + held + text) - text
    check("mm qwen2vl: modelled", q["memory"]["encoder_profile"] == "modelled" and
          abs(q["memory"]["encoder_profile_bytes"] - want2) <= 1,
          (q["memory"], want2))
    # Qwen3-VL at 0.11.0: a video of 24576 32x32 frames, 12288 tokens counted 12.5 times
    q3 = json.load(open(os.path.join(FIXTURES, "vllm-logs", "heldout2", "configs",
                                     "Qwen--Qwen3-VL-30B-A3B-Instruct.json")))
    r, why = plan("qwen3vl", q3, 65536, "0.11.0")
    check("mm qwen3vl: video", r["memory"]["encoder_profile"] == "modelled" and
          "1 video of 153600 tokens" in why, why)
    r14, why = plan("qwen3vl-14", q3, 65536, "0.14.1")
    check("mm qwen3vl 0.14: image", "1 image of 16384 tokens" in why, why)
    # LLaVA-NeXT: 672x672 is the pinpoint with most features, 576 x 5 + 48 = 2928 tokens
    ln = json.load(open(os.path.join(FIXTURES, "vllm-logs", "heldout2", "configs",
                                     "llava-hf--llava-v1.6-mistral-7b-hf.json")))
    n, why = plan("llava-next", ln, 4096, "0.10.2")
    check("mm llava_next: 2928 tokens", n["memory"]["encoder_profile"] == "modelled" and
          "of 2928 tokens" in why, why)
    g3 = json.load(open(os.path.join(FIXTURES, "models", "gemma-3-27b-it", "config.json")))
    g, why = plan("gemma3", g3, 4096, "0.10.2")
    check("mm gemma3: 256 + 4 tokens", g["memory"]["encoder_profile"] == "modelled" and
          "7 images of 260 tokens" in why, why)
    other = dict(base, model_type="idefics3")
    u, why = plan("unknown-tower", other)
    check("mm unknown tower: flagged", u["memory"]["encoder_profile"] == "unmodelled" and
          u["memory"]["encoder_profile_bytes"] == 0, u["memory"])
    check("mm unknown tower: note", "KV figure may be high" in why and "--vllm-log" in why and
          "--limit-mm-per-prompt" in why, why)


def main():
    try:
        for test in (test_golden_plans, test_formats, test_imported_topology,
                     test_topo_without_p2p_section, test_cluster, test_cluster_one_node,
                     test_cluster_many_nodes,
                     test_bad_inputs, test_synthetic_kv_unknown, test_multimodal_encoder):
            try:
                test()
            except Exception as e:  # one broken group must not hide the others
                check(test.__name__, False, "raised %r" % e)
    finally:
        shutil.rmtree(TMP, True)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
