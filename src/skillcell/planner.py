"""Build the ExecutionPlan of one call: skill + script + validated args + env + config."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .catalog import Tool
from .config import Config
from .errors import ArgumentError
from .plan import (
    CPUS,
    IMAGE,
    INPUTS,
    MEMORY,
    NETWORK_OFF,
    NETWORK_ON,
    PIDS,
    ExecutionPlan,
    InputFile,
    Secrets,
)


def network_allowed(tool: Tool) -> bool:
    """The manifest's `network`, else the tool's openWorldHint (MCP's default: true)."""
    if tool.skill.network is not None:
        return tool.skill.network
    return bool(tool.annotations.get("openWorldHint", True))


def cacheable(tool: Tool) -> bool:
    """The manifest's `cache`, else only closed-world tools that declare idempotentHint."""
    if tool.skill.cache is not None:
        return tool.skill.cache
    return not network_allowed(tool) and tool.annotations.get("idempotentHint") is True


def make_plan(
    tool: Tool,
    args: Mapping[str, Any],
    *,
    config: Config,
    call_id: str,
    env: Mapping[str, str] | None = None,
    secrets: Secrets | None = None,
    cwd: Path | None = None,
    bundle_digest: str = "",
) -> ExecutionPlan:
    skill, script = tool.skill, tool.script
    args, files = _input_files(tool, args, config, cwd)
    declared = skill.resources
    limits = replace(
        config.limits,
        timeout=script.timeout or skill.timeout or config.limits.timeout,
        memory=declared.memory or config.limits.memory,
        cpus=declared.cpus or config.limits.cpus,
        pids=declared.pids or config.limits.pids,
    )
    argv = tuple(script.template.render(args))
    _check_argv(tool, argv, args)
    network = network_allowed(tool)
    required = {
        NETWORK_OFF: not network,
        NETWORK_ON: network,
        MEMORY: declared.memory is not None,
        CPUS: declared.cpus is not None,
        PIDS: declared.pids is not None,
        IMAGE: config.strict_images and skill.image is not None,
    }
    return ExecutionPlan(
        call_id=call_id,
        tool=tool.name,
        argv=argv,
        bundle=skill.path.resolve(),
        output_dir=config.output_root / call_id,
        args=dict(args),
        image=skill.image,
        build_hooks=skill.build_hooks,
        env=dict(env or {}),
        secrets=secrets or Secrets(),
        input_files=files,
        network=network,
        limits=limits,
        cacheable=cacheable(tool),
        bundle_digest=bundle_digest,
        required=frozenset(p for p, needed in required.items() if needed),
    )


MAX_ARG = 131071  # bytes in one argv entry (Linux MAX_ARG_STRLEN, less the NUL)
MAX_ARGV = 1 << 20  # bytes in all of argv, well inside ARG_MAX with room for the environment


def _check_argv(tool: Tool, argv: tuple[str, ...], args: Mapping[str, Any]) -> None:
    """Refuse arguments the kernel would refuse to exec, naming them and the way around it."""
    sizes = [len(entry.encode()) for entry in argv]
    if max(sizes, default=0) <= MAX_ARG and sum(sizes) <= MAX_ARGV:
        return
    long = [k for k, v in args.items() if isinstance(v, str | dict | list) and len(str(v)) > 4096]
    hint = "too long to pass as a program argument; the tool can read it from /inputs/args.json"
    raise ArgumentError(tool.name, [(f"$.{k}", hint) for k in long] or [("$", hint)])


def _input_files(
    tool: Tool, args: Mapping[str, Any], config: Config, cwd: Path | None
) -> tuple[dict[str, Any], tuple[InputFile, ...]]:
    """Resolve file arguments to host files inside the input roots; rewrite them to sandbox paths."""
    out = dict(args)
    files = []
    # The configured roots; else the caller's working directory (the CLI's, never the server's:
    # a server started in / would otherwise let the model name any file on the host).
    roots = [r.resolve() for r in (config.input_roots or ((cwd,) if cwd else ()))]
    roots = [r for r in roots if r != Path("/")]
    problems = []
    for name in tool.script.input_files:
        value = args.get(name)
        if value is None:
            continue
        if not roots:
            problems.append((f"$.{name}", "file arguments are off: set input_roots in the "
                                          "configuration to the directories tools may read"))  # fmt: skip
            continue
        raw = Path(value)
        host = Path(os.path.realpath(raw if raw.is_absolute() else roots[0] / raw))
        if not any(host == root or host.is_relative_to(root) for root in roots):
            problems.append((f"$.{name}", f"{value!r} is outside the allowed input roots"))
            continue
        try:
            st = host.stat()
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            problems.append((f"$.{name}", f"{value!r} is not a readable file"))
            continue
        sandbox = f"{INPUTS}/files/{name}/{host.name}"
        files.append(InputFile(host, sandbox, name, st.st_dev, st.st_ino))
        out[name] = sandbox
    if problems:
        raise ArgumentError(tool.name, problems)
    return out, tuple(files)
