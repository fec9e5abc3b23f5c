"""Loading skill bundles: every manifest form, every field, every error and warning."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from skillcell.arguments import validate_arguments
from skillcell.catalog import scan
from skillcell.errors import ManifestError
from skillcell.manifest import (
    DEFAULT_SCRIPT,
    EnvVar,
    Resources,
    find_manifest,
    load_skill,
    parse_duration,
    parse_size,
)

GREET = """\
name: acme/greet
description: Say hello.
timeout: 10s
scripts:
  hello: echo hello {{who}}
"""


def bundle(root: Path, files: Mapping[str, str | bytes], name: str = "bundle") -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


# --- forms ---------------------------------------------------------------------------------

FORMS = [
    pytest.param({"skill.package.yml": GREET}, "skill.package.yml", id="skill.package.yml"),
    pytest.param({"skill.package.yaml": GREET}, "skill.package.yaml", id="skill.package.yaml"),
    pytest.param({"skill.yml": GREET}, "skill.yml", id="skill.yml"),
    pytest.param({"skill.yaml": GREET}, "skill.yaml", id="skill.yaml"),
    pytest.param(
        {"SKILL.md": f"---\n{GREET}---\n# Greet\n\nLong docs.\n"},
        "SKILL.md",
        id="SKILL.md-front-matter",
    ),
    pytest.param(
        {"skill.package.yml": GREET, "enact.yaml": "name: other/x\ncommand: echo"},
        "skill.package.yml",
        id="package-file-beats-legacy",
    ),
    pytest.param(
        {"skill.yml": GREET, "skill.package.yml": GREET.replace("acme", "first")},
        "skill.package.yml",
        id="skill.package.yml-beats-skill.yml",
    ),
    pytest.param(
        {"SKILL.md": f"---\n{GREET}---\n", "enact.md": "---\nname: x/y\n---\n"},
        "SKILL.md",
        id="SKILL.md-beats-enact.md",
    ),
]


@pytest.mark.parametrize(("files", "manifest"), FORMS)
def test_a_bundle_is_read_from_the_first_manifest_form_present(
    tmp_path: Path, files: dict[str, str], manifest: str
) -> None:
    directory = bundle(tmp_path, files)
    skill = load_skill(directory)
    assert skill.manifest == directory / manifest
    assert find_manifest(directory) == directory / manifest
    assert skill.path == directory
    script = skill.script("hello")
    assert script is not None
    assert script.template.render({"who": "you"}) == ["echo", "hello", "you"]


def test_skill_md_front_matter_is_the_manifest_and_its_body_the_docs(tmp_path: Path) -> None:
    text = f"---\n{GREET}---\n# Greet\n\nSays hello to someone.\n\n## Usage\n\nCall it.\n"
    skill = load_skill(bundle(tmp_path, {"SKILL.md": text}))
    assert skill.docs == "# Greet\n\nSays hello to someone.\n\n## Usage\n\nCall it."
    assert skill.description == "Say hello."


def test_skill_md_without_a_description_takes_the_first_paragraph_of_its_body(
    tmp_path: Path,
) -> None:
    text = "---\nname: acme/doc\n---\n# Title\n\nFirst paragraph\nwraps here.\n\nSecond.\n"
    skill = load_skill(bundle(tmp_path, {"SKILL.md": text}))
    assert skill.description == "First paragraph wraps here."
    assert skill.scripts == ()


@pytest.mark.parametrize(
    ("package", "skill_md", "description", "docs"),
    [
        (GREET.replace("description: Say hello.\n", ""),
         "---\ndescription: From the docs.\n---\nBody text.\n", "From the docs.", "Body text."),
        (GREET, "---\ndescription: Ignored.\n---\nBody.\n", "Say hello.", "Body."),
        (GREET.replace("description: Say hello.\n", ""), "# Title\n\nPlain markdown body.\n",
         "Plain markdown body.", "# Title\n\nPlain markdown body."),
        (GREET, "---\nname: [unclosed\n---\nBroken.\n", "Say hello.", ""),
    ],
    ids=["fills-missing-description", "package-description-wins", "plain-markdown-docs",
         "broken-skill-md-only-loses-docs"],
)  # fmt: skip
def test_a_skill_md_beside_a_package_file_fills_in_description_and_docs(
    tmp_path: Path, package: str, skill_md: str, description: str, docs: str
) -> None:
    skill = load_skill(bundle(tmp_path, {"skill.package.yml": package, "SKILL.md": skill_md}))
    assert skill.manifest.name == "skill.package.yml"
    assert (skill.description, skill.docs) == (description, docs)


LEGACY_MD = """\
---
name: acme/legacy
description: Old style.
timeout: 5s
command: "echo ${greeting} --to=${who}"
inputSchema:
  type: object
  required: [greeting]
  properties:
    greeting: {type: string}
    who: {type: string, default: world}
---
Legacy docs.
"""
LEGACY_YAML = """\
name: acme/legacy
timeout: 5s
command: echo ${greeting} --to=${who}
"""


@pytest.mark.parametrize(
    ("files", "schema_required"),
    [
        ({"enact.md": LEGACY_MD}, ["greeting"]),
        ({"enact.yaml": LEGACY_YAML}, ["greeting", "who"]),
        ({"enact.yml": LEGACY_YAML}, ["greeting", "who"]),
    ],
    ids=["enact.md", "enact.yaml", "enact.yml"],
)
def test_a_legacy_enact_bundle_becomes_one_default_script_with_dollar_placeholders(
    tmp_path: Path, files: dict[str, str], schema_required: list[str]
) -> None:
    skill = load_skill(bundle(tmp_path, files))
    assert [s.name for s in skill.scripts] == [DEFAULT_SCRIPT]
    script = skill.scripts[0]
    assert script.template.placeholders == ("greeting", "who")
    assert script.input_schema["required"] == schema_required
    assert script.template.render({"greeting": "hi", "who": "ann"}) == ["echo", "hi", "--to=ann"]


def test_a_legacy_command_may_use_modern_placeholders(tmp_path: Path) -> None:
    skill = load_skill(bundle(tmp_path, {"enact.yaml": "name: a/b\ncommand: echo {{x}}\n"}))
    assert skill.scripts[0].template.render({"x": "${y}"}) == ["echo", "${y}"]


# --- fields --------------------------------------------------------------------------------

FULL = """\
name: acme/full
version: 1.2
description: Everything.
license: MIT
tags: [a, b]
from: python:3.11-slim
timeout: 2m
network: false
engine: docker
cache: true
env:
  API_TOKEN: {description: The token, secret: true}
  REGION: eu-west-1
  OPTIONAL_KEY: {secret: true, required: false}
  MODE: {required: true}
  EMPTY:
annotations: {title: Full, readOnlyHint: true, openWorldHint: false}
resources: {memory: 512Mi, cpus: 1.5, pids: 64}
hooks: {build: pip install -r requirements.txt}
x-vendor: {anything: [1, 2]}
authors: [someone]
repository: https://example.org
scripts:
  run:
    command: python3 main.py {{path}} --n={{n}}
    description: Run it.
    timeout: 500ms
    annotations: {openWorldHint: true, destructiveHint: true}
    inputFiles: [path]
    inputSchema:
      type: object
      properties:
        path: {type: string}
        n: {type: integer, default: 3}
    outputSchema: {type: object}
    x-note: kept out of the way
  short: echo {{a}} {{b}}
"""


@pytest.fixture
def full(tmp_path: Path) -> Any:
    return load_skill(bundle(tmp_path, {"skill.package.yml": FULL}))


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("name", "acme/full"),
        ("version", "1.2"),
        ("description", "Everything."),
        ("license", "MIT"),
        ("tags", ("a", "b")),
        ("image", "python:3.11-slim"),
        ("timeout", 120.0),
        ("network", False),
        ("engine", "docker"),
        ("cache", True),
        ("annotations", {"title": "Full", "readOnlyHint": True, "openWorldHint": False}),
        ("resources", Resources(memory=512 * 2**20, cpus=1.5, pids=64)),
        ("build_hooks", ("pip install -r requirements.txt",)),
        ("extras", {"x-vendor": {"anything": [1, 2]}}),
        ("warnings", ()),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_skill_field_is_read(full: Any, attribute: str, value: Any) -> None:
    assert getattr(full, attribute) == value


def test_env_declarations_say_what_is_secret_required_and_defaulted(full: Any) -> None:
    assert full.env == (
        EnvVar("API_TOKEN", "The token", secret=True, required=True),
        EnvVar("REGION", default="eu-west-1"),
        EnvVar("OPTIONAL_KEY", secret=True, required=False),
        EnvVar("MODE", required=True),
        EnvVar("EMPTY"),
    )


def test_a_script_mapping_carries_its_own_description_timeout_and_files(full: Any) -> None:
    run = full.script("run")
    assert run.description == "Run it."
    assert run.timeout == 0.5
    assert run.input_files == ("path",)
    assert run.output_schema == {"type": "object"}
    assert run.input_schema["properties"]["n"] == {"type": "integer", "default": 3}
    assert full.annotations_for(run) == {
        "title": "Full",
        "readOnlyHint": True,
        "openWorldHint": True,
        "destructiveHint": True,
    }


def test_a_script_given_as_a_string_gets_an_inferred_schema(full: Any) -> None:
    short = full.script("short")
    assert short.input_schema == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    assert short.output_schema is None
    assert short.timeout is None


def test_a_minimal_manifest_gets_the_defaults(tmp_path: Path) -> None:
    skill = load_skill(bundle(tmp_path, {"skill.yml": "name: solo\n"}))
    assert (skill.version, skill.description, skill.license, skill.tags, skill.image) == (
        "0.0.0", "", None, (), None,
    )  # fmt: skip
    assert (skill.timeout, skill.network, skill.engine, skill.cache) == (None, None, None, None)
    assert (skill.env, skill.scripts, skill.build_hooks) == ((), (), ())
    assert skill.resources == Resources()
    assert skill.warnings == ()


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(30, 30.0), (1.5, 1.5), ("30", 30.0), ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0),
     ("1.5m", 90.0), ("1h", 3600.0), (" 10 s ", 10.0), ("soon", None), ("1d", None),
     ("-5s", None), (True, None), ("", None)],
    ids=str,
)  # fmt: skip
def test_durations_are_read_in_ms_s_m_or_h(raw: Any, seconds: float | None) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize(
    ("raw", "size"),
    [(1024, 1024), ("100", 100), ("1k", 1000), ("1Ki", 1024), ("512Mi", 512 * 2**20),
     ("256M", 256 * 10**6), ("1G", 10**9), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29),
     ("10MB", 10**7), ("2 MiB", 2 * 2**20), ("1Ti", 2**40), ("lots", None), ("1Pi", None),
     ("-1M", None), (False, None)],
    ids=str,
)  # fmt: skip
def test_sizes_are_read_with_decimal_and_binary_units(raw: Any, size: int | None) -> None:
    assert parse_size(raw) == size


# --- errors --------------------------------------------------------------------------------

S = "name: a/b\ntimeout: 5s\nscripts:\n  x:\n"  # a script `x` whose body follows, indented

ERRORS = [
    # (files, manifest file, field, reason)
    ({"skill.yml": "name: a/b\nscripts: [\n"}, "skill.yml", "",
     "invalid YAML: line 3, column 1"),
    ({"skill.yml": "name: a/b\n  bad: indent\n"}, "skill.yml", "", "invalid YAML: line 2"),
    ({"skill.yml": "- a\n- b\n"}, "skill.yml", "", "must be a mapping, not list"),
    ({"skill.yml": b"name: \xff\xfe\n"}, "skill.yml", "", "cannot read"),
    ({"skill.yml": "description: no name\n"}, "skill.yml", "name", "is required"),
    ({"skill.yml": "name: has space\n"}, "skill.yml", "name",
     "'has space' is not a skill name like 'org/name'"),
    ({"skill.yml": "name: /leading\n"}, "skill.yml", "name", "is not a skill name"),
    ({"skill.yml": "name: [a]\n"}, "skill.yml", "name", "must be a string"),
    ({"skill.yml": "name: a/b\n1: x\n"}, "skill.yml", "1", "field names must be strings"),
    ({"skill.yml": "name: a/b\ndescription: [x]\n"}, "skill.yml", "description",
     "must be a string"),
    ({"skill.yml": "name: a/b\ntags: a\n"}, "skill.yml", "tags", "must be a list of strings"),
    ({"skill.yml": "name: a/b\nscripts: [echo]\n"}, "skill.yml", "scripts",
     "must be a mapping of script name to command"),
    ({"skill.yml": "name: a/b\nscripts:\n  x: [echo]\n"}, "skill.yml", "scripts.x",
     "must be a command string or a mapping with `command`"),
    ({"skill.yml": "name: a/b\nscripts:\n  bad name: echo\n"}, "skill.yml", "scripts.bad name",
     "script names use letters, digits"),
    ({"skill.yml": S + "    command: echo\n    shell: bash\n"}, "skill.yml", "scripts.x.shell",
     "unknown field"),
    ({"skill.yml": S + "    description: no command\n"}, "skill.yml", "scripts.x.command",
     "a command string is required"),
    ({"skill.yml": S + "    command: '  '\n"}, "skill.yml", "scripts.x.command",
     "the command is empty"),
    ({"skill.yml": S + "    command: echo {{who}}\n    inputSchema: {type: object}\n"},
     "skill.yml", "scripts.x.inputSchema.properties",
     "the command uses {{who}} but the schema does not declare it"),
    ({"skill.yml": S + "    command: echo\n    inputSchema: {type: object, required: 5}\n"},
     "skill.yml", "scripts.x.inputSchema", "not a valid JSON Schema: 5 is not of type 'array'"),
    ({"skill.yml": S + "    command: echo\n    inputSchema: [x]\n"}, "skill.yml",
     "scripts.x.inputSchema", "must be a JSON Schema object"),
    ({"skill.yml": S + "    command: echo\n    inputSchema: {type: array}\n"}, "skill.yml",
     "scripts.x.inputSchema.type", "an input schema must describe an object"),
    ({"skill.yml": S + "    command: echo\n    outputSchema: {type: 7}\n"}, "skill.yml",
     "scripts.x.outputSchema", "not a valid JSON Schema"),
    ({"skill.yml": S + "    command: echo {{n}}\n    inputFiles: [n]\n    inputSchema:\n"
      "      {type: object, properties: {n: {type: integer}}}\n"}, "skill.yml",
     "scripts.x.inputFiles", "'n' must be a declared string parameter"),
    ({"skill.yml": S + "    command: echo {{n}}\n    inputFiles: n\n"}, "skill.yml",
     "scripts.x.inputFiles", "must be a list of parameter names"),
    ({"skill.yml": S + "    command: echo a | wc -l\n"}, "skill.yml", "scripts.x.command",
     "uses shell syntax '|', but commands run without a shell"),
    ({"skill.yml": S + "    command: 'echo a; rm x'\n"}, "skill.yml", "scripts.x.command",
     "uses shell syntax ';'"),
    ({"skill.yml": S + "    command: echo a > out\n"}, "skill.yml", "scripts.x.command",
     "uses shell syntax '>'"),
    ({"skill.yml": S + "    command: echo `id`\n"}, "skill.yml", "scripts.x.command",
     "uses backquotes"),
    ({"skill.yml": S + "    command: echo 'unclosed\n"}, "skill.yml", "scripts.x.command",
     "cannot split the command: No closing quotation"),
    ({"skill.yml": S + "    command: echo {{bad name}}\n"}, "skill.yml", "scripts.x.command",
     "malformed placeholder in '{{bad': use {{name}}"),
    ({"skill.yml": S + "    command: echo\n    timeout: soon\n"}, "skill.yml",
     "scripts.x.timeout", "'soon' is not a duration like 500ms, 30s, 2m or 1h"),
    ({"skill.yml": "name: a/b\ntimeout: 0s\n"}, "skill.yml", "timeout", "is not a duration"),
    ({"skill.yml": "name: a/b\ntimeout: true\n"}, "skill.yml", "timeout", "is not a duration"),
    ({"skill.yml": "name: a/b\nresources: 1Gi\n"}, "skill.yml", "resources",
     "must be a mapping {memory, cpus, pids}"),
    ({"skill.yml": "name: a/b\nresources: {memory: lots}\n"}, "skill.yml", "resources.memory",
     "'lots' is not a size like 512Mi, 1Gi or 256M"),
    ({"skill.yml": "name: a/b\nresources: {memory: 0}\n"}, "skill.yml", "resources.memory",
     "is not a size"),
    ({"skill.yml": "name: a/b\nresources: {cpus: 0}\n"}, "skill.yml", "resources.cpus",
     "0 is not a positive number"),
    ({"skill.yml": "name: a/b\nresources: {cpus: true}\n"}, "skill.yml", "resources.cpus",
     "True is not a positive number"),
    ({"skill.yml": "name: a/b\nresources: {pids: 1.5}\n"}, "skill.yml", "resources.pids",
     "1.5 is not a positive whole number"),
    ({"skill.yml": "name: a/b\nenv: [TOKEN]\n"}, "skill.yml", "env",
     "must be a mapping of variable name to its description"),
    ({"skill.yml": "name: a/b\nenv: {1BAD: x}\n"}, "skill.yml", "env.1BAD",
     "not a valid environment variable name"),
    ({"skill.yml": "name: a/b\nenv: {TOKEN: [x]}\n"}, "skill.yml", "env.TOKEN",
     "must be a mapping {description, secret, required, default}"),
    ({"skill.yml": "name: a/b\nenv: {TOKEN: {secret: yes please}}\n"}, "skill.yml",
     "env.TOKEN.secret", "must be true or false"),
    ({"skill.yml": "name: a/b\nenv: {TOKEN: {required: 1}}\n"}, "skill.yml",
     "env.TOKEN.required", "must be true or false"),
    ({"skill.yml": "name: a/b\nenv: {TOKEN: {value: x}}\n"}, "skill.yml", "env.TOKEN.value",
     "unknown field"),
    ({"skill.yml": "name: a/b\nannotations: [readOnlyHint]\n"}, "skill.yml", "annotations",
     "must be a mapping"),
    ({"skill.yml": "name: a/b\nannotations: {readOnlyHint: 'yes'}\n"}, "skill.yml",
     "annotations.readOnlyHint", "must be true or false"),
    ({"skill.yml": "name: a/b\nannotations: {title: 5}\n"}, "skill.yml", "annotations.title",
     "must be a string"),
    ({"skill.yml": S + "    command: echo\n    annotations: {openWorldHint: 0}\n"},
     "skill.yml", "scripts.x.annotations.openWorldHint", "must be true or false"),
    ({"skill.yml": "name: a/b\nnetwork: sometimes\n"}, "skill.yml", "network",
     "must be true or false"),
    ({"skill.yml": "name: a/b\ncache: 1\n"}, "skill.yml", "cache", "must be true or false"),
    ({"skill.yml": "name: a/b\nengine: podman\n"}, "skill.yml", "engine",
     "'podman' is not one of dagger, docker, bwrap, local"),
    ({"skill.yml": "name: a/b\nhooks: [pip install x]\n"}, "skill.yml", "hooks",
     "must be a mapping with `build`"),
    ({"skill.yml": "name: a/b\nhooks: {build: [1]}\n"}, "skill.yml", "hooks.build",
     "must be a list of shell commands"),
    ({"skill.yml": "name: a/b\ncommand: echo\nscripts: {x: echo}\n"}, "skill.yml", "command",
     "give either `command` or `scripts`, not both"),
    ({"enact.yaml": "name: a/b\ncommand: echo ${x} | wc\n"}, "enact.yaml", "command",
     "uses shell syntax '|'"),
    ({"enact.yaml": "name: a/b\ncommand: echo ${x}\ninputSchema: {type: object}\n"},
     "enact.yaml", "inputSchema.properties", "uses {{x}} but the schema does not declare it"),
    ({"enact.yaml": "name: a/b\ncommand: [echo]\n"}, "enact.yaml", "command",
     "a command string is required"),
    ({"SKILL.md": "---\nname: a/b\ndescription: never closed\n"}, "SKILL.md", "",
     "front matter starts with --- but is never closed"),
    ({"SKILL.md": "---\nname: a/b\n  oops: [\n---\nbody\n"}, "SKILL.md", "", "invalid YAML"),
    ({"SKILL.md": "# Just docs\n\nNo front matter.\n"}, "SKILL.md", "name", "is required"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "manifest", "field", "reason"),
    ERRORS,
    ids=[f"{e[2] or 'file'}-{e[3][:40]}" for e in ERRORS],
)
def test_a_broken_manifest_names_the_file_the_field_and_the_reason(
    tmp_path: Path, files: dict[str, str], manifest: str, field: str, reason: str
) -> None:
    directory = bundle(tmp_path, files)
    with pytest.raises(ManifestError) as caught:
        load_skill(directory)
    error = caught.value
    assert error.path == directory / manifest
    assert error.field == field
    assert reason in error.reason
    where = f"{directory / manifest}: {field}: " if field else f"{directory / manifest}: "
    assert str(error) == where + error.reason


def test_a_directory_without_a_manifest_says_which_files_it_looked_for(tmp_path: Path) -> None:
    directory = bundle(tmp_path, {"README.md": "hello"})
    with pytest.raises(ManifestError, match=r"no manifest \(skill\.package\.yml, .*enact\.yml\)"):
        load_skill(directory)


def test_a_boolean_property_schema_named_in_input_files_is_a_manifest_error(
    tmp_path: Path,
) -> None:
    script = "    command: cat {{path}}\n    inputFiles: [path]\n"
    schema = "    inputSchema: {type: object, properties: {path: true}}\n"
    text = S + script + schema
    with pytest.raises(ManifestError, match="'path' must be a declared string parameter"):
        load_skill(bundle(tmp_path, {"skill.yml": text}))


# --- warnings ------------------------------------------------------------------------------

WARNINGS = [
    ("name: a/b\nscripts: {x: echo}\n",
     ["timeout: not set; the configured default timeout applies"]),
    ("name: a/b\ntimeout: 5s\nscripts: {x: echo}\nenv: {TOKEN: {secret: true, default: abc}}\n",
     ["env.TOKEN: a secret with a default value ships that value in the bundle"]),
    ("name: a/b\ntimeout: 5s\nmaintainer: me\n", ["maintainer: unknown field, ignored"]),
    ("name: a/b\nannotations: {readOnly: true}\n",
     ["annotations.readOnly: not an MCP tool annotation, ignored"]),
    ("name: a/b\nresources: {gpus: 1}\n",
     ["resources.gpus: not a resource skillcell limits, ignored"]),
    ("name: a/b\nscripts:\n  x: {command: echo, timeout: 1s}\n", []),
    ("name: a/b\n", []),
    ("name: a/b\nx-anything: 1\nauthors: [me]\nkeywords: [k]\nenact: 1.0\nexamples: []\n", []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "warnings"),
    WARNINGS,
    ids=["no-timeout", "secret-default", "unknown-field", "unknown-annotation",
         "unknown-resource", "script-timeout-is-enough", "no-scripts-no-timeout-needed",
         "x-and-enact-fields-are-quiet"],
)  # fmt: skip
def test_a_questionable_manifest_loads_with_warnings_that_name_the_file(
    tmp_path: Path, text: str, warnings: list[str]
) -> None:
    directory = bundle(tmp_path, {"skill.yml": text})
    skill = load_skill(directory)
    assert list(skill.warnings) == [f"{directory / 'skill.yml'}: {w}" for w in warnings]


def test_the_full_example_in_the_manifest_reference_loads_and_renders_as_documented(
    tmp_path: Path,
) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "manifest.md").read_text()
    example = docs[docs.index("## A full example") :]
    manifest = re.search(r"```yaml\n(.*?)```", example, re.S)
    argv = re.search(r"```json\n(.*?)```", example, re.S)
    assert manifest and argv
    bundle(tmp_path, {"skill.package.yml": manifest.group(1)}, "csv-stats")
    catalog = scan([tmp_path])
    assert catalog.problems == []
    assert sorted(catalog.tools) == ["skillcell_csv-stats", "skillcell_csv-stats_file"]
    tool = catalog.lookup("skillcell_csv-stats")
    args = validate_arguments(tool.name, tool.script.input_schema,
                              {"csv": "name,age\nann,30\nbob,\n", "top": 1})  # fmt: skip
    assert tool.script.template.render(args) == json.loads(argv.group(1))
