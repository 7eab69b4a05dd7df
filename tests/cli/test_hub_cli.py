"""Model ids through the library (ps_model_resolve, run by ps_test_resolve): a stand-in Hub
on 127.0.0.1 reached through HF_ENDPOINT (tests/hub/hubserver.py), an HF cache in a temporary
HF_HOME, every failure's one line and exit code, what lands in the cache, what the Hub had
to send (config, index and header bytes only; at most 3 requests per model), and timings."""
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hub"))
import hubserver  # noqa: E402
from clitest import TMP, check, finish  # noqa: E402

TOOL = os.environ["PEERSCOPE_TEST_RESOLVE"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
MODELS = os.path.join(SOURCE, "tests", "fixtures", "models")


def read(path):
    with open(path, "rb") as f:
        return f.read()


LLAMA8 = read(os.path.join(MODELS, "Llama-3.1-8B-Instruct", "config.json"))
INDEX = json.dumps({
    "metadata": {"total_size": 16060522496},
    "weight_map": {"lm_head.weight": "model-00004-of-00004.safetensors",
                   "model.embed_tokens.weight": "model-00001-of-00004.safetensors",
                   "model.norm.weight": "model-00002-of-00004.safetensors",
                   "model.layers.9.mlp.up_proj.weight": "model-00003-of-00004.safetensors"},
}).encode()
SMALL_CONFIG = json.dumps({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 256, "max_position_embeddings": 2048,
    "torch_dtype": "bfloat16", "tie_word_embeddings": True}).encode()
SINGLE, HEADER_END = hubserver.safetensors_file({
    "model.embed_tokens.weight": ("BF16", [256, 64]),
    "model.layers.0.mlp.up_proj.weight": ("BF16", [128, 64]),
    "model.layers.1.mlp.up_proj.weight": ("BF16", [128, 64]),
    "model.norm.weight": ("BF16", [64])})
SINGLE_DATA = len(SINGLE) - HEADER_END


def sharded(**kw):
    return hubserver.Repo({"config.json": LLAMA8, "model.safetensors.index.json": INDEX}, **kw)


def single(**kw):
    return hubserver.Repo({"config.json": SMALL_CONFIG, "model.safetensors": SINGLE}, **kw)


REPOS = {
    "org/sharded": sharded(refs=("main", "v1")),
    "org/single": single(commit=hubserver.COMMIT_B),
    "org/noweights": hubserver.Repo({"config.json": LLAMA8}),
    "org/gated": sharded(mode="gated"),
    "org/ratelimited": sharded(mode="ratelimited"),
    "org/flaky": sharded(mode="flaky"),
    "org/slow": sharded(mode="slow"),
    "org/notjson": hubserver.Repo({"config.json": b"<html>not json</html>"}),
    "org/badindex": hubserver.Repo({"config.json": LLAMA8, "model.safetensors.index.json":
                                    json.dumps({"metadata": {}, "weight_map": {"a": "b"}}).encode()}),
    "org/missingshard": hubserver.Repo({"config.json": LLAMA8, "model.safetensors.index.json":
                                        json.dumps({"metadata": {"total_size": 16060522496},
                                                    "weight_map": {"a": "model-00001-of-00004.safetensors"}}).encode()}),
    "org/tinyindex": hubserver.Repo({"config.json": LLAMA8, "model.safetensors.index.json":
                                     json.dumps({"metadata": {"total_size": 1000},
                                                 "weight_map": {"a": "model.safetensors"}}).encode()}),
    "org/wronglength": single(mode="wronglength"),
    "org/norange": single(mode="norange"),
    "org/huge": sharded(mode="huge"),
    "org/nocommit": sharded(mode="nocommit"),
}

hub = hubserver.Hub(REPOS)


def fresh_home():
    return tempfile.mkdtemp(dir=TMP, prefix="hf-home-")


def resolve(what, home, extra=None, repeat=1, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update({"HF_HOME": home, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DOWNLOAD_TIMEOUT": "1",
                "PEERSCOPE_CACHE_DIR": os.path.join(home, "peerscope"), "NO_PROXY": "127.0.0.1"})
    env.update(extra or {})
    p = subprocess.run([TOOL, what, str(repeat)], capture_output=True, text=True, env=env,
                       timeout=timeout)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        return p.returncode, {"raw": p.stdout + p.stderr}


def leftovers(home):
    """Temporary files anywhere under the cache (nothing partial may be left)."""
    found = []
    for root, dirs, files in os.walk(home):
        found += [os.path.join(root, f) for f in files + dirs if ".incomplete" in f]
    return found


def test_sharded_from_hub_then_cache():
    home = fresh_home()
    hub.reset()
    code, out = resolve("org/sharded", home)
    check("hub sharded ok", code == 0 and out.get("origin") == "Hugging Face Hub", out)
    check("hub sharded exact", out.get("exact") and out.get("weight_bytes") == 16060522496, out)
    check("hub sharded where", out.get("where") == "Hugging Face Hub %s (revision %s)"
          % (hub.endpoint, hubserver.COMMIT_A), out)
    check("hub sharded <= 3 requests", out.get("requests") == 3 == hub.count("org/sharded"),
          (out, hub.requests))
    check("hub sent config and index only",
          set(hub.sent) == {"config.json", "model.safetensors.index.json"}
          and hub.weight_bytes_served == 0, hub.sent)
    repo = os.path.join(home, "hub", "models--org--sharded")
    check("cache ref", read(os.path.join(repo, "refs", "main")) == hubserver.COMMIT_A.encode())
    link = os.path.join(repo, "snapshots", hubserver.COMMIT_A, "config.json")
    check("cache symlink to blob", os.path.islink(link) and os.readlink(link)
          == "../../blobs/" + hubserver.git_blob_sha1(LLAMA8), link)
    check("cache blob bytes", read(link) == LLAMA8)
    check("cache index", read(os.path.join(repo, "snapshots", hubserver.COMMIT_A,
                                           "model.safetensors.index.json")) == INDEX)
    check("nothing partial", not leftovers(home), leftovers(home))
    hub.reset()
    code, again = resolve("org/sharded", home, repeat=5)
    check("second plan from cache", code == 0 and again.get("origin") == "Hugging Face cache"
          and hub.count("org/sharded") == 0, again)
    check("cache where", again.get("where") == "Hugging Face cache %s (revision %s)"
          % (os.path.join(home, "hub"), hubserver.COMMIT_A), again)
    check("cache answer under 20 ms", again.get("ms", 99) < 20, again)
    check("same model", again.get("weight_bytes") == out.get("weight_bytes")
          and again.get("name") == "org/sharded", again)
    code, offline = resolve("org/sharded", home, {"HF_HUB_OFFLINE": "1"})
    check("offline from cache", code == 0 and offline.get("origin") == "Hugging Face cache")


def test_revisions():
    home = fresh_home()
    code, out = resolve("org/sharded@v1", home)
    check("revision v1", code == 0 and out.get("commit") == hubserver.COMMIT_A, out)
    check("refs/v1", read(os.path.join(home, "hub", "models--org--sharded", "refs", "v1"))
          == hubserver.COMMIT_A.encode())
    code, out = resolve("org/sharded@" + hubserver.COMMIT_A, home, {"HF_HUB_OFFLINE": "1"})
    check("commit used directly", code == 0 and out.get("origin") == "Hugging Face cache", out)
    code, out = resolve("org/sharded@nope", home)
    check("revision not found", code == 3 and "org/sharded@nope config.json" in out.get("error", "")
          and "no revision 'nope'" in out.get("error", ""), out)
    check("no ref for a missing revision",
          not os.path.exists(os.path.join(home, "hub", "models--org--sharded", "refs", "nope")))


def test_single_file_header_only():
    home = fresh_home()
    hub.reset()
    code, out = resolve("org/single", home)
    check("single ok", code == 0 and out.get("exact") and out.get("weight_bytes") == SINGLE_DATA,
          out)
    check("single 3 requests", out.get("requests") == 3 == hub.count("org/single"), hub.requests)
    check("single header bytes only", hub.weight_bytes_served == 0
          and hub.sent.get("model.safetensors") == HEADER_END, (hub.sent, HEADER_END))
    check("ranges asked", [r for _, r in hub.requests[1:]] == ["bytes=0-7", "bytes=8-%d"
                                                               % (HEADER_END - 1)], hub.requests)
    snap = os.path.join(home, "hub", "models--org--single", "snapshots", hubserver.COMMIT_B)
    check("no weights file in the cache", sorted(os.listdir(snap)) == ["config.json"],
          os.listdir(snap))
    hub.reset()
    code, again = resolve("org/single", home)
    check("single from cache", code == 0 and again.get("origin") == "Hugging Face cache"
          and again.get("weight_bytes") == SINGLE_DATA and hub.count("org/single") == 0, again)


def test_errors():
    home = fresh_home()
    cases = [
        ("org/gated", 7, "org/gated config.json: gated or private", {}),
        ("org/missing", 3, "org/missing config.json: no repository org/missing", {}),
        ("org/ratelimited", 7, "rate limited", {}),
        ("org/slow", 7, "did not answer within 1 s", {}),
        ("org/notjson", 3, "/org/notjson/resolve/main/config.json:1:1:", {}),
        ("org/badindex", 3, "metadata.total_size is missing", {}),
        ("org/missingshard", 3, "weight_map names 1 of the 4 shards", {}),
        ("org/tinyindex", 3, "the sizes do not add up", {}),
        ("org/wronglength", 3, "wrong length", {}),
        ("org/norange", 3, "ignored the Range request", {}),
        ("org/huge", 3, "org/huge config.json: the answer", {}),
        ("org/nocommit", 7, "X-Repo-Commit", {}),
        ("org/unseen", 7, "HF_HUB_OFFLINE", {"HF_HUB_OFFLINE": "1"}),
        ("bad--org/x", 3, "not a Hugging Face model id", {}),
        ("org/name@a..b", 3, "the revision may not hold '..'", {}),
        ("org/sharded", 7, "cannot reach", {"HF_ENDPOINT": "http://127.0.0.1:9"}),
    ]
    for what, want, text, extra in cases:
        code, out = resolve(what, home, extra)
        err = out.get("error", "")
        check("error %s" % what, code == want and text in err and "\n" not in err,
              (code, out))
    check("errors leave nothing partial", not leftovers(home), leftovers(home))
    for repo in ("org/notjson", "org/badindex", "org/wronglength", "org/huge"):
        check("no ref after a failure %s" % repo, not os.path.exists(
            os.path.join(home, "hub", "models--" + repo.replace("/", "--"), "refs")))


def test_retries_and_tokens():
    home = fresh_home()
    hub.reset()
    code, out = resolve("org/flaky", home)
    check("429 then ok", code == 0 and out.get("requests") == 4, out)
    hub.reset()
    resolve("org/ratelimited", home, {"HF_HUB_DOWNLOAD_TIMEOUT": "1"})
    check("retries bounded", hub.count("org/ratelimited") == 3, hub.count("org/ratelimited"))
    code, out = resolve("org/gated", home, {"HF_TOKEN": hub.token})
    check("gated with HF_TOKEN", code == 0, out)
    home2 = fresh_home()
    with open(os.path.join(home2, "token"), "w") as f:
        f.write(hub.token + "\n")
    code, out = resolve("org/gated", home2)
    check("gated with the token file", code == 0, out)
    code, out = resolve("org/gated", fresh_home(), {"HF_TOKEN": "hf_wrong"})
    check("wrong token", code == 7 and "the token from HF_TOKEN has no access" in
          out.get("error", ""), out)


def test_no_weights_estimate():
    code, out = resolve("org/noweights", fresh_home())
    check("config only", code == 0 and not out.get("exact") and out.get("layers") == 32, out)


def test_directory_first():
    code, out = resolve(os.path.join(MODELS, "Llama-3.1-70B-Instruct"), fresh_home())
    check("directory", code == 0 and out.get("origin") == "local directory"
          and out.get("where") == "local directory", out)
    code, out = resolve("/no/such/dir", fresh_home())
    check("missing directory keeps its message", code != 0 and "no such directory"
          in out.get("error", ""), out)


def test_update_catalog_script():
    out = tempfile.mkdtemp(dir=TMP)
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, PEERSCOPE_CATALOG_OUT=out, NO_PROXY="127.0.0.1")
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(k, None)
    hub.reset()
    os.makedirs(os.path.join(out, "org--single"))
    with open(os.path.join(out, "org--single", "peerscope-catalog.json"), "w") as f:
        json.dump({"id": "org/single", "total_size": 1, "config_estimate": "why"}, f)
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "update-catalog.py"),
                        "org/sharded", "org/single"], capture_output=True, text=True, env=env,
                       timeout=60)
    check("update-catalog runs", p.returncode == 0, p.stdout + p.stderr)
    meta = json.load(open(os.path.join(out, "org--sharded", "peerscope-catalog.json")))
    check("update-catalog index", meta["total_size"] == 16060522496
          and meta["revision"] == hubserver.COMMIT_A, meta)
    meta = json.load(open(os.path.join(out, "org--single", "peerscope-catalog.json")))
    check("update-catalog header", meta["total_size"] == SINGLE_DATA, meta)
    check("update-catalog keeps config_estimate", meta.get("config_estimate") == "why", meta)
    check("update-catalog config verbatim",
          read(os.path.join(out, "org--sharded", "config.json")) == LLAMA8)
    check("update-catalog header bytes only", hub.weight_bytes_served == 0, hub.sent)


CATALOG = os.path.join(os.environ["PEERSCOPE_BUILD_DIR"], "share", "peerscope", "models")


def text_config(cfg):
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(cfg.get(key), dict):
            return dict(cfg, **cfg[key])
    return cfg


def test_catalog_against_its_sources():
    """Every entry answers offline from the catalog, exactly, and agrees with its own config:
    the heads that decide TP divisibility, KV bytes per token, and the weight total against
    the config's shapes."""
    entries = sorted(e for e in os.listdir(CATALOG) if "--" in e)
    check("catalog has entries", len(entries) >= 40, entries)
    home = fresh_home()
    hub.reset()
    noted = 0
    for entry in entries:
        d = os.path.join(CATALOG, entry)
        meta = json.load(open(os.path.join(d, "peerscope-catalog.json")))
        cfg = text_config(json.load(open(os.path.join(d, "config.json"))))
        rid = meta["id"]
        check("entry dir %s" % entry, entry == rid.replace("/", "--"), rid)
        check("sources %s" % rid, meta["sources"].get("config.json") and
              meta["sources"].get("total_size"), meta)
        code, out = resolve(rid, home, {"HF_HUB_OFFLINE": "1"}, repeat=3)
        check("catalog %s" % rid, code == 0 and out.get("origin") == "peerscope catalog"
              and out.get("exact") and out.get("weight_bytes") == meta["total_size"], out)
        check("catalog where %s" % rid, out.get("where", "").startswith(
            "peerscope catalog (source revision "), out)
        check("catalog under 20 ms %s" % rid, out.get("ms", 99) < 20, out)
        heads = cfg["num_attention_heads"]
        kv = cfg.get("num_key_value_heads") or heads
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
        layers = cfg["num_hidden_layers"]
        check("heads %s" % rid, (out.get("heads"), out.get("kv_heads"), out.get("layers"))
              == (heads, kv, layers), out)
        tps = [tp for tp in (1, 2, 4, 8) if heads % tp == 0]
        check("tp divides %s" % rid, tps and all(heads % tp == 0 for tp in tps), tps)
        if out.get("attention") == 0:  # full attention: 2 (K, V) x kv heads x head dim x layers
            want = 2 * kv * head_dim * layers * 2
            check("kv bytes per token %s" % rid, out.get("kv_bytes_per_token") == want,
                  (out.get("kv_bytes_per_token"), want))
        if out.get("attention") == 1:  # MLA: one latent (kv_lora_rank + rope dims) per layer
            want = (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * layers * 2
            check("mla kv bytes per token %s" % rid, out.get("kv_bytes_per_token") == want,
                  (out.get("kv_bytes_per_token"), want))
        code, est = resolve(d, home)  # the directory alone: the config's shapes
        drift = (est.get("weight_bytes", 0) - meta["total_size"]) / meta["total_size"]
        if meta.get("config_estimate"):
            # The checkpoint holds what the config's shapes do not say (a stored tied head,
            # bf16 modules of a quantized model, an MTP layer, scales): the entry says what,
            # and the exact total can only be the larger one.
            check("total above the config's shapes %s" % rid, -0.25 < drift <= -0.001,
                  (est, meta["total_size"], meta["config_estimate"]))
            noted += 1
        else:
            check("total agrees with the config %s" % rid, abs(drift) < 0.001,
                  (est, meta["total_size"]))
    check("most totals agree with their config", noted * 4 < len(entries), noted)
    check("catalog never touches the network", not hub.requests, hub.requests)


CLI = os.environ["PEERSCOPE_CLI"]
FIXTURE = os.path.join(SOURCE, "tests", "fixtures", "hgx-h100-8.topo")


def cli(args, home, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update({"HF_HOME": home, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DOWNLOAD_TIMEOUT": "1",
                "PEERSCOPE_CACHE_DIR": os.path.join(home, "peerscope"), "NO_PROXY": "127.0.0.1"})
    env.update(extra or {})
    return subprocess.run([CLI] + args, capture_output=True, text=True, env=env, timeout=120)


def test_cli_plan_and_launch_by_id():
    home = fresh_home()
    p = cli(["plan", "--fixture", FIXTURE, "--model", "org/sharded@v1", "--format", "shell"], home)
    check("cli plan by id", p.returncode == 0, p.stdout + p.stderr)
    check("cli says where from", "peerscope plan: model org/sharded@v1 from the Hugging Face Hub "
          + hub.endpoint in p.stderr, p.stderr)
    serve = p.stdout[p.stdout.find("vllm serve"):].replace("\\\n", " ")
    check("cli serves the id, revision apart", "vllm serve org/sharded " in serve
          and "--revision v1" in serve, serve)
    p = cli(["plan", "--fixture", FIXTURE, "--model", "org/sharded@v1", "--json"], home)
    check("cli second plan from the cache", p.returncode == 0 and "Hugging Face cache" in p.stderr
          and json.loads(p.stdout)["model"] if p.returncode == 0 else False, p.stderr)
    p = cli(["plan", "--fixture", FIXTURE, "--model", "meta-llama/Llama-3.1-8B-Instruct"],
            fresh_home(), {"HF_HUB_OFFLINE": "1"})
    check("cli plan from the catalog", p.returncode == 0 and "peerscope catalog" in p.stderr,
          p.stdout + p.stderr)
    for args, code, text in ((["--model", "org/gated"], 7, "gated or private"),
                             (["--model", "org/missing"], 3, "no repository org/missing"),
                             (["--model", "a--b/c"], 3, "not a Hugging Face model id"),
                             (["--model", "org/unseen"], 7, "HF_HUB_OFFLINE"),
                             (["--params-b", "8", "--model", "org/sharded"], 2, "exactly one")):
        extra = {"HF_HUB_OFFLINE": "1"} if "org/unseen" in args else None
        p = cli(["plan", "--fixture", FIXTURE] + args, home, extra)
        check("cli exit %s" % args, p.returncode == code and text in p.stderr
              and len(p.stderr.strip().splitlines()) == 1, (p.returncode, p.stderr))
    p = cli(["plan", "--fixture", FIXTURE, "--params-b", "8", "--model-name", "my/model",
             "--format", "shell"], home)
    check("cli --model-name", p.returncode == 0 and "vllm serve my/model " in p.stdout, p.stdout)
    p = cli(["launch", "org/sharded@v1", "--fixture", FIXTURE, "--dry-run"], home)
    check("launch by id", p.returncode == 0 and "vllm serve org/sharded " in p.stdout and
          "--revision v1" in p.stdout, p.stdout + p.stderr)


def main():
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
    hub.close()
    sys.exit(finish())


if __name__ == "__main__":
    main()
