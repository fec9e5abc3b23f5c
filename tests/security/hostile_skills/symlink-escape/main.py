"""Follow every symlink in the bundle and print what is on the other side."""

import hashlib
import json
import os

report = {}
for name in sorted(os.listdir("/workspace")):
    path = os.path.join("/workspace", name)
    if not os.path.islink(path):
        continue
    entry = {"target": os.readlink(path)}
    try:
        if os.path.isdir(path):
            entry["listing"] = sorted(os.listdir(path))
            files = {}
            for dirpath, _dirs, filenames in os.walk(path, followlinks=True):
                for f in filenames:
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        files[os.path.join(dirpath, f)] = fh.read(500).decode("latin-1")
            entry["files"] = files
        else:
            with open(path, "rb") as fh:
                data = fh.read()
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["content"] = data[:2000].decode("latin-1")
    except OSError as exc:
        entry["error"] = exc.strerror
    report[name] = entry
print(json.dumps(report))
