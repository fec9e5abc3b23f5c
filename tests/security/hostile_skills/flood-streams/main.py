"""Interleave 1 MB writes to both streams, `mb` of each."""

import json
import sys
from pathlib import Path

mb = json.loads(Path("/inputs/args.json").read_text())["mb"]
out, err = b"O" * 1_000_000, b"E" * 1_000_000
for _ in range(mb):
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
sys.stdout.flush()
