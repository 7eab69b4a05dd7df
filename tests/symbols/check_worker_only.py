#!/usr/bin/env python3
"""Fails when code that only peerscope-worker runs is in libpeerscope.

usage: check_worker_only.py NM LIBPEERSCOPE.so LIBPEERSCOPE.a "OBJ;OBJ;..."

The objects are peerscope_worker_objects (src/CMakeLists.txt: PS_WORKER_ONLY_SOURCES): the
worker-main skeleton, the worker modes, the CUDA and NCCL bindings, the kernels. None of the
global names they define may be defined in, exported from or needed by the shared or the
static library.
"""
import subprocess
import sys


def symbols(nm, path, *flags):
    """{name: set of nm type letters} of one file (all members of an archive)."""
    out = subprocess.run([nm, *flags, path], check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[-2]) == 1:
            found.setdefault(parts[-1], set()).add(parts[-2])
    return found


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    nm, shared, static, objects = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    worker = set()
    for obj in filter(None, objects.split(";")):
        for name, kinds in symbols(nm, obj).items():
            # Project names only (ps_/ps__): sanitizers add globals of their own.
            if name.startswith("ps_") and kinds & set("TDBRVW"):
                worker.add(name)
    if len(worker) < 5:
        sys.exit(f"only {len(worker)} worker-only symbols found in {objects!r}: wrong objects?")
    bad = []
    for path, flags in ((shared, ()), (shared, ("-D",)), (static, ())):
        table = symbols(nm, path, *flags)
        for name in sorted(worker & table.keys()):
            bad.append(f"{path}{' (dynamic)' if flags else ''}: {name} ({''.join(sorted(table[name]))})")
    if bad:
        print("worker-only code is in libpeerscope (keep it in PS_WORKER_ONLY_SOURCES):")
        print("\n".join("  " + b for b in bad))
        sys.exit(1)
    print(f"ok: none of the {len(worker)} worker-only symbols is in libpeerscope")


if __name__ == "__main__":
    main()
