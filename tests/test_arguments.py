"""Argument validation: JSON Schema 2020-12, every problem at once, defaults filled, no coercion."""

from __future__ import annotations

from typing import Any

import pytest

from skillcell.arguments import check_schema, fill_defaults, validate_arguments
from skillcell.errors import ArgumentError

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["q"],
    "properties": {
        "q": {"type": "string"},
        "n": {"type": "integer", "minimum": 1, "default": 10},
        "ratio": {"type": "number"},
        "on": {"type": "boolean", "default": False},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        "opts": {
            "type": "object",
            "properties": {
                "depth": {"type": "integer", "default": 2},
                "deep": {"type": "object", "properties": {"x": {"type": "string", "default": "y"}}},
            },
        },
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "mail": {"type": "string", "format": "email"},
        "site": {"type": "string", "format": "uri"},
        "ip": {"type": "string", "format": "ipv4"},
        "id": {"type": "string", "format": "uuid"},
    },
}


def problems(args: Any, schema: dict[str, Any] = SCHEMA) -> list[tuple[str, str]]:
    with pytest.raises(ArgumentError) as caught:
        validate_arguments("acme_tool", schema, args)
    assert caught.value.tool == "acme_tool"
    return list(caught.value.problems)


def test_valid_arguments_come_back_with_every_default_filled() -> None:
    assert validate_arguments("t", SCHEMA, {"q": "x", "opts": {"deep": {}}}) == {
        "q": "x",
        "n": 10,
        "on": False,
        "mode": "fast",
        "tags": [],
        "opts": {"depth": 2, "deep": {"x": "y"}},
    }


def test_given_values_are_never_replaced_by_defaults() -> None:
    args = {"q": "x", "n": 3, "on": True, "opts": {"depth": 0}}
    out = validate_arguments("t", SCHEMA, args)
    assert {key: out[key] for key in args} == args


def test_a_filled_default_is_a_copy_not_the_schema_itself() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tags": {"type": "array", "default": []}},
    }
    validate_arguments("t", schema, {})["tags"].append("mutated")
    assert schema["properties"]["tags"]["default"] == []


def test_the_callers_arguments_are_not_modified() -> None:
    args = {"q": "x"}
    validate_arguments("t", SCHEMA, args)
    assert args == {"q": "x"}


def test_every_problem_is_reported_at_once_with_its_json_path() -> None:
    found = problems({"n": "3", "ratio": "1.5", "on": "true", "mode": "medium", "tags": ["a", 2],
                      "opts": {"depth": "deep"}, "extra": 1})  # fmt: skip
    assert found == [
        ("$", "Additional properties are not allowed ('extra' was unexpected)"),
        ("$", "'q' is a required property"),
        ("$.mode", "'medium' is not one of ['fast', 'slow']"),
        ("$.n", "'3' is not of type 'integer'"),
        ("$.on", "'true' is not of type 'boolean'"),
        ("$.opts.depth", "'deep' is not of type 'integer'"),
        ("$.ratio", "'1.5' is not of type 'number'"),
        ("$.tags[1]", "2 is not of type 'string'"),
    ]


def test_the_error_message_names_the_tool_and_lists_every_problem() -> None:
    with pytest.raises(ArgumentError) as caught:
        validate_arguments("acme_tool", SCHEMA, {"n": 0})
    assert str(caught.value) == (
        "invalid arguments for acme_tool: $: 'q' is a required property; "
        "$.n: 0 is less than the minimum of 1"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"q": 3}, [("$.q", "3 is not of type 'string'")]),
        ({"q": "x", "n": "3"}, [("$.n", "'3' is not of type 'integer'")]),
        ({"q": "x", "n": 2.5}, [("$.n", "2.5 is not of type 'integer'")]),
        ({"q": "x", "on": 1}, [("$.on", "1 is not of type 'boolean'")]),
        ({"q": "x", "ratio": True}, [("$.ratio", "True is not of type 'number'")]),
    ],
    ids=["int-for-string", "string-for-integer", "float-for-integer", "int-for-boolean",
         "bool-for-number"],
)  # fmt: skip
def test_values_are_never_coerced_to_the_declared_type(
    args: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert problems(args) == expected


def test_a_whole_float_counts_as_an_integer_as_json_schema_says() -> None:
    assert validate_arguments("t", SCHEMA, {"q": "x", "n": 3.0})["n"] == 3.0


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("when", "yesterday", "2024-03-10T14:30:00Z"),
        ("day", "2024-13-01", "2024-02-29"),
        ("mail", "not-an-address", "ann@example.org"),
        ("site", "not a uri", "https://example.org/x"),
        ("ip", "300.1.1.1", "10.0.0.1"),
        ("id", "1234", "3f8e6a38-3a7e-4a7e-9d63-6f7fa1e0b7a2"),
    ],
    ids=["date-time", "date", "email", "uri", "ipv4", "uuid"],
)
def test_string_formats_are_checked(field: str, bad: str, good: str) -> None:
    fmt = SCHEMA["properties"][field]["format"]
    assert problems({"q": "x", field: bad}) == [(f"$.{field}", f"{bad!r} is not a {fmt!r}")]
    assert validate_arguments("t", SCHEMA, {"q": "x", field: good})[field] == good


@pytest.mark.parametrize("value", ["a\x00b", "\x00"], ids=["inside", "alone"])
def test_a_string_with_a_nul_byte_is_rejected_because_argv_cannot_carry_it(value: str) -> None:
    assert problems({"q": value}) == [("$.q", "contains a NUL byte")]


@pytest.mark.parametrize(
    ("args", "kind"),
    [([], "an array"), ("x", "a string"), (None, "null"), (True, "a boolean"), (3, "int")],
    ids=["array", "string", "null", "boolean", "number"],
)
def test_arguments_that_are_not_an_object_are_rejected(args: Any, kind: str) -> None:
    assert problems(args) == [("$", f"arguments must be an object, not {kind}")]


def test_a_very_long_problem_is_shortened() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "integer"}}}
    [(path, message)] = problems({"s": "x" * 500}, schema)
    assert path == "$.s"
    assert len(message) == 200
    assert message.endswith("...")


def test_fill_defaults_leaves_non_objects_alone() -> None:
    assert fill_defaults({"properties": {"a": {"default": 1}}}, [1]) == [1]
    assert fill_defaults({"properties": {"a": True}}, {}) == {}
    assert fill_defaults({}, {"a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object"}, None),
        ({"type": "object", "properties": {"x": True}}, None),
        ([], "must be a JSON Schema object"),
        ("object", "must be a JSON Schema object"),
        ({"type": "thing"}, "not a valid JSON Schema: 'thing' is not valid under any of the "
                           "given schemas at $.type"),
        ({"properties": {"x": {"minimum": "1"}}},
         "not a valid JSON Schema: '1' is not of type 'number' at $.properties.x.minimum"),
        ({"required": "x"}, "not a valid JSON Schema: 'x' is not of type 'array' at $.required"),
    ],
    ids=["ok", "boolean-subschema", "list", "string", "bad-type", "bad-nested", "bad-required"],
)  # fmt: skip
def test_check_schema_says_why_a_schema_is_unusable(schema: Any, problem: str | None) -> None:
    assert check_schema(schema) == problem
