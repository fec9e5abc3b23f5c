"""Report the digest and head of every host credential file this process can open."""

import hashlib
import json

PATHS = [
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/sudoers",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/machine-id",
]
found = {}
for path in PATHS:
    try:
        with open(path, "rb") as f:
            data = f.read()
        found[path] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "head": data[:300].decode("latin-1"),
        }
    except OSError as exc:
        found[path] = {"error": exc.strerror}
print(json.dumps(found))
