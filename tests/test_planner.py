"""From a tool call to an ExecutionPlan: network, cache, limits, demanded policies, input files."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from skillcell.catalog import Tool, scan
from skillcell.config import Config
from skillcell.errors import ArgumentError
from skillcell.plan import CPUS, IMAGE, MEMORY, NETWORK_OFF, NETWORK_ON, PIDS, InputFile, Limits, Secrets
from skillcell.planner import cacheable, make_plan, network_allowed


def tool(root: Path, head: str = "", script: str = "", command: str = "echo {{x}}") -> Tool:
    """The only tool of a one-script bundle; `head` adds skill fields, `script` script fields."""
    directory = root / "bundle"
    directory.mkdir(parents=True, exist_ok=True)
    text = f"name: acme/t\n{textwrap.dedent(head)}scripts:\n  run:\n    command: {command}\n"
    text += textwrap.indent(textwrap.dedent(script), "    ")
    (directory / "skill.yml").write_text(text, encoding="utf-8")
    catalog = scan([root])
    assert catalog.errors == []
    return catalog.lookup("acme_t_run")


NETWORK = [
    ("", "", True, "mcp-default-is-open-world"),
    ("annotations: {openWorldHint: false}\n", "", False, "closed-world-hint"),
    ("annotations: {openWorldHint: true}\n", "", True, "open-world-hint"),
    ("network: false\nannotations: {openWorldHint: true}\n", "", False, "network-false-wins"),
    ("network: true\nannotations: {openWorldHint: false}\n", "", True, "network-true-wins"),
    ("annotations: {openWorldHint: false}\n", "annotations: {openWorldHint: true}\n", True,
     "script-hint-overrides-skill-hint"),
    ("", "annotations: {openWorldHint: false}\n", False, "script-hint-alone"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "script", "network"), [n[:3] for n in NETWORK],
                         ids=[n[3] for n in NETWORK])  # fmt: skip
def test_network_follows_the_network_field_else_the_open_world_hint(
    tmp_path: Path, head: str, script: str, network: bool
) -> None:
    assert network_allowed(tool(tmp_path, head, script)) is network


CACHE = [
    ("cache: true\n", True, "explicit-cache-true-even-with-network"),
    ("cache: false\nannotations: {openWorldHint: false, idempotentHint: true}\n", False,
     "explicit-cache-false"),
    ("annotations: {openWorldHint: false, idempotentHint: true}\n", True, "pure-and-idempotent"),
    ("network: false\nannotations: {idempotentHint: true}\n", True, "no-network-and-idempotent"),
    ("annotations: {openWorldHint: false}\n", False, "closed-world-but-not-idempotent"),
    ("annotations: {openWorldHint: false, idempotentHint: false}\n", False, "not-idempotent"),
    ("annotations: {idempotentHint: true}\n", False, "idempotent-but-open-world"),
    ("", False, "nothing-declared"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "cached"), [c[:2] for c in CACHE], ids=[c[2] for c in CACHE])
def test_results_are_cached_only_for_closed_world_idempotent_tools_unless_declared(
    tmp_path: Path, head: str, cached: bool
) -> None:
    assert cacheable(tool(tmp_path, head)) is cached


def test_a_plan_carries_everything_an_engine_needs(tmp_path: Path, config: Config) -> None:
    t = tool(tmp_path, "from: python:3.11-slim\nhooks: {build: [pip install x]}\n",
             command="python3 main.py --x={{x}}")  # fmt: skip
    secrets = Secrets({"TOKEN": "s3cret"})
    plan = make_plan(t, {"x": "v"}, config=config, call_id="c1", env={"MODE": "fast"},
                     secrets=secrets, bundle_digest="abc")  # fmt: skip
    assert plan.call_id == "c1"
    assert plan.tool == "acme_t_run"
    assert plan.argv == ("python3", "main.py", "--x=v")
    assert plan.bundle == (tmp_path / "bundle").resolve()
    assert plan.output_dir == config.output_root / "c1"
    assert plan.args == {"x": "v"}
    assert plan.args_json == b'{"x": "v"}'
    assert (plan.image, plan.build_hooks) == ("python:3.11-slim", ("pip install x",))
    assert (plan.env, plan.secrets, plan.bundle_digest) == ({"MODE": "fast"}, secrets, "abc")
    assert plan.network is True
    assert plan.cacheable is False
    assert plan.input_files == ()


LIMITS = [
    ("", "", {}, "config-defaults"),
    ("timeout: 30s\n", "", {"timeout": 30.0}, "skill-timeout"),
    ("timeout: 30s\n", "timeout: 5s\n", {"timeout": 5.0}, "script-timeout-wins"),
    ("resources: {memory: 1Gi}\n", "", {"memory": 2**30}, "declared-memory"),
    ("resources: {cpus: 2.5, pids: 10}\n", "", {"cpus": 2.5, "pids": 10}, "declared-cpus-pids"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "script", "changes"), [x[:3] for x in LIMITS],
                         ids=[x[3] for x in LIMITS])  # fmt: skip
def test_limits_come_from_the_manifest_where_declared_else_the_config(
    tmp_path: Path, config: Config, head: str, script: str, changes: dict[str, float]
) -> None:
    config = replace(config, limits=Limits(timeout=60.0, memory=512 << 20, cpus=1.0, pids=256,
                                           stdout=100, stderr=200, outputs=300, tmp=400))  # fmt: skip
    plan = make_plan(tool(tmp_path, head, script), {"x": "v"}, config=config, call_id="c")
    assert plan.limits == replace(config.limits, **changes)


REQUIRED = [
    ("", False, {NETWORK_ON}, "open-world-demands-host-isolation"),
    ("annotations: {openWorldHint: false}\n", False, {NETWORK_OFF}, "closed-world-network-off"),
    ("network: false\n", False, {NETWORK_OFF}, "network-false"),
    ("resources: {memory: 256Mi}\n", False, {NETWORK_ON, MEMORY}, "declared-memory"),
    ("resources: {cpus: 1}\n", False, {NETWORK_ON, CPUS}, "declared-cpus"),
    ("resources: {pids: 32}\n", False, {NETWORK_ON, PIDS}, "declared-pids"),
    ("from: alpine\n", True, {NETWORK_ON, IMAGE}, "strict-images-with-an-image"),
    ("from: alpine\n", False, {NETWORK_ON}, "image-without-strict-images"),
    ("", True, {NETWORK_ON}, "strict-images-without-an-image"),
    ("network: false\nfrom: alpine\nresources: {memory: 1Gi, cpus: 2, pids: 9}\n", True,
     {NETWORK_OFF, MEMORY, CPUS, PIDS, IMAGE}, "everything"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "strict", "required"), [r[:3] for r in REQUIRED],
                         ids=[r[3] for r in REQUIRED])  # fmt: skip
def test_a_plan_demands_exactly_the_policies_the_manifest_or_strict_config_declares(
    tmp_path: Path, config: Config, head: str, strict: bool, required: set[str]
) -> None:
    config = replace(config, strict_images=strict)
    plan = make_plan(tool(tmp_path, head), {"x": "v"}, config=config, call_id="c")
    assert plan.required == frozenset(required)


FILE_TOOL = dict(
    script="""\
    inputFiles: [src, extra]
    inputSchema:
      type: object
      properties: {src: {type: string}, extra: {type: string}, n: {type: integer}}
    """,
    command="cat {{src}} {{extra}}",
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "in.csv").write_text("a,b\n")
    return root


def test_an_input_file_is_mounted_read_only_and_its_argument_rewritten(
    tmp_path: Path, config: Config, data: Path
) -> None:
    config = replace(config, input_roots=(data,))
    t = tool(tmp_path, **FILE_TOOL)
    plan = make_plan(t, {"src": "sub/in.csv", "n": 3}, config=config, call_id="c")
    sandbox = "/inputs/files/src/in.csv"
    host = (data / "sub" / "in.csv").resolve()
    st = host.stat()
    assert plan.input_files == (InputFile(host, sandbox, "src", st.st_dev, st.st_ino),)
    assert plan.args == {"src": sandbox, "n": 3}
    assert plan.argv == ("cat", sandbox)


@pytest.mark.parametrize(
    "value", ["sub/in.csv", "{data}/sub/in.csv", "./sub/../sub/in.csv"],
    ids=["relative-to-the-first-root", "absolute-inside", "dot-segments-inside"],
)  # fmt: skip
def test_a_file_inside_an_input_root_is_accepted(
    tmp_path: Path, config: Config, data: Path, value: str
) -> None:
    config = replace(config, input_roots=(tmp_path / "elsewhere", data))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "sub").mkdir()
    (tmp_path / "elsewhere" / "sub" / "in.csv").write_text("first root\n")
    plan = make_plan(tool(tmp_path, **FILE_TOOL), {"src": value.format(data=data)},
                     config=config, call_id="c")  # fmt: skip
    assert len(plan.input_files) == 1


def test_without_input_roots_the_working_directory_is_the_root(
    tmp_path: Path, config: Config, data: Path
) -> None:
    config = replace(config, input_roots=())
    plan = make_plan(tool(tmp_path, **FILE_TOOL), {"src": "sub/in.csv"}, config=config,
                     call_id="c", cwd=data)  # fmt: skip
    assert plan.input_files[0].host == (data / "sub" / "in.csv").resolve()


def test_a_symlink_inside_a_root_to_a_file_inside_is_followed(
    tmp_path: Path, config: Config, data: Path
) -> None:
    (data / "link.csv").symlink_to(data / "sub" / "in.csv")
    config = replace(config, input_roots=(data,))
    plan = make_plan(tool(tmp_path, **FILE_TOOL), {"src": "link.csv"}, config=config,
                     call_id="c")  # fmt: skip
    host = (data / "sub" / "in.csv").resolve()
    st = host.stat()
    assert plan.input_files == (
        InputFile(host, "/inputs/files/src/in.csv", "src", st.st_dev, st.st_ino),
    )


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("do not read\n")
    return secret


def test_input_files_outside_the_roots_are_rejected(
    tmp_path: Path, config: Config, data: Path, outside: Path
) -> None:
    (data / "escape.csv").symlink_to(outside)
    config = replace(config, input_roots=(data,))
    t = tool(tmp_path, **FILE_TOOL)
    cases = {
        str(outside): "is outside the allowed input roots",
        f"../../{outside.parent.name}/{outside.name}": "is outside the allowed input roots",
        "escape.csv": "is outside the allowed input roots",
        "/etc/passwd": "is outside the allowed input roots",
        "missing.csv": "is not a readable file",
        "sub": "is not a readable file",
    }
    for value, reason in cases.items():
        with pytest.raises(ArgumentError) as caught:
            make_plan(t, {"src": value}, config=config, call_id="c")
        assert caught.value.problems == (("$.src", f"{value!r} {reason}"),), value


def test_every_bad_input_file_is_reported_at_once(
    tmp_path: Path, config: Config, data: Path, outside: Path
) -> None:
    config = replace(config, input_roots=(data,))
    with pytest.raises(ArgumentError) as caught:
        make_plan(tool(tmp_path, **FILE_TOOL), {"src": str(outside), "extra": "nope.csv"},
                  config=config, call_id="c")  # fmt: skip
    assert caught.value.tool == "acme_t_run"
    assert [path for path, _ in caught.value.problems] == ["$.src", "$.extra"]
