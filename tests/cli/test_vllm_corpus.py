"""The published vLLM start-up logs as a regression test of the plan's memory model (issue 14).

For every case of tests/fixtures/vllm-logs/regression.json: a model directory from the case's
config.json and the logged weights (the config alone does not give them), one GPU as a user
would describe it (nvidia-smi's name and memory.total), `peerscope plan --json` with the
version and settings of the log, and each logged figure compared with the plan's within the
tolerance the manifest states. Cases used to fit a constant are named there ('fitted'): they
are calibration, the others are checks. The summary line prints the errors measured."""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from clitest import TMP, check, fixture, results, run  # noqa: E402

GIB = 1024.0 ** 3
DEFAULT_GAP_GIB = 0.5  # src/plan/vllm_versions.c: a GPU whose class is unknown
corpus_dir = fixture("vllm-logs")
corpus = {c["id"]: c for c in json.load(open(os.path.join(corpus_dir, "corpus.json")))["cases"]}
manifest = json.load(open(os.path.join(corpus_dir, "regression.json")))


def model_dir(case, logged):
    d = os.path.join(TMP, case["id"])
    os.makedirs(d)
    with open(os.path.join(corpus_dir, case["config"])) as f:
        config = f.read()
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(config)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": int(logged["weights_gib"] * GIB)},
                   "weight_map": {}}, f)
    return d


def gpu_files(spec, logged):
    mib = spec["gpu_nvml_mib"]
    if mib == "logged":  # vLLM's figure back to NVML's, as the plan converts it
        mib = round((logged["total_gpu_gib"] + DEFAULT_GAP_GIB) * 1024)
    topo = os.path.join(TMP, spec["id"] + ".topo.txt")
    with open(topo, "w") as f:
        f.write("\tGPU0\tCPU Affinity\tNUMA Affinity\nGPU0\t X \t0-7\t0\n")
    info = os.path.join(TMP, spec["id"] + ".gpu.csv")
    with open(info, "w") as f:
        f.write("index, name, memory.total [MiB], pci.bus_id\n0, %s, %d MiB, 0000:01:00.0\n"
                % (spec["gpu_name"], mib))
    return topo, info


def plan(spec, case):
    logged = case["logged"]
    topo, info = gpu_files(spec, logged)
    args = ["plan", "--model", model_dir(case, logged), "--topology", topo, "--gpu-info", info,
            "--vllm-version", spec["vllm_version"], "--gpu-memory-utilization",
            str(spec["utilization"]), "--max-model-len", str(spec["max_model_len"]), "--json"]
    if spec.get("enforce_eager"):
        args.append("--enforce-eager")
    p = run(args)
    return p, json.loads(p.stdout) if p.stdout.strip().startswith("{") else None


def figures(doc):
    m = doc["memory"]
    return {"weights_gib": m["weights_bytes"] / GIB, "activation_gib": m["activation_bytes"] / GIB,
            "non_torch_gib": m["non_torch_bytes"] / GIB, "graphs_gib": m["graphs_bytes"] / GIB,
            "kv_gib": m["kv_bytes"] / GIB, "kv_tokens": m["kv_tokens"],
            "max_concurrency": m["max_concurrency"] or 0.0}


def main():
    kv_errors = []
    band_text = None
    for spec in manifest["cases"]:
        case = corpus[spec["id"]]
        logged = dict(case["logged"])
        if "activation_gib_derived" in spec:
            logged["activation_gib"] = spec["activation_gib_derived"]
        p, doc = plan(spec, case)
        check(spec["id"] + " plans", doc is not None, p.stderr)
        if doc is None:
            continue
        check(spec["id"] + " exit", p.returncode == (1 if spec.get("refused") else 0),
              "exit %d: %s" % (p.returncode, doc["summary"]))
        got = figures(doc)
        band_text = doc["memory"]["error_band"]
        line = []
        for key, tol in spec["tolerance"].items():
            name = key[:-4] if key.endswith("_pct") else key
            want = logged.get(name)
            if want is None:
                continue
            have = got[name]
            if key.endswith("_pct"):
                err = 100.0 * (have - want) / want if want else 0.0
                ok = abs(err) <= tol
                kv_errors.append(abs(err))
                line.append("%s %+.2f%%" % (name, err))
            else:
                err = have - want
                ok = abs(err) <= tol
                line.append("%s %+.3f" % (name, err))
            check("%s %s" % (spec["id"], name), ok,
                  "plan %.4g vs logged %.4g (tolerance %s)" % (have, want, tol))
        print("%-40s %s" % (spec["id"], ", ".join(line)))

    if kv_errors:
        import re
        m = re.search(r"median ([0-9.]+)%, worst ([0-9.]+)%", band_text or "")
        check("error band printed", m is not None, band_text)
        if m:  # the band the plan prints must not claim better than this test measures
            check("error band holds", statistics.median(kv_errors) <= float(m.group(1)) + 0.05
                  and max(kv_errors) <= float(m.group(2)) + 0.05, band_text)
        print("KV tokens: median error %.2f%%, worst %.2f%% on %d logs"
              % (statistics.median(kv_errors), max(kv_errors), len(kv_errors)))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
