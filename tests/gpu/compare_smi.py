#!/usr/bin/env python3
"""Compares the device facts in a peerscope report with nvidia-smi's CSV
(--query-gpu=name,uuid,pci.bus_id,memory.total --format=csv,noheader). Exit 1 on a mismatch."""
import csv
import json
import sys


def topo_numa(topo_path):
    """NUMA Affinity per GPU row of `nvidia-smi topo -m` (None when absent or N/A)."""
    numa = {}
    try:
        lines = open(topo_path).read().splitlines()
    except OSError:
        return numa
    header = None
    for line in lines:
        clean = line.replace("\x1b[4m", "").replace("\x1b[0m", "")
        cells = [c.strip() for c in clean.split("\t")]
        if header is None and "NUMA Affinity" in cells:
            header = cells
            continue
        if header and cells and cells[0].startswith("GPU"):
            col = header.index("NUMA Affinity")
            value = cells[col] if col < len(cells) else ""
            numa[int(cells[0][3:])] = int(value) if value.isdigit() else None
        elif header and not line.strip():
            break
    return numa


def main(report_path, csv_path, topo_path=None):
    report = json.load(open(report_path))
    rows = [[c.strip() for c in row] for row in csv.reader(open(csv_path)) if row]
    failures = 0
    if len(rows) != len(report["gpus"]):
        print("MISMATCH gpu count: nvidia-smi %d, peerscope %d" % (len(rows), len(report["gpus"])))
        failures += 1
    for gpu, (name, uuid, bus, mem) in zip(report["gpus"], rows):
        mem_mib = int(mem.split()[0])
        ours = (gpu["name"], gpu["uuid"], gpu["pci_bus_id"],
                None if gpu["memory_total_bytes"] is None else gpu["memory_total_bytes"] // 2**20)
        theirs = (name, uuid, bus, mem_mib)
        ok = ours == theirs
        failures += not ok
        print("%s GPU %d: peerscope %s | nvidia-smi %s" % ("match" if ok else "MISMATCH",
                                                          gpu["index"], ours, theirs))
        print("  local copy verdict: %s" % gpu["local_copy"]["verdict"])
        if topo_path:
            smi_numa = topo_numa(topo_path).get(gpu["index"])
            same = smi_numa == gpu["numa_node"]
            failures += not same
            print("  %s NUMA affinity: peerscope %s | nvidia-smi topo -m %s" % (
                "match" if same else "MISMATCH", gpu["numa_node"], smi_numa))
    print("%d passed, %d failed" % (len(rows) - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
