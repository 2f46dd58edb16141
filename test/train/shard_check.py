"""Checks that a sharded training run matches one device's.

losses A.jsonl B.jsonl TOL [FIRST_STEP]: every step both logged (from
FIRST_STEP on) has the same loss within TOL relative, and B logged them all.
weights A.safetensors B.safetensors TOL: the same tensors, each element
within TOL of the other's (absolute, as the weights are O(1)).
"""
import json
import struct
import sys


def losses(path):
    steps = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            steps[record["step"]] = record["loss"]
    return steps


def tensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{path}: {name} is {t['dtype']}, expected F32"
        begin, end = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack(f"<{(end - begin) // 4}f", data[begin:end]))
    return out


def main():
    mode, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    if mode == "losses":
        first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        want, got = losses(a), losses(b)
        steps = [s for s in sorted(want) if s >= first]
        if not steps:
            sys.exit(f"{a}: no steps from {first} on")
        worst = 0.0
        for step in steps:
            if step not in got:
                sys.exit(f"{b}: no loss at step {step}")
            rel = abs(got[step] - want[step]) / max(abs(want[step]), 1e-12)
            worst = max(worst, rel)
            if rel > tol:
                sys.exit(f"step {step}: loss {got[step]!r} against {want[step]!r} "
                         f"({rel:.2e} relative, more than {tol:g})")
        print(f"{len(steps)} steps agree; largest relative difference {worst:.2e}")
    elif mode == "weights":
        want, got = tensors(a), tensors(b)
        if sorted(want) != sorted(got):
            sys.exit(f"the tensors differ: {sorted(set(want) ^ set(got))}")
        worst = 0.0
        for name, (shape, values) in want.items():
            other_shape, other = got[name]
            if shape != other_shape:
                sys.exit(f"{name}: shape {other_shape} against {shape}")
            diff = max((abs(x - y) for x, y in zip(values, other)), default=0.0)
            worst = max(worst, diff)
            if diff > tol:
                sys.exit(f"{name}: an element differs by {diff:.2e}, more than {tol:g}")
        print(f"{len(want)} tensors agree; largest difference {worst:.2e}")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
