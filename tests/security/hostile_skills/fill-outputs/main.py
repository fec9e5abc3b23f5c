"""Write `files` files of `file_kib` KiB each to /outputs; report the bytes that landed."""

import json
import os
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
chunk = b"o" * (args["file_kib"] << 10)
written, error = 0, None
try:
    for i in range(args["files"]):
        with open(f"/outputs/part-{i:04d}.bin", "wb") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        written += len(chunk)
except OSError as exc:
    error = exc.strerror
print(json.dumps({"written": written, "error": error}))
