"""Where secret and environment values come from, and scrubbing them out of results.

Values come from the client, most specific source first: the call's `_meta`
(`skillcell/secrets`), the HTTP request's `X-Skillcell-Secret-<NAME>` headers, then the
server's own environment (the env block of a client's MCP config). Never from tool arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import SecretMissing
from .manifest import Skill
from .plan import Secrets

SCRUBBED = "***"
HEADER_PREFIX = "x-skillcell-secret-"


def resolve_env(
    skill: Skill, tool: str, sources: Sequence[Mapping[str, str]]
) -> tuple[dict[str, str], Secrets]:
    """The declared variables' values: (plain env, secrets). SecretMissing names what is absent."""
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    missing = []
    for var in skill.env:
        value = next((s[var.name] for s in sources if s.get(var.name) is not None), var.default)
        if value is None:
            if var.required:
                missing.append(var.name)
            continue
        (secrets if var.secret else env)[var.name] = str(value)
    if missing:
        raise SecretMissing(tool, missing)
    return env, Secrets(secrets)


def from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`X-Skillcell-Secret-API_KEY: v` -> {"API_KEY": "v"} (header names are case-insensitive)."""
    out = {}
    for name, value in headers.items():
        if name.lower().startswith(HEADER_PREFIX):
            out[name[len(HEADER_PREFIX) :].upper().replace("-", "_")] = value
    return out


def scrub(text: str, secrets: Mapping[str, str], *, cut: str | None = None) -> str:
    """Replace every secret value in text; longest first so overlapping values go whole.

    With `cut` (the marker a capped stream ends with), a secret's beginning left at the cut is
    scrubbed too: the rest of it was dropped, but its prefix is still part of the secret.
    """
    values = sorted((v for v in secrets.values() if v), key=len, reverse=True)
    tail = ""
    if cut is not None and cut in text:
        text, tail = text.split(cut, 1)
        tail = cut + tail
        for value in values:
            for size in range(len(value) - 1, 0, -1):
                if text.endswith(value[:size]):
                    text = text[:-size] + SCRUBBED
                    break
    for value in values:
        text = text.replace(value, SCRUBBED)
    return text + tail


def scrub_file(path: Path, secrets: Mapping[str, str]) -> bool:
    """Scrub secret values out of a file in place; whether anything was found."""
    data = path.read_bytes()
    clean = data
    for value in sorted((v for v in secrets.values() if v), key=len, reverse=True):
        clean = clean.replace(value.encode(), SCRUBBED.encode())
    if clean == data:
        return False
    path.write_bytes(clean)
    return True
