#!/usr/bin/env python3
"""hash-encode: digests and text encodings (standard library only)."""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import html
import io
import json
import re
import sys
import urllib.parse
from typing import Any

PROG = "hash-encode"
ALGORITHMS = ("sha256", "sha1", "md5", "sha224", "sha384", "sha512", "sha3_256", "sha3_512",
              "blake2b", "blake2s")  # fmt: skip
ENCODINGS = ("base64", "base64url", "base32", "hex", "url", "url-form", "html")


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


def to_bytes(text: str, encoding: str) -> bytes:
    if encoding == "utf-8":
        return text.encode("utf-8", errors="surrogateescape")
    return decode_bytes(text, {"hex": "hex", "base64": "base64"}[encoding])


def digest(text: str, algorithm: str, input_encoding: str) -> dict[str, Any]:
    data = to_bytes(text, input_encoding)
    # usedforsecurity=False: an MD5 checksum is still a checksum on a FIPS host.
    raw = hashlib.new(algorithm, data, usedforsecurity=False).digest()
    return {
        "algorithm": algorithm,
        "hex": raw.hex(),
        "base64": base64.b64encode(raw).decode("ascii"),
        "input_bytes": len(data),
    }


def encode(text: str, encoding: str) -> dict[str, Any]:
    data = text.encode("utf-8", errors="surrogateescape")
    if encoding == "base64":
        out = base64.b64encode(data).decode("ascii")
    elif encoding == "base64url":
        out = base64.urlsafe_b64encode(data).decode("ascii")
    elif encoding == "base32":
        out = base64.b32encode(data).decode("ascii")
    elif encoding == "hex":
        out = data.hex()
    elif encoding == "url":
        out = urllib.parse.quote(data, safe="")
    elif encoding == "url-form":
        out = urllib.parse.quote_plus(data, safe="")
    else:
        out = html.escape(text, quote=True)
    return {"encoding": encoding, "result": out}


def decode_bytes(text: str, encoding: str) -> bytes:
    compact = re.sub(r"\s+", "", text)
    try:
        if encoding in ("base64", "base64url"):
            padded = compact.rstrip("=") + "=" * (-len(compact.rstrip("=")) % 4)
            if encoding == "base64url":
                padded = padded.replace("-", "+").replace("_", "/")
            return base64.b64decode(padded, validate=True)
        if encoding == "base32":
            stripped = compact.rstrip("=").upper()
            return base64.b32decode(stripped + "=" * (-len(stripped) % 8))
        if encoding == "hex":
            return bytes.fromhex(compact.removeprefix("0x"))
    except (binascii.Error, ValueError) as exc:
        raise UserError(f"the text is not valid {encoding}: {exc}") from None
    if encoding == "url":
        return urllib.parse.unquote_to_bytes(text)
    if encoding == "url-form":
        return urllib.parse.unquote_to_bytes(text.replace("+", " "))
    return html.unescape(text).encode("utf-8", errors="surrogateescape")


def decode(text: str, encoding: str) -> dict[str, Any]:
    data = decode_bytes(text, encoding)
    try:
        result: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        result = None
    return {
        "encoding": encoding,
        "result": result,
        "is_text": result is not None,
        "hex": data.hex(),
        "bytes": len(data),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("hash", allow_abbrev=False)
    h.add_argument("--text", required=True)
    h.add_argument("--algorithm", choices=ALGORITHMS, default="sha256")
    h.add_argument("--input-encoding", choices=("utf-8", "hex", "base64"), default="utf-8")
    for name in ("encode", "decode"):
        s = sub.add_parser(name, allow_abbrev=False)
        s.add_argument("--text", required=True)
        s.add_argument("--encoding", choices=ENCODINGS, default="base64")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "hash":
            result = digest(args.text, args.algorithm, args.input_encoding)
        elif args.command == "encode":
            result = encode(args.text, args.encoding)
        else:
            result = decode(args.text, args.encoding)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # UTF-8 whatever the sandbox's locale
            stream.reconfigure(encoding="utf-8", errors="replace")
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # never a traceback for the caller: say what broke
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(70)
