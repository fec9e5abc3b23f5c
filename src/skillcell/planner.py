"""Build the ExecutionPlan of one call: skill + script + validated args + env + config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .catalog import Tool
from .config import Config
from .errors import ArgumentError
from .plan import CPUS, IMAGE, INPUTS, MEMORY, NETWORK_OFF, PIDS, ExecutionPlan, InputFile, Secrets


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
    args, files = _input_files(tool, args, config, cwd or Path.cwd())
    declared = skill.resources
    limits = replace(
        config.limits,
        timeout=script.timeout or skill.timeout or config.limits.timeout,
        memory=declared.memory or config.limits.memory,
        cpus=declared.cpus or config.limits.cpus,
        pids=declared.pids or config.limits.pids,
    )
    network = network_allowed(tool)
    required = {
        NETWORK_OFF: not network,
        MEMORY: declared.memory is not None,
        CPUS: declared.cpus is not None,
        PIDS: declared.pids is not None,
        IMAGE: config.strict_images and skill.image is not None,
    }
    return ExecutionPlan(
        call_id=call_id,
        tool=tool.name,
        argv=tuple(script.template.render(args)),
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


def _input_files(
    tool: Tool, args: Mapping[str, Any], config: Config, cwd: Path
) -> tuple[dict[str, Any], tuple[InputFile, ...]]:
    """Resolve file arguments to host files inside the input roots; rewrite them to sandbox paths."""
    out = dict(args)
    files = []
    roots = [r.resolve() for r in (config.input_roots or (cwd,))]
    problems = []
    for name in tool.script.input_files:
        value = args.get(name)
        if value is None:
            continue
        raw = Path(value)
        host = Path(os.path.realpath(raw if raw.is_absolute() else roots[0] / raw))
        if not any(host == root or host.is_relative_to(root) for root in roots):
            problems.append((f"$.{name}", f"{value!r} is outside the allowed input roots"))
            continue
        if not host.is_file():
            problems.append((f"$.{name}", f"{value!r} is not a readable file"))
            continue
        sandbox = f"{INPUTS}/files/{name}/{host.name}"
        files.append(InputFile(host, sandbox))
        out[name] = sandbox
    if problems:
        raise ArgumentError(tool.name, problems)
    return out, tuple(files)
