#!/usr/bin/env python3
"""csv-stats: summary statistics for every column of a CSV table (standard library only)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import statistics
import sys
from collections import Counter
from typing import Any

PROG = "csv-stats"
DELIMITERS = {"auto": None, ",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|"}
MAX_FILE_BYTES = 256 << 20
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

csv.field_size_limit(MAX_FILE_BYTES)


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


def read_table(text: str, delimiter: str) -> tuple[list[list[str]], str]:
    sep = DELIMITERS[delimiter] or sniff(text)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
                if row]  # fmt: skip
    except csv.Error as exc:
        raise UserError(f"cannot parse the CSV: {exc}") from None
    return rows, sep


def sniff(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def number(text: str) -> int | float | None:
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    is_int = "." not in text and "e" not in text.lower()
    return int(text) if is_int else value


def tidy(value: float | int | None) -> float | int | None:
    """Round away binary noise (0.30000000000000004) while keeping 12 significant digits."""
    if value is None or isinstance(value, int):
        return value
    return float(f"{value:.12g}")


def column_stats(name: str, values: list[str | None], top: int) -> dict[str, Any]:
    present = [v for v in values if v is not None and v.strip() != ""]
    numbers = [number(v) for v in present]
    numeric = bool(present) and all(n is not None for n in numbers)
    counts = Counter(v.strip() for v in present)
    stats: dict[str, Any] = {
        "name": name,
        "type": "number" if numeric else ("text" if present else "empty"),
        "count": len(present),
        "missing": len(values) - len(present),
        "distinct": len(counts),
        "min": None, "max": None, "sum": None, "mean": None, "median": None, "stdev": None,
    }  # fmt: skip
    if numeric:
        nums = [n for n in numbers if n is not None]
        total = math.fsum(nums) if any(isinstance(n, float) for n in nums) else sum(nums)
        stats.update(
            min=min(nums),
            max=max(nums),
            sum=tidy(total),
            mean=tidy(statistics.fmean(nums)),
            median=tidy(statistics.median(nums)),
            stdev=tidy(statistics.stdev(nums)) if len(nums) > 1 else None,
        )
    # Ties broken by value so the same table always gives the same answer.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    stats["top"] = [{"value": v, "count": c} for v, c in ranked]
    return stats


def summarise(text: str, delimiter: str, header: bool, top: int) -> dict[str, Any]:
    rows, sep = read_table(text, delimiter)
    names: list[str] = []
    if header and rows:
        names = [h.strip() or f"column_{i + 1}" for i, h in enumerate(rows[0])]
        rows = rows[1:]
    width = max([len(names), *(len(r) for r in rows)])
    names += [f"column_{i + 1}" for i in range(len(names), width)]
    expected = len(names) if header else (len(rows[0]) if rows else 0)
    ragged = sum(1 for r in rows if len(r) != expected)
    columns = [
        column_stats(name, [r[i] if i < len(r) else None for r in rows], top)
        for i, name in enumerate(names)
    ]
    return {"rows": len(rows), "delimiter": sep, "ragged_rows": ragged, "columns": columns}


def read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start})") from None


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="the CSV text")
    source.add_argument("--file", help="a CSV file to read instead")
    p.add_argument("--delimiter", choices=sorted(DELIMITERS), default="auto")
    p.add_argument("--header", type=boolean, default=True)
    p.add_argument("--top", type=int, default=5)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if not 0 <= args.top <= 50:
            raise UserError("--top must be between 0 and 50")
        text = args.csv if args.file is None else read_file(args.file)
        if "\x00" in text:
            raise UserError("the CSV contains a NUL byte; is it a binary file?")
        result = summarise(text, args.delimiter, args.header, args.top)
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
