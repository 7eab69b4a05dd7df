"""The NICs of a node, and the GPUs nearest to each, from its ``nvidia-smi topo -m`` output."""

from typing import Any, Dict, List

from .common import _LINK_RANK


# ---- NICs from `nvidia-smi topo -m` ----------------------------------------------------------


def parse_topo_nics(text: str) -> List[Dict[str, Any]]:
    """The NICs of an ``nvidia-smi topo -m`` output: for each NIC column, its device name
    (from the ``NIC Legend``, when there is one), its link to every GPU (from the GPU rows)
    and the nearest GPUs. Empty when the output has no NIC columns."""
    lines = text.splitlines()
    columns: List[str] = []
    header_at = -1
    for i, line in enumerate(lines):
        tokens = line.split()
        if tokens and tokens[0] == "GPU0":
            for t in tokens:
                if t in ("CPU", "NUMA", "Affinity") or t.startswith("CPU"):
                    break
                columns.append(t)
            header_at = i
            break
    if header_at < 0:
        return []
    legend: Dict[str, str] = {}
    for line in lines[header_at + 1:]:
        t = line.strip()
        if t.startswith("NIC") and ":" in t:
            key, _, value = t.partition(":")
            if key.strip()[3:].isdigit():
                legend[key.strip()] = value.strip()
    nic_cols = [(j, c) for j, c in enumerate(columns) if not c.startswith("GPU")]
    if not nic_cols:
        return []
    links: Dict[str, Dict[int, str]] = {c: {} for _, c in nic_cols}
    for line in lines[header_at + 1:]:
        tokens = line.split()
        if not tokens or not tokens[0].startswith("GPU") or not tokens[0][3:].isdigit():
            continue
        gpu = int(tokens[0][3:])
        cells = tokens[1:1 + len(columns)]
        for j, c in nic_cols:
            if j < len(cells):
                links[c][gpu] = cells[j]
    nics = []
    for _, c in nic_cols:
        gl = links[c]
        ranked = [(_LINK_RANK.get(v, 9), g) for g, v in gl.items()]
        best = min((r for r, _ in ranked), default=9)
        nearest = sorted(g for r, g in ranked if r == best) if best < 9 else []
        nics.append({
            "nic": c,
            "device": legend.get(c) or (None if c.startswith("NIC") else c),
            "links": {str(g): v for g, v in sorted(gl.items())},
            "nearest_gpus": nearest,
            "nearest_link": next((v for g, v in gl.items() if nearest and g == nearest[0]), None),
        })
    return nics
