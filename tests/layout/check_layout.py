#!/usr/bin/env python3
"""The Python package's ctypes mirrors against the C structs, field by field.

usage: check_layout.py SOURCE_DIR PS_LAYOUT LIBPEERSCOPE.so
       check_layout.py --self-test

Three lists of every mirrored struct must agree:
- the fields declared in include/peerscope/*.h (parsed here: names, in order);
- what tests/layout/layout.c prints (sizeof, and each field's offsetof and size, from the
  compiler);
- the ctypes Structure's _fields_ (names, offsets, sizes) of python/peerscope.
A field added to one side only fails: missing from layout.c's list, it differs from the
header's names; missing from the mirror, from the ctypes names and sizes.
"""
import json
import os
import re
import subprocess
import sys

# The structs the Python package mirrors: module -> names.
MIRRORS = {
    "peerscope._lib": ["ps_mode_result", "ps_gpu", "ps_pair", "ps_timings", "ps_report", "ps_restart", "ps_probe_opts",
                       "ps_verify_opts", "ps_visible_opts",
                       "ps_bench_opts", "ps_model", "ps_plan_request", "ps_plan_item", "ps_plan_option", "ps_plan"],
    "peerscope.cluster.clib": ["ps_log_summary", "ps_launch_result", "ps_launch_opts", "ps_launch_conflict",
                               "ps_launch_cmd"],
}
RENAMED = {"from_": "from"}  # a Python keyword, renamed in the mirror


def header_fields(text):
    """{struct name: [field names in order]} of every `typedef struct NAME {...} NAME;`."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
        names = []
        for decl in m.group(2).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fn = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fn:  # a function pointer
                names.append(fn.group(1))
                continue
            for part in decl.split(","):
                ident = re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*$", part.strip())
                if not ident:
                    raise ValueError("cannot read the declaration %r in %s" % (decl, m.group(1)))
                names.append(ident.group(1))
        out[m.group(3)] = names
    return out


def read_headers(source):
    inc = os.path.join(source, "include", "peerscope")
    fields = {}
    for name in sorted(os.listdir(inc)):
        if name.endswith(".h"):
            with open(os.path.join(inc, name)) as f:
                fields.update(header_fields(f.read()))
    return fields


def c_layout(text):
    """ps_layout's output: {struct: {"size": n, "fields": [(name, offset, size)]}}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = {"size": int(parts[1]), "fields": []}
        elif len(parts) == 3:
            struct, field = parts[0].split(".", 1)
            out[struct]["fields"].append((field, int(parts[1]), int(parts[2])))
    return out


def dump_ctypes():
    """Runs in a child with the package importable: the mirrors' layouts as JSON."""
    import ctypes
    import importlib
    out = {}
    for module, names in MIRRORS.items():
        mod = importlib.import_module(module)
        for name in names:
            cls = getattr(mod, name)
            fields = []
            for fname, ftype in cls._fields_:
                desc = getattr(cls, fname)
                fields.append((RENAMED.get(fname, fname), desc.offset, ctypes.sizeof(ftype)))
            out[name] = {"size": ctypes.sizeof(cls), "fields": fields}
    json.dump(out, sys.stdout)


def ctypes_layout(source, lib, layout_exe):
    env = dict(os.environ, PYTHONPATH=os.path.join(source, "python"), PEERSCOPE_LIBRARY=lib)
    # A sanitizer build's library needs its runtime loaded first into a Python that opens it.
    ldd = subprocess.run(["ldd", layout_exe], capture_output=True, text=True).stdout
    runtimes = [line.split("=>")[1].split()[0] for line in ldd.splitlines()
                if "=>" in line and ("libasan" in line or "libubsan" in line)]
    if runtimes:
        env.update(LD_PRELOAD=" ".join(runtimes), ASAN_OPTIONS="detect_leaks=0")
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--dump-ctypes"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("check_layout: the Python package did not load:\n" + done.stderr)
    return {k: {"size": v["size"], "fields": [tuple(f) for f in v["fields"]]} for k, v in json.loads(done.stdout).items()}


def compare(headers, c, py):
    """Problems, one line each; [] when the three agree."""
    problems = []
    for module, names in MIRRORS.items():
        for name in names:
            if name not in headers:
                problems.append("%s: no such struct in include/peerscope/" % name)
                continue
            if name not in c:
                problems.append("%s: not in tests/layout/layout.c" % name)
                continue
            c_names = [f[0] for f in c[name]["fields"]]
            if c_names != headers[name]:
                problems.append("%s: tests/layout/layout.c lists %s, the header declares %s" % (name, c_names, headers[name]))
            py_names = [f[0] for f in py[name]["fields"]]
            if py_names != headers[name]:
                problems.append("%s: %s mirrors %s, the header declares %s" % (name, module, py_names, headers[name]))
            for cf, pf in zip(c[name]["fields"], py[name]["fields"]):
                if cf != pf:
                    problems.append("%s.%s: C has offset %d size %d, the mirror offset %d size %d" % (
                        name, cf[0], cf[1], cf[2], pf[1], pf[2]))
            if c[name]["size"] != py[name]["size"]:
                problems.append("%s: sizeof %d in C, %d in the mirror" % (name, c[name]["size"], py[name]["size"]))
    return problems


def self_test():
    """The check fails on each kind of drift (so it cannot pass silently)."""
    headers = header_fields("""typedef struct ps_gpu {
      uint32_t valid; /* a, b */
      int cc_major, cc_minor;
      char name[96];
      void (*on_line)(void *user, int stream, const char *line);
      const volatile int *stop;
    } ps_gpu;""")
    assert headers == {"ps_gpu": ["valid", "cc_major", "cc_minor", "name", "on_line", "stop"]}, headers
    good = {"size": 24, "fields": [("a", 0, 4), ("b", 8, 8)]}
    assert c_layout("s 24\ns.a 0 4\ns.b 8 8\n") == {"s": good}
    saved = dict(MIRRORS)
    MIRRORS.clear()
    MIRRORS["m"] = ["s"]
    try:
        h = {"s": ["a", "b"]}
        assert compare(h, {"s": good}, {"s": good}) == []
        # a field in the header only (in the tail padding: sizeof unchanged)
        assert compare({"s": ["a", "b", "c"]}, {"s": good}, {"s": good})
        # a field in the mirror only
        more = {"size": 24, "fields": good["fields"] + [("c", 16, 4)]}
        assert compare(h, {"s": good}, {"s": more})
        # a field's offset or size differs
        moved = {"size": 24, "fields": [("a", 0, 4), ("b", 4, 8)]}
        assert compare(h, {"s": good}, {"s": moved})
        # sizeof differs
        assert compare(h, {"s": good}, {"s": {"size": 32, "fields": good["fields"]}})
    finally:
        MIRRORS.clear()
        MIRRORS.update(saved)
    print("check_layout self-test: ok")


def main():
    if sys.argv[1:] == ["--dump-ctypes"]:
        return dump_ctypes()
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source, layout_exe, lib = sys.argv[1:]
    headers = read_headers(source)
    c = c_layout(subprocess.run([layout_exe], check=True, capture_output=True, text=True).stdout)
    py = ctypes_layout(source, lib, layout_exe)
    problems = compare(headers, c, py)
    for p in problems:
        print("check_layout: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)
    count = sum(len(v) for v in MIRRORS.values())
    print("check_layout: %d structs mirrored field by field: ok" % count)


if __name__ == "__main__":
    main()
