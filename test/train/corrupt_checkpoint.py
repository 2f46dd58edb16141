#!/usr/bin/env python3
"""Damages one tensor of a gai checkpoint, for the resume checks.

usage: corrupt_checkpoint.py IN OUT TENSOR flip|nan
  flip: one bit of the tensor's data changes; its checksum does not.
  nan:  element 3 becomes NaN and the checksum is updated to match, as a
        run whose parameters diverged would have written it.
"""
import ctypes
import json
import struct
import sys

# gai's checksum64 is XXH3-64 (seed 0), as libxxhash computes it.
xxhash = ctypes.CDLL("libxxhash.so.0")
xxhash.XXH3_64bits.restype = ctypes.c_uint64
xxhash.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def checksum64(data):
    return xxhash.XXH3_64bits(bytes(data), len(data))


source, target, tensor, mode = sys.argv[1:5]
data = bytearray(open(source, "rb").read())
length = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + length])
begin, end = header[tensor]["data_offsets"]
begin += 8 + length
end += 8 + length
if mode == "flip":
    data[begin + 5] ^= 0x10
else:
    data[begin + 12:begin + 16] = struct.pack("<f", float("nan"))
    header["__metadata__"]["gai.xxh3_64." + tensor] = "%016x" % checksum64(data[begin:end])
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > length:
        sys.exit("the new header does not fit")
    data[8:8 + length] = text + b" " * (length - len(text))
open(target, "wb").write(data)
