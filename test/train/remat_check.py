#!/usr/bin/env python3
"""Helpers of remat.test.

budgets FULL.report: prints two budgets in bytes, a third and two thirds of
the way from full remat's planned peak to no remat's (gaic --report
--remat=full gives both), so that `auto` has to recompute some values.

same A.jsonl B.jsonl: checks that two gai-run train metrics files have the
very same loss and gradient norm at every step (bit for bit, as printed).
"""
import json, re, sys


def peak(report):
    m = re.search(r"artifact: planned peak ([0-9.]+) MiB -> ([0-9.]+) MiB", open(report).read())
    if not m:
        sys.exit(f"{report}: no 'artifact: planned peak' line")
    return float(m.group(1)), float(m.group(2))


if sys.argv[1] == "budgets":
    none, full = peak(sys.argv[2])
    if not full < none:
        sys.exit(f"full remat plans {full} MiB, not below no remat's {none} MiB")
    for part in (1 / 3, 2 / 3):
        print(int((full + part * (none - full)) * 1024 * 1024), end=" ")
    print()
elif sys.argv[1] == "same":
    a = [json.loads(line) for line in open(sys.argv[2])]
    b = [json.loads(line) for line in open(sys.argv[3])]
    keys = ("step", "loss", "grad_norm")
    if [[r[k] for k in keys] for r in a] != [[r[k] for k in keys] for r in b]:
        sys.exit(f"{sys.argv[2]} and {sys.argv[3]} differ:\n{a}\n{b}")
    print(f"{len(a)} steps alike")
