#!/usr/bin/python3
"""Imported topologies against docs/topology.schema.json.

`test_import --dump-json DIR` (tests/unit/test_import.c) imports every real `nvidia-smi topo`
dump in tests/fixtures/topo and writes each report as JSON; every one must validate, and must
say what an import knows: source "file", nothing verified, links from the text, and null (not
0 or "") for what the text does not tell.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import schema_check  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DUMPS = ROOT / "tests" / "fixtures" / "topo"

# file: (GPUs, link of pair 0 -> 1 as written in JSON, NUMA node of GPU 0 or None)
EXPECTED = {
    "tf-gdr-4x-k40m-soc.txt": (4, "PHB", None),
    "go-gpuallocator-17-8x-rtx4090-nics.txt": (8, "SYS", 0),
    "club3090-1229-2x-rtx5090-p2p.txt": (2, "PHB", 0),
    "aikitoria-1-4gpu-phb.txt": (4, "PHB", 0),
    "cuda-samples-284-2x-l4.txt": (2, "SYS", 0),
    "club3090-1125-2gpu-indented-p2p.txt": (2, "NODE", 0),
    "training-on-eks-p4d-8x-a100.txt": (8, "NV12", 0),
    "stelline-4x-rtx6000ada-nics.txt": (4, "NODE", 0),
    "aikitoria-13-5gpu-p2p-p.txt": (5, "NODE", 0),
    "dask-cuda-1381-8x-a100-pcie-slurm.txt": (8, "NV12", 0),
}


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, (": " + detail) if detail else ""))


def check_report(t, name, doc):
    gpus, link01, numa0 = EXPECTED[name]
    problems = schema_check.errors(doc)
    t.check(not problems, "%s validates" % name, "; ".join(problems[:3]))
    t.check(doc["source"]["kind"] == "file", "%s: source.kind is file" % name)
    t.check(doc["source"]["origin"].endswith(name), "%s: source.origin is the path" % name)
    t.check(doc["source"]["machine"] == "imported from " + doc["source"]["origin"],
            "%s: source.machine" % name)
    t.check(doc["verification"]["ran"] is False, "%s: not verified" % name)
    t.check(len(doc["gpus"]) == gpus, "%s: %d GPUs" % (name, gpus), str(len(doc["gpus"])))
    t.check(len(doc["pairs"]) == gpus * (gpus - 1), "%s: every directed pair" % name)
    t.check(doc["pairs"][0]["link"] == link01, "%s: GPU0->GPU1 is %s" % (name, link01),
            str(doc["pairs"][0]["link"]))
    t.check(doc["gpus"][0]["numa_node"] == numa0, "%s: GPU0 NUMA node" % name)
    t.check(all(p["verdict"] == "not_run" for p in doc["pairs"]), "%s: verdicts not_run" % name)
    nv = [p for p in doc["pairs"] if p["link_class"] == "nvlink"]
    t.check(all(p["nvlink"] and p["nvlink"]["count"] > 0 for p in nv),
            "%s: NVLink pairs carry their count" % name)
    t.check(all(p["nvlink"] is None for p in doc["pairs"] if p["link_class"] != "nvlink"),
            "%s: no NVLink object on PCIe pairs" % name)
    if "p4d" in name:  # with gpu-info/p4d-8x-a100.csv
        t.check(doc["gpus"][7]["pci_bus_id"] == "00000000:A0:1D.0", "%s: bus id" % name)
        t.check(doc["gpus"][0]["memory_total_bytes"] == 40960 << 20, "%s: memory" % name)
    else:
        t.check(all(g["name"] is None and g["memory_total_bytes"] is None for g in doc["gpus"]),
                "%s: names and memory unknown (null)" % name)


def main():
    t = Tally()
    binary = pathlib.Path(os.environ.get("PEERSCOPE_BUILD_DIR", ROOT / "build")) / "bin" / \
        "test_import"
    if not binary.exists():
        t.check(False, "test_import is built", "%s not found (run through ctest)" % binary)
        print("%d passed, %d failed" % (t.passed, t.failed))
        return 1
    with tempfile.TemporaryDirectory(prefix="ps-import-schema-") as out:
        run = subprocess.run([str(binary), "--dump-json", out], capture_output=True, text=True,
                             env=dict(os.environ, PEERSCOPE_FIXTURES=str(ROOT / "tests" /
                                                                        "fixtures")))
        t.check(run.returncode == 0, "test_import --dump-json", run.stderr.strip())
        for name in sorted(EXPECTED):
            path = pathlib.Path(out) / (name + ".json")
            if not path.exists():
                t.check(False, "%s imported" % name)
                continue
            try:
                doc = schema_check.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                t.check(False, "%s is JSON" % name, str(exc))
                continue
            check_report(t, name, doc)
        t.check(sorted(p.name for p in DUMPS.glob("*.txt")) == sorted(EXPECTED),
                "every real dump in tests/fixtures/topo is checked")
    print("%d passed, %d failed" % (t.passed, t.failed))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
