"""The catalog: where bundles are found, which one wins, and what each tool is called."""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from skillcell.catalog import MAX_TOOL_NAME, Catalog, bundle_digest, scan, search_path
from skillcell.errors import ToolNotFound


def bundle(root: Path, rel: str, text: str, manifest: str = "skill.yml") -> Path:
    directory = root / rel
    directory.mkdir(parents=True, exist_ok=True)
    (directory / manifest).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def skill(name: str, *scripts: str, extra: str = "") -> str:
    body = "".join(f"  {s}: echo {s}\n" for s in scripts)
    return f"name: {name}\ntimeout: 5s\n{extra}" + (f"scripts:\n{body}" if scripts else "")


# --- search path ---------------------------------------------------------------------------


def test_the_search_path_runs_from_cli_dirs_to_the_data_dir(tmp_path: Path) -> None:
    cwd, home, data = tmp_path / "work", tmp_path / "home", tmp_path / "data"
    environ = {"SKILLCELL_SKILLS_PATH": os.pathsep.join(["/env/one", "", "env-rel"])}
    found = search_path(["cli-rel", "/cli/abs"], environ=environ, cwd=cwd, home=home, data_dir=data)
    assert found == [
        cwd / "cli-rel",
        Path("/cli/abs"),
        Path("/env/one"),
        cwd / "env-rel",
        cwd / "skills",
        cwd / "agents" / "skills",
        home / ".agents" / "skills",
        data / "skills",
    ]


@pytest.mark.parametrize(
    ("cli", "environ", "first"),
    [
        ([], {}, "skills"),
        (["skills"], {}, "skills"),
        (["a", "a/../a"], {}, "a"),
        ([], {"SKILLCELL_SKILLS_PATH": "skills"}, "skills"),
    ],
    ids=["defaults", "cli-repeats-cwd-skills", "same-dir-two-spellings", "env-repeats-cwd"],
)
def test_a_directory_listed_twice_is_searched_once_at_its_first_place(
    tmp_path: Path, cli: list[str], environ: dict[str, str], first: str
) -> None:
    found = search_path(cli, environ=environ, cwd=tmp_path, home=tmp_path / "h", data_dir=tmp_path)
    assert len(found) == len(set(found))
    assert found[0] == tmp_path / first


def test_a_tilde_in_skillcell_skills_path_means_the_home_directory(tmp_path: Path) -> None:
    found = search_path(
        environ={"SKILLCELL_SKILLS_PATH": "~/my-skills"},
        cwd=tmp_path / "work",
        home=tmp_path / "home",
        data_dir=tmp_path / "data",
    )
    assert found[0] == tmp_path / "home" / "my-skills"


def test_the_first_directory_on_the_search_path_wins_and_the_shadowed_one_is_reported(
    tmp_path: Path,
) -> None:
    cwd, home = tmp_path / "work", tmp_path / "home"
    late = bundle(home / ".agents" / "skills", "greet", skill("acme/greet", "hello"))
    early = bundle(cwd / "skills", "greet", skill("acme/greet", "hello", "bye"))
    path = search_path(environ={}, cwd=cwd, home=home, data_dir=tmp_path / "data")
    catalog = scan(path)
    assert [s.path for s in catalog.skills] == [early]
    assert sorted(catalog.tools) == ["acme_greet_bye", "acme_greet_hello"]
    [problem] = catalog.problems
    assert problem.severity == "warning"
    assert problem.path == late
    assert problem.message == f"{late}: acme/greet is shadowed by {early}, found first"


def test_cli_dirs_shadow_the_environment_which_shadows_the_working_directory(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "work"
    for where in ("cli", "env", "work/skills"):
        bundle(tmp_path / where, "x", skill("acme/x", "run", extra=f"description: {where}\n"))
    path = search_path(
        [tmp_path / "cli"],
        environ={"SKILLCELL_SKILLS_PATH": str(tmp_path / "env")},
        cwd=cwd,
        home=tmp_path / "home",
        data_dir=tmp_path / "data",
    )
    assert scan(path).lookup("acme_x_run").skill.description == "cli"
    assert scan(path[1:]).lookup("acme_x_run").skill.description == "env"


# --- scanning ------------------------------------------------------------------------------


def test_bundles_are_found_at_any_depth_up_to_four_below_a_root(tmp_path: Path) -> None:
    bundle(tmp_path, "flat", skill("a/flat", "x"))
    bundle(tmp_path, "org/name", skill("a/nested", "x"))
    bundle(tmp_path, "1/2/3/deep", skill("a/deep", "x"))
    bundle(tmp_path, "1/2/3/4/too-deep", skill("a/too-deep", "x"))
    assert sorted(s.name for s in scan([tmp_path]).skills) == ["a/deep", "a/flat", "a/nested"]


@pytest.mark.parametrize(
    "rel", [".hidden/b", "node_modules/b", ".git/b", "__pycache__/b", "venv/b", ".venv/b"]
)
def test_hidden_and_tooling_directories_are_not_searched(tmp_path: Path, rel: str) -> None:
    bundle(tmp_path, rel, skill("a/ignored", "x"))
    assert scan([tmp_path]).skills == []


def test_a_bundle_inside_a_bundle_is_part_of_it_not_another_skill(tmp_path: Path) -> None:
    outer = bundle(tmp_path, "outer", skill("a/outer", "x"))
    bundle(outer, "vendor/inner", skill("a/inner", "x"))
    assert [s.name for s in scan([tmp_path]).skills] == ["a/outer"]


def test_a_missing_root_is_simply_empty(tmp_path: Path) -> None:
    catalog = scan([tmp_path / "nope"])
    assert (catalog.skills, catalog.tools, catalog.problems) == ([], {}, [])


def test_a_broken_bundle_is_skipped_with_its_path_while_the_others_load(tmp_path: Path) -> None:
    bundle(tmp_path, "a-good", skill("acme/good", "run"))
    broken = bundle(tmp_path, "b-broken", "name: acme/broken\nscripts: [oops]\n")
    bundle(tmp_path, "c-good", skill("acme/also-good", "run"))
    catalog = scan([tmp_path])
    assert sorted(catalog.tools) == ["acme_also-good_run", "acme_good_run"]
    [error] = catalog.errors
    assert error.severity == "error"
    assert error.path == broken / "skill.yml"
    assert error.message == (
        f"{broken / 'skill.yml'}: scripts: must be a mapping of script name to command"
    )
    assert str(error) == "error: " + error.message


def test_manifest_warnings_are_reported_as_warning_problems(tmp_path: Path) -> None:
    directory = bundle(tmp_path, "b", "name: a/b\nscripts: {x: echo}\n")
    [problem] = scan([tmp_path]).problems
    assert (problem.severity, problem.path) == ("warning", directory / "skill.yml")
    assert "timeout: not set" in problem.message


def test_a_skill_md_with_no_scripts_is_kept_as_a_document(tmp_path: Path) -> None:
    bundle(tmp_path, "guide", "---\nname: acme/guide\n---\n# Guide\n\nHow we work.\n", "SKILL.md")
    bundle(tmp_path, "tool", skill("acme/tool", "run"))
    catalog = scan([tmp_path])
    assert [s.name for s in catalog.documents] == ["acme/guide"]
    assert catalog.documents[0].description == "How we work."
    assert sorted(s.name for s in catalog.skills) == ["acme/guide", "acme/tool"]
    assert list(catalog.tools) == ["acme_tool_run"]
    assert catalog.problems == []


# --- tool names ----------------------------------------------------------------------------

NAMES = [
    ("acme/greet", "hello", "acme_greet_hello"),
    ("acme/greet", "greet", "acme_greet"),
    ("greet", "greet", "greet"),
    ("greet", "run", "greet_run"),
    ("acme/my_tool", "do_it", "acme_my-tool_do-it"),
    ("acme/tool.v2", "x.y", "acme_tool-v2_x-y"),
    ("Acme/Greet", "Hello", "Acme_Greet_Hello"),
    ("a/b/c", "x", "a_b_c_x"),
    ("a/b/c", "c", "a_b_c"),
]


@pytest.mark.parametrize(("name", "script", "tool"), NAMES, ids=[n[2] for n in NAMES])
def test_a_script_is_published_under_org_name_script_with_safe_characters(
    tmp_path: Path, name: str, script: str, tool: str
) -> None:
    bundle(tmp_path, "b", skill(name, script))
    assert list(scan([tmp_path]).tools) == [tool]


def test_a_legacy_single_command_bundle_is_named_after_the_skill_alone(tmp_path: Path) -> None:
    bundle(tmp_path, "b", "name: acme/legacy\ntimeout: 5s\ncommand: echo ${x}\n", "enact.yaml")
    assert list(scan([tmp_path]).tools) == ["acme_legacy"]


def test_a_name_over_64_characters_is_cut_and_gains_a_hash_of_the_full_identity(
    tmp_path: Path,
) -> None:
    name, script = "acme/" + "long-skill-name-" * 4, "a-script-with-a-long-name"
    bundle(tmp_path, "b", skill(name, script))
    [tool] = scan([tmp_path]).tools
    full = "acme_" + "long-skill-name-" * 4 + "_" + script
    digest = hashlib.sha256(f"{name}:{script}".encode()).hexdigest()[:8]
    assert tool == f"{full[:55]}_{digest}"
    assert len(tool) == MAX_TOOL_NAME
    assert list(scan([tmp_path]).tools) == [tool]  # the same on every scan


def test_colliding_tool_names_keep_both_tools_and_report_the_rename(tmp_path: Path) -> None:
    first = bundle(tmp_path, "1-first", skill("acme/b-c", "d"))
    second = bundle(tmp_path, "2-second", skill("acme/b_c", "d"))
    catalog = scan([tmp_path])
    digest = hashlib.sha256(b"acme/b_c:d").hexdigest()[:8]
    renamed = f"acme_b-c_d_{digest}"
    assert catalog.tools["acme_b-c_d"].skill.path == first
    assert catalog.tools[renamed].skill.path == second
    [problem] = catalog.problems
    assert problem.severity == "warning"
    assert problem.message == (
        f"{second / 'skill.yml'}: tool name acme_b-c_d of acme/b_c:d collides with "
        f"acme/b-c:d; published as {renamed}"
    )
    assert list(scan([tmp_path]).tools) == list(catalog.tools)  # resolved the same every time


def test_a_script_named_like_the_skill_can_collide_with_a_parent_skill(tmp_path: Path) -> None:
    bundle(tmp_path, "a", skill("a/b", "c"))
    bundle(tmp_path, "b", skill("a/b/c", "c"))
    catalog = scan([tmp_path])
    assert catalog.tools["a_b_c"].qualified == "a/b:c"
    assert len(catalog.tools) == 2
    assert "collides with a/b:c" in catalog.problems[0].message


# --- lookup and definitions ----------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    bundle(tmp_path, "greet", skill("acme/greet", "hello", "bye"))
    bundle(tmp_path, "solo", skill("acme/solo", "run"))
    return scan([tmp_path])


@pytest.mark.parametrize(
    ("name", "qualified"),
    [
        ("acme_greet_hello", "acme/greet:hello"),
        ("acme/greet:bye", "acme/greet:bye"),
        ("acme/solo", "acme/solo:run"),
        ("acme/solo:run", "acme/solo:run"),
    ],
    ids=["tool-name", "skill-and-script", "skill-with-one-script", "skill-and-only-script"],
)
def test_a_tool_is_found_by_its_tool_name_or_by_skill_and_script(
    catalog: Catalog, name: str, qualified: str
) -> None:
    assert catalog.lookup(name).qualified == qualified


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("acme/greet", "no tool named 'acme/greet' (did you mean acme/greet:hello, "
                       "acme/greet:bye?); `skillcell list` shows them"),
        ("acme/greet:wave", "no tool named 'acme/greet:wave'; `skillcell list` shows them"),
        ("GREET", "no tool named 'GREET' (did you mean acme_greet_hello, acme_greet_bye?)"),
        ("nothing", "no tool named 'nothing'; `skillcell list` shows them"),
    ],
    ids=["ambiguous-skill", "unknown-script", "close-names", "unknown"],
)  # fmt: skip
def test_a_name_that_is_not_one_tool_fails_with_suggestions(
    catalog: Catalog, name: str, message: str
) -> None:
    with pytest.raises(ToolNotFound) as caught:
        catalog.lookup(name)
    assert message in str(caught.value)


def test_a_tool_definition_is_what_mcp_tools_list_shows(tmp_path: Path) -> None:
    text = """\
        name: acme/word-count
        version: 2.0.0
        description: Counts words.
        timeout: 5s
        annotations: {readOnlyHint: true}
        scripts:
          lines:
            command: wc -l {{file}}
            description: Count lines.
            outputSchema: {type: object}
          word-count: wc -w {{file}}
        """
    directory = bundle(tmp_path, "wc", text)
    catalog = scan([tmp_path])
    lines = catalog.lookup("acme_word-count_lines").definition()
    assert lines == {
        "name": "acme_word-count_lines",
        "title": "Word count: lines",
        "description": "Count lines.\n\nCounts words.",
        "inputSchema": {
            "type": "object",
            "properties": {"file": {"type": "string"}},
            "required": ["file"],
            "additionalProperties": False,
        },
        "outputSchema": {"type": "object"},
        "annotations": {"readOnlyHint": True},
        "_meta": {
            "skillcell/skill": "acme/word-count",
            "skillcell/version": "2.0.0",
            "skillcell/script": "lines",
        },
    }
    main = catalog.lookup("acme_word-count")
    assert main.definition()["title"] == "Word count"
    assert "outputSchema" not in main.definition()
    summary = main.summary()
    assert (summary["skill"], summary["script"], summary["path"]) == (
        "acme/word-count", "word-count", str(directory),
    )  # fmt: skip


def test_an_annotation_title_replaces_the_derived_one(tmp_path: Path) -> None:
    bundle(tmp_path, "b", skill("a/b", "x", extra="annotations: {title: Custom}\n"))
    assert scan([tmp_path]).lookup("a_b_x").definition()["title"] == "Custom"


# --- change detection ----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    directory = bundle(tmp_path, "b", skill("a/b", "x"))
    (directory / "main.py").write_text("print(1)\n")
    (directory / "lib").mkdir()
    (directory / "lib" / "util.py").write_text("X = 1\n")
    return directory


def _edit(path: Path) -> None:
    path.write_text("print(2)\n")


def _add(path: Path) -> None:
    (path.parent / "new.txt").write_text("")


def _rename(path: Path) -> None:
    path.rename(path.parent / "renamed.py")


def _chmod(path: Path) -> None:
    path.chmod(0o755)


def _nested(path: Path) -> None:
    (path.parent / "lib" / "util.py").write_text("X = 2\n")


def _link(path: Path) -> None:
    (path.parent / "link").symlink_to("main.py")


@pytest.mark.parametrize(
    "change", [_edit, _add, _rename, _chmod, _nested, _link], ids=lambda f: f.__name__[1:]
)
def test_the_bundle_digest_changes_when_a_file_changes(
    files: Path, change: Callable[[Path], None]
) -> None:
    before = bundle_digest(files)
    change(files / "main.py")
    assert bundle_digest(files) != before


def test_the_bundle_digest_ignores_timestamps_and_bytecode_caches(files: Path) -> None:
    before = bundle_digest(files)
    os.utime(files / "main.py", (0, 0))
    (files / "__pycache__").mkdir()
    (files / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert bundle_digest(files) == before


def test_the_bundle_digest_follows_a_symlink_target_change(files: Path) -> None:
    link = files / "link"
    link.symlink_to("main.py")
    before = bundle_digest(files)
    link.unlink()
    link.symlink_to("lib/util.py")
    assert bundle_digest(files) != before
