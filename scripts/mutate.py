#!/usr/bin/env python3
"""Mutation check: do the tests notice a broken check? Applies each small deliberate bug of
tests/mutants/mutants.json, one at a time, to a scratch copy of the tree, rebuilds it
incrementally, runs the tests the mutant names (or the whole suite with --full) and restores
the file. A mutant the tests do not notice *survived*: the check it breaks is untested.

Exit status: 0 when every mutant was killed; 1 when one survived, no longer applies (its
snippet is not in the file exactly once: re-point it after a refactor), does not compile,
or the unmutated tree fails its own tests; 2 for a usage or setup error.

  scripts/mutate.py                  every mutant, each with its own tests
  scripts/mutate.py --only ID[,ID]   the named mutants
  scripts/mutate.py --full           the whole ctest suite for each mutant (slow)
  scripts/mutate.py --check          only check that every mutant still applies (no build;
                                     ctest runs this as mutants_apply)
  scripts/mutate.py --verbose        also show how each mutant was killed
  scripts/mutate.py --self-test      check that --check fails on bad lists
  scripts/mutate.py --scratch DIR    keep the scratch copy and its build in DIR and reuse it
                                     next time (incremental; default: a temporary directory)
  scripts/mutate.py -- -DCMAKE_BUILD_TYPE=Debug   further arguments go to cmake (the
                                     scratch build is RelWithDebInfo, kernels for sm_90 only)

The list's format and how to add a mutant: tests/mutants/README.md."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LIST = os.path.join(ROOT, "tests", "mutants", "mutants.json")
FIELDS = {"id", "file", "find", "replace", "why", "tests"}


def text(value):
    """A snippet: a string, or a list of lines joined with newlines."""
    return "\n".join(value) if isinstance(value, list) else value


def load(path):
    with open(path) as f:
        doc = json.load(f)
    mutants, seen, problems = [], set(), []
    for i, m in enumerate(doc.get("mutants", [])):
        where = "%s: mutant %d (%s)" % (os.path.relpath(path, ROOT), i, m.get("id", "?"))
        missing = FIELDS - set(m)
        unknown = set(m) - FIELDS
        if missing or unknown:
            problems.append("%s: missing %s, unknown %s" % (where, sorted(missing),
                                                            sorted(unknown)))
            continue
        if m["id"] in seen:
            problems.append("%s: id used twice" % where)
        seen.add(m["id"])
        m = dict(m, find=text(m["find"]), replace=text(m["replace"]))
        if not m["tests"] or m["find"] == m["replace"] or not m["find"]:
            problems.append("%s: needs tests, a snippet, and a replacement that differs" % where)
        mutants.append(m)
    return mutants, problems


def known_tests():
    """ctest names: each tests/unit/test_*.c, cli_ + each tests/cli/test_*.py, and every
    add_test(NAME ...) of tests/CMakeLists.txt."""
    tests = set()
    for sub, prefix, ext in (("unit", "", ".c"), ("cli", "cli_", ".py")):
        for name in os.listdir(os.path.join(ROOT, "tests", sub)):
            if name.startswith("test_") and name.endswith(ext):
                tests.add(prefix + name[:-len(ext)])
    with open(os.path.join(ROOT, "tests", "CMakeLists.txt")) as f:
        tests.update(re.findall(r"add_test\(NAME (\w+)", f.read()))
    return tests


def applies(tree, m):
    """None when the mutant's snippet is in its file exactly once, else why not."""
    path = os.path.join(tree, m["file"])
    try:
        with open(path) as f:
            count = f.read().count(m["find"])
    except OSError as e:
        return "%s: %s" % (m["file"], e.strerror)
    if count != 1:
        return "%s: the snippet occurs %d times (must be exactly once): re-point it" % (
            m["file"], count)
    return None


def tree_files():
    """The files to copy: git's tracked and untracked, not ignored; outside a git checkout,
    every file but the build trees."""
    got = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "-co", "--exclude-standard"],
                         capture_output=True)
    if got.returncode == 0:
        names = got.stdout.decode().split("\0")
    else:
        names = []
        for top, dirs, files in os.walk(ROOT):
            rel = os.path.relpath(top, ROOT)
            dirs[:] = [d for d in dirs if not (rel == "." and (d.startswith("build") or
                                                               d.startswith(".git")))
                       and d != "__pycache__"]
            names += [os.path.normpath(os.path.join(rel, f)) for f in files
                      if not (rel == "." and f.startswith(".git"))]
            names += [os.path.normpath(os.path.join(rel, d)) for d in dirs
                      if os.path.islink(os.path.join(top, d))]
    full = [(p, os.path.join(ROOT, p)) for p in names if p]
    return [p for p, path in full if os.path.islink(path) or os.path.isfile(path)]


def sync(src_dir):
    """Copies the working tree (tracked and untracked files, not ignored ones) into src_dir,
    writing only files whose content differs so that the build there stays incremental."""
    for rel in tree_files():
        a, b = os.path.join(ROOT, rel), os.path.join(src_dir, rel)
        if os.path.islink(a):  # the sysfs fixtures' links into sys/devices
            target = os.readlink(a)
            if os.path.islink(b) and os.readlink(b) == target:
                continue
            os.makedirs(os.path.dirname(b), exist_ok=True)
            if os.path.lexists(b):
                os.remove(b)
            os.symlink(target, b)
            continue
        with open(a, "rb") as f:
            data = f.read()
        try:
            with open(b, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            os.makedirs(os.path.dirname(b), exist_ok=True)
        with open(b, "wb") as f:
            f.write(data)
        shutil.copymode(a, b)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def ctest(build, tests, jobs, full):
    shutil.rmtree(os.path.join(build, "tests", "cache"), ignore_errors=True)
    cmd = ["ctest", "--test-dir", build, "--no-tests=error", "-j%d" % jobs, "--output-on-failure"]
    if not full:
        cmd += ["-R", "^(%s)$" % "|".join(tests)]
    return run(cmd)


def tail(output, lines=25):
    return "\n".join("    " + line for line in output.strip().splitlines()[-lines:])


def self_test():
    """The check must fail on a stale snippet, a doubled one, an unknown test and a bad entry,
    and pass on a good one."""
    good = {"id": "g", "file": "tests/mutants/README.md", "find": "# Mutants: do the tests",
            "replace": "# x", "why": "w", "tests": ["layers"]}
    bad = [dict(good, find="no such snippet"), dict(good, find="mutant"),
           dict(good, tests=["no_such_test"]), dict(good, file="no/such/file.c"),
           {"id": "incomplete"}]
    with tempfile.TemporaryDirectory() as tmp:
        for case, want in [(good, 0)] + [(b, 1) for b in bad]:
            path = os.path.join(tmp, "list.json")
            with open(path, "w") as f:
                json.dump({"mutants": [case]}, f)
            got = subprocess.run([sys.executable, os.path.abspath(__file__), "--check", "--list",
                                  path], capture_output=True, text=True)
            if got.returncode != want:
                print("self-test: %s gave %d, expected %d:\n%s" % (
                    json.dumps(case), got.returncode, want, got.stdout + got.stderr))
                return 1
    print("self-test: the check fails on %d bad lists and passes on a good one" % len(bad))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", default=DEFAULT_LIST)
    ap.add_argument("--only", help="comma-separated mutant ids")
    ap.add_argument("--full", action="store_true", help="run the whole suite for each mutant")
    ap.add_argument("--check", action="store_true", help="only check that the mutants apply")
    ap.add_argument("--scratch", help="scratch directory to keep and reuse")
    ap.add_argument("--jobs", type=int, default=2, help="ctest -j (default 2)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="show the end of the failing tests' output for each killed mutant")
    ap.add_argument("cmake_args", nargs="*", help="after --: extra cmake arguments")
    ap.add_argument("--self-test", action="store_true", help="test the --check itself")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    mutants, problems = load(args.list)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {m["id"] for m in mutants}
        if unknown:
            print("mutate.py: no mutant %s in %s" % (", ".join(sorted(unknown)), args.list),
                  file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m["id"] in wanted]
    tests = known_tests()
    for m in mutants:
        why = applies(ROOT, m)
        if why:
            problems.append("%s: no longer applies: %s" % (m["id"], why))
        unknown = [t for t in m["tests"] if t not in tests]
        if unknown:
            problems.append("%s: no test named %s (ctest -N lists them)" % (
                m["id"], ", ".join(unknown)))
    for p in problems:
        print("STALE     " + p)
    if args.check:
        print("mutate.py: %d mutants, %d problem%s" % (len(mutants), len(problems),
                                                        "" if len(problems) == 1 else "s"))
        return 1 if problems else 0
    if not mutants:
        print("mutate.py: no mutant to run", file=sys.stderr)
        return 2

    t_start = time.monotonic()
    scratch = args.scratch or tempfile.mkdtemp(prefix="peerscope-mutate-")
    src, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
    os.makedirs(src, exist_ok=True)
    try:
        sync(src)
        # One GPU generation for the kernels: the fakes never run them, nvcc time is wasted.
        conf = run(["cmake", "-S", src, "-B", build, "-G", "Ninja", "-DPS_WERROR=ON",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DPS_CUDA_ARCHS=90"] + args.cmake_args)
        built = run(["ninja", "-C", build]) if conf.returncode == 0 else conf
        if built.returncode != 0:
            print("mutate.py: the unmutated tree does not build:\n" + tail(built.stdout))
            return 1
        tests = sorted({t for m in mutants for t in m["tests"]})
        base = ctest(build, tests, args.jobs, args.full)
        if base.returncode != 0:
            print("mutate.py: the unmutated tree fails its tests (fix that first):\n" +
                  tail(base.stdout))
            return 1
        print("baseline: %s pass (%.0f s so far)" % ("the suite" if args.full else
                                                    ", ".join(tests), time.monotonic() - t_start))
        results = {"killed": 0, "SURVIVED": 0, "BROKEN": 0, "STALE": len(problems)}
        for m in mutants:
            if applies(src, m):
                continue  # reported above
            path = os.path.join(src, m["file"])
            with open(path) as f:
                original = f.read()
            t0 = time.monotonic()
            try:
                with open(path, "w") as f:
                    f.write(original.replace(m["find"], m["replace"], 1))
                out = run(["ninja", "-C", build])
                if out.returncode != 0:
                    state, detail = "BROKEN", "does not compile:\n" + tail(out.stdout, 12)
                else:
                    out = ctest(build, m["tests"], args.jobs, args.full)
                    state = "killed" if out.returncode != 0 else "SURVIVED"
                    detail = ("no test noticed: %s" % m["why"]) if state == "SURVIVED" else ""
                    if state == "killed" and args.verbose:
                        detail = "killed by:\n" + tail(out.stdout, 15)
            finally:
                with open(path, "w") as f:
                    f.write(original)
            results[state] += 1
            print("%-9s %-34s %5.1f s  %s" % (state, m["id"], time.monotonic() - t0,
                                             "" if args.full else ",".join(m["tests"])))
            if detail:
                print("    " + detail)
            sys.stdout.flush()
        run(["ninja", "-C", build])  # leave the kept scratch build unmutated
        print("mutate.py: %d mutants: %s; %.0f s" % (
            sum(results.values()), ", ".join("%d %s" % (n, k) for k, n in results.items()),
            time.monotonic() - t_start))
        return 0 if results["killed"] == sum(results.values()) else 1
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
