"""The `skillcell` command: serve, list, inspect, validate, new, run, exec, doctor, cache.

Exit codes: 0 success; a tool's own exit code for `run`; 1 a bundle failed `validate` or an
engine broke; 2 bad usage, unknown tool or invalid arguments; 3 no engine could run the call,
or a required secret is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import (
    ArgumentError,
    ConfigError,
    EngineError,
    NoEngine,
    SecretMissing,
    SkillcellError,
    ToolNotFound,
)

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is exec's command, whatever options it holds.
    command: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, command = args[:at], args[at + 1 :]
    ns = parser.parse_args(args)
    ns.cmd = command
    if not getattr(ns, "command", None):
        parser.print_help()
        return EXIT_USAGE
    level = logging.DEBUG if ns.verbose > 1 else logging.INFO if ns.verbose else None
    logging.basicConfig(stream=sys.stderr, level=level or logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return int(ns.handler(ns) or 0)
    except ConfigError as exc:
        _err(f"config error: {exc}")
        return EXIT_USAGE
    except (ToolNotFound, ArgumentError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except (NoEngine, SecretMissing) as exc:
        _err(str(exc))
        return EXIT_CANNOT_RUN
    except (EngineError, SkillcellError) as exc:
        _err(str(exc))
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--skills", action="append", default=[], metavar="DIR",
                        help="a directory of skill bundles, searched first (repeatable)")
    common.add_argument("--config", metavar="FILE", help="configuration file")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging")

    parser = argparse.ArgumentParser(prog="skillcell", parents=[common],
                                     description="Skill bundles as MCP tools, run in sandboxes.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("serve", _serve, "serve the skills as MCP tools (stdio, or HTTP with --http)")
    p.add_argument("--http", action="store_true", help="streamable HTTP at /mcp instead of stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token", help="bearer token required over HTTP (or SKILLCELL_TOKEN)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another Host/Origin name clients use to reach --http (repeatable)")

    p = command("list", _list, "list the tools")
    p.add_argument("--json", action="store_true")

    p = command("inspect", _inspect, "show one tool: definition, bundle, policies")
    p.add_argument("tool", help="MCP tool name or org/name[:script]")
    p.add_argument("--json", action="store_true")

    p = command("validate", _validate, "check bundles; exit 1 on any error")
    p.add_argument("paths", nargs="+", metavar="PATH")

    p = command("new", _new, "scaffold a new skill bundle")
    p.add_argument("name", help="org/name")
    p.add_argument("--dir", default="skills", help="parent directory (default: ./skills)")

    for name, handler, help in (
        ("run", _run, "run a tool once and print its output"),
        ("exec", _exec, "open a shell (or run CMD) in exactly the sandbox a call would get"),
    ):
        p = command(name, handler, help)
        p.add_argument("tool")
        p.add_argument("--args", metavar="JSON", help="arguments as a JSON object")
        p.add_argument("--arg", action="append", default=[], metavar="K=V",
                       help="one argument; V is parsed as JSON unless the parameter is a string")
        p.add_argument("--engine", choices=("dagger", "docker", "bwrap", "local"))
        if name == "run":
            p.add_argument("--json", action="store_true", help="print the whole result as JSON")
            p.add_argument("--no-cache", action="store_true", help="run even if a result is cached")
        else:
            p.epilog = "Put the command after --: skillcell exec TOOL -- CMD ARGS... (default: sh)"

    command("doctor", _doctor, "show engines, configuration and search path")

    p = command("cache", _cache, "inspect or clear the result cache")
    p.add_argument("action", choices=("info", "clear"))
    p.add_argument("tool", nargs="?", help="with clear: only this tool's entries")
    return parser


# --- shared plumbing ---------------------------------------------------------------------


def _config(ns: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .config import load_config

    return load_config(ns.config)


def _catalog(ns: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .catalog import index_path, scan, search_path

    config = _config(ns)
    catalog = scan(search_path(ns.skills), index=index_path(config))
    for problem in catalog.problems:
        _err(str(problem))
    return catalog


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _print_json(value: Any) -> None:
    # Indented for people; compact (the C encoder, several times faster) for programs.
    print(json.dumps(value, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False))


# --- commands ------------------------------------------------------------------------------


def _serve(ns: argparse.Namespace) -> int:
    from .server import serve

    return serve(ns, _config(ns))


def _list(ns: argparse.Namespace) -> int:
    catalog = _catalog(ns)
    tools = sorted(catalog.tools.values(), key=lambda t: t.name)
    if ns.json:
        _print_json([t.summary() for t in tools])
        return 0
    width = max((len(t.name) for t in tools), default=0)
    for tool in tools:
        summary = tool.definition()["description"].splitlines()[0]  # never empty
        print(f"{tool.name:<{width}}  {summary[:100]}")
    for skill in catalog.documents:
        print(f"{'(docs) ' + skill.name:<{width}}  {skill.description[:100]}")
    return 0


def _inspect(ns: argparse.Namespace) -> int:
    from .planner import cacheable, network_allowed

    tool = _catalog(ns).lookup(ns.tool)
    skill = tool.skill
    info = {
        **tool.summary(),
        "definition": tool.definition(),
        "manifest": str(skill.manifest),
        "image": skill.image,
        "network": network_allowed(tool),
        "cacheable": cacheable(tool),
        "timeout": tool.script.timeout or skill.timeout,
        "engine": skill.engine,
        "command": tool.script.command,
        "env": [{"name": v.name, "secret": v.secret, "required": v.required}
                for v in skill.env],  # fmt: skip
    }
    if ns.json:
        _print_json(info)
        return 0
    for key in ("name", "skill", "script", "version", "title", "path", "manifest", "image",
                "network", "cacheable", "timeout", "engine", "command"):  # fmt: skip
        print(f"{key:>10}: {info[key]}")
    print(f"{'env':>10}: " + (", ".join(
        f"{v['name']}{' (secret)' if v['secret'] else ''}" for v in info["env"]) or "-"))  # fmt: skip
    print(f"{'input':>10}: {json.dumps(tool.script.input_schema)}")
    if tool.script.output_schema:
        print(f"{'output':>10}: {json.dumps(tool.script.output_schema)}")
    print(f"\n{info['description']}")
    return 0


def _validate(ns: argparse.Namespace) -> int:
    from .catalog import scan

    failed = False
    for raw in ns.paths:
        path = Path(raw)
        if not path.exists():
            _err(f"error: {path}: no such file or directory")
            failed = True
            continue
        root = path.parent if path.is_file() else path
        catalog = scan([root])
        for problem in catalog.problems:
            _err(str(problem))
        failed |= bool(catalog.errors)
        if not catalog.skills and not catalog.errors:
            _err(f"error: {root}: no skill bundle found")
            failed = True
        for skill in catalog.skills:
            print(f"ok: {skill.name} ({skill.manifest}, {len(skill.scripts)} script(s))")
    return EXIT_INVALID if failed else 0


def _new(ns: argparse.Namespace) -> int:
    from .scaffold import scaffold

    path = scaffold(ns.name, Path(ns.dir))
    print(f"created {path}; try: skillcell run {ns.name} --skills {ns.dir} --arg name=world")
    return 0


def _arguments(ns: argparse.Namespace, schema: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if ns.args:
        try:
            args = json.loads(ns.args)
        except json.JSONDecodeError as exc:
            raise ArgumentError(ns.tool, [("--args", f"not valid JSON: {exc}")]) from None
        if not isinstance(args, dict):
            raise ArgumentError(ns.tool, [("--args", "must be a JSON object")])
    props = schema.get("properties") or {}
    for item in ns.arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ArgumentError(ns.tool, [("--arg", f"{item!r} is not KEY=VALUE")])
        if props.get(key, {}).get("type") == "string":
            args[key] = value
            continue
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value  # validation reports the type mismatch, naming the field
    return args


def _run(ns: argparse.Namespace) -> int:
    import anyio

    from .runner import Runner

    catalog = _catalog(ns)
    runner = Runner(lambda: catalog, _config(ns))
    args = _arguments(ns, catalog.lookup(ns.tool).script.input_schema)

    async def go():  # type: ignore[no-untyped-def]
        try:
            # On the command line, file arguments are read relative to where the user is.
            return await runner.call(ns.tool, args, engine=ns.engine, use_cache=not ns.no_cache,
                                     cwd=Path.cwd())
        finally:
            await runner.aclose()

    call = anyio.run(go)
    result = call.result
    if ns.json:
        _print_json(result.to_json())
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        for note in result.notes:
            _err(f"skillcell: {note}")
        if result.outputs:
            _err(f"skillcell: outputs in {result.output_dir}")
    return result.exit_code


def _exec(ns: argparse.Namespace) -> int:
    import anyio

    from .runner import Runner

    catalog = _catalog(ns)
    runner = Runner(lambda: catalog, _config(ns))
    tool = catalog.lookup(ns.tool)
    args = _arguments(ns, tool.script.input_schema)
    try:
        _, plan = runner.prepare(ns.tool, args)
    except ArgumentError as exc:
        if ns.args or ns.arg:
            raise
        # Debugging a tool should not require inventing valid arguments first.
        _err(f"skillcell: {exc}; opening the sandbox without them")
        _, plan = runner.prepare_unvalidated(ns.tool, args)
    selection = runner.engines.select(plan, ns.engine or tool.skill.engine)
    _err(f"skillcell: {selection.engine.name} sandbox of {tool.name}; outputs go to "
         f"{plan.output_dir}")  # fmt: skip
    return anyio.run(selection.engine.interactive, plan, ns.cmd or ["/bin/sh"])


def _doctor(ns: argparse.Namespace) -> int:
    from .catalog import scan, search_path
    from .engines import Engines

    config = _config(ns)
    print(f"config: {config.source} (profile {config.profile})")
    print(f"engine order: {', '.join(config.engine_order())}")
    print("engines:")
    for name, status in Engines(config).report().items():
        print(f"  {name:<7} {'available' if status else 'unavailable':<12} {status.reason}")
    paths = search_path(ns.skills)
    catalog = scan(paths)
    print("search path (first wins):")
    for path in paths:
        print(f"  {path}{'' if path.is_dir() else '  (missing)'}")
    print(f"catalog: {len(catalog.tools)} tools, {len(catalog.documents)} documents, "
          f"{len(catalog.errors)} broken bundles")  # fmt: skip
    return 0


def _cache(ns: argparse.Namespace) -> int:
    from .cache import ResultCache

    config = _config(ns)
    cache = ResultCache(config.cache_dir, config.cache_max_bytes)
    if ns.action == "info":
        info = cache.info()
        print(f"{config.cache_dir}: {info['entries']} entries, {info['bytes']} bytes "
              f"(cap {config.cache_max_bytes})")  # fmt: skip
        return 0
    removed = cache.clear(ns.tool)
    print(f"removed {removed} entries")
    return 0
