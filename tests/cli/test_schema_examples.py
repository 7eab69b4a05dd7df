#!/usr/bin/python3
"""docs/topology.schema.json against the example reports in tests/golden/examples.

Every example there must validate (they are also canonical writer output: test_report_json
checks that peerscope's reader and writer reproduce them byte for byte), every file in
examples/invalid must be rejected at the path this test expects, and a set of one-field edits
of the examples must be rejected (or, for legal edits, accepted).
"""
import copy
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import schema_check  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "golden" / "examples"

# examples/invalid/<file>: the start of the first error the schema must report.
INVALID = {
    "cc-not-dotted.json": "gpus[0].compute_capability:",
    "claim-zero.json": "pairs[0].claims.atomics:",
    "corrupt-byte-range.json": "pairs[0].corrupt.expected:",
    "empty-string-for-unknown.json": "host.boot_id:",
    "link-contradicts-class.json": "pairs[0].link:",
    "memory-as-string.json": "gpus[0].memory_total_bytes:",
    "missing-uuid.json": "gpus[0]: 'uuid' is a required property",
    "negative-timing.json": "timings_ms.total:",
    "numa-minus-one.json": "gpus[0].numa_node:",
    "unknown-pair-key.json": "pairs[0]: Additional properties are not allowed ('bandwidth_gbps'",
    "verdict-upper-case.json": "pairs[1].verdict:",
    "wrong-schema.json": "schema:",
}


DELETE = object()  # an EDITS value: remove the key instead of setting it


def set_path(doc, path, value):
    """Sets (or with value DELETE removes) doc[path] for a path like ("gpus", 0, "name")."""
    at = doc
    for part in path[:-1]:
        at = at[part]
    if value is DELETE:
        del at[path[-1]]
    else:
        at[path[-1]] = value

# (example, path, new value, expected error path prefix or None when the edit is legal)
EDITS = [
    ("live-2gpu-nvlink.json", ("gpus", 1, "memory_free_bytes"), -1, "gpus[1].memory_free_bytes:"),
    ("live-2gpu-nvlink.json", ("gpus", 1, "memory_free_bytes"), 1.5, "gpus[1].memory_free_bytes:"),
    ("live-2gpu-nvlink.json", ("gpus", 1, "memory_free_bytes"), None, None),
    ("live-2gpu-nvlink.json", ("gpus", 0, "pcie", "gen_current"), 0, "gpus[0].pcie.gen_current:"),
    ("live-2gpu-nvlink.json", ("gpus", 0, "pcie", "lanes"), 16, "gpus[0].pcie:"),
    ("live-2gpu-nvlink.json", ("gpus", 0, "pcie"), None, "gpus[0].pcie:"),
    ("live-2gpu-nvlink.json", ("gpus", 0, "local_copy", "verdict"), None, "gpus[0].local_copy"),
    ("live-2gpu-nvlink.json", ("gpus", 0, "name"), "x" * 96, "gpus[0].name:"),
    ("live-2gpu-nvlink.json", ("gpus", 0, "index"), 1024, "gpus[0].index:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "link_class"), "NVLINK", "pairs[0].link_class:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "link"), "NV", None),
    ("live-2gpu-nvlink.json", ("pairs", 0, "link"), "NV018", "pairs[0].link:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "link"), None, "pairs[0].link:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "nvlink", "version"), 0, "pairs[0].nvlink.version:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "nvlink", "nvswitch"), None,
     "pairs[0].nvlink.nvswitch:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "claims", "read"), "ok", "pairs[0].claims.read:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "claims", "read"), None, None),
    ("live-2gpu-nvlink.json", ("pairs", 0, "claims"), None, None),
    ("live-2gpu-nvlink.json", ("pairs", 0, "cuda_can_access"), 1, "pairs[0].cuda_can_access:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "from_cache"), None, "pairs[0].from_cache:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "copy_us"), "41us", "pairs[0].copy_us:"),
    ("live-2gpu-nvlink.json", ("pairs", 0, "error_name"), DELETE, "pairs[0]: 'error_name'"),
    ("live-2gpu-nvlink.json", ("pairs", 1, "to"), -1, "pairs[1].to:"),
    ("live-2gpu-nvlink.json", ("verification", "hang_workers"), None, "verification.hang_workers:"),
    ("live-2gpu-nvlink.json", ("verification", "ran"), "yes", "verification.ran:"),
    ("live-2gpu-nvlink.json", ("driver", "cuda_driver_version"), 0, "driver.cuda_driver_version:"),
    ("live-2gpu-nvlink.json", ("driver", "cuda_driver_version"), "12.4",
     "driver.cuda_driver_version:"),
    ("live-2gpu-nvlink.json", ("source", "kind"), "nvidia-smi", "source.kind:"),
    ("live-2gpu-nvlink.json", ("source", "origin"), "", "source.origin:"),
    ("live-2gpu-nvlink.json", ("generator", "version"), None, "generator.version:"),
    ("live-2gpu-nvlink.json", ("timings_ms", "gpu_time"), 1.0, "timings_ms:"),
    ("live-2gpu-nvlink.json", ("gpus",), None, "gpus:"),
    ("live-2gpu-nvlink.json", ("cuda_visible_devices",), DELETE,
     "(document): 'cuda_visible_devices'"),
    ("fixture-4gpu-pcie-faults.json", ("pairs", 0, "corrupt", "offset"), -4096,
     "pairs[0].corrupt.offset:"),
    ("fixture-4gpu-pcie-faults.json", ("pairs", 4, "link"), "PIX", "pairs[4].link:"),
    ("fixture-4gpu-pcie-faults.json", ("pairs", 4, "link_class"), None, "pairs[4].link:"),
    ("imported-3gpu-nulls.json", ("pairs", 4, "link"), "X", "pairs[4].link:"),
    ("imported-3gpu-nulls.json", ("gpus", 2, "numa_node"), 3, None),
    ("imported-3gpu-nulls.json", ("gpus", 2, "compute_capability"), "10.0", None),
    ("imported-3gpu-nulls.json", ("gpus", 2, "compute_capability"), "9.0.1",
     "gpus[2].compute_capability:"),
]


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


def main():
    t = Tally()
    try:
        schema_check.validator()
        t.check(True, "the schema is valid JSON Schema 2020-12")
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        t.check(False, "the schema is valid JSON Schema 2020-12", str(exc))
        print("%d passed, %d failed" % (t.passed, t.failed))
        return 1

    valid = sorted(EXAMPLES.glob("*.json"))
    t.check(len(valid) >= 3, "at least three valid examples", str(len(valid)))
    for path in valid:
        problems = schema_check.check_file(path)
        t.check(not problems, "valid example %s" % path.name, "; ".join(problems[:3]))
    # The examples together use null and a value for every nullable field.
    docs = [schema_check.loads(p.read_text(encoding="utf-8")) for p in valid]
    t.check(any(d["gpus"] and all(g["name"] is None for g in d["gpus"][2:]) for d in docs),
            "an example has a GPU with every fact unknown")

    invalid = sorted((EXAMPLES / "invalid").glob("*.json"))
    t.check({p.name for p in invalid} == set(INVALID), "every invalid example has an expectation",
            "files %s vs table %s" % (sorted(p.name for p in invalid), sorted(INVALID)))
    for path in invalid:
        problems = schema_check.check_file(path)
        expect = INVALID.get(path.name, "")
        t.check(bool(problems) and any(p.startswith(expect) for p in problems),
                "invalid example %s rejected at %s" % (path.name, expect),
                "; ".join(problems[:3]) or "accepted")

    cache = {}
    for name, path, value, expect in EDITS:
        if name not in cache:
            cache[name] = schema_check.loads((EXAMPLES / name).read_text(encoding="utf-8"))
        doc = copy.deepcopy(cache[name])
        set_path(doc, path, value)
        problems = schema_check.errors(doc)
        what = "%s with %s = %r" % (name, schema_check.json_path(path),
                                    "<deleted>" if value is DELETE else value)
        if expect is None:
            t.check(not problems, what + " is accepted", "; ".join(problems[:3]))
        else:
            t.check(any(p.startswith(expect) for p in problems), what + " is rejected at " + expect,
                    "; ".join(problems[:3]) or "accepted")

    # Strict JSON: what peerscope's reader refuses, the checker refuses too.
    text = (EXAMPLES / "single-gpu.json").read_text(encoding="utf-8")
    for label, bad in [("a duplicate key", text.replace('"schema"', '"schema": 1, "schema"', 1)),
                       ("NaN", text.replace('"total": 236.0', '"total": NaN', 1))]:
        try:
            schema_check.loads(bad)
            t.check(False, "%s is refused" % label, "accepted")
        except ValueError:
            t.check(True, "%s is refused" % label)

    # The command line: exit status and one line per file.
    script = pathlib.Path(__file__).resolve().parent / "schema_check.py"
    run = subprocess.run([sys.executable, str(script), str(valid[0]), str(invalid[0])],
                         capture_output=True, text=True)
    t.check(run.returncode == 1, "schema_check.py exits 1 when a file is invalid",
            "rc=%d %s" % (run.returncode, run.stderr.strip()))
    t.check(run.stdout.startswith("%s: ok\n" % valid[0]), "schema_check.py reports ok files",
            run.stdout[:200])
    run = subprocess.run([sys.executable, str(script)] + [str(p) for p in valid],
                         capture_output=True, text=True)
    t.check(run.returncode == 0, "schema_check.py exits 0 when every file is valid",
            run.stdout[-300:])
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    t.check(run.returncode == 2, "schema_check.py without files is a usage error")
    missing = str(EXAMPLES / "no-such-report.json")
    run = subprocess.run([sys.executable, str(script), missing], capture_output=True, text=True)
    t.check(run.returncode == 1 and run.stdout.startswith(missing + ": (file): "),
            "schema_check.py reports a missing file", run.stdout.strip())

    print("%d passed, %d failed" % (t.passed, t.failed))
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
