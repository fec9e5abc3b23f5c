"""Validate tool arguments against a script's input schema (JSON Schema 2020-12)."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from .errors import ArgumentError

_MAX_MESSAGE = 200


def check_schema(schema: Any) -> str | None:
    """Why `schema` is not a usable input schema, or None when it is."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    # Imported here: jsonschema's format machinery costs ~200 ms, and a scan served from the
    # index never needs it.
    import jsonschema
    from jsonschema import Draft202012Validator

    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"not a valid JSON Schema: {_short(exc.message)} at {_json_path(exc.path)}"
    return None


def validate_arguments(tool: str, schema: Mapping[str, Any], args: Any) -> dict[str, Any]:
    """The arguments with defaults filled in, or ArgumentError listing every problem."""
    if not isinstance(args, dict):
        raise ArgumentError(tool, [("$", f"arguments must be an object, not {_kind(args)}")])
    # Checked first: a value nested thousands deep would exhaust the validator's recursion.
    unusable = _unrepresentable(args, "$", 0)
    if unusable:
        raise ArgumentError(tool, unusable)
    filled = fill_defaults(schema, args)
    errors = sorted(_validator(_freeze(schema)).iter_errors(filled), key=lambda e: list(e.path))
    problems = [(_json_path(e.absolute_path), _short(e.message)) for e in errors]
    problems += [("$." + key, "contains a NUL byte") for key in _nul_keys(filled)]
    if problems:
        raise ArgumentError(tool, problems)
    return filled


def fill_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Apply `default` of object properties, recursively; never overwrite what was given."""
    if not isinstance(value, dict) or not isinstance(schema, Mapping):
        return value
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return dict(value)
    out = dict(value)
    for key, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = fill_defaults(sub, out[key])
    return out


MAX_DEPTH = 128


def _unrepresentable(value: Any, path: str, depth: int) -> list[tuple[str, str]]:
    """Values JSON Schema lets through but that cannot reach a tool intact."""
    if depth > MAX_DEPTH:
        # Named by its argument: a path 128 levels long helps nobody.
        top = re.match(r"\$(\.[^.\[]+)?", path)
        return [(top.group(0) if top else "$", f"nested more than {MAX_DEPTH} levels deep")]
    if isinstance(value, float) and not math.isfinite(value):
        return [(path, f"{value} is not a JSON number")]
    if isinstance(value, str):
        return [] if _encodable(value) else [(path, "is not valid Unicode (a lone surrogate)")]
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if not _encodable(str(key)):
                out.append((path, "has a key that is not valid Unicode (a lone surrogate)"))
            out += _unrepresentable(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unrepresentable(v, f"{path}[{i}]", depth + 1)]
    return []


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _nul_keys(args: Mapping[str, Any]) -> Iterable[str]:
    # A NUL cannot be part of an execve argument; refuse it here rather than fail in the engine.
    return [k for k, v in args.items() if isinstance(v, str) and "\x00" in v]


def _freeze(schema: Mapping[str, Any]) -> str:
    # Compiled validators are cached by the schema's canonical text.
    return json.dumps(schema, sort_keys=True)


@lru_cache(maxsize=1024)
def _validator(frozen: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        json.loads(frozen), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _json_path(path: Iterable[Any]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
