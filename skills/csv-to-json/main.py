#!/usr/bin/env python3
"""csv-to-json: convert CSV text to a JSON file in /outputs (standard library only).

The file goes to /outputs, the sandbox's exported directory. SKILLCELL_OUTPUTS_DIR
points it elsewhere when the script runs outside a sandbox (tests, local debugging).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

PROG = "csv-to-json"
DELIMITERS = {"auto": None, ",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|"}
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.json$")
_INT = re.compile(r"^[+-]?(0|[1-9]\d*)$")
# Leading zeros (007) stay text: they are identifiers, not quantities.
_FLOAT = re.compile(
    r"^[+-]?((0|[1-9]\d*)?\.\d+|(0|[1-9]\d*)\.\d*|(0|[1-9]\d*)(\.\d*)?[eE][+-]?\d+)$"
)

csv.field_size_limit(256 << 20)


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


def read_table(text: str, delimiter: str) -> tuple[list[str], list[list[str]]]:
    sep = DELIMITERS[delimiter] or sniff(text)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
                if row]  # fmt: skip
    except csv.Error as exc:
        raise UserError(f"cannot parse the CSV: {exc}") from None
    if not rows:
        raise UserError("the CSV is empty: the first row must name the columns")
    header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(rows[0])]
    width = max(len(r) for r in rows)
    header += [f"column_{i + 1}" for i in range(len(header), width)]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):  # duplicate names would silently lose data in records
        if name in seen:
            seen[name] += 1
            header[i] = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
    return header, rows[1:]


def sniff(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def typed(cell: str | None) -> Any:
    if cell is None:
        return None
    text = cell.strip()
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        value = float(text)
        return value if math.isfinite(value) else cell
    return cell


def convert(
    text: str, delimiter: str, shape: str, infer: bool
) -> tuple[Any, list[str], int, list[dict[str, Any]]]:
    header, rows = read_table(text, delimiter)
    cell = typed if infer else (lambda c: c)
    table = [[cell(r[i] if i < len(r) else None) for i in range(len(header))] for r in rows]
    records = [dict(zip(header, values, strict=True)) for values in table]
    if shape == "records":
        data: Any = records
    elif shape == "rows":
        data = [header, *table]
    else:
        data = {name: [values[i] for values in table] for i, name in enumerate(header)}
    return data, header, len(rows), records[:3]


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--csv", required=True)
    p.add_argument("--delimiter", choices=sorted(DELIMITERS), default="auto")
    p.add_argument("--shape", choices=("records", "rows", "columns"), default="records")
    p.add_argument("--infer-types", type=boolean, default=True)
    p.add_argument("--filename", default="data.json")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if not _FILENAME.match(args.filename):
            raise UserError(
                f"--filename {args.filename!r} must be a plain name ending in .json "
                "(letters, digits, '.', '_', '-')"
            )
        data, header, count, preview = convert(args.csv, args.delimiter, args.shape,
                                               args.infer_types)  # fmt: skip
        outputs = Path(os.environ.get("SKILLCELL_OUTPUTS_DIR") or "/outputs")
        target = outputs / args.filename
        body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        try:
            target.write_bytes(body)
        except OSError as exc:
            raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    result = {
        "file": str(target),
        "bytes": len(body),
        "rows": count,
        "columns": header,
        "shape": args.shape,
        "preview": preview,
    }
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
