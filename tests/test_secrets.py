"""Secrets and declared environment: where values come from, and scrubbing them out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from skillcell.errors import SecretMissing
from skillcell.manifest import Skill, load_skill
from skillcell.plan import Secrets
from skillcell.secrets import SCRUBBED, from_headers, resolve_env, scrub

ENV = """\
name: acme/api
env:
  API_KEY: {secret: true, description: The key}
  REGION: {default: eu}
  DEBUG: {}
  OPTIONAL_TOKEN: {secret: true, required: false}
  ACCOUNT: {required: true}
"""


@pytest.fixture
def skill(tmp_path: Path) -> Skill:
    (tmp_path / "skill.yml").write_text(ENV, encoding="utf-8")
    return load_skill(tmp_path)


META = {"API_KEY": "from-meta"}
HEADERS = {"API_KEY": "from-headers", "ACCOUNT": "acct-headers"}
SERVER = {"API_KEY": "from-server", "ACCOUNT": "acct-server", "REGION": "us", "PATH": "/bin"}

ORDER = [
    ([META, HEADERS, SERVER], "from-meta", "acct-headers", "us"),
    ([HEADERS, SERVER], "from-headers", "acct-headers", "us"),
    ([SERVER], "from-server", "acct-server", "us"),
    ([{"API_KEY": "k", "ACCOUNT": "a"}], "k", "a", "eu"),
]


@pytest.mark.parametrize(
    ("sources", "key", "account", "region"),
    ORDER,
    ids=["meta-first", "headers-before-server", "server-env", "default-last"],
)
def test_the_most_specific_source_wins_and_defaults_come_last(
    skill: Skill, sources: list[dict[str, str]], key: str, account: str, region: str
) -> None:
    env, secrets = resolve_env(skill, "acme_api", sources)
    assert dict(secrets) == {"API_KEY": key}
    assert env == {"ACCOUNT": account, "REGION": region}


def test_only_declared_variables_are_passed_and_secrets_are_kept_apart(skill: Skill) -> None:
    sources = [{"API_KEY": "k", "ACCOUNT": "a", "DEBUG": "1", "OPTIONAL_TOKEN": "t",
                "UNDECLARED": "x"}]  # fmt: skip
    env, secrets = resolve_env(skill, "acme_api", sources)
    assert env == {"ACCOUNT": "a", "DEBUG": "1", "REGION": "eu"}
    assert dict(secrets) == {"API_KEY": "k", "OPTIONAL_TOKEN": "t"}


def test_a_source_holding_none_does_not_hide_a_later_one(skill: Skill) -> None:
    sources = [{"API_KEY": None}, {"API_KEY": "k", "ACCOUNT": "a"}]  # type: ignore[dict-item]
    assert dict(resolve_env(skill, "acme_api", sources)[1]) == {"API_KEY": "k"}


@pytest.mark.parametrize(
    ("sources", "missing"),
    [([{}], ("API_KEY", "ACCOUNT")), ([{"ACCOUNT": "a"}], ("API_KEY",)),
     ([{"API_KEY": "k"}], ("ACCOUNT",))],
    ids=["both", "secret", "required-plain-variable"],
)  # fmt: skip
def test_a_missing_required_value_is_an_error_that_names_it_and_says_where_to_set_it(
    skill: Skill, sources: list[dict[str, str]], missing: tuple[str, ...]
) -> None:
    with pytest.raises(SecretMissing) as caught:
        resolve_env(skill, "acme_api", sources)
    assert caught.value.names == missing
    assert str(caught.value).startswith(f"acme_api needs the secret(s) {', '.join(missing)}: ")
    assert "X-Skillcell-Secret-<NAME>" in str(caught.value)


def test_a_missing_secret_error_never_shows_a_supplied_value(skill: Skill) -> None:
    with pytest.raises(SecretMissing) as caught:
        resolve_env(skill, "acme_api", [{"API_KEY": "hunter2-value"}])
    assert "hunter2-value" not in str(caught.value)


def test_secret_values_never_show_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secrets = Secrets({"API_KEY": "hunter2"})
    logging.getLogger("test").warning("secrets: %s %r", secrets, secrets)
    assert repr(secrets) == str(secrets) == "Secrets(API_KEY=***)"
    assert "hunter2" not in caplog.text
    assert secrets["API_KEY"] == "hunter2"


HEADER_CASES = [
    ({"X-Skillcell-Secret-API_KEY": "v"}, {"API_KEY": "v"}),
    ({"x-skillcell-secret-api-key": "v"}, {"API_KEY": "v"}),
    ({"X-SKILLCELL-SECRET-Token": "t", "Authorization": "Bearer x", "X-Other": "o"},
     {"TOKEN": "t"}),
    ({}, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "secrets"),
    HEADER_CASES,
    ids=["exact", "lowercase-dashes", "others-ignored", "none"],
)
def test_secret_headers_map_to_upper_case_variable_names(
    headers: dict[str, str], secrets: dict[str, str]
) -> None:
    assert from_headers(headers) == secrets


SCRUB = [
    ("token abcdef and abc", {"A": "abc", "B": "abcdef"}, f"token {SCRUBBED} and {SCRUBBED}",
     "longest-first"),
    ("k=s3cret s3cret", {"K": "s3cret"}, f"k={SCRUBBED} {SCRUBBED}", "every-occurrence"),
    ("nothing to hide", {"K": ""}, "nothing to hide", "empty-values-ignored"),
    ("multi\nline secret\nhere", {"K": "line secret\nhere"}, f"multi\n{SCRUBBED}", "multiline"),
    ("plain", {}, "plain", "no-secrets"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secrets", "clean"), [s[:3] for s in SCRUB],
                         ids=[s[3] for s in SCRUB])  # fmt: skip
def test_scrubbing_replaces_every_secret_value_whole(
    text: str, secrets: dict[str, str], clean: str
) -> None:
    assert scrub(text, secrets) == clean
    assert scrub(text, Secrets(secrets)) == clean
