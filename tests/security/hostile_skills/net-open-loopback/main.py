"""Connect to the host's loopback listener and abstract socket from an open-world sandbox."""

import json
import socket
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
marker = args["marker"].encode()
report = {}
try:
    with socket.create_connection(("127.0.0.1", args["tcp_port"]), timeout=2) as s:
        s.sendall(marker)
        report["tcp host loopback"] = f"reached: {s.recv(100)!r}"
except OSError as exc:
    report["tcp host loopback"] = f"blocked: {exc}"
try:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect("\0" + args["abstract"])
        s.sendall(marker)
        report["abstract unix socket"] = f"reached: {s.recv(100)!r}"
except OSError as exc:
    report["abstract unix socket"] = f"blocked: {exc}"
print(json.dumps(report))
