"""Append 1 MiB blocks to files in `dir` and report how many bytes the sandbox accepted."""

import json
import os
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
written, error, chunk = 0, None, b"t" * (1 << 20)
try:
    for i in range(args["limit_mib"]):
        with open(f"{args['dir'].rstrip('/')}/fill-{i % args['files']}", "ab") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        written += len(chunk)
except OSError as exc:
    error = exc.strerror
print(json.dumps({"written": written, "error": error}))
