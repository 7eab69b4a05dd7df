#!/usr/bin/env python3
"""Writes a 1 MB bug-report paste for bench_plan: a real 8-GPU `nvidia-smi topo -m` dump
followed by log lines, as people paste them. usage: make_paste.py DUMP OUT"""
import sys

dump = open(sys.argv[1]).read()
filler = "[2026-11-25 12:00:00] INFO worker.py:123 some unrelated log line from the report\n"
with open(sys.argv[2], "w") as out:
    out.write(dump)
    out.write("\n")
    out.write(filler * ((1 << 20) // len(filler)))
