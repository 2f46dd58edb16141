#!/usr/bin/env python3
"""Checks `gai-run generate` on a hub-style fixture (make_hub_fixtures.py)
against transformers' expected.json: the generated ids, or the printed text.
Usage: hub_check.py DIR ids|text < gai-run's stdout"""
import json, sys

expected = json.load(open(sys.argv[1] + "/expected.json"))
got = sys.stdin.buffer.read()
if sys.argv[2] == "ids":
    want = " ".join(map(str, expected["new_ids"])) + "\n"
    ok = got.decode() == want
else:
    want = expected["text"] + "\n"
    ok = got == want.encode()
if not ok:
    print(f"{sys.argv[1]}: gai-run printed {got!r}, transformers {want!r}")
    sys.exit(1)
