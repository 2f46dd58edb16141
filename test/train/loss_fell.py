#!/usr/bin/env python3
"""Checks that a gai-run train metrics file shows learning: the mean loss of the
last five steps is below the first step's by at least 10%."""
import json, sys

losses = [json.loads(line)["loss"] for line in open(sys.argv[1])]
first, last = losses[0], sum(losses[-5:]) / 5
print(f"loss {first:.4f} -> {last:.4f}")
sys.exit(0 if last < 0.9 * first else f"the loss did not fall: {first} -> {last}")
