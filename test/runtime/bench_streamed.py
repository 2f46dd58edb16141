"""Prints, for each bench JSON line, how its streamed bytes compare with all weight bytes."""
import json
import sys

for line in open(sys.argv[1]):
    d = json.loads(line)
    for key in ("tokens_per_s", "step_ms", "weight_bytes", "streamed_weight_bytes", "step_streamed_bw_tb_s"):
        assert key in d, key
    assert d["step_ms"] > 0 and d["step_streamed_bw_tb_s"] > 0, d
    gap = d["weight_bytes"] - d["streamed_weight_bytes"]
    print(d["workload"] + ": " + ("streamed = weights" if gap == 0
                                  else "streamed < weights by %d bytes" % gap))
