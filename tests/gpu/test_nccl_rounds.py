#!/usr/bin/env python3
"""tests/gpu/nccl_rounds.py with stand-ins for the two tools: a "peerscope" that prints a
captured bench --json (tests/gpu/samples/peerscope-1gpu.json) and an "all_reduce_perf" that
prints a captured run in that tool's stdout format. Checks that rounds alternate, each size
gets both medians and a ratio, a size one side lacks is said, and a failing tool stops the run
with its exit code named."""
import io
import os
import stat
import sys
import tempfile
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nccl_rounds  # noqa: E402

failures = []


def check(name, ok, detail=""):
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": %s" % (detail,)))
    if not ok:
        failures.append(name)


def stand_in(directory, name, sample, log, rc=0):
    """An executable that appends its name to log, prints the sample and exits rc."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho %s >> %s\ncat %s\nexit %d\n"
                % (name, log, os.path.join(HERE, "samples", sample), rc))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def main():
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "calls.log")
        ps = stand_in(tmp, "ps", "peerscope-1gpu.json", log)
        arp = stand_in(tmp, "arp", "all_reduce_perf-1gpu-graph.txt", log)
        out = io.StringIO()
        with redirect_stdout(out):
            rc = nccl_rounds.main([ps, arp, os.path.join(tmp, "out"), "3"])
        text = out.getvalue()
        check("exit 0", rc == 0, rc)
        with open(log) as f:
            calls = f.read().split()
        check("rounds alternate: ps first, then the reference first",
              calls == ["ps", "arp", "arp", "arp", "arp", "ps", "ps", "arp", "arp"], calls)
        rows = [line for line in text.splitlines() if line.startswith(("eager", "graph"))]
        check("a row per mode and size", len(rows) == 2 * len(nccl_rounds.SIZES), rows)
        measured = [line for line in rows if "us" in line and "no timing" not in line]
        check("some sizes measured on both sides, with a ratio", measured and
              all(len(line.split()) >= 7 for line in measured), text)
        check("the deviation summary", "largest deviation" in text, text)
        check("rounds.json kept", os.path.exists(os.path.join(tmp, "out", "rounds.json")))
        bad = stand_in(tmp, "bad", "all_reduce_perf-1gpu-graph.txt", log, rc=3)
        try:
            nccl_rounds.main([ps, bad, os.path.join(tmp, "out2"), "1"])
            check("a failing tool stops the run", False)
        except RuntimeError as e:
            check("a failing tool stops the run naming its exit code", "exited 3" in str(e), e)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
