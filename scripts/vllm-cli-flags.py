#!/usr/bin/env python3
"""Writes tests/fixtures/vllm-cli-<version>.txt: every option string `vllm serve` accepts,
read from the vLLM wheel's source without installing or importing it (vLLM needs torch and a
GPU). test_launch checks every flag peerscope can emit against the newest such file.

  scripts/vllm-cli-flags.py                  # pip download --no-deps vllm (the newest), extract
  scripts/vllm-cli-flags.py --wheel FILE.whl # an already downloaded wheel
  scripts/vllm-cli-flags.py --version 0.33.0 # a given release

What it reads (with Python's ast, never executing vLLM code):
  - vllm/engine/arg_utils.py: every `*.add_argument("--flag", "-alias", ...)` with literal
    option strings (EngineArgs.add_cli_args: model, load, parallel, cache, scheduler, ...);
  - vllm/entrypoints/common/cli_args.py (vllm/entrypoints/openai/cli_args.py before the move):
    literal add_argument calls of make_arg_parser (--config, --headless, ...) and the fields of
    the FrontendArgs dataclasses, which add_cli_args registers as `--field-name` (--host, --port).
Boolean options also accept generated forms (`--no-x`, and `--enable-x`/`--disable-x` pairs,
argparse BooleanOptionalAction / vLLM's EnableDisableAction); the file lists the declared
names only, which are the ones peerscope emits.
"""
import argparse
import ast
import glob
import os
import re
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARG_FILES = ["vllm/engine/arg_utils.py"]
FRONTEND_FILES = ["vllm/entrypoints/common/cli_args.py", "vllm/entrypoints/openai/cli_args.py"]


def literal_flags(tree):
    flags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "add_argument":
            for a in node.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str) and \
                        a.value.startswith("-"):
                    flags.add(a.value)
    return flags


def frontend_fields(tree):
    """Fields of *FrontendArgs classes: `--name-with-dashes` (add_cli_args)."""
    flags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.endswith("FrontendArgs"):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    ann = ast.unparse(item.annotation)
                    if "ClassVar" in ann or item.target.id.startswith("_"):
                        continue
                    flags.add("--" + item.target.id.replace("_", "-"))
    return flags


def extract(wheel):
    version = re.match(r"vllm-([^-]+)-", os.path.basename(wheel)).group(1)
    flags, sources = set(), []
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for path in ARG_FILES + FRONTEND_FILES:
            if path not in names:
                continue
            tree = ast.parse(z.read(path).decode(), path)
            flags |= literal_flags(tree)
            if path in FRONTEND_FILES:
                flags |= frontend_fields(tree)
            sources.append(path)
    if "--tensor-parallel-size" not in flags or "--port" not in flags:
        sys.exit("vllm-cli-flags: %s: no --tensor-parallel-size/--port found in %s; the "
                 "layout changed, update this script" % (wheel, sources))
    return version, sources, sorted(flags)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help="a downloaded vllm wheel")
    ap.add_argument("--version", help="download this release instead of the newest")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "fixtures"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if not wheel:
            spec = "vllm==%s" % args.version if args.version else "vllm"
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "-d", tmp, spec], check=True)
            wheel = glob.glob(os.path.join(tmp, "vllm-*.whl"))[0]
        version, sources, flags = extract(wheel)
    out = os.path.join(args.out_dir, "vllm-cli-%s.txt" % version)
    with open(out, "w") as f:
        f.write("# vllm serve option strings, vLLM %s (%s)\n" % (version, os.path.basename(wheel)))
        f.write("# written by scripts/vllm-cli-flags.py from %s\n" % ", ".join(sources))
        f.write("# declared names only; booleans also take --no-X (and --enable-X/--disable-X)\n")
        for flag in flags:
            f.write(flag + "\n")
    print("vllm-cli-flags: %d options of vLLM %s -> %s" % (len(flags), version, out))


if __name__ == "__main__":
    main()
