#!/usr/bin/env python3
"""Makes the first element of one tensor of a safetensors file NaN.

usage: poison_weights.py IN OUT TENSOR
"""
import json
import struct
import sys

source, target, tensor = sys.argv[1:4]
data = bytearray(open(source, "rb").read())
length = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + length])
if header[tensor]["dtype"] != "F32":
    sys.exit(tensor + ": expected F32, got " + header[tensor]["dtype"])
begin = 8 + length + header[tensor]["data_offsets"][0]
data[begin:begin + 4] = struct.pack("<f", float("nan"))
open(target, "wb").write(data)
