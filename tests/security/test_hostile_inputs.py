"""Arguments written by a model, as an attacker would write them, through the real Runner on
every sandbox here. Each one is either refused with an ArgumentError that names the field, or
arrives at the tool exactly as given: the echo tool reports the bytes execve handed it and the
bytes of /inputs/args.json, and nothing else runs (no output file appears, the argv count holds).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from skillcell.catalog import Catalog, scan
from skillcell.errors import ArgumentError, SkillcellError
from skillcell.plan import RunResult

from .harness import (
    ENGINES,
    RecordingRunner,
    config_for,
    leftovers,
    make_runner,
    require_engine,
    sealed_tempdir,
    unblock_fifo_later,
)

pytestmark = pytest.mark.anyio

MAX_ARG = 131071  # MAX_ARG_STRLEN (32 pages) less the NUL: the longest single argv entry

ECHO = """\
name: sectest/echo
description: Reports exactly what it received, as digests and (when small) as text.
network: false
timeout: 30s
scripts:
  echo:
    command: python3 echo.py {{text}} {{n}} {{x}} {{flag}} {{obj}} {{items}}
    inputSchema:
      type: object
      additionalProperties: false
      properties:
        text: {type: string}
        n: {type: integer}
        x: {type: number}
        flag: {type: boolean}
        obj: {type: object}
        items: {type: array}
        blob: {type: string, description: only in /inputs/args.json}
        data: {type: object, description: only in /inputs/args.json}
"""
ECHO_PY = """\
import hashlib, json, os, sys
sys.setrecursionlimit(100000)
argv = [os.fsencode(a) for a in sys.argv[1:]]  # the exact bytes execve delivered
raw = open("/inputs/args.json", "rb").read()
canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
small = sum(map(len, argv)) + len(raw) < 65536
print(json.dumps({
    "argv_sha256": [hashlib.sha256(a).hexdigest() for a in argv],
    "argv": [a.decode("utf-8", "backslashreplace") for a in argv] if small else None,
    "args_sha256": hashlib.sha256(canonical).hexdigest(),
    "args": raw.decode("utf-8", "backslashreplace") if small else None,
    "outputs": os.listdir("/outputs"),
}))
"""
READER = """\
name: sectest/reader
description: Prints the file it was given.
network: false
timeout: 20s
scripts:
  read:
    command: python3 reader.py {{path}}
    inputFiles: [path]
    inputSchema:
      type: object
      additionalProperties: false
      required: [path]
      properties:
        path: {type: string}
"""
READER_PY = """\
import json, sys
print(json.dumps({"argv": sys.argv[1:], "content": open(sys.argv[1], errors="replace").read(4000)}))
"""
TEMPLATE_ORDER = ("text", "n", "x", "flag", "obj", "items")


@dataclass(frozen=True)
class Workspace:
    root: Path
    inputs: Path
    catalog: Catalog
    canary: str
    arrivals: dict[str, Arrivals] = field(default_factory=dict)  # by engine


@dataclass(frozen=True)
class Arrivals:
    """Every ARRIVE case called once on one engine, concurrently (the cases are independent)."""

    results: dict[str, RunResult | Exception]
    leftovers: list[str]


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    with sealed_tempdir() as root:
        skills = root / "skills"
        for name, manifest, script, code in (("echo", ECHO, "echo.py", ECHO_PY),
                                             ("reader", READER, "reader.py", READER_PY)):  # fmt: skip
            (skills / name).mkdir(parents=True)
            (skills / name / "skill.package.yml").write_text(manifest)
            (skills / name / script).write_text(code)
        inputs = root / "inputs"
        (inputs / "sub").mkdir(parents=True)
        (inputs / "data.csv").write_text("a,b\n1,2\n")
        (inputs / "we ird;$(id) `x`.csv").write_text("odd name\n")
        os.mkfifo(inputs / "pipe")
        outside = root / "outside"
        outside.mkdir()
        canary = f"canary-{os.urandom(8).hex()}"
        (outside / "canary.txt").write_text(canary)
        (inputs / "link-shadow").symlink_to("/etc/shadow")
        (inputs / "link-outside").symlink_to(outside / "canary.txt")
        (inputs / "link-chain").symlink_to(inputs / "link-chain-2")
        (inputs / "link-chain-2").symlink_to("/etc/shadow")
        (inputs / "link-dir-out").symlink_to(outside, target_is_directory=True)
        catalog = scan([skills])
        assert not catalog.problems, catalog.problems
        yield Workspace(root, inputs, catalog, canary)


@pytest.fixture(params=ENGINES)
async def runner(request: pytest.FixtureRequest, workspace: Workspace) -> Any:
    require_engine(request.param)
    output_root = workspace.root / "outputs" / os.urandom(4).hex()
    config = config_for(request.param, workspace.root, output_root=output_root)
    runner = make_runner(workspace.catalog, config)
    yield runner
    await runner.aclose()
    # A known finding may leave debris of its own (reported with it); anything else is a leak.
    if not request.node.get_closest_marker("xfail"):
        problems = leftovers(markers=[], call_ids=runner.call_ids, tmp=workspace.root,
                             output_root=output_root)  # fmt: skip
        assert not problems, problems
    for stray in (workspace.root / f"skillcell-{os.geteuid()}").glob("inputs-*"):
        shutil.rmtree(stray, ignore_errors=True)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@contextlib.contextmanager
def deep_recursion() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 20000))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)



# Arrive literally: each value must reach the tool byte for byte.
ARRIVE = [
    pytest.param({"text": "a; touch /outputs/pwned"}, id="semicolon"),
    pytest.param({"text": "a | tee /outputs/pwned"}, id="pipe"),
    pytest.param({"text": "a && touch /outputs/pwned &"}, id="and-background"),
    pytest.param({"text": "$(touch /outputs/pwned)"}, id="command-substitution"),
    pytest.param({"text": "`touch /outputs/pwned`"}, id="backticks"),
    pytest.param({"text": "> /outputs/pwned"}, id="redirect-out"),
    pytest.param({"text": "< /etc/passwd"}, id="redirect-in"),
    pytest.param({"text": "<(id) >(id)"}, id="process-substitution"),
    pytest.param({"text": "<<EOF\nid\nEOF"}, id="heredoc"),
    pytest.param({"text": "*"}, id="glob-star"),
    pytest.param({"text": "/etc/pass??"}, id="glob-question"),
    pytest.param({"text": "[a-z]*"}, id="glob-class"),
    pytest.param({"text": "~root/.ssh"}, id="tilde"),
    pytest.param({"text": "{a,b}{c,d}"}, id="braces"),
    pytest.param({"text": "!! !-1 !$"}, id="history-bang"),
    pytest.param({"text": "$HOME ${PATH} $0 $$ $IFS"}, id="variables"),
    pytest.param({"text": "(cd /; ls) # comment"}, id="subshell-comment"),
    pytest.param({"text": "\"double\" 'single' `back`"}, id="ascii-quotes"),
    pytest.param({"text": "it's \"unbalanced"}, id="unbalanced-quotes"),
    pytest.param({"text": "“smart” ‘quotes’ «guillemets» „low“ ＂full＂"}, id="unicode-quotes"),
    pytest.param({"text": "\\\\server\\share\\ \\n \\x00"}, id="backslashes"),
    pytest.param({"text": "line1\nline2"}, id="newline"),
    pytest.param({"text": "a\r\nb\rc"}, id="carriage-return"),
    pytest.param({"text": "a\tb\vc\fd"}, id="tabs-and-feeds"),
    pytest.param({"text": "\x01\x07\x1b[31mred\x1b[0m\x7f"}, id="control-chars"),
    pytest.param({"text": ""}, id="empty-string"),
    pytest.param({"text": "   "}, id="only-spaces"),
    pytest.param({"text": "--help"}, id="option-help"),
    pytest.param({"text": "-rf"}, id="option-rf"),
    pytest.param({"text": "--output=/etc/passwd"}, id="option-output"),
    pytest.param({"text": "-c import os; os.system('id')"}, id="option-python-c"),
    pytest.param({"text": "--"}, id="option-end"),
    pytest.param({"text": "abc\u202edcba"}, id="rtl-override"),
    pytest.param({"text": "a\u200bb\u200c\u200d\u2060c"}, id="zero-width"),
    pytest.param({"text": "\ufeffbom"}, id="byte-order-mark"),
    pytest.param({"text": "раураl.com"}, id="homoglyphs"),
    pytest.param({"text": "e\u0301 vs \u00e9"}, id="combining-not-normalised"),
    pytest.param({"text": "👩‍💻 𝔘𝔫𝔦"}, id="astral-and-zwj"),
    pytest.param({"text": "a\u2028b\u2029c\x85d"}, id="unicode-line-breaks"),
    pytest.param({"text": "a" * 100_000}, id="100KiB"),
    pytest.param({"text": "a" * MAX_ARG}, id="longest-argv-entry"),
    pytest.param({"blob": "b" * (1 << 20)}, id="1MiB-in-args-json"),
    pytest.param(
        {"data": {f"k{i:06d}": "v" * 40 for i in range(40_000)}}, id="2MiB-json-in-args-json"
    ),
    pytest.param({"obj": {"k": "a\x00b", "a\x00": 1}, "items": ["\x00"]}, id="nul-inside-json"),
    pytest.param({"obj": {"deep": nested(100)}}, id="json-100-levels"),
    pytest.param({"n": 3.0}, id="integral-float-for-integer"),
    pytest.param({"n": 10**30, "x": -1e-300}, id="huge-and-tiny-numbers"),
    pytest.param({"flag": False, "obj": {}, "items": []}, id="falsy-values"),
]

# Refused before anything runs, with an ArgumentError naming the field.
REJECT = [
    pytest.param({"text": "a\x00b"}, "text", id="nul-byte"),
    pytest.param({"text": "\x00"}, "text", id="only-nul"),
    pytest.param({"blob": "x\x00y"}, "blob", id="nul-in-args-json-only"),
    pytest.param({"n": "3"}, "n", id="string-for-integer"),
    pytest.param({"n": 3.5}, "n", id="fraction-for-integer"),
    pytest.param({"n": True}, "n", id="bool-for-integer"),
    pytest.param({"text": True}, "text", id="bool-for-string"),
    pytest.param({"text": 3}, "text", id="number-for-string"),
    pytest.param({"text": None}, "text", id="null-for-string"),
    pytest.param({"text": ["a"]}, "text", id="array-for-string"),
    pytest.param({"flag": "true"}, "flag", id="string-for-boolean"),
    pytest.param({"flag": 1}, "flag", id="number-for-boolean"),
    pytest.param({"obj": "{}"}, "obj", id="string-for-object"),
    pytest.param({"text": "a", "extra": 1}, "extra", id="extra-property"),
    pytest.param({"text": "a", "__proto__": {"x": 1}}, "__proto__", id="proto-property"),
    pytest.param(
        {"text": "a" * (MAX_ARG + 1)}, "text", id="argv-entry-over-128KiB"
    ),
    pytest.param({"text": "a" * (1 << 20)}, "text", id="1MiB-argv"),
    pytest.param({"text": "é" * 65536}, "text", id="multibyte-over-128KiB"),
    pytest.param(
        {"obj": {f"k{i:05d}": "v" * 20 for i in range(20_000)}},
        "obj",
        id="huge-json-in-argv",
    ),
    pytest.param({"text": "\ud800"}, "text", id="lone-high-surrogate"),
    pytest.param({"text": "a\udcffb"}, "text", id="lone-low-surrogate"),
    pytest.param(
        {"blob": "\udfff"}, "blob", id="lone-surrogate-in-args-json"
    ),
    pytest.param({"items": nested(1000)}, "items", id="json-1000-levels-in-argv"),
    pytest.param(
        {"data": {"d": nested(1000)}}, "data", id="json-1000-levels-in-args-json"
    ),
    pytest.param({"x": float("nan")}, "x", id="nan"),
    pytest.param({"x": float("inf")}, "x", id="infinity"),
]


def canonical(args: dict[str, Any]) -> bytes:
    return json.dumps(args, sort_keys=True, separators=(",", ":")).encode()


def rendered(value: Any) -> bytes:
    """What one argv entry must be: the string itself, or the compact JSON of anything else."""
    if isinstance(value, str):
        return value.encode()
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    require_engine(request.param)
    return str(request.param)


async def arrivals(workspace: Workspace, engine: str) -> Arrivals:
    """Run every ARRIVE case on `engine` the first time one is asked for; then reuse."""
    if engine not in workspace.arrivals:
        output_root = workspace.root / "outputs" / f"arrive-{engine}"
        runner = make_runner(workspace.catalog,
                             config_for(engine, workspace.root, output_root=output_root))  # fmt: skip
        results: dict[str, RunResult | Exception] = {}
        limiter = anyio.CapacityLimiter(6)

        async def one(case: str, args: Any) -> None:
            async with limiter:
                try:
                    results[case] = (await runner.call("sectest/echo", args)).result
                except Exception as exc:
                    results[case] = exc

        try:
            with deep_recursion():
                async with anyio.create_task_group() as tg:
                    for param in ARRIVE:
                        tg.start_soon(one, str(param.id), param.values[0])
        finally:
            await runner.aclose()
        problems = leftovers(markers=[], call_ids=runner.call_ids, tmp=workspace.root,
                             output_root=output_root)  # fmt: skip
        workspace.arrivals[engine] = Arrivals(results, problems)
    return workspace.arrivals[engine]


@pytest.mark.parametrize(("case", "args"), [pytest.param(p.id, *p.values, id=p.id) for p in ARRIVE])
async def test_a_hostile_argument_arrives_literally_and_changes_nothing_that_runs(
    workspace: Workspace, engine: str, case: str, args: dict[str, Any]
) -> None:
    batch = await arrivals(workspace, engine)
    result = batch.results[case]
    assert isinstance(result, RunResult), repr(result)
    assert result.exit_code == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    with deep_recursion():
        expected = [rendered(args[name]) for name in TEMPLATE_ORDER if name in args]
        assert report["argv_sha256"] == [sha(v) for v in expected], report["argv"]
        assert report["args_sha256"] == sha(canonical(args)), report["args"]
    # Nothing else ran: no shell created a file, and the tool saw an empty /outputs.
    assert report["outputs"] == [] and result.outputs == ()
    assert not batch.leftovers, batch.leftovers


@pytest.mark.parametrize(("args", "field"), REJECT)
async def test_a_hostile_argument_is_refused_naming_the_field(
    runner: RecordingRunner, args: dict[str, Any], field: str
) -> None:
    with deep_recursion(), pytest.raises(ArgumentError) as info:
        await runner.call("sectest/echo", args)
    named = [path for path, message in info.value.problems
             if path == f"$.{field}" or f"'{field}'" in message]  # fmt: skip
    assert named, info.value.problems
    assert runner.call_ids == [], "something ran before the arguments were refused"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../../etc/shadow", id="dotdot-traversal"),
        pytest.param("/etc/passwd", id="absolute-outside"),
        pytest.param("/etc/shadow", id="absolute-shadow"),
        pytest.param("/proc/self/environ", id="proc-environ"),
        pytest.param("link-shadow", id="symlink-to-shadow"),
        pytest.param("link-outside", id="symlink-outside-root"),
        pytest.param("link-chain", id="symlink-chain"),
        pytest.param("link-dir-out/canary.txt", id="through-symlinked-dir"),
        pytest.param("sub", id="directory"),
        pytest.param(".", id="the-root-itself"),
        pytest.param("", id="empty"),
        pytest.param("pipe", id="fifo"),
        pytest.param("missing.csv", id="nonexistent"),
        pytest.param("data\x00.csv", id="nul-byte"),
    ],
)
async def test_a_file_argument_outside_the_input_roots_or_not_a_file_is_refused(
    runner: RecordingRunner, workspace: Workspace, path: str
) -> None:
    start = time.monotonic()
    with pytest.raises(ArgumentError) as info:
        await runner.call("sectest/reader", {"path": path}, cwd=workspace.inputs)
    assert [p for p, _ in info.value.problems] == ["$.path"], info.value.problems
    assert time.monotonic() - start < 2, "the check itself blocked (a fifo opened?)"
    assert runner.call_ids == []


@pytest.mark.parametrize(
    ("path", "content"),
    [
        pytest.param("data.csv", "a,b\n1,2\n", id="relative"),
        pytest.param("{inputs}/data.csv", "a,b\n1,2\n", id="absolute-inside"),
        pytest.param("sub/../data.csv", "a,b\n1,2\n", id="dotdot-staying-inside"),
        pytest.param("we ird;$(id) `x`.csv", "odd name\n", id="metacharacters-in-name"),
    ],
)
async def test_a_file_inside_the_input_roots_is_readable_at_its_sandbox_path(
    runner: RecordingRunner, workspace: Workspace, path: str, content: str
) -> None:
    path = path.format(inputs=workspace.inputs)
    call = await runner.call("sectest/reader", {"path": path}, cwd=workspace.inputs)
    report = json.loads(call.result.stdout)
    assert report["content"] == content
    assert report["argv"] == [f"/inputs/files/path/{Path(path).name}"]


async def test_a_server_started_in_the_filesystem_root_does_not_serve_every_host_file(
    runner: RecordingRunner, workspace: Workspace
) -> None:
    unconfigured = make_runner(workspace.catalog, replace(runner.config, input_roots=()))
    try:
        with pytest.raises(ArgumentError):
            call = await unconfigured.call(
                "sectest/reader",
                {"path": str(workspace.root / "outside" / "canary.txt")},
                cwd=Path("/"),
            )
            assert workspace.canary not in call.result.stdout
    finally:
        await unconfigured.aclose()


async def test_an_input_file_swapped_for_a_symlink_after_validation_is_not_followed(
    runner: RecordingRunner, workspace: Workspace, tmp_path: Path
) -> None:
    target = workspace.inputs / f"swap-{tmp_path.name}.csv"
    target.write_text("harmless\n")
    tool, plan = runner.prepare("sectest/reader", {"path": target.name}, cwd=workspace.inputs)
    target.unlink()
    target.symlink_to(workspace.root / "outside" / "canary.txt")
    try:
        result = await runner.execute(tool, plan)
    except SkillcellError:
        return  # refused: safe
    finally:
        target.unlink()
    assert workspace.canary not in result.stdout


async def test_an_input_file_swapped_for_a_fifo_after_validation_is_refused_promptly(
    runner: RecordingRunner, workspace: Workspace, tmp_path: Path
) -> None:
    target = workspace.inputs / f"swap-{tmp_path.name}.csv"
    target.write_text("harmless\n")
    tool, plan = runner.prepare("sectest/reader", {"path": target.name}, cwd=workspace.inputs)
    target.unlink()
    os.mkfifo(target)
    unblock_fifo_later(target, after=1.5)  # never hang the suite, whatever the engine does
    start = time.monotonic()
    try:
        with pytest.raises(SkillcellError):
            await runner.execute(tool, plan)
    finally:
        elapsed = time.monotonic() - start
        target.unlink()
    assert elapsed < 1, f"blocked for {elapsed:.1f}s"
    problems = leftovers(markers=[], call_ids=runner.call_ids, tmp=workspace.root,
                         output_root=runner.config.output_root, grace=0)  # fmt: skip
    assert not problems, problems
