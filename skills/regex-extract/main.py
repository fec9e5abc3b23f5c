#!/usr/bin/env python3
"""regex-extract: list or replace the matches of a regular expression (standard library only)."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import sys
from typing import Any

PROG = "regex-extract"
FLAGS = {
    "ignorecase": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "verbose": re.VERBOSE,
    "ascii": re.ASCII,
}


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


def compile_pattern(pattern: str, flags_json: str) -> re.Pattern[str]:
    try:
        names = json.loads(flags_json)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"--flags must be a JSON array of flag names, not {flags_json!r}")
    unknown = [n for n in names if n.lower() not in FLAGS]
    if unknown:
        raise UserError(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    flags = 0
    for name in names:
        flags |= FLAGS[name.lower()]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise UserError(f"invalid pattern: {exc.msg}{where}") from None


def find(regex: re.Pattern[str], text: str, limit: int) -> dict[str, Any]:
    found = list(itertools.islice(regex.finditer(text), limit + 1))
    kept = found[:limit]
    return {
        "count": len(kept),
        "truncated": len(found) > limit,
        "group_names": list(regex.groupindex),
        "matches": [
            {
                "match": m.group(0),
                "start": m.start(),
                "end": m.end(),
                "groups": list(m.groups()),
                "named": m.groupdict(),
            }
            for m in kept
        ],
    }


def replace(regex: re.Pattern[str], text: str, replacement: str, count: int) -> dict[str, Any]:
    try:
        result, n = regex.subn(replacement, text, count=count)
    except (re.error, IndexError) as exc:
        raise UserError(f"invalid replacement {replacement!r}: {exc}") from None
    return {"text": result, "replacements": n}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("find", "replace"):
        s = sub.add_parser(name, allow_abbrev=False)
        s.add_argument("--pattern", required=True)
        s.add_argument("--text", required=True)
        s.add_argument("--flags", default="[]", help="a JSON array of flag names")
        if name == "find":
            s.add_argument("--max-matches", type=int, default=100)
        else:
            s.add_argument("--replacement", required=True)
            s.add_argument("--count", type=int, default=0)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        regex = compile_pattern(args.pattern, args.flags)
        if args.command == "find":
            if not 1 <= args.max_matches <= 10000:
                raise UserError("--max-matches must be between 1 and 10000")
            result = find(regex, args.text, args.max_matches)
        else:
            if args.count < 0:
                raise UserError("--count must be 0 (all) or more")
            result = replace(regex, args.text, args.replacement, args.count)
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
