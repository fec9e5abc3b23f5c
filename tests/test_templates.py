"""Command templates: split once like a shell would, rendered to argv with no shell at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillcell.arguments import validate_arguments
from skillcell.templates import (
    Placeholder,
    TemplateError,
    Token,
    infer_schema,
    parse_template,
    render_value,
)

RENDER = [
    # quoting follows POSIX shell rules; a placeholder substitutes inside its own word only
    ("echo {{msg}}", {"msg": "hello world"}, ["echo", "hello world"], "spaces-stay-in-one-entry"),
    ("echo {{msg}}", {"msg": "$(id); `id` | cat > /x && rm -rf ~"},
     ["echo", "$(id); `id` | cat > /x && rm -rf ~"], "shell-syntax-in-a-value-is-inert"),
    ("echo {{msg}}", {"msg": "a\nb\tc  d"}, ["echo", "a\nb\tc  d"], "whitespace-is-kept"),
    ("echo 'a b' \"c d\" e\\ f", {}, ["echo", "a b", "c d", "e f"], "posix-quoting"),
    ('echo "pre {{x}} post"', {"x": "a b"}, ["echo", "pre a b post"], "placeholder-inside-quotes"),
    ("echo '{{x}}'", {"x": "v"}, ["echo", "v"], "single-quotes-still-substitute"),
    ("echo 'it''s'", {}, ["echo", "its"], "adjacent-quotes-join"),
    ("run --name={{x}}", {"x": "-v --help"}, ["run", "--name=-v --help"], "option-equals-value"),
    ("cp {{src}} {{src}}.bak", {"src": "f"}, ["cp", "f", "f.bak"], "a-placeholder-used-twice"),
    ('echo "{{ x }}"', {"x": "v"}, ["echo", "v"], "spaces-inside-quoted-braces"),
    ("echo {{a}}{{b}}", {"a": "x", "b": "y"}, ["echo", "xy"], "two-placeholders-in-one-word"),
    ("echo {{x}}", {"x": ""}, ["echo", ""], "an-empty-string-is-an-empty-entry"),
    ("echo {{my-param}}", {"my-param": "v"}, ["echo", "v"], "dashes-in-names"),
    ("echo $HOME ${HOME} ~ *.txt", {}, ["echo", "$HOME", "${HOME}", "~", "*.txt"],
     "no-expansion-or-globbing"),
    # an absent optional value drops its token, and a bare option right before it
    ("grep --max-count {{n}} {{pattern}}", {"pattern": "p"}, ["grep", "p"], "drops-long-option"),
    ("grep -m {{n}} {{pattern}}", {"pattern": "p", "n": None}, ["grep", "p"], "none-is-absent"),
    ("grep --max-count={{n}} {{pattern}}", {"pattern": "p"}, ["grep", "p"], "drops-joined-option"),
    ("cmd --fixed=1 {{a}}", {}, ["cmd", "--fixed=1"], "an-option-with-a-value-stays"),
    ("cmd plain {{a}}", {}, ["cmd", "plain"], "a-plain-word-stays"),
    ("cmd {{a}} --tail", {}, ["cmd", "--tail"], "an-option-after-stays"),
    ("cmd --x {{a}}-{{b}}", {"a": "1"}, ["cmd"], "one-missing-part-drops-the-word"),
    ("cmd --n {{n}}", {"n": 0}, ["cmd", "--n", "0"], "zero-is-a-value"),
    ("cmd --f {{f}}", {"f": False}, ["cmd", "--f", "false"], "false-is-a-value"),
    # canonical text of non-string values
    ("n {{v}}", {"v": 3}, ["n", "3"], "int"),
    ("n {{v}}", {"v": -7}, ["n", "-7"], "negative-int"),
    ("n {{v}}", {"v": 2.5}, ["n", "2.5"], "float"),
    ("n {{v}}", {"v": 1e20}, ["n", "1e+20"], "large-float"),
    ("n {{v}}", {"v": True}, ["n", "true"], "true"),
    ("n {{v}}", {"v": [1, "a", None, 1.5]}, ["n", '[1,"a",null,1.5]'], "array-compact-json"),
    ("n {{v}}", {"v": {"b": 1, "a": [True]}}, ["n", '{"a":[true],"b":1}'], "object-sorted-keys"),
    ("n {{v}}", {"v": {"k": "é"}}, ["n", '{"k":"é"}'], "non-ascii-unescaped"),
    ("n {{v}}", {"v": "3"}, ["n", "3"], "a-string-is-verbatim"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "args", "argv"), [r[:3] for r in RENDER], ids=[r[3] for r in RENDER]
)
def test_a_template_renders_each_token_to_exactly_one_argv_entry(
    command: str, args: dict[str, Any], argv: list[str]
) -> None:
    assert parse_template(command).render(args) == argv


@given(st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_any_text_value_lands_unchanged_as_exactly_one_entry(value: str) -> None:
    template = parse_template("prog --x={{v}} {{v}}")
    assert template.render({"v": value}) == ["prog", "--x=" + value, value]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.lists(JSON, max_size=4) | st.dictionaries(st.text(), JSON, max_size=4))
def test_an_array_or_object_value_renders_as_json_that_reads_back_equal(value: Any) -> None:
    [entry] = parse_template("{{v}}").render({"v": value})
    assert json.loads(entry) == value


def test_spaces_inside_unquoted_braces_are_allowed() -> None:
    assert parse_template("echo {{ x }}").render({"x": "v"}) == ["echo", "v"]


def test_defaults_from_the_schema_fill_a_template_before_rendering() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "default": 5}, "q": {"type": "string"}},
    }
    args = validate_arguments("t", schema, {"q": "x"})
    assert parse_template("head -n {{n}} {{q}}").render(args) == ["head", "-n", "5", "x"]


@pytest.mark.parametrize(
    ("value", "text"),
    [("s", "s"), (0, "0"), (10**30, str(10**30)), (0.1, "0.1"), (-0.0, "-0.0"), (True, "true"),
     (False, "false"), (None, "null"), ([], "[]"), ({}, "{}")],
    ids=repr,
)  # fmt: skip
def test_render_value_gives_the_canonical_text_of_a_value(value: Any, text: str) -> None:
    assert render_value(value) == text


def test_legacy_templates_read_dollar_brace_placeholders_only() -> None:
    template = parse_template("echo ${a} {{b}} $c", legacy=True)
    assert template.placeholders == ("a",)
    assert template.render({"a": "x"}) == ["echo", "x", "{{b}}", "$c"]


def test_placeholders_are_listed_once_in_order_of_first_use() -> None:
    template = parse_template("cmd {{b}} --a={{a}} {{b}}-{{c}}")
    assert template.placeholders == ("b", "a", "c")
    assert template.tokens[2] == Token(("--a=", Placeholder("a")))


@pytest.mark.parametrize(
    ("word", "is_option"),
    [("-v", True), ("--limit", True), ("--", True), ("-", False), ("--a=1", False),
     ("value", False), ("{{x}}", False)],
    ids=str,
)  # fmt: skip
def test_only_a_bare_dash_word_counts_as_an_option(word: str, is_option: bool) -> None:
    assert parse_template(f"cmd {word}").tokens[1].is_option is is_option


def test_a_template_without_a_schema_infers_one_required_string_per_placeholder() -> None:
    assert infer_schema(parse_template("cp {{src}} {{dst}} {{src}}")) == {
        "type": "object",
        "properties": {"src": {"type": "string"}, "dst": {"type": "string"}},
        "required": ["src", "dst"],
        "additionalProperties": False,
    }


ERRORS = [
    ("", "the command is empty"),
    ("   ", "the command is empty"),
    ("a | b", "uses shell syntax '|', but commands run without a shell"),
    ("a || b", "uses shell syntax '||'"),
    ("a & b", "uses shell syntax '&'"),
    ("a && b", "uses shell syntax '&&'"),
    ("a ; b", "uses shell syntax ';'"),
    ("a;b", "uses shell syntax ';'"),
    ("a > f", "uses shell syntax '>'"),
    ("a >> f", "uses shell syntax '>>'"),
    ("a 2>&1", "uses shell syntax '>&'"),
    ("a < f", "uses shell syntax '<'"),
    ("(a)", "uses shell syntax '('"),
    ("echo $(id)", "uses shell syntax '('"),
    ("echo `id`", "uses backquotes, but commands run without a shell"),
    ("echo 'x", "cannot split the command: No closing quotation"),
    ("echo {{x", "malformed placeholder in '{{x': use {{name}}"),
    ("echo {{1x}}", "malformed placeholder in '{{1x}}'"),
]


@pytest.mark.parametrize(("command", "message"), ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_a_malformed_or_shell_command_is_rejected_with_the_reason(
    command: str, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(command)
    assert message in str(caught.value)


def test_shell_syntax_errors_suggest_an_explicit_shell() -> None:
    with pytest.raises(
        TemplateError, match=r"write `sh -c '\.\.\. \"\$1\" \.\.\.' sh \{\{param\}\}`"
    ):
        parse_template("a | b")


def test_a_shell_operator_error_does_not_claim_the_command_cannot_be_split() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template("a | b")
    assert str(caught.value).startswith("uses shell syntax '|'")




@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("awk -F'|' {{f}}", ["awk", "-F|", "F"]),
        ("sed 's/a/b/;s/c/d/' {{f}}", ["sed", "s/a/b/;s/c/d/", "F"]),
        ("grep -E 'a|b' {{f}}", ["grep", "-E", "a|b", "F"]),
        ("echo 'a > b' \"x&y\" a\\;b {{f}}", ["echo", "a > b", "x&y", "a;b", "F"]),
        pytest.param("tr a '|' {{f}}", ["tr", "a", "|", "F"]),
        pytest.param("echo '<tag>' {{f}}", ["echo", "<tag>", "F"]),
        pytest.param("printf '%s;' ';' {{f}}", ["printf", "%s;", ";", "F"]),
        pytest.param("echo '`' {{f}}", ["echo", "`", "F"]),
    ],
    ids=["awk-pipe-separator", "sed-semicolons", "grep-alternation", "mixed-quoting",
         "quoted-pipe-word", "quoted-angle-brackets", "quoted-semicolon-word",
         "single-quoted-backquote"],
)  # fmt: skip
def test_quoted_shell_characters_are_plain_argument_text(command: str, argv: list[str]) -> None:
    assert parse_template(command).render({"f": "F"}) == argv
