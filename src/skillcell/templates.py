"""Script templates: a command line parsed once, rendered to argv per call, never run by a shell.

The command is split with POSIX shell quoting rules. A `{{param}}` (legacy: `${param}`) inside a
token substitutes into that token only, so an argument value always lands as exactly one argv
entry: there is no shell to re-split it or interpret it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_MODERN = re.compile(r"\{\{\s*(" + NAME + r")\s*\}\}")
_LEGACY = re.compile(r"\$\{(" + NAME + r")\}")
_OPERATOR_CHARS = "|&;<>()"


class TemplateError(ValueError):
    """The command text itself is malformed; the manifest loader adds file and field."""


@dataclass(frozen=True)
class Placeholder:
    name: str


@dataclass(frozen=True)
class Token:
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))

    @property
    def is_option(self) -> bool:
        """A bare `-x` / `--flag` that a following optional value belongs to."""
        if len(self.parts) != 1 or not isinstance(self.parts[0], str):
            return False
        text = self.parts[0]
        return text.startswith("-") and len(text) > 1 and "=" not in text


@dataclass(frozen=True)
class Template:
    source: str
    tokens: tuple[Token, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for token in self.tokens:
            for name in token.placeholders:
                seen.setdefault(name)
        return tuple(seen)

    def render(self, args: Mapping[str, Any]) -> list[str]:
        """Argv for validated `args` (defaults already applied).

        A token whose placeholder has no value is dropped, and so is a bare option directly in
        front of it (`--limit {{limit}}` disappears as a pair when `limit` is absent).
        """
        argv: list[str] = []
        for i, token in enumerate(self.tokens):
            if any(args.get(name) is None for name in token.placeholders):
                if argv and i > 0 and self.tokens[i - 1].is_option:
                    argv.pop()
                continue
            argv.append(
                "".join(
                    render_value(args[p.name]) if isinstance(p, Placeholder) else p
                    for p in token.parts
                )
            )
        return argv


def render_value(value: Any) -> str:
    """The canonical text of one argument value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def parse_template(command: str, *, legacy: bool = False) -> Template:
    if not isinstance(command, str) or not command.strip():
        raise TemplateError("the command is empty")
    _reject_shell_syntax(command)
    source = command
    if not legacy:
        # `{{ name }}` may hold spaces; closing them up keeps it one word for the splitter.
        command = _MODERN.sub(lambda m: "{{" + m.group(1) + "}}", command)
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError as exc:
        raise TemplateError(f"cannot split the command: {exc}") from exc
    pattern = _LEGACY if legacy else _MODERN
    tokens = []
    for word in words:
        if not legacy and "{{" in _MODERN.sub("", word):
            raise TemplateError(f"malformed placeholder in {word!r}: use {{{{name}}}}")
        parts: list[str | Placeholder] = []
        pos = 0
        for match in pattern.finditer(word):
            if match.start() > pos:
                parts.append(word[pos : match.start()])
            parts.append(Placeholder(match.group(1)))
            pos = match.end()
        if pos < len(word):
            parts.append(word[pos:])
        tokens.append(Token(tuple(parts) or ("",)))
    return Template(source, tuple(tokens))


def _reject_shell_syntax(command: str) -> None:
    """Refuse unquoted shell operators and backquotes: without a shell they would be data."""
    quote = ""
    run = ""
    escaped = False
    for char in command + " ":
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif char == "`":
            raise TemplateError("uses backquotes, but commands run without a shell")
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char in _OPERATOR_CHARS:
            run += char
            continue
        if run:
            raise TemplateError(
                f"uses shell syntax {run!r}, but commands run without a shell; "
                "write `sh -c '... \"$1\" ...' sh {{param}}` if you need one"
            )
    # An unclosed quote is reported by shlex, with its own message.


def infer_schema(template: Template) -> dict[str, Any]:
    """The schema of a script that declares none: every placeholder a required string."""
    names = list(template.placeholders)
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": names,
        "additionalProperties": False,
    }
