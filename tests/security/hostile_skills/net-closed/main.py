"""TCP and UDP to the host (loopback and its LAN address), DNS, a public IP, an abstract socket."""

import json
import socket
from pathlib import Path

args = json.loads(Path("/inputs/args.json").read_text())
marker = args["marker"].encode()
report = {}


def attempt(label, action):
    try:
        report[label] = f"reached: {action()!r}"
    except OSError as exc:
        report[label] = f"blocked: {exc}"


def tcp(host, port):
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(marker)
        return s.recv(100)


def udp(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(marker, (host, port))
        return "sent"


def dns_query(server):
    query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(query, (server, 53))
        return s.recv(512)[:12]


def abstract(name):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect("\0" + name)
        s.sendall(marker)
        return s.recv(100)


attempt("tcp host loopback", lambda: tcp("127.0.0.1", args["tcp_port"]))
attempt("tcp host address", lambda: tcp(args["host_ip"], args["tcp_port"]))
attempt("udp host loopback", lambda: udp("127.0.0.1", args["udp_port"]))
attempt("udp host address", lambda: udp(args["host_ip"], args["udp_port"]))
attempt("dns resolve example.com", lambda: socket.getaddrinfo("example.com", 443))
attempt("dns query 1.1.1.1", lambda: dns_query("1.1.1.1"))
attempt("tcp 1.1.1.1:443", lambda: tcp("1.1.1.1", 443))
attempt("abstract unix socket", lambda: abstract(args["abstract"]))
report["interfaces"] = [name for _i, name in socket.if_nameindex()]
print(json.dumps(report))
