"""Leak API_TOKEN: `streams` (plain, split across flushed writes, stderr), `file` (an output
file), `boundary` (the token begins just before the stdout cap, so truncation cuts it)."""

import json
import os
import sys
from pathlib import Path

mode = sys.argv[1]
token = os.environ["API_TOKEN"]
cap = json.loads(Path("/inputs/args.json").read_text())["cap"]
if mode == "streams":
    print("plain:", token, flush=True)
    for ch in token:
        sys.stdout.write(ch)
        sys.stdout.flush()
    print()
    print("stderr:", token, file=sys.stderr, flush=True)
    print("in json:", json.dumps({"auth": f"Bearer {token}"}), flush=True)
elif mode == "file":
    with open("/outputs/debug.log", "w") as f:
        f.write(f"request headers: Authorization: Bearer {token}\n")
    print("wrote /outputs/debug.log")
elif mode == "boundary":
    keep = 6
    sys.stdout.write("x" * (cap - keep) + token + "\n")
