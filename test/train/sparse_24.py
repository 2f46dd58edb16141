#!/usr/bin/env python3
"""Checks that the named F32 [n, k] tensors of a safetensors file are 2:4
sparse: at most two nonzero values in each group of four along k.

usage: sparse_24.py FILE GLOB...
"""
import fnmatch
import json
import struct
import sys

path, globs = sys.argv[1], sys.argv[2:]
data = open(path, "rb").read()
length = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + length])
checked = 0
for name, t in header.items():
    if name == "__metadata__" or not any(fnmatch.fnmatch(name, g) for g in globs):
        continue
    if t["dtype"] != "F32" or len(t["shape"]) != 2 or t["shape"][1] % 4:
        sys.exit(f"{name}: expected F32 [n, k] with k a multiple of 4, got {t['dtype']} {t['shape']}")
    begin, end = (8 + length + o for o in t["data_offsets"])
    values = struct.unpack(f"<{(end - begin) // 4}f", data[begin:end])
    for g in range(0, len(values), 4):
        if sum(v != 0.0 for v in values[g:g + 4]) > 2:
            sys.exit(f"{name}: group at element {g} keeps more than two of four: {values[g:g + 4]}")
    checked += 1
print(f"{checked} tensors 2:4 sparse")
sys.exit(0 if checked else "no tensor matched")
