"""Prints one int32 tensor of a fixture's expected.safetensors as space-separated
ids (its first row), from index --from on."""
import json, struct, sys

path, name = sys.argv[1], sys.argv[2]
start = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--from" else 0
with open(path, "rb") as f:
    size = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(size))
    entry = header[name]
    assert entry["dtype"] == "I32", entry
    begin, end = entry["data_offsets"]
    f.seek(8 + size + begin)
    data = f.read(end - begin)
row = entry["shape"][-1]
ids = struct.unpack("<%di" % row, data[: 4 * row])
print(" ".join(str(i) for i in ids[start:]))
