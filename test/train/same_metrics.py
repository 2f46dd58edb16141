"""Two metrics files agree: every step's named fields within 1e-5 relative.

usage: same_metrics.py A.jsonl B.jsonl FIELD...
"""
import json
import sys


def steps(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    a, b, fields = steps(sys.argv[1]), steps(sys.argv[2]), sys.argv[3:]
    if len(a) != len(b) or not a:
        sys.exit(f"{len(a)} steps against {len(b)}")
    for x, y in zip(a, b):
        for field in fields:
            u, v = x[field], y[field]
            if abs(u - v) > 1e-5 * max(abs(u), abs(v)):
                sys.exit(f"step {x['step']}: {field} {u} against {v}")
    print(f"{len(a)} steps agree on {', '.join(fields)}")


if __name__ == "__main__":
    main()
