#!/usr/bin/env python3
"""json-query: select values from a JSON document by path, or reformat it.

Standard library only. Arguments arrive as `--name=value` argv entries, so a value that
starts with `-` is never mistaken for an option.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from typing import Any

PROG = "json-query"


class UserError(Exception):
    """A problem with the input, reported on stderr without a traceback."""


# A path is a list of steps: ("key", str) | ("index", int) | ("slice", slice)
# | ("wild", None) | ("descend", str | None).
Step = tuple[str, Any]

_SLICE = re.compile(r"^(-?\d*):(-?\d*)(?::(-?\d*))?$")
_INDEX = re.compile(r"^-?\d+$")


def parse_path(text: str) -> list[Step]:
    rest = text.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    if rest and rest[0] not in ".[":
        rest = "." + rest
    steps: list[Step] = []
    i = 0
    while i < len(rest):
        if rest.startswith("..", i):
            name, i = _read_name(rest, i + 2, text)
            steps.append(("descend", None if name == "*" else name))
        elif rest[i] == ".":
            name, i = _read_name(rest, i + 1, text)
            steps.append(("wild", None) if name == "*" else ("key", name))
        elif rest[i] == "[":
            step, i = _read_bracket(rest, i + 1, text)
            steps.append(step)
        else:
            raise UserError(f"bad path {text!r}: unexpected {rest[i]!r}")
    return steps


def _read_name(rest: str, i: int, text: str) -> tuple[str, int]:
    if i < len(rest) and rest[i] == "[":
        raise UserError(f"bad path {text!r}: write `..key` or `..*`, not `..[`")
    match = re.compile(r"[^.\[\]]+").match(rest, i)
    if not match:
        raise UserError(f"bad path {text!r}: a key is missing after '.'")
    return match.group(0), match.end()


def _read_bracket(rest: str, i: int, text: str) -> tuple[Step, int]:
    while i < len(rest) and rest[i] == " ":
        i += 1
    if i < len(rest) and rest[i] in "'\"":
        quote, out, i = rest[i], [], i + 1
        while i < len(rest) and rest[i] != quote:
            if rest[i] == "\\" and i + 1 < len(rest):
                i += 1
            out.append(rest[i])
            i += 1
        if i >= len(rest):
            raise UserError(f"bad path {text!r}: unclosed quote in [...]")
        end = rest.find("]", i + 1)
        if end < 0 or rest[i + 1 : end].strip():
            raise UserError(f"bad path {text!r}: expected ']' after the quoted key")
        return ("key", "".join(out)), end + 1
    end = rest.find("]", i)
    if end < 0:
        raise UserError(f"bad path {text!r}: '[' is never closed")
    inner = rest[i:end].strip()
    if inner == "*":
        return ("wild", None), end + 1
    if _INDEX.match(inner):
        return ("index", int(inner)), end + 1
    match = _SLICE.match(inner)
    if match:
        a, b, c = (int(g) if g not in (None, "") else None for g in match.groups())
        if c == 0:
            raise UserError(f"bad path {text!r}: a slice step cannot be 0")
        return ("slice", slice(a, b, c)), end + 1
    raise UserError(f"bad path {text!r}: [{inner}] is not an index, a slice, * or a quoted key")


def evaluate(doc: Any, steps: list[Step]) -> list[Any]:
    nodes = [doc]
    for kind, arg in steps:
        selected: list[Any] = []
        for node in nodes:
            if kind == "key":
                if isinstance(node, dict) and arg in node:
                    selected.append(node[arg])
                elif isinstance(node, list) and _INDEX.match(arg):
                    selected.extend(_at(node, int(arg)))
            elif kind == "index":
                if isinstance(node, list):
                    selected.extend(_at(node, arg))
            elif kind == "slice":
                if isinstance(node, list):
                    selected.extend(node[arg])
            elif kind == "wild":
                selected.extend(_children(node))
            elif kind == "descend":
                for item in _descendants(node):
                    if arg is None:
                        selected.extend(_children(item))
                    elif isinstance(item, dict) and arg in item:
                        selected.append(item[arg])
        nodes = selected
    return nodes


def _at(items: list[Any], index: int) -> list[Any]:
    return [items[index]] if -len(items) <= index < len(items) else []


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _descendants(node: Any) -> list[Any]:
    """The node and everything under it, in document order (iteratively: no recursion limit)."""
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(reversed(_children(item)))
    return out


def load(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"the input is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise UserError("the input is nested too deeply") from None


def query(args: argparse.Namespace) -> str:
    doc = load(args.json)
    values = evaluate(doc, parse_path(args.path))
    result = {
        "path": args.path,
        "found": bool(values),
        "count": len(values),
        "value": values[0] if values else None,
        "values": values,
    }
    return json.dumps(result, ensure_ascii=False)


def format_(args: argparse.Namespace) -> str:
    doc = load(args.json)
    if args.style == "compact":
        return json.dumps(doc, ensure_ascii=False, sort_keys=args.sort_keys, separators=(",", ":"))
    if not 1 <= args.indent <= 8:
        raise UserError("--indent must be between 1 and 8")
    return json.dumps(doc, ensure_ascii=False, sort_keys=args.sort_keys, indent=args.indent)


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="select values by path", allow_abbrev=False)
    q.add_argument("--json", required=True, help="the JSON document")
    q.add_argument("--path", default="$", help="the path to select")
    f = sub.add_parser("format", help="pretty-print or compact a document", allow_abbrev=False)
    f.add_argument("--json", required=True, help="the JSON document")
    f.add_argument("--style", choices=("pretty", "compact"), default="pretty")
    f.add_argument("--indent", type=int, default=2)
    f.add_argument("--sort-keys", type=boolean, default=False)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        out = query(args) if args.command == "query" else format_(args)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(out)
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
