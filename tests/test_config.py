"""Configuration: the YAML file, profiles, SKILLCELL_* overrides and precise errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skillcell.config import DEFAULT_FALLBACKS, Config, config_path, load_config
from skillcell.errors import ConfigError
from skillcell.plan import Limits


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may read the real user's config file or home."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_with_no_config_file_the_defaults_apply(tmp_path: Path) -> None:
    config = load_config(environ={})
    assert config.source == "defaults"
    assert (config.profile, config.engine) == ("development", None)
    assert config.fallbacks == DEFAULT_FALLBACKS
    assert not config.allow_unsandboxed and not config.strict_images and config.cache_enabled
    assert config.limits == Limits(memory=512 << 20, cpus=1.0, pids=256)
    assert config.output_root == tmp_path / "xdg-data" / "skillcell" / "outputs"
    assert config.cache_dir == tmp_path / "xdg-cache" / "skillcell"
    assert config.concurrency == 8
    assert (config.log_level, config.docker_user) == ("warning", "65534:65534")


def test_the_config_file_is_found_in_the_user_config_dir_or_skillcell_config(
    tmp_path: Path,
) -> None:
    assert config_path({}) == tmp_path / "xdg-config" / "skillcell" / "config.yaml"
    assert config_path({"SKILLCELL_CONFIG": "/etc/x.yaml"}) == Path("/etc/x.yaml")
    default = tmp_path / "xdg-config" / "skillcell" / "config.yaml"
    default.parent.mkdir(parents=True)
    default.write_text("concurrency: 3\n")
    assert load_config(environ={}).concurrency == 3
    other = write(tmp_path, "concurrency: 5\n")
    assert load_config(environ={"SKILLCELL_CONFIG": str(other)}).concurrency == 5


FULL = """\
profile: development
engine: docker
fallbacks: [bwrap, docker]
allow_unsandboxed: true
strict_images: true
accept_risks: {dagger: [network-off, memory-limit]}
limits: {timeout: 2m, memory: 1Gi, cpus: 2, pids: 100, stdout: 64Ki, stderr: 32Ki,
         outputs: 10Mi, tmp: 5Mi}
output_root: ~/results
input_roots: [~/data, /srv/shared]
concurrency: 4
cache: {enabled: false, dir: ~/cache, max_size: 2Gi}
docker: {host: "unix:///run/podman.sock", user: "1000:1000"}
bwrap: {uid: 1000}
log_level: DEBUG
"""


def test_every_config_file_key_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    home = tmp_path / "home"
    config = load_config(path, environ={})
    assert config == Config(
        source=str(path),
        profile="development",
        engine="docker",
        fallbacks=("bwrap", "docker"),
        allow_unsandboxed=True,
        strict_images=True,
        accept_risks={"dagger": frozenset({"network-off", "memory-limit"})},
        limits=Limits(
            timeout=120.0,
            memory=2**30,
            cpus=2.0,
            pids=100,
            stdout=64 * 2**10,
            stderr=32 * 2**10,
            outputs=10 * 2**20,
            tmp=5 * 2**20,
        ),  # fmt: skip
        output_root=home / "results",
        input_roots=(home / "data", Path("/srv/shared")),
        concurrency=4,
        cache_enabled=False,
        cache_dir=home / "cache",
        cache_max_bytes=2 * 2**30,
        docker_host="unix:///run/podman.sock",
        docker_user="1000:1000",
        bwrap_uid=1000,
        log_level="debug",
    )


def test_limits_not_mentioned_keep_their_defaults_and_memory_can_be_unlimited(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, "limits: {memory: null, timeout: 5}\n"), environ={})
    assert config.limits == Limits(timeout=5.0, memory=None, cpus=1.0, pids=256)


def test_the_production_profile_turns_on_strict_images_and_off_unsandboxed_runs(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, "profile: production\n"), environ={})
    assert (config.profile, config.strict_images, config.allow_unsandboxed) == (
        "production", True, False,
    )  # fmt: skip


def test_skillcell_profile_production_overrides_a_permissive_file(tmp_path: Path) -> None:
    path = write(tmp_path, "allow_unsandboxed: true\n")
    config = load_config(path, environ={"SKILLCELL_PROFILE": "production"})
    assert (config.profile, config.strict_images, config.allow_unsandboxed) == (
        "production", True, False,
    )  # fmt: skip


ENV = [
    ({"SKILLCELL_ENGINE": "bwrap"}, "engine", "bwrap"),
    ({"SKILLCELL_FALLBACKS": " docker, bwrap ,"}, "fallbacks", ("docker", "bwrap")),
    ({"SKILLCELL_ALLOW_UNSANDBOXED": "yes"}, "allow_unsandboxed", True),
    ({"SKILLCELL_ALLOW_UNSANDBOXED": "1"}, "allow_unsandboxed", True),
    ({"SKILLCELL_STRICT_IMAGES": "off"}, "strict_images", False),
    ({"SKILLCELL_CACHE": "0"}, "cache_enabled", False),
    ({"SKILLCELL_CACHE": ""}, "cache_enabled", False),
    ({"SKILLCELL_OUTPUT_ROOT": "/srv/out"}, "output_root", Path("/srv/out")),
    ({"SKILLCELL_CACHE_DIR": "/srv/cache"}, "cache_dir", Path("/srv/cache")),
    ({"SKILLCELL_CONCURRENCY": "16"}, "concurrency", 16),
    ({"SKILLCELL_LOG_LEVEL": "INFO"}, "log_level", "info"),
    ({"SKILLCELL_DOCKER_HOST": "tcp://10.0.0.1:2375"}, "docker_host", "tcp://10.0.0.1:2375"),
    ({"SKILLCELL_TIMEOUT": "90s"}, "limits", Limits(timeout=90.0, memory=1 << 30, cpus=1.0,
                                                    pids=256)),
    ({"OTHER_ENGINE": "local"}, "engine", "docker"),
]  # fmt: skip


@pytest.mark.parametrize(("environ", "attribute", "value"), ENV, ids=[str(e[0]) for e in ENV])
def test_skillcell_environment_variables_override_the_file(
    tmp_path: Path, environ: dict[str, str], attribute: str, value: Any
) -> None:
    path = write(tmp_path, "engine: docker\nlimits: {memory: 1Gi}\n")
    assert getattr(load_config(path, environ=environ), attribute) == value


FILE_ERRORS = [
    ("engines: [docker]\n", "engines", "unknown key (known: accept_risks, allow_unsandboxed, "
     "bwrap, cache, concurrency, docker, engine, fallbacks, input_roots, limits, log_level, "
     "output_root, profile, strict_images)"),
    ("profile: staging\n", "profile", "'staging' is not one of development, production"),
    ("engine: podman\n", "engine", "'podman' is not one of dagger, docker, bwrap, local"),
    ("fallbacks: docker\n", "fallbacks", "must be a list of engine names"),
    ("fallbacks: [docker, vm]\n", "fallbacks", "'vm' is not one of"),
    ("allow_unsandboxed: 'yes'\n", "allow_unsandboxed", "must be true or false"),
    ("strict_images: 1\n", "strict_images", "must be true or false"),
    ("accept_risks: [dagger]\n", "accept_risks", "must map an engine to a list of policies"),
    ("accept_risks: {vm: [image]}\n", "accept_risks.vm", "'vm' is not one of"),
    ("accept_risks: {dagger: [no-network]}\n", "accept_risks.dagger",
     "policies are network-off, network-on, memory-limit, cpu-limit, pids-limit, image"),
    ("limits: 5\n", "limits", "must be a mapping"),
    ("limits: {timeout: soon}\n", "limits.timeout", "'soon' is not a duration like 30s or 2m"),
    ("limits: {timeout: 0}\n", "limits.timeout", "is not a duration"),
    ("limits: {memory: lots}\n", "limits.memory", "'lots' is not a size like 64Mi or 1Gi"),
    ("limits: {stdout: 0}\n", "limits.stdout", "0 is not a size"),
    ("limits: {cpus: -1}\n", "limits.cpus", "-1 is not a positive number"),
    ("limits: {cpus: two}\n", "limits.cpus", "'two' is not a positive number"),
    ("limits: {pids: 0}\n", "limits.pids", "0 is not a positive whole number"),
    ("limits: {disk: 1Gi}\n", "limits.disk", "unknown limit"),
    ("output_root: 5\n", "output_root", "must be a path"),
    ("output_root: ''\n", "output_root", "must be a path"),
    ("input_roots: /data\n", "input_roots", "must be a list of directories"),
    ("input_roots: [/a, 3]\n", "input_roots", "must be a path"),
    ("concurrency: 0\n", "concurrency", "0 is not a positive whole number"),
    ("concurrency: many\n", "concurrency", "'many' is not a whole number"),
    ("concurrency: 1.5\n", "concurrency", "1.5 is not a positive whole number"),
    ("concurrency: true\n", "concurrency", "True is not a positive whole number"),
    ("cache: on\n", "cache", "must be a mapping"),
    ("cache: {size: 1Gi}\n", "cache.size", "unknown key (known: dir, enabled, max_size)"),
    ("cache: {enabled: 'no'}\n", "cache.enabled", "must be true or false"),
    ("cache: {max_size: big}\n", "cache.max_size", "'big' is not a size"),
    ("docker: {socket: x}\n", "docker.socket", "unknown key (known: host, image, user)"),
    ("bwrap: {uid: 0}\n", "bwrap.uid", "0 is not a positive whole number"),
    ("bwrap: {gid: 1}\n", "bwrap.gid", "unknown key (known: uid)"),
    ("log_level: loud\n", "log_level", "'loud' is not one of debug, info, warning, error"),
    ("- a\n- b\n", "", "must be a mapping"),
    ("engine: [\n", "", "cannot read: while parsing a flow"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    FILE_ERRORS,
    ids=[f"{e[1] or 'file'}-{e[0][:24]}" for e in FILE_ERRORS],
)
def test_a_bad_config_file_names_the_file_the_key_and_the_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    error = caught.value
    assert (error.source, error.key) == (str(path), key)
    assert reason in error.reason
    assert str(error) == (f"{path}: {key}: " if key else f"{path}: ") + error.reason


ENV_ERRORS = [
    ({"SKILLCELL_PROFILE": "test"}, "profile", "'test' is not one of development, production"),
    ({"SKILLCELL_ENGINE": "vm"}, "SKILLCELL_ENGINE", "'vm' is not one of"),
    ({"SKILLCELL_FALLBACKS": "docker,vm"}, "SKILLCELL_FALLBACKS", "'vm' is not one of"),
    ({"SKILLCELL_ALLOW_UNSANDBOXED": "maybe"}, "SKILLCELL_ALLOW_UNSANDBOXED",
     "'maybe' is not a boolean (1/0, true/false)"),
    ({"SKILLCELL_STRICT_IMAGES": "2"}, "SKILLCELL_STRICT_IMAGES", "is not a boolean"),
    ({"SKILLCELL_CACHE": "sometimes"}, "SKILLCELL_CACHE", "is not a boolean"),
    ({"SKILLCELL_OUTPUT_ROOT": ""}, "SKILLCELL_OUTPUT_ROOT", "must be a path"),
    ({"SKILLCELL_CONCURRENCY": "-2"}, "SKILLCELL_CONCURRENCY", "is not a positive whole number"),
    ({"SKILLCELL_CONCURRENCY": "lots"}, "SKILLCELL_CONCURRENCY", "is not a whole number"),
    ({"SKILLCELL_LOG_LEVEL": "trace"}, "SKILLCELL_LOG_LEVEL", "'trace' is not one of"),
    ({"SKILLCELL_TIMEOUT": "forever"}, "limits.timeout", "'forever' is not a duration"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("environ", "key", "reason"), ENV_ERRORS, ids=[next(iter(e[0])) for e in ENV_ERRORS]
)
def test_a_bad_environment_override_names_the_variable_and_the_reason(
    environ: dict[str, str], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    error = caught.value
    assert (error.source, error.key) == ("environment", key)
    assert reason in error.reason


@pytest.mark.parametrize(
    "environ", [{}, {"SKILLCELL_CONFIG": "/nonexistent/config.yaml"}], ids=["path", "env"]
)
def test_an_explicitly_named_config_file_that_does_not_exist_is_an_error(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    path = None if environ else tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="no such file"):
        load_config(path, environ=environ)


def test_a_boolean_cpu_limit_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="limits.cpus"):
        load_config(write(tmp_path, "limits: {cpus: true}\n"), environ={})


@pytest.mark.parametrize(
    ("config", "preferred", "order"),
    [
        (Config(), None, ["dagger", "docker", "bwrap"]),
        (Config(), "bwrap", ["bwrap", "dagger", "docker"]),
        (Config(engine="docker"), None, ["docker", "dagger", "bwrap"]),
        (Config(engine="docker"), "local", ["local", "docker", "dagger", "bwrap"]),
        (Config(fallbacks=(), allow_unsandboxed=True), None, ["local"]),
        (Config(fallbacks=("bwrap",), allow_unsandboxed=True), "local", ["local", "bwrap"]),
    ],
    ids=["fallbacks", "tool-choice-first", "configured-engine-next", "tool-local-is-explicit",
         "local-only-when-allowed", "local-not-repeated"],
)  # fmt: skip
def test_engines_are_tried_tool_choice_then_default_then_fallbacks(
    config: Config, preferred: str | None, order: list[str]
) -> None:
    assert config.engine_order(preferred) == order


@pytest.mark.parametrize(
    "source",
    ["file", "env"],
    ids=["allowed-in-the-file", "allowed-by-the-environment"],
)
def test_the_production_profile_refuses_unsandboxed_runs(tmp_path, source):
    path = tmp_path / "config.yaml"
    if source == "file":
        path.write_text("profile: production\nallow_unsandboxed: true\n")
        environ = {}
    else:
        path.write_text("profile: production\n")
        environ = {"SKILLCELL_ALLOW_UNSANDBOXED": "1"}
    with pytest.raises(ConfigError, match="allow_unsandboxed: the production profile"):
        load_config(path, environ=environ)
