"""The `skillcell` command as a user runs it: a real process, exact exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
name: acme/echo
version: 1.2.3
description: Echo things back.
timeout: 10s
annotations: {openWorldHint: false}
scripts:
  say:
    description: Print the words.
    command: python3 -c "import sys, json; print(json.dumps(sys.argv[1:]))" {{words}} --times {{times}}
    inputSchema:
      type: object
      properties:
        words: {type: string}
        times: {type: integer, minimum: 1}
      required: [words]
      additionalProperties: false
  fail:
    command: python3 -c "import sys; print('bad thing', file=sys.stderr); sys.exit(4)"
"""
LEGACY = """\
---
name: old/greeter
description: A legacy enact tool.
command: python3 -c "import sys; print('hello', sys.argv[1])" ${name}
---
# Greeter
"""
BROKEN = "name: broken/one\nscripts:\n  go:\n    command: echo {{undeclared}}\n    inputSchema: {type: object, properties: {}}\n"
DOCS = "---\nname: pdf-guide\ndescription: How to read PDFs.\n---\n# PDF guide\nUse pdftotext.\n"


@pytest.fixture
def skills(tmp_path: Path) -> Path:
    root = tmp_path / "skills"
    for name, manifest, file in (
        ("echo", GOOD, "skill.package.yml"),
        ("greeter", LEGACY, "enact.md"),
        ("broken", BROKEN, "skill.package.yml"),
        ("pdf-guide", DOCS, "SKILL.md"),
    ):
        (root / name).mkdir(parents=True)
        (root / name / file).write_text(manifest)
    return root


def skillcell(*args: str, cwd: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    environ = {
        **os.environ,
        "HOME": str(cwd),
        "XDG_CONFIG_HOME": str(cwd / "config"),
        "XDG_CACHE_HOME": str(cwd / "cache"),
        "XDG_DATA_HOME": str(cwd / "data"),
        "SKILLCELL_FALLBACKS": "bwrap",
        **(env or {}),
    }
    environ.pop("SKILLCELL_SKILLS_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "skillcell", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_list_json_lists_good_and_legacy_tools_and_reports_the_broken_bundle(skills, tmp_path):
    done = skillcell("list", "--json", "--skills", str(skills), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tools = json.loads(done.stdout)
    assert [t["name"] for t in tools] == ["acme_echo_fail", "acme_echo_say", "old_greeter"]
    say = tools[1]
    assert set(say) == {"name", "title", "description", "inputSchema", "outputSchema",
                        "annotations", "skill", "script", "version", "path"}  # fmt: skip
    assert (say["skill"], say["script"], say["version"]) == ("acme/echo", "say", "1.2.3")
    assert say["path"] == str(skills / "echo")
    assert f"{skills / 'broken' / 'skill.package.yml'}: scripts.go.inputSchema.properties" in done.stderr
    assert "undeclared" in done.stderr


def test_list_shows_documentation_only_bundles(skills, tmp_path):
    done = skillcell("list", "--skills", str(skills), cwd=tmp_path)
    assert "(docs) pdf-guide" in done.stdout


def test_validate_exits_1_and_names_each_broken_file(skills, tmp_path):
    done = skillcell("validate", str(skills), cwd=tmp_path)
    assert done.returncode == 1
    assert str(skills / "broken" / "skill.package.yml") in done.stderr
    assert "ok: acme/echo" in done.stdout


def test_validate_exits_0_for_good_bundles(skills, tmp_path):
    done = skillcell("validate", str(skills / "echo"), str(skills / "greeter"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_validate_of_a_missing_path_exits_1(tmp_path):
    done = skillcell("validate", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 1 and "no such file" in done.stderr


def test_new_scaffolds_a_bundle_that_validates_and_runs(tmp_path):
    done = skillcell("new", "acme/my-tool", "--dir", "mine", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert skillcell("validate", "mine/my-tool", cwd=tmp_path).returncode == 0
    require(_bwrap_ok(), "bubblewrap is not usable here")
    ran = skillcell("run", "acme/my-tool", "--skills", "mine", "--arg", "name=Ada", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"greeting": "Hello, Ada!"}


def test_inspect_accepts_the_tool_name_or_the_skill_name_and_script(skills, tmp_path):
    by_tool = skillcell("inspect", "acme_echo_say", "--json", "--skills", str(skills), cwd=tmp_path)
    by_skill = skillcell("inspect", "acme/echo:say", "--json", "--skills", str(skills), cwd=tmp_path)
    assert by_tool.returncode == by_skill.returncode == 0
    assert json.loads(by_tool.stdout) == json.loads(by_skill.stdout)
    info = json.loads(by_tool.stdout)
    assert info["network"] is False and info["definition"]["_meta"]["skillcell/script"] == "say"


def test_an_unknown_tool_exits_2_with_suggestions(skills, tmp_path):
    done = skillcell("inspect", "echo", "--skills", str(skills), cwd=tmp_path)
    assert done.returncode == 2
    assert "acme_echo_say" in done.stderr


def _bwrap_ok() -> bool:
    from skillcell.config import Config
    from skillcell.engines.bwrap import BwrapEngine

    return bool(BwrapEngine(Config()).available())


@pytest.fixture
def sandbox() -> None:
    require(_bwrap_ok(), "bubblewrap is not usable here")


def test_run_prints_stdout_and_exits_with_the_tool_exit_code(skills, tmp_path, sandbox):
    ok = skillcell("run", "acme/echo:say", "--skills", str(skills), "--arg", "words=a; b",
                   "--arg", "times=2", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == ["a; b", "--times", "2"]
    failed = skillcell("run", "acme_echo_fail", "--skills", str(skills), cwd=tmp_path)
    assert failed.returncode == 4
    assert "bad thing" in failed.stderr


def test_run_json_prints_the_whole_result(skills, tmp_path, sandbox):
    done = skillcell("run", "old/greeter", "--json", "--args", '{"name": "Bob"}',
                     "--skills", str(skills), cwd=tmp_path)  # fmt: skip
    result = json.loads(done.stdout)
    assert set(result) >= {"exit_code", "stdout", "stderr", "outputs", "engine", "duration_ms",
                           "cached", "truncated"}  # fmt: skip
    assert (result["exit_code"], result["stdout"], result["engine"]) == (0, "hello Bob\n", "bwrap")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--arg", "times=2"], "'words' is a required property"),
        (["--arg", "words=x", "--arg", "times=zero"], "$.times"),
        (["--args", "[1]"], "must be a JSON object"),
        (["--args", "{nope"], "not valid JSON"),
        (["--arg", "noequals"], "is not KEY=VALUE"),
    ],
    ids=["missing", "wrong-type", "not-object", "bad-json", "bad-pair"],
)
def test_run_with_invalid_arguments_exits_2_naming_the_field(skills, tmp_path, args, field):
    done = skillcell("run", "acme_echo_say", *args, "--skills", str(skills), cwd=tmp_path)
    assert done.returncode == 2
    assert field in done.stderr
    assert done.stdout == ""


def test_run_refused_by_every_engine_exits_3_with_the_reasons(skills, tmp_path):
    done = skillcell("run", "acme_echo_say", "--arg", "words=x", "--skills", str(skills),
                     cwd=tmp_path, env={"SKILLCELL_FALLBACKS": "dagger"})  # fmt: skip
    assert done.returncode == 3
    assert "no engine can run acme_echo_say" in done.stderr and "dagger" in done.stderr


def test_a_bad_config_fails_at_start_with_file_key_and_reason(skills, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("limits: {memory: lots}\n")
    done = skillcell("list", "--config", str(config), "--skills", str(skills), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{config}: limits.memory: 'lots' is not a size" in done.stderr


def test_doctor_lists_every_engine_and_why(tmp_path):
    done = skillcell("doctor", cwd=tmp_path)
    assert done.returncode == 0
    for name in ("dagger", "docker", "bwrap", "local"):
        assert f"  {name}" in done.stdout


def test_exec_runs_a_command_in_the_sandbox_a_call_would_get(skills, tmp_path, sandbox):
    done = skillcell("exec", "acme_echo_say", "--skills", str(skills), "--",
                     "sh", "-c", "id -u; pwd; ls /inputs", cwd=tmp_path.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["65534", "/workspace", "args.json"]


def test_help_lists_every_command(tmp_path):
    done = skillcell("--help", cwd=tmp_path)
    for command in ("serve", "list", "inspect", "validate", "new", "run", "exec", "doctor", "cache"):
        assert command in done.stdout


def test_exec_on_docker_runs_in_the_container_a_call_would_get(skills, tmp_path):
    from skillcell.config import Config
    from tests.engines.conftest import engine_for

    engine_for("docker", Config())
    done = skillcell("exec", "acme_echo_say", "--engine", "docker", "--skills", str(skills),
                     "--", "sh", "-c",
                     "id -u; pwd; ls /inputs; touch /workspace/x 2>/dev/null || echo read-only",
                     cwd=tmp_path.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["65534", "/workspace", "args.json", "read-only"]
