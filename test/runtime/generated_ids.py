#!/usr/bin/env python3
"""Prints a fixture's greedy continuation (greedy_ids after prompt_ids) as
space-separated ids: what `gai-run generate --print-ids` must print."""
import json
import struct
import sys


def tensor(path, name):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        begin, end = header[name]["data_offsets"]
        f.seek(8 + n + begin)
        data = f.read(end - begin)
    fmt = {"I64": "q", "I32": "i"}[header[name]["dtype"]]
    return list(struct.unpack("<%d%s" % (len(data) // struct.calcsize(fmt), fmt), data))


path = sys.argv[1]
prompt = tensor(path, "prompt_ids")
greedy = tensor(path, "greedy_ids")
if sys.argv[2:] == ["--prompt"]:
    print(" ".join(map(str, prompt)))
else:
    print(" ".join(map(str, greedy[len(prompt):])))
