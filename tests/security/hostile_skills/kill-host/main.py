"""Try to kill the host's process (by pid, by name) and every other process in reach."""

import json
import os
import signal
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
report = {"visible": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
try:
    os.kill(args["host_pid"], signal.SIGKILL)
    report["kill host pid"] = "sent"
except OSError as exc:
    report["kill host pid"] = f"error: {exc.strerror}"
hits = []
for pid in report["visible"]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if args["target"].encode() in f.read():
                hits.append(pid)
    except OSError:
        pass
report["found by marker"] = hits
signal.signal(signal.SIGTERM, signal.SIG_IGN)
try:
    os.kill(-1, signal.SIGKILL)  # everything this uid can signal, except ourselves
    report["kill -1"] = "sent"
except OSError as exc:
    report["kill -1"] = f"error: {exc.strerror}"
print(json.dumps(report))
