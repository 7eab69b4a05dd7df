#!/usr/bin/env python3
"""peerscope doctor over recorded sysfs trees (tests/fixtures/sysfs/<case>/, made by
make_trees.py) and their fake-driver fixtures: golden text and JSON per case, exit codes,
environment checks, PEERSCOPE_SYSFS_ROOT, bad input. PEERSCOPE_UPDATE_GOLDEN=1 rewrites the
golden files (tests/golden/doctor/) for review."""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

from jsonschema import Draft202012Validator

CLI = os.environ["PEERSCOPE_CLI"]
FIXTURES = os.environ["PEERSCOPE_FIXTURES"]
SOURCE = os.environ["PEERSCOPE_SOURCE_DIR"]
TREES = os.path.join(FIXTURES, "sysfs")
GOLDEN = os.path.join(SOURCE, "tests", "golden", "doctor")
UPDATE = os.environ.get("PEERSCOPE_UPDATE_GOLDEN") == "1"

SCHEMA = json.load(open(os.path.join(SOURCE, "docs", "doctor.schema.json")))
Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = Draft202012Validator(SCHEMA)

results = {"passed": 0, "failed": 0}
TMP = tempfile.mkdtemp(prefix="peerscope-doctor-test-")
atexit.register(shutil.rmtree, TMP, True)


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))


def run(args, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NCCL_", "VLLM_", "CUDA_", "PEERSCOPE_FIXTURE",
                                "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_SYSFS_ROOT"))}
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    env["PEERSCOPE_VERIFY_SEED"] = "5eed"
    env.update(env_extra or {})
    return subprocess.run([CLI, "doctor"] + args, capture_output=True, text=True, timeout=60,
                          env=env)


def normalise(text):
    return text.replace(FIXTURES, "<fixtures>").replace(SOURCE, "<src>")


def golden_compare(name, actual):
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(actual)
    expected = open(path).read() if os.path.exists(path) else None
    check("golden " + name, expected == actual,
          "(differs from %s; PEERSCOPE_UPDATE_GOLDEN=1 to review a change)" % path)


def case_args(case):
    root = os.path.join(TREES, case)
    return ["--fixture", os.path.join(root, "machine.topo"), "--sysfs-root", root,
            "--timeout-ms", "500"]


# What each recorded machine must show (codes), and its exit code.
EXPECT = {
    "acs-switch-on": ({"acs-redirect", "p2p-verify-failed"}, 1),
    "acs-off": (set(), 0),
    "acs-unreadable": ({"driver-version-mismatch"}, 1),
    "acs-malformed": (set(), 0),
    "iommu-translated": ({"iommu-translated", "p2p-verify-failed"}, 1),
    "iommu-passthrough": (set(), 0),
    "link-downtrained": ({"pcie-link-narrow", "pcie-link-slow", "mig-enabled"}, 0),
    "consumer-small-bar": ({"p2p-refused-by-driver", "bar1-small", "display-active",
                            "persistence-off"}, 0),
    "mixed-gpus": ({"mixed-gpus", "cuda-device-order"}, 0),
}

SEVERITY = {"error": 2, "warning": 1, "info": 0}


def test_cases():
    cases = sorted(d for d in os.listdir(TREES)
                   if os.path.isfile(os.path.join(TREES, d, "machine.topo")))
    check("every case has expectations", set(cases) == set(EXPECT), str(cases))
    for case in cases:
        proc = run(case_args(case))
        codes, rc = EXPECT.get(case, (set(), 0))
        check("%s exit code" % case, proc.returncode == rc,
              "%d != %d: %s" % (proc.returncode, rc, proc.stderr))
        check("%s no stderr" % case, proc.stderr == "", proc.stderr)
        golden_compare("%s.txt" % case, normalise(proc.stdout))
        proc = run(case_args(case) + ["--json"])
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            check("%s json parses" % case, False, str(e))
            continue
        check("%s json exit code" % case, proc.returncode == rc)
        errors = [e.message for e in VALIDATOR.iter_errors(doc)]
        check("%s json matches docs/doctor.schema.json" % case, not errors, str(errors[:3]))
        found = {f["code"] for f in doc["findings"]}
        check("%s codes" % case, found == codes, "%s != %s" % (sorted(found), sorted(codes)))
        sev = [SEVERITY[f["severity"]] for f in doc["findings"]]
        check("%s most serious first" % case, sev == sorted(sev, reverse=True), str(sev))
        check("%s summary" % case, doc["summary"]["errors"] == sev.count(2) and
              (doc["summary"]["errors"] > 0) == (rc == 1))
        for f in doc["findings"]:
            for key in ("title", "evidence", "breaks", "fix", "link"):
                check("%s %s has %s" % (case, f["code"], key), bool(f[key]))
            check("%s %s link" % (case, f["code"]), f["link"].startswith("https://"))
        golden_compare("%s.json" % case, normalise(proc.stdout))


def test_acs_fix_names_the_bridge():
    proc = run(case_args("acs-switch-on") + ["--json"])
    doc = json.loads(proc.stdout)
    acs = [f for f in doc["findings"] if f["code"] == "acs-redirect"]
    check("acs findings per downstream port", len(acs) == 2, str(len(acs)))
    fixes = " ".join(f["fix"] for f in acs)
    check("setpci for 02:08.0", "setpci -s 0000:02:08.0 ECAP_ACS+6.w=0000" in fixes, fixes)
    check("pci=noacs", "pci=noacs" in fixes)
    check("verify finding first", doc["findings"][0]["code"] == "p2p-verify-failed")


def test_environment():
    env = {"CUDA_VISIBLE_DEVICES": "0,5", "NCCL_P2P_DISABLE": "1", "NCCL_P2P_LEVEL": "NVL",
           "VLLM_SKIP_P2P_CHECK": "0"}
    # --all-gpus: the whole machine, so the NCCL findings about its P2P pair apply.
    proc = run(case_args("mixed-gpus") + ["--all-gpus"], env)
    check("env exit code (CUDA_VISIBLE_DEVICES names a missing GPU)", proc.returncode == 1,
          proc.stderr)
    golden_compare("mixed-gpus-env.txt", normalise(proc.stdout))
    for code in ("cuda-visible-devices", "nccl-p2p-disabled", "nccl-p2p-level",
                 "vllm-p2p-check-redundant"):
        check("env finding " + code, code in proc.stdout)
    # By default only what CUDA_VISIBLE_DEVICES=0,5 allows (GPU 0: CUDA stops at '5').
    proc = run(case_args("mixed-gpus"), env)
    check("restricted doctor: exit 1, the finding, the notice",
          proc.returncode == 1 and "cuda-visible-devices" in proc.stdout and
          "using the 1 GPU CUDA_VISIBLE_DEVICES allows: 0 " in proc.stdout, proc.stdout)
    proc = run(case_args("mixed-gpus"), {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                                         "CUDA_VISIBLE_DEVICES": "1,0"})
    check("PCI_BUS_ID quiets cuda-device-order", "cuda-device-order" not in proc.stdout)
    check("valid CUDA_VISIBLE_DEVICES", "cuda-visible-devices" not in proc.stdout and
          proc.returncode == 0, proc.stdout)
    proc = run(case_args("acs-switch-on"), {"VLLM_SKIP_P2P_CHECK": "1"})
    check("VLLM_SKIP_P2P_CHECK=1 with a failed pair", "vllm-skip-p2p-check" in proc.stdout)
    proc = run(case_args("consumer-small-bar"), {"NCCL_SHM_DISABLE": "1"})
    check("NCCL_SHM_DISABLE without P2P", "nccl-shm-disabled" in proc.stdout)


def test_sysfs_root_env():
    root = os.path.join(TREES, "iommu-translated")
    a = run(case_args("iommu-translated"))
    b = run(["--fixture", os.path.join(root, "machine.topo"), "--timeout-ms", "500"],
            {"PEERSCOPE_SYSFS_ROOT": root})
    check("PEERSCOPE_SYSFS_ROOT = --sysfs-root", a.stdout == b.stdout and
          a.returncode == b.returncode == 1, b.stdout + b.stderr)


def test_without_sysfs():
    proc = run(["--fixture", os.path.join(FIXTURES, "fault-corrupt.topo")])
    check("fixture without sysfs: exit 1 on the corrupt pair", proc.returncode == 1, proc.stderr)
    check("fixture without sysfs: acs not checked", "acs        not checked" in proc.stdout)
    golden_compare("fault-corrupt-no-sysfs.txt", normalise(proc.stdout))
    proc = run(["--fixture", os.path.join(FIXTURES, "example-4x-a100.topo"), "--no-verify"])
    check("--no-verify: verify not checked", "verify     not checked" in proc.stdout and
          proc.returncode == 0, proc.stdout + proc.stderr)


def errors_of(doc):
    return [e.message for e in VALIDATOR.iter_errors(doc)]


def codes_of(args):
    proc = run(["--json"] + args)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        return proc, None, []
    return proc, doc, [f["code"] for f in doc["findings"]]


def test_modes():
    """ipc failing while ce passes is its own finding (the environment, not the link), with the
    fix; sm failing while ce passes is a verification failure of the pair, named as kernels."""
    proc, doc, codes = codes_of(["--fixture", os.path.join(FIXTURES, "fault-ipc-fails.topo")])
    check("ipc fails: exit 1", proc.returncode == 1, proc.stderr)
    check("ipc fails: one p2p-ipc-failed, no p2p-verify-failed", codes == ["p2p-ipc-failed"], codes)
    f = doc["findings"][0] if doc and doc["findings"] else {}
    check("ipc fails: the fix names --ipc=host", "--ipc=host" in f.get("fix", ""), f)
    check("ipc fails: the evidence names the call", "cuIpcOpenMemHandle" in f.get("evidence", ""), f)
    checks = {c["name"]: c["state"] for c in doc["checks"]} if doc else {}
    check("ipc fails: ipc check is a finding, verify ok",
          checks.get("ipc") == "finding" and checks.get("verify") == "ok", checks)
    check("ipc fails: schema", doc is not None and not errors_of(doc), doc and errors_of(doc)[:3])
    proc, doc, codes = codes_of(["--fixture", os.path.join(FIXTURES, "fault-sm-corrupt.topo")])
    sm = doc["checks"] and json.loads(subprocess.run(
        [CLI, "check", "--json", "--modes", "sm", "--gpus", "0", "--fixture",
         os.path.join(FIXTURES, "example-4x-a100.topo")], capture_output=True, text=True,
        timeout=60).stdout)["gpus"][0]["local_copy"]["modes"]["sm"]["verdict"]
    if sm == "unavailable":  # no kernels in this build: nothing ran that could see it
        print("note: no CUDA kernels in this build: the sm finding is not expected")
        check("sm corrupt without kernels: no finding", codes == [], codes)
        return
    check("sm corrupt: one p2p-verify-failed", codes == ["p2p-verify-failed"], codes)
    f = doc["findings"][0] if doc and doc["findings"] else {}
    check("sm corrupt: the evidence says kernels", "kernels (sm mode): corrupt" in
          f.get("evidence", ""), f)
    proc, doc, codes = codes_of(["--modes", "ce", "--fixture",
                                 os.path.join(FIXTURES, "fault-ipc-fails.topo")])
    checks = {c["name"]: c["state"] for c in doc["checks"]} if doc else {}
    check("--modes ce: no ipc finding, ipc not checked",
          codes == [] and checks.get("ipc") == "not checked", (codes, checks))


def test_bad_input():
    proc = run(["--bogus"])
    check("unknown option exit 2", proc.returncode == 2 and
          proc.stderr.startswith("peerscope doctor: unknown option"), proc.stderr)
    proc = run(["extra"])
    check("extra argument exit 2", proc.returncode == 2, proc.stderr)
    proc = run(["--timeout-ms", "x"])
    check("bad timeout exit 2", proc.returncode == 2, proc.stderr)
    proc = run(["--sysfs-root", os.path.join(TMP, "missing")])
    check("missing sysfs root exit 3", proc.returncode == 3 and
          proc.stderr.count("\n") == 1, proc.stderr)
    proc = run([], {"PEERSCOPE_SYSFS_ROOT": os.path.join(TMP, "missing")})
    check("missing PEERSCOPE_SYSFS_ROOT exit 3", proc.returncode == 3, proc.stderr)
    proc = run(["--fixture", os.path.join(FIXTURES, "bad", "bad-claim.topo")])
    check("bad fixture exit 3", proc.returncode == 3, proc.stderr)
    proc = run(["--fixture", os.path.join(FIXTURES, "fault-nvml-init.topo")])
    check("driver unavailable exit 4", proc.returncode == 4, proc.stderr)
    proc = run(["--help"])
    check("--help exit 0", proc.returncode == 0 and "usage: peerscope doctor" in proc.stdout)
    # An empty tree: nothing to read is "not checked", never a crash.
    empty = os.path.join(TMP, "empty")
    os.makedirs(empty)
    proc = run(["--fixture", os.path.join(FIXTURES, "fault-unsupported.topo"),
                "--sysfs-root", empty])
    check("empty sysfs tree", proc.returncode in (0, 1) and
          "acs        not checked" in proc.stdout and
          "iommu      not checked" in proc.stdout, proc.stdout + proc.stderr)


def main():
    for test in (test_cases, test_acs_fix_names_the_bridge, test_environment,
                 test_sysfs_root_env, test_without_sysfs, test_modes, test_bad_input):
        test()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
