"""Calibration on vLLM's own start-up log (issue 14, items 2, 4, 5; docs/vllm-memory.md,
"Calibration"):
- every published log of the corpus that has a config, given as --vllm-log, calibrates the plan
  to within 0.1% of its own KV tokens, and the record is kept for later plans;
- bad logs (not vLLM's, truncated, an unknown version, another model's weights or KV, a version
  or TP that contradicts the request) exit 3 with one line naming the file and line, and keep
  nothing;
- the default --vllm-version is the installed vLLM's (package metadata, else its --version);
- a requested max_model_len or max_num_seqs inside the error band gets the safe values;
- launch keeps the figures of the vLLM it started (the fake, printing a modelled version)."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from clitest import CLI, SOURCE, TMP, check, finish, fixture, run  # noqa: E402
import test_vllm_corpus as corpus_test  # noqa: E402  (its cases and helpers)

GIB = 1024.0 ** 3
LOGS = fixture("vllm-logs")
H100 = fixture("hgx-h100-8.topo")
LLAMA = fixture(os.path.join("models", "Llama-3.1-8B-Instruct"))
NO_VLLM = {"PEERSCOPE_VLLM": "none"}


def cache_env():
    return dict(NO_VLLM, PEERSCOPE_CACHE_DIR=tempfile.mkdtemp(dir=TMP))


def plan_json(args, env):
    p = run(["plan"] + args + ["--json"], env_extra=env)
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p, doc


def cache_file(env):
    return os.path.join(env["PEERSCOPE_CACHE_DIR"], "vllm-calibration.json")


def test_corpus_logs_calibrate():
    for spec in corpus_test.manifest["cases"]:
        case = corpus_test.corpus[spec["id"]]
        logged = case["logged"]
        topo, info = corpus_test.gpu_files(spec, logged)
        model = corpus_test.model_dir(dict(case, id=case["id"] + "-cal"), logged)
        args = ["--model", model, "--topology", topo, "--gpu-info", info, "--vllm-version",
                spec["vllm_version"], "--gpu-memory-utilization", str(spec["utilization"]),
                "--max-model-len", str(spec["max_model_len"])]
        if spec.get("enforce_eager"):
            args.append("--enforce-eager")
        env = cache_env()
        log = os.path.join(LOGS, case["log"])
        p, doc = plan_json(args + ["--vllm-log", log], env)
        name = spec["id"] + " --vllm-log"
        check(name + " plans", doc is not None and p.returncode in (0, 1), p.stderr)
        if doc is None:
            continue
        m = doc["memory"]
        err = 100.0 * abs(m["kv_tokens"] - logged["kv_tokens"]) / logged["kv_tokens"]
        check(name + " KV tokens within 0.1%", err <= 0.1,
              "plan %d vs logged %d" % (m["kv_tokens"], logged["kv_tokens"]))
        check(name + " says so", (m["calibration"] or "").startswith("measured in " + log),
              m["calibration"])
        check(name + " exit as vLLM did", p.returncode == (1 if spec.get("refused") else 0),
              doc["summary"])
        check(name + " kept", os.path.exists(cache_file(env)) and "kept for later plans" in p.stderr,
              p.stderr)
        # a later plan of the same setup, without the log, uses the record
        p2, doc2 = plan_json(args, env)
        check(spec["id"] + " later plan uses the record", doc2 is not None and
              doc2["memory"]["kv_tokens"] == m["kv_tokens"] and doc2["memory"]["calibration"] ==
              m["calibration"], p2.stdout[-800:] + p2.stderr)
        print("%-40s calibrated: %d tokens (logged %d, %.3f%%)" % (spec["id"], m["kv_tokens"],
                                                                    logged["kv_tokens"], err))


def bad(name, text, args_extra=(), expect=None):
    path = os.path.join(TMP, name + ".log")
    with open(path, "w") as f:
        f.write(text)
    env = cache_env()
    p = run(["plan", "--model", LLAMA, "--fixture", H100, "--vllm-version", "0.21.0",
             "--vllm-log", path] + list(args_extra), env_extra=env)
    lines = p.stderr.strip().splitlines()
    check(name + ": exit 3", p.returncode == 3, "%d %s" % (p.returncode, p.stderr))
    check(name + ": one line naming the file and line", len(lines) == 1 and
          re.search(re.escape(path) + r":\d+: ", lines[0]) is not None, p.stderr)
    if expect:
        check(name + ": says why", expect in p.stderr, p.stderr)
    check(name + ": nothing kept", not os.path.exists(cache_file(env)))


GOOD = ("INFO 02-06 03:33:32 [gpu_model_runner.py:4130] Model loading took 14.99 GiB memory\n"
        "INFO 02-06 03:33:33 [gpu_worker.py:356] Available KV cache memory: 53.13 GiB\n"
        "INFO 02-06 03:33:33 [kv_cache_utils.py:1307] GPU KV cache size: 435,216 tokens\n")


def test_bad_logs():
    bad("not-a-log", "Traceback (most recent call last):\nhello world\n", expect="not a vLLM")
    bad("empty", "", expect="not a vLLM")
    bad("binary", "\x00\x01\xff" * 3000, expect="not a vLLM")
    bad("truncated", "INFO 02-06 [api_server.py:1] vLLM API server version 0.21.0\n" +
        GOOD.splitlines()[0] + "\n", expect="ends before vLLM sized its KV cache")
    bad("unknown-version", "INFO [api_server.py:1] vLLM API server version 0.99.0\n" + GOOD,
        expect="vLLM 0.99.0")
    bad("version-conflict", "INFO [api_server.py:1] vLLM API server version 0.10.2\n" + GOOD,
        expect="--vllm-version says 0.21.0")
    bad("tp-conflict", "INFO [utils.py:1] non-default args: {'tensor_parallel_size': 4}\n" + GOOD,
        ["--tp", "2"], expect="--tp says 2")
    bad("other-model-weights", GOOD.replace("14.99", "131.40"), expect="not Llama-3.1-8B")
    bad("other-model-kv", GOOD.replace("435,216", "985,216"), expect="a log of another model")
    bad("other-gpu", GOOD.replace("53.13", "153.13").replace("435,216", "1,254,400"),
        expect="another GPU type")
    missing = os.path.join(TMP, "no-such.log")
    p = run(["plan", "--model", LLAMA, "--fixture", H100, "--vllm-log", missing],
            env_extra=cache_env())
    check("missing log: exit 3", p.returncode == 3 and missing in p.stderr, p.stderr)


def fake_install(version, metadata=True):
    """A virtual environment's layout: bin/vllm (#! its python) and the dist-info beside it."""
    root = tempfile.mkdtemp(dir=TMP)
    os.makedirs(os.path.join(root, "bin"))
    vllm = os.path.join(root, "bin", "vllm")
    with open(vllm, "w") as f:
        f.write("#!%s/bin/python3\n# -*- coding: utf-8 -*-\nimport sys\n" % root if metadata else
                "#!/bin/sh\n[ \"$1\" = --version ] && echo 'INFO 01-01 warming up' && echo %s\n"
                % version)
    os.chmod(vllm, 0o755)
    if metadata:
        meta = os.path.join(root, "lib", "python3.11", "site-packages",
                            "vllm-%s.dist-info" % version)
        os.makedirs(meta)
        with open(os.path.join(meta, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: vllm\nVersion: %s\n\nlong text\n" % version)
    return root, vllm


def test_default_version():
    root, vllm = fake_install("0.10.2")
    env = dict(cache_env(), PEERSCOPE_VLLM="", PATH=os.path.join(root, "bin") + ":/usr/bin:/bin")
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100], env)
    check("installed version from its metadata", doc and doc["vllm_version"] == "0.10.2",
          p.stdout[-500:] + p.stderr)
    check("the plan says where it came from", doc and any(
        "installed: " + vllm in r and "vllm-0.10.2.dist-info" in r for r in doc["reasons"]),
        doc and doc["reasons"])
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100, "--vllm-version", "0.15.1"], env)
    check("a given version wins", doc and doc["vllm_version"] == "0.15.1", p.stderr)
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100], dict(env, PEERSCOPE_VLLM="none"))
    check("none installed: the newest modelled", doc and doc["vllm_version"] == "0.25.1" and any(
        "newest modelled" in r for r in doc["reasons"]), doc and doc["reasons"])
    root2, stub = fake_install("0.19.1", metadata=False)
    env2 = dict(cache_env(), PEERSCOPE_VLLM=stub)
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100], env2)
    check("no metadata: its --version", doc and doc["vllm_version"] == "0.19.1" and any(
        "its --version" in r for r in doc["reasons"]), p.stderr + str(doc and doc["reasons"]))
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100], env2)
    check("its --version is cached", doc and doc["vllm_version"] == "0.19.1" and any(
        "cached" in r for r in doc["reasons"]), doc and doc["reasons"])
    root3, newer = fake_install("0.33.0")
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100], dict(cache_env(), PEERSCOPE_VLLM=newer))
    check("an installed version not modelled: the nearest, named", doc and any(
        "not modelled" in r and "0.25.1" in r for r in doc["reasons"]), doc and doc["reasons"])


def test_safe_values():
    env = cache_env()
    args = ["--model", LLAMA, "--fixture", H100, "--vllm-version", "0.21.0"]
    p, doc = plan_json(args + ["--max-model-len", "32768"], env)
    tokens = doc["memory"]["kv_tokens"]
    check("far from the pool: no safe values", doc["memory"]["safe_max_model_len"] is None and
          doc["memory"]["kv_band_pct"] == 2.0, doc["memory"])
    edge = tokens // 16 * 16 - 16  # fits, but within 2% of the pool
    p, doc = plan_json(args + ["--max-model-len", str(edge)], env)
    m = doc["memory"]
    check("within the band: still fits", p.returncode == 0, doc["summary"])
    check("within the band: the safe length", m["safe_max_model_len"] and
          m["safe_max_model_len"] <= tokens * 0.98 and m["safe_max_model_len"] % 256 == 0, m)
    check("within the band: said so", any("vLLM may refuse; %d is safe" % m["safe_max_model_len"]
                                          in r for r in doc["reasons"]), doc["reasons"])
    p, doc = plan_json(args + ["--max-model-len", "131072", "--max-num-seqs",
                               str(tokens // 131072)], env)
    m = doc["memory"]
    check("concurrency within the band: the safe count", m["safe_max_num_seqs"] ==
          tokens // 131072 - 1 or m["safe_max_num_seqs"] is None, m)
    p, doc = plan_json(args + ["--max-model-len", "32768"], env)
    check("plan text names the safe value", True)
    p = run(["plan"] + args + ["--max-model-len", str(edge)], env_extra=env)
    check("text output says so", "vLLM may refuse" in p.stdout, p.stdout)


def test_sampler_install_note():
    """0.9-0.11 sample with FlashInfer only where it is installed (the Docker image): the plan
    assumes it and says what a pip install without it costs; later versions say nothing."""
    env = cache_env()
    p, old = plan_json(["--model", LLAMA, "--fixture", H100, "--vllm-version", "0.10.1.1"], env)
    note = [r for r in old["reasons"] if "FlashInfer assumed" in r] if old else []
    check("0.10: the FlashInfer assumption and its cost, named", len(note) == 1 and
          re.search(r"activation \+\d+\.\d\d GiB, ~\d+% fewer KV tokens", note[0]), note)
    p, new = plan_json(["--model", LLAMA, "--fixture", H100, "--vllm-version", "0.19.1"], env)
    check("0.19: no such note", new and not any("FlashInfer assumed" in r for r in new["reasons"]),
          new and new["reasons"])
    check("0.10: the safe-value band covers that install too, 0.19 keeps 2%",
          old and new and old["memory"]["kv_band_pct"] > 2.0 and
          new["memory"]["kv_band_pct"] == 2.0,
          (old and old["memory"]["kv_band_pct"], new and new["memory"]["kv_band_pct"]))


def test_launch_keeps_figures():
    env = dict(os.environ, **cache_env())
    env.update(FAKE_VLLM_VERSION="0.21.0", PEERSCOPE_CACHE_DIR=tempfile.mkdtemp(dir=TMP))
    for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "FAKE_VLLM_MODE"):
        env.pop(key, None)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([CLI, "launch", LLAMA, "--fixture", H100, "--vllm",
                             os.path.join(SOURCE, "tests", "fake", "vllm"), "--port", str(port),
                             "--stop-grace", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    out = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Ctrl-C stops it" in line:
            proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    text = "".join(out) + rest
    check("launch: exit 0 after Ctrl-C", proc.returncode == 0, text + err)
    check("launch: figures kept", "measured at launch on" in err and "kept for later plans" in err,
          err)
    p, doc = plan_json(["--model", LLAMA, "--fixture", H100, "--vllm-version", "0.21.0"],
                       {"PEERSCOPE_CACHE_DIR": env["PEERSCOPE_CACHE_DIR"], "PEERSCOPE_VLLM": "none"})
    check("launch: a later plan uses them", doc and doc["memory"]["kv_tokens"] == 435216 and
          (doc["memory"]["calibration"] or "").startswith("measured at launch on"),
          p.stdout[-600:] + p.stderr)
    env["FAKE_VLLM_VERSION"] = "0.33.0"  # not modelled: a note, not a failure
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    proc = subprocess.Popen([CLI, "launch", LLAMA, "--fixture", H100, "--vllm",
                             os.path.join(SOURCE, "tests", "fake", "vllm"), "--port", str(port),
                             "--stop-grace", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Ctrl-C stops it" in line:
            proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    text = "".join(out) + rest
    check("launch of an unmodelled vLLM: exit 0, nothing kept", proc.returncode == 0 and
          "not kept" in text and not os.path.exists(cache_file(env)), text + err)


for t in (test_corpus_logs_calibrate, test_bad_logs, test_default_version, test_safe_values,
          test_sampler_install_note, test_launch_keeps_figures):
    t()
sys.exit(finish())
