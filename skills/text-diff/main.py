#!/usr/bin/env python3
"""text-diff: a unified diff of two texts, with counts and similarity (standard library only)."""

from __future__ import annotations

import argparse
import difflib
import io
import json
import re
import sys
from typing import Any

PROG = "text-diff"
_SPACE = re.compile(r"\s+")


def normalise(line: str, ignore_case: bool, ignore_whitespace: bool) -> str:
    if ignore_whitespace:
        line = _SPACE.sub(" ", line).strip()
    if ignore_case:
        line = line.casefold()
    return line


def compare(old: str, new: str, context: int, ignore_case: bool, ignore_whitespace: bool,
            old_label: str, new_label: str) -> dict[str, Any]:  # fmt: skip
    a, b = old.splitlines(), new.splitlines()
    # Compare normalised lines but show the originals: the diff should quote the real text.
    na = [normalise(x, ignore_case, ignore_whitespace) for x in a]
    nb = [normalise(x, ignore_case, ignore_whitespace) for x in b]
    matcher = difflib.SequenceMatcher(None, na, nb, autojunk=False)
    added = removed = 0
    lines: list[str] = []
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        lines.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [" " + x for x in a[i1:i2]]
                continue
            lines += ["-" + x for x in a[i1:i2]]
            lines += ["+" + x for x in b[j1:j2]]
            removed += i2 - i1
            added += j2 - j1
    diff = ""
    if lines:
        diff = "\n".join([f"--- {old_label}", f"+++ {new_label}", *lines]) + "\n"
    return {
        "identical": not lines,
        "added": added,
        "removed": removed,
        "similarity": round(matcher.ratio(), 4) if (na or nb) else 1.0,
        "diff": diff,
    }


def _range(start: int, stop: int) -> str:
    """A hunk's `start,length` as diff -u writes it; an empty range names the line before."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    if length == 0:
        return f"{start},0"
    return f"{start + 1},{length}"


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def context_lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1000")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--old", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--context", type=context_lines, default=3)
    p.add_argument("--ignore-case", type=boolean, default=False)
    p.add_argument("--ignore-whitespace", type=boolean, default=False)
    p.add_argument("--old-label", default="old")
    p.add_argument("--new-label", default="new")
    return p


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    result = compare(a.old, a.new, a.context, a.ignore_case, a.ignore_whitespace,
                     a.old_label, a.new_label)  # fmt: skip
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
