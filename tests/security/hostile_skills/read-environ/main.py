"""Dump os.environ and /proc/<pid>/environ of every visible process (1, the parent, all)."""

import json
import os

report = {"self": dict(os.environ), "procs": {}}
pids = {"1", str(os.getppid()), *[p for p in os.listdir("/proc") if p.isdigit()]}
for pid in sorted(pids):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            report["procs"][pid] = f.read().decode("latin-1")
    except OSError as exc:
        report["procs"][pid] = f"error: {exc.strerror}"
print(json.dumps(report))
