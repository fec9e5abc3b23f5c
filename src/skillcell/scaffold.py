"""`skillcell new`: a bundle that validates and runs, to edit from."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ManifestError

_MANIFEST = """\
name: {name}
version: 0.1.0
description: {title} (describe what it does for the agent).
license: MIT
from: python:3.11-slim
timeout: 30s
annotations:
  title: {title}
  readOnlyHint: true
  openWorldHint: false
  idempotentHint: true
scripts:
  {short}:
    description: Greets someone.
    command: python3 main.py {{{{name}}}}
    inputSchema:
      type: object
      properties:
        name:
          type: string
          description: Who to greet.
      required: [name]
      additionalProperties: false
    outputSchema:
      type: object
      properties:
        greeting: {{type: string}}
      required: [greeting]
"""

_MAIN = '''\
import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: main.py NAME", file=sys.stderr)
        return 2
    print(json.dumps({"greeting": f"Hello, {argv[0]}!"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
'''

_DOCS = """\
# {title}

What this skill does, when an agent should use it, and what it returns.

## Example

    skillcell run {name} --arg name=world
"""


def scaffold(name: str, parent: Path) -> Path:
    if not re.match(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$", name):
        raise ManifestError(name, "name", "use 'org/name' in lower case letters, digits, . _ -")
    short = name.split("/")[-1]
    directory = parent / short
    if directory.exists():
        raise ManifestError(directory, "", "already exists; choose another name or --dir")
    directory.mkdir(parents=True)
    title = short.replace("-", " ").replace("_", " ").capitalize()
    (directory / "skill.package.yml").write_text(_MANIFEST.format(name=name, short=short,
                                                                  title=title))
    (directory / "main.py").write_text(_MAIN)
    (directory / "SKILL.md").write_text(_DOCS.format(name=name, title=title))
    return directory
