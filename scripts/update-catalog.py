#!/usr/bin/env python3
"""Re-reads the model catalog (data/models, docs/models.md) from the Hugging Face Hub.

Run it where the Hub is reachable (the machines peerscope is developed on may not be):

    scripts/update-catalog.py                 # every entry, at the Hub's current main
    scripts/update-catalog.py org/name ...    # these ids only (new ones are added)
    scripts/update-catalog.py --wanted        # every entry and the ids in data/models/wanted.txt

For each id it fetches config.json, then model.safetensors.index.json (metadata.total_size) or,
for a single-file model, the safetensors header through two Range requests (never weights),
exactly as peerscope itself does, and writes <org>--<name>/config.json byte for byte and
peerscope-catalog.json with the commit (X-Repo-Commit) the files were read at (an entry's
config_estimate, why its checkpoint holds more than its config's shapes, is kept). HF_TOKEN is
sent for gated models; HF_ENDPOINT points at a mirror; PEERSCOPE_CATALOG_OUT writes somewhere
else than data/models (the tests). Standard library only."""
import json
import os
import struct
import sys
import urllib.error
import urllib.request

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")
ROOT = os.environ.get("PEERSCOPE_CATALOG_OUT") or SOURCE
ENDPOINT = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
TOKEN = os.environ.get("HF_TOKEN")


def get(repo, rev, name, first=None, last=None):
    req = urllib.request.Request("%s/%s/resolve/%s/%s" % (ENDPOINT, repo, rev, name))
    req.add_header("User-Agent", "peerscope-update-catalog")
    if TOKEN:
        req.add_header("Authorization", "Bearer " + TOKEN)
    if first is not None:
        req.add_header("Range", "bytes=%d-%d" % (first, last))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            if first is not None and r.status != 206:
                raise SystemExit("%s %s: the server ignored Range" % (repo, name))
            return r.read(), r.headers.get("X-Repo-Commit")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None, e.headers.get("X-Repo-Commit")
        raise SystemExit("%s %s: HTTP %d %s" % (repo, name, e.code, e.headers.get("X-Error-Code")))


def weight_total(repo, commit):
    head, _ = get(repo, commit, "model.safetensors", 0, 7)
    if head is not None:
        n = struct.unpack("<Q", head)[0]
        header, _ = get(repo, commit, "model.safetensors", 8, 8 + n - 1)
        tensors = {k: v for k, v in json.loads(header).items() if k != "__metadata__"}
        total = max(v["data_offsets"][1] for v in tensors.values())
        return total, "the safetensors header of model.safetensors (%d tensors)" % len(tensors)
    index, _ = get(repo, commit, "model.safetensors.index.json")
    if index is None:
        raise SystemExit("%s: neither model.safetensors nor an index" % repo)
    size = json.loads(index)["metadata"]["total_size"]
    return int(size), "model.safetensors.index.json metadata.total_size"


def update(repo):
    config, commit = get(repo, "main", "config.json")
    if config is None or not commit:
        raise SystemExit("%s: no config.json or no X-Repo-Commit" % repo)
    json.loads(config)
    total, how = weight_total(repo, commit)
    where = "%s/%s/blob/%s/" % (ENDPOINT, repo, commit)
    d = os.path.join(ROOT, repo.replace("/", "--"))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "wb") as f:
        f.write(config)
    entry = {"schema": "peerscope.catalog/1", "id": repo, "revision": commit, "total_size": total,
             "total_parameters": None,
             "sources": {"config.json": where + "config.json",
                         "total_size": "%s at %s" % (how, where)}}
    meta = os.path.join(d, "peerscope-catalog.json")
    for old in (meta, os.path.join(SOURCE, os.path.basename(d), "peerscope-catalog.json")):
        if os.path.isfile(old):  # why the checkpoint holds more than its config says stays true
            note = json.load(open(old)).get("config_estimate")
            if note:
                entry["config_estimate"] = note
                break
    with open(meta, "w") as f:
        json.dump(entry, f, indent=2)
        f.write("\n")
    print("%-48s %s %16d" % (repo, commit[:12], total))


def main():
    ids = [a for a in sys.argv[1:] if a != "--wanted"]
    if "--wanted" in sys.argv[1:]:
        with open(os.path.join(SOURCE, "wanted.txt")) as f:
            ids += [line.strip() for line in f if line.strip() and not line.startswith("#")]
    if not ids or "--wanted" in sys.argv[1:]:
        for entry in sorted(os.listdir(ROOT)):
            meta = os.path.join(ROOT, entry, "peerscope-catalog.json")
            if os.path.isfile(meta):
                ids.append(json.load(open(meta))["id"])
    for repo in dict.fromkeys(ids):
        update(repo)


if __name__ == "__main__":
    main()
