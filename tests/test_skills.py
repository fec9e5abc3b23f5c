"""The bundles shipped in skills/: each loads cleanly and each script really runs.

Scripts run the way an engine runs them: the rendered argv of validated arguments, with the
bundle directory as the working directory, and stdout checked against the outputSchema.
"""

from __future__ import annotations

import json
import os
import subprocess
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from skillcell.arguments import validate_arguments
from skillcell.catalog import Catalog, Tool, bundle_digest, scan
from skillcell.manifest import find_manifest, load_skill
from skillcell.planner import cacheable, network_allowed

SKILLS = Path(__file__).resolve().parent.parent / "skills"
BUNDLES = sorted(p for p in SKILLS.iterdir() if p.is_dir() and find_manifest(p) is not None)
HAS_TZDATA = bool(zoneinfo.available_timezones())


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return scan([SKILLS])


def run(tool: Tool, args: dict[str, Any], outputs: Path) -> subprocess.CompletedProcess[str]:
    valid = validate_arguments(tool.name, tool.script.input_schema, args)
    argv = tool.script.template.render(valid)
    env = {**os.environ, "SKILLCELL_OUTPUTS_DIR": str(outputs), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        argv, cwd=tool.skill.path, env=env, capture_output=True, text=True, timeout=60
    )


@dataclass(frozen=True)
class Sample:
    tool: str
    args: dict[str, Any]
    expect: dict[str, Any] = field(default_factory=dict)  # a subset of the JSON printed
    check: Callable[[Any, Path], object] | None = None  # anything a subset cannot say
    stdout: str | None = None  # the exact text, for scripts that print no JSON object
    needs_tzdata: bool = False


def _files(expected: dict[str, Any]) -> Callable[[Any, Path], object]:
    def check(out: Any, outputs: Path) -> None:
        for name, data in expected.items():
            assert json.loads((outputs / name).read_text(encoding="utf-8")) == data
        assert out["file"].endswith("/" + next(iter(expected)))

    return check


def _column(name: str, **want: Any) -> Callable[[Any, Path], object]:
    def check(out: Any, outputs: Path) -> None:
        column = next(c for c in out["columns"] if c["name"] == name)
        assert {k: column[k] for k in want} == want

    return check


# fmt: off
PEOPLE = "name,age,score\nann,30,1.5\nbob,,2.25\ncid,40,0.1\nann,50,x\n"
DOC = json.dumps(
    {"store": {"books": [{"title": "A", "price": 8}, {"title": "B", "price": 12.5}]},
     "owner": {"name": "ann", "price": 0}, "a.b": {"c": True}}
)

SAMPLES = [
    # json-query
    Sample("skillcell_json-query_query", {"json": DOC, "path": "store.books[*].title"},
           {"found": True, "count": 2, "value": "A", "values": ["A", "B"]}),
    Sample("skillcell_json-query_query", {"json": DOC, "path": "$..price"},
           {"values": [8, 12.5, 0]}),
    Sample("skillcell_json-query_query", {"json": DOC, "path": 'store.books[-1]["title"]'},
           {"values": ["B"]}),
    Sample("skillcell_json-query_query", {"json": DOC, "path": '["a.b"].c'}, {"value": True}),
    Sample("skillcell_json-query_query", {"json": "[[1, 2]]", "path": "0.1"}, {"values": [2]}),
    Sample("skillcell_json-query_query", {"json": '{"a": {"b": [1]}}', "path": "$..*"},
           {"values": [{"b": [1]}, [1], 1]}),
    Sample("skillcell_json-query_query", {"json": "[1,2,3,4,5]", "path": "[::2]"},
           {"values": [1, 3, 5]}),
    Sample("skillcell_json-query_query", {"json": DOC, "path": "store.nothing"},
           {"found": False, "count": 0, "value": None, "values": []}),
    Sample("skillcell_json-query_query", {"json": '{"x": "-v --help"}', "path": "x"},
           {"value": "-v --help"}),
    Sample("skillcell_json-query_format", {"json": '{"b": [1, 2], "a": "é"}', "style": "compact",
           "sort_keys": True}, stdout='{"a":"é","b":[1,2]}\n'),
    Sample("skillcell_json-query_format", {"json": '{"a":[1]}'},
           stdout='{\n  "a": [\n    1\n  ]\n}\n'),
    # csv-stats
    Sample("skillcell_csv-stats", {"csv": PEOPLE}, {"rows": 4, "delimiter": ",", "ragged_rows": 0},
           _column("age", type="number", count=3, missing=1, min=30, max=50, sum=120,
                   mean=40.0, median=40, stdev=10.0)),
    Sample("skillcell_csv-stats", {"csv": PEOPLE, "top": 1},
           check=_column("name", type="text", distinct=3, mean=None,
                         top=[{"value": "ann", "count": 2}])),
    Sample("skillcell_csv-stats", {"csv": PEOPLE}, check=_column("score", type="text", count=4)),
    Sample("skillcell_csv-stats", {"csv": "1;2\n3;4;5\n", "header": False, "delimiter": ";"},
           {"rows": 2, "ragged_rows": 1},
           _column("column_3", count=1, missing=1)),
    Sample("skillcell_csv-stats", {"csv": "x\n0.1\n0.2\n"}, check=_column("x", sum=0.3)),
    Sample("skillcell_csv-stats", {"csv": "a\tb\n1\t2\n"}, {"delimiter": "\t"}),
    # text-stats
    Sample("skillcell_text-stats", {"text": "The cat sat. The cat ran away!\n\nIs it? Yes.",
           "top": 2}, {"words": 10, "sentences": 4, "paragraphs": 2, "lines": 3,
           "top_words": [{"word": "cat", "count": 2}, {"word": "away", "count": 1}]}),
    Sample("skillcell_text-stats", {"text": "the the the end", "skip_stopwords": False, "top": 1},
           {"top_words": [{"word": "the", "count": 3}], "unique_words": 2}),
    Sample("skillcell_text-stats", {"text": " ".join(["word"] * 400), "words_per_minute": 200},
           {"words": 400, "reading_time_seconds": 120, "reading_time": "2 min"}),
    Sample("skillcell_text-stats", {"text": ""},
           {"words": 0, "sentences": 0, "reading_time": "0 min"}),
    # regex-extract
    Sample("skillcell_regex-extract", {"pattern": r"(?P<user>[\w.]+)@(?P<domain>[\w.-]+)",
           "text": "mail ann@x.org or BOB@y.com"}, {"count": 2, "truncated": False,
           "group_names": ["user", "domain"]},
           lambda out, _: out["matches"][1] == {"match": "BOB@y.com", "start": 18, "end": 27,
               "groups": ["BOB", "y.com"], "named": {"user": "BOB", "domain": "y.com"}}),
    Sample("skillcell_regex-extract", {"pattern": "^b", "text": "a\nb\nB", "flags": ["multiline",
           "ignorecase"]}, {"count": 2}),
    Sample("skillcell_regex-extract", {"pattern": r"\d", "text": "1234", "max_matches": 3},
           {"count": 3, "truncated": True}),
    Sample("skillcell_regex-extract", {"pattern": "(a)|(b)", "text": "b"},
           check=lambda out, _: out["matches"][0]["groups"] == [None, "b"]),
    Sample("skillcell_regex-extract_replace", {"pattern": r"(\w+)@", "text": "ann@x bob@y",
           "replacement": r"<\1>@"}, {"text": "<ann>@x <bob>@y", "replacements": 2}),
    Sample("skillcell_regex-extract_replace", {"pattern": "o", "text": "foo", "replacement": "0",
           "count": 1}, {"text": "f0o", "replacements": 1}),
    # hash-encode
    Sample("skillcell_hash-encode_hash", {"text": "abc"}, {"algorithm": "sha256", "input_bytes": 3,
           "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}),
    Sample("skillcell_hash-encode_hash", {"text": "abc", "algorithm": "md5"},
           {"hex": "900150983cd24fb0d6963f7d28e17f72", "base64": "kAFQmDzST7DWlj99KOF/cg=="}),
    Sample("skillcell_hash-encode_hash", {"text": "YWJj", "algorithm": "sha1",
           "input_encoding": "base64"}, {"hex": "a9993e364706816aba3e25717850c26c9cd0d89d"}),
    Sample("skillcell_hash-encode_encode", {"text": "héllo"}, {"result": "aMOpbGxv"}),
    Sample("skillcell_hash-encode_encode", {"text": "ÿ?>", "encoding": "base64url"},
           {"result": "w78_Pg=="}),
    Sample("skillcell_hash-encode_encode", {"text": "a b&c/é", "encoding": "url"},
           {"result": "a%20b%26c%2F%C3%A9"}),
    Sample("skillcell_hash-encode_encode", {"text": "a b", "encoding": "url-form"},
           {"result": "a+b"}),
    Sample("skillcell_hash-encode_encode", {"text": "<a href='x'>", "encoding": "html"},
           {"result": "&lt;a href=&#x27;x&#x27;&gt;"}),
    Sample("skillcell_hash-encode_encode", {"text": "hi", "encoding": "hex"}, {"result": "6869"}),
    Sample("skillcell_hash-encode_decode", {"text": "aGVsbG8"},
           {"result": "hello", "is_text": True, "bytes": 5}),
    Sample("skillcell_hash-encode_decode", {"text": "/w==", "encoding": "base64"},
           {"result": None, "is_text": False, "hex": "ff"}),
    Sample("skillcell_hash-encode_decode", {"text": "NBSWY3DP", "encoding": "base32"},
           {"result": "hello"}),
    Sample("skillcell_hash-encode_decode", {"text": "a%20b+c", "encoding": "url-form"},
           {"result": "a b c"}),
    # time-convert
    Sample("skillcell_time-convert", {"time": "2024-03-10T14:30", "from_zone": "Europe/Paris",
           "to": ["Asia/Tokyo", "America/New_York", "+05:30"]},
           {"utc": "2024-03-10T13:30:00Z", "epoch_seconds": 1710077400, "notes": []},
           lambda out, _: [(c["local"], c["abbreviation"], c["dst"]) for c in out["conversions"]]
           == [("2024-03-10T22:30:00+09:00", "JST", False),
               ("2024-03-10T09:30:00-04:00", "EDT", True),
               ("2024-03-10T19:00:00+05:30", "UTC+05:30", False)],
           needs_tzdata=True),
    Sample("skillcell_time-convert", {"time": "1710077400000"}, {"utc": "2024-03-10T13:30:00Z"},
           lambda out, _: "milliseconds" in out["notes"][0]),
    Sample("skillcell_time-convert", {"time": "2024-03-31T02:30", "from_zone": "Europe/Paris"},
           {"utc": "2024-03-31T01:30:00Z"}, lambda out, _: "does not exist" in out["notes"][0],
           needs_tzdata=True),
    Sample("skillcell_time-convert", {"time": "2024-05-01T09:00:00+02:00", "to": ["UTC"]},
           check=lambda out, _: out["conversions"][0]["time"] == "07:00:00"),
    Sample("skillcell_time-convert", {"time": "now"},
           check=lambda out, _: out["utc"].endswith("Z")),
    Sample("skillcell_time-convert_zones", {"search": "new york"},
           {"count": 1, "zones": ["America/New_York"]}, needs_tzdata=True),
    Sample("skillcell_time-convert_zones", {"limit": 2}, {"truncated": True},
           lambda out, _: len(out["zones"]) == 2, needs_tzdata=True),
    # csv-to-json: the file lands in the outputs directory
    Sample("skillcell_csv-to-json", {"csv": "id,zip,ok,score\n1,007,true,2.5\n2,10115,false,\n"},
           {"rows": 2, "columns": ["id", "zip", "ok", "score"], "shape": "records"},
           _files({"data.json": [{"id": 1, "zip": "007", "ok": True, "score": 2.5},
                                 {"id": 2, "zip": 10115, "ok": False, "score": None}]})),
    Sample("skillcell_csv-to-json", {"csv": "a;a\n1;x\n", "shape": "columns",
           "infer_types": False, "filename": "cols.json"}, {"columns": ["a", "a_2"]},
           _files({"cols.json": {"a": ["1"], "a_2": ["x"]}})),
    Sample("skillcell_csv-to-json", {"csv": "a,b\n1,2\n", "shape": "rows"},
           check=_files({"data.json": [["a", "b"], [1, 2]]})),
    # text-diff
    Sample("skillcell_text-diff", {"old": "a\nb\nc\nd\n", "new": "a\nB\nc\nd\ne\n"},
           {"identical": False, "added": 2, "removed": 1, "similarity": 0.6667,
            "diff": "--- old\n+++ new\n@@ -1,4 +1,5 @@\n a\n-b\n+B\n c\n d\n+e\n"}),
    Sample("skillcell_text-diff", {"old": "A  b\n", "new": "a b", "ignore_case": True,
           "ignore_whitespace": True}, {"identical": True, "diff": "", "similarity": 1.0}),
    Sample("skillcell_text-diff", {"old": "", "new": "x", "old_label": "a.txt",
           "new_label": "b.txt"}, {"diff": "--- a.txt\n+++ b.txt\n@@ -0,0 +1 @@\n+x\n"}),
]

FAILURES = [
    ("skillcell_json-query_query", {"json": '{"a": ', "path": "a"},
     "not valid JSON: Expecting value at line 1, column 7"),
    ("skillcell_json-query_query", {"json": "{}", "path": "a["}, "'[' is never closed"),
    ("skillcell_json-query_query", {"json": "{}", "path": "a[x]"}, "not an index"),
    ("skillcell_json-query_format", {"json": "nope"}, "not valid JSON"),
    ("skillcell_csv-stats", {"csv": 'a,"b\n1,2'}, "cannot parse the CSV"),
    ("skillcell_regex-extract", {"pattern": "(", "text": "x"},
     "invalid pattern: missing ), unterminated subpattern at position 0"),
    ("skillcell_regex-extract_replace", {"pattern": "a", "text": "a", "replacement": r"\2"},
     "invalid group reference 2"),
    ("skillcell_hash-encode_decode", {"text": "zz", "encoding": "hex"}, "not valid hex"),
    ("skillcell_hash-encode_decode", {"text": "a$b", "encoding": "base64"}, "not valid base64"),
    ("skillcell_hash-encode_hash", {"text": "xyz", "input_encoding": "hex"}, "not valid hex"),
    ("skillcell_time-convert", {"time": "yesterday"}, "'yesterday' is not `now`"),
    ("skillcell_time-convert", {"time": "now", "to": ["Mars/Olympus"]},
     "unknown time zone 'Mars/Olympus'"),
    ("skillcell_time-convert", {"time": "now", "from_zone": "+25:00"}, "not a valid UTC offset"),
    ("skillcell_csv-to-json", {"csv": ""}, "the CSV is empty"),
]
# fmt: on


def _id(sample: Sample) -> str:
    first = next(iter(sample.args.values()))
    return f"{sample.tool}-{str(first)[:20]!r}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_shipped_bundle_loads_with_no_warnings(bundle: Path) -> None:
    skill = load_skill(bundle)
    assert skill.warnings == ()
    assert skill.name == f"skillcell/{bundle.name}"
    assert skill.manifest.name == "skill.package.yml"
    assert skill.description and skill.license and skill.tags and skill.version
    assert skill.image == "python:3.11-slim"
    assert skill.timeout is not None
    assert {"title", "readOnlyHint", "openWorldHint", "idempotentHint", "destructiveHint"} <= set(
        skill.annotations
    )
    assert (bundle / "main.py").is_file()


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_shipped_bundle_documents_inputs_outputs_and_an_example(
    bundle: Path, catalog: Catalog
) -> None:
    docs = load_skill(bundle).docs
    for heading in ("## Inputs", "## Outputs", "## Example"):
        assert heading in docs
    for tool in catalog.tools.values():
        if tool.skill.path == bundle:
            assert tool.name in docs, f"SKILL.md never names the tool {tool.name}"


def test_the_shipped_skills_make_a_catalog_with_no_problems(catalog: Catalog) -> None:
    assert catalog.problems == []
    assert len(catalog.skills) >= 6
    assert catalog.documents == []


def test_every_shipped_tool_has_a_sample_run(catalog: Catalog) -> None:
    file_tools = {"skillcell_csv-stats_file"}  # need a real file: see the tests below
    assert set(catalog.tools) == {s.tool for s in SAMPLES} | file_tools


def test_every_shipped_input_is_described(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        for name, prop in tool.script.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}: {name} has no description"
            assert "type" in prop or "enum" in prop, f"{tool.name}: {name} has no type"


def test_shipped_tools_run_without_network_and_pure_ones_are_cached(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        assert network_allowed(tool) is False, tool.name
        assert cacheable(tool) is tool.annotations["idempotentHint"], tool.name
    assert cacheable(catalog.lookup("skillcell_time-convert")) is False  # "now" changes


@pytest.mark.parametrize("sample", SAMPLES, ids=[_id(s) for s in SAMPLES])
def test_a_shipped_script_prints_the_expected_result(
    sample: Sample, catalog: Catalog, tmp_path: Path
) -> None:
    if sample.needs_tzdata and not HAS_TZDATA:
        pytest.skip("no IANA time zone data on this host")
    tool = catalog.lookup(sample.tool)
    before = bundle_digest(tool.skill.path)
    done = run(tool, sample.args, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert bundle_digest(tool.skill.path) == before, "a script wrote into its read-only bundle"
    if sample.stdout is not None:
        assert done.stdout == sample.stdout
        return
    out = json.loads(done.stdout)
    schema = tool.script.output_schema
    assert schema is not None
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(out)
    assert {k: out[k] for k in sample.expect} == sample.expect
    if sample.check is not None:
        assert sample.check(out, tmp_path) is not False


def test_the_csv_file_tool_reads_a_file_argument(catalog: Catalog, tmp_path: Path) -> None:
    data = tmp_path / "people.csv"
    data.write_text("\ufeff" + PEOPLE, encoding="utf-8")
    tool = catalog.lookup("skillcell_csv-stats_file")
    assert tool.script.input_files == ("path",)
    done = run(tool, {"path": str(data)}, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [c["name"] for c in out["columns"]] == ["name", "age", "score"]
    assert out["rows"] == 4


def test_the_csv_file_tool_reports_a_missing_file(catalog: Catalog, tmp_path: Path) -> None:
    done = run(
        catalog.lookup("skillcell_csv-stats_file"), {"path": str(tmp_path / "no.csv")}, tmp_path
    )
    assert done.returncode == 1
    assert (
        done.stderr
        == f"csv-stats: error: cannot read {tmp_path / 'no.csv'}: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("tool", "args", "message"), FAILURES, ids=[f"{t}-{m[:30]}" for t, _, m in FAILURES]
)
def test_a_shipped_script_rejects_bad_input_with_a_message_and_no_traceback(
    tool: str, args: dict[str, Any], message: str, catalog: Catalog, tmp_path: Path
) -> None:
    if "time zone" in message and not HAS_TZDATA:
        pytest.skip("no IANA time zone data on this host")
    done = run(catalog.lookup(tool), args, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, "one line that says what is wrong"


def test_csv_to_json_without_a_writable_outputs_directory_says_so(
    catalog: Catalog, tmp_path: Path
) -> None:
    done = run(catalog.lookup("skillcell_csv-to-json"), {"csv": "a\n1\n"}, tmp_path / "missing")
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
