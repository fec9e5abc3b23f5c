"""Grab 32 MiB at a time, touching every page, and say how far it got."""

import sys

hoard = []
while True:
    block = bytearray(32 << 20)
    block[::4096] = b"x" * len(block[::4096])
    hoard.append(block)
    print(f"holding {len(hoard) * 32} MiB", file=sys.stderr, flush=True)
    if len(hoard) * 32 >= 8192:
        print("allocated 8 GiB: no limit stopped me")
        break
