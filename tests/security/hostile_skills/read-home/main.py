"""Walk the places a user's secrets live and print every file it manages to read."""

import json
import os
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
report = {"listed": {}, "read": {}}
targets = [
    "/root",
    "/root/.ssh",
    "/home",
    os.path.expanduser("~"),
    "/var/lib",
    "/run",
    "/var/run",
    "/root/.docker",
    "/root/.aws",
    "/root/.config",
    *args.get("paths", []),
]
for target in targets:
    try:
        if os.path.isdir(target):
            report["listed"][target] = sorted(os.listdir(target))
            for name in report["listed"][target][:50]:
                path = os.path.join(target, name)
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        report["read"][path] = f.read(2000).decode("latin-1")
        else:
            with open(target, "rb") as f:
                report["read"][target] = f.read(2000).decode("latin-1")
    except OSError as exc:
        report["listed"].setdefault(target, f"error: {exc.strerror}")
print(json.dumps(report))
