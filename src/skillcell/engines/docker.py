"""Docker engine: one container per call through the Docker Engine API (Docker or Podman).

The sandbox is exactly these settings (`_container_spec`), each one tested in
tests/engines/test_docker.py:

- no network (`network_mode=none`) unless the plan allows it, then Docker's default
  `bridge` network, never `host` (which would hand the tool the host's loopback services);
- memory with no extra swap, CPUs, pids, no core dumps, no single file beyond the outputs cap;
- a read-only root, /tmp a size-capped tmpfs, every capability dropped, no-new-privileges,
  an unprivileged user (config `docker.user`, default 65534:65534), an init that reaps;
- the bundle read-only at /workspace, args.json and the declared input files read-only at
  /inputs, /outputs a fresh staging directory published atomically after the run;
- argv passed as-is (no shell), stdout and stderr read live into separate capped buffers,
  the container killed on timeout or cancellation and always removed.

Build hooks run once per (base image, hooks, bundle digest) in a container with network,
committed as `skillcell-build/<key>`; calls then run that image, whose /workspace holds the
bundle plus whatever the hooks made, read-only like the rest of its root filesystem.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .. import outputs
from ..config import Config
from ..errors import EngineError, EngineUnavailable
from ..plan import INPUTS, OUTPUTS, WORKSPACE, ExecutionPlan, Limits, RunResult
from . import Availability, Engine, Progress, no_progress

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "python:3.11-slim"
DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SDK_MISSING = "Docker SDK not installed (pip install 'skillcell[docker]')"
PROBE_TIMEOUT = 3.0  # seconds: available() must never hang a `tools/call` or `doctor`
PROBE_TTL = 5.0  # seconds an availability answer is reused
API_TIMEOUT = 60  # seconds per API request (waits on the container pass no timeout)
POOL_SIZE = 32  # each running call holds an attach stream and a wait
DRAIN_AFTER_KILL = 5.0  # seconds to collect the last output once the container is killed
RETRY_REMOVALS = 10.0  # seconds aclose() spends on removals that failed before
# Free space under which the output filesystem counts as full after a call: a write that
# failed for want of space leaves (almost) none, so the staged outputs may be cut short.
FULL_DISK_MARGIN = 64 << 10
BUILD_TIMEOUT = 600.0
BUILD_REPO = "skillcell-build"
# Podman, once given any ulimit, drops its configured defaults and asks for open files and
# processes above what a daemon without CAP_SYS_RESOURCE may grant; these are the values
# ENVIRONMENT.md's containers.conf uses. (RLIMIT_NPROC counts every process of the uid
# host-wide; the sandbox's own bound is pids_limit.) Docker keeps its defaults for the rest.
PODMAN_ULIMITS = {"nofile": 4096, "nproc": 4096}
# The same directories the bundle digest skips (catalog.bundle_digest): the hooks remake them.
SKIP_DIRS = frozenset({".git", "__pycache__", "node_modules", ".venv", "venv"})

LABEL = "skillcell"
LABEL_CALL = "skillcell.call"
LABEL_TOOL = "skillcell.tool"
LABEL_OWNER = "skillcell.owner"
LABEL_ROLE = "skillcell.role"

# Runs each hook in its own `sh -c`, stops at the first failure and says which one it was.
HOOK_SCRIPT = """i=0
for hook in "$@"; do
  i=$((i + 1))
  echo "[skillcell] build hook $i: $hook" >&2
  sh -c "$hook" || { rc=$?; echo "[skillcell] build hook $i failed (exit $rc)" >&2; exit $rc; }
done"""

T = TypeVar("T")


class DockerEngine(Engine):
    name = "docker"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        # Config has no `docker.image` key yet; read it if a later Config grows one.
        self.default_image: str = config.docker_image
        self.host: str = config.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self.user: str = config.docker_user
        self._uid = _numeric_id(self.user, 0)
        self._gid = _numeric_id(self.user, 1)
        self._owner = owner_label()
        self._probe: tuple[float, Availability] | None = None
        self._client: Any = None
        self._product = ""
        self._bridge: bool | None = None
        self._init: bool | None = None
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._swept = False
        # Containers whose removal failed (the daemon was gone): retried by the next run()
        # and by aclose(), since _sweep spares every container of a live owner.
        self._unremoved: set[str] = set()
        self._unremoved_lock = threading.Lock()

    # -- availability -------------------------------------------------------------------

    def available(self) -> Availability:
        now = time.monotonic()
        if self._probe is None or now - self._probe[0] > PROBE_TTL:
            self._probe = (now, self._check())
        return self._probe[1]

    def _check(self) -> Availability:
        try:
            import docker  # noqa: F401
        except ImportError:
            return Availability(False, SDK_MISSING)
        try:
            client = self._connect(PROBE_TIMEOUT)
            try:
                product = _product(client.version())
            finally:
                client.close()
        except Exception as exc:  # any failure to talk to the daemon means "not here"
            return Availability(False, f"no Docker/Podman API at {self.host}: {_short(exc)}")
        return Availability(True, f"{product} at {self.host}")

    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        return set()  # network-off, memory, cpus, pids and the image are all enforced

    # -- run ----------------------------------------------------------------------------

    async def run(self, plan: ExecutionPlan, progress: Progress = no_progress) -> RunResult:
        started = time.monotonic()
        with self._sdk_errors(plan):
            api = await _thread(self._api)
            await self._retry_removals(api)
            if not self._swept:
                self._swept = True
                await _thread(self._sweep, api)
            image, baked = await self._image(api, plan, progress)
            await progress("image ready")
            return await self._run_container(api, plan, image, baked, progress, started)

    @contextlib.contextmanager
    def _sdk_errors(self, plan: ExecutionPlan) -> Iterator[None]:
        """The SDK's and requests' errors as the project's own, at the edge."""
        try:
            import docker.errors
            import requests.exceptions
        except ImportError as exc:
            raise EngineUnavailable(self.name, SDK_MISSING) from exc
        try:
            yield
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if isinstance(exc, requests.exceptions.ConnectionError):
                raise EngineUnavailable(
                    self.name,
                    f"lost the Docker/Podman API at {self.host} during {plan.tool}: "
                    f"{_short(exc)}; check that the daemon is running (`docker info`) "
                    "and call again",
                ) from exc
            raise EngineError(self.name, f"{plan.tool}: {_short(exc)}") from exc

    async def _run_container(
        self,
        api: Any,
        plan: ExecutionPlan,
        image: Mapping[str, Any],
        baked: bool,
        progress: Progress,
        started: float,
    ) -> RunResult:
        notes: list[str] = []
        container: str | None = None
        stream: Any = None
        staging = inputs = None
        try:
            try:
                staging = self._staging(plan)
                inputs = inputs_dir(plan)  # known before it exists: removed whatever happens
                # A worker thread: copying large input files must not stall the event loop.
                await anyio.to_thread.run_sync(write_inputs, plan)
            except OSError as exc:
                raise EngineError(
                    self.name,
                    f"{plan.tool}: cannot prepare the call's directories under "
                    f"{plan.output_dir.parent}: {exc.strerror or exc}",
                ) from exc
            if not baked:
                self._check_bundle(plan.bundle)
            if plan.network and not await _thread(self._has_bridge, api):
                notes.append(
                    "network was allowed, but this Docker daemon has no bridge network "
                    "(dockerd --bridge=none): the tool ran without one"
                )
            init = await _thread(self._has_init, api, image["Id"])
            spec = self._container_spec(api, plan, image, baked, inputs, staging, init)
            created = await _thread(functools.partial(api.create_container, **spec))
            container = created["Id"]
            notes.extend(f"docker: {w}" for w in created.get("Warnings") or () if w)
            log.debug("call %s (%s): container %s", plan.call_id, plan.tool, container[:12])
            stream = await _thread(
                functools.partial(api.attach, container, stream=True, demux=True, logs=False)
            )
            # The tool's time starts when we ask for the start, however long the daemon takes.
            deadline = anyio.current_time() + plan.limits.timeout
            await _thread(api.start, container)
            exit_code, timed_out, out, err = await self._supervise(
                api, container, stream, plan, deadline
            )
            if timed_out:
                exit_code = 124
                notes.append(f"timed out after {plan.limits.timeout:g}s: the container was killed")
            elif exit_code != 0:
                state = (await _thread(api.inspect_container, container)).get("State") or {}
                exit_code, note = _exit_note(exit_code, bool(state.get("OOMKilled")), plan)
                if note:
                    notes.append(note)
            await progress("exporting")
            if self._out_of_space(staging):
                # A write into /outputs may have failed half-way: a cut-short file must not
                # be exported as if it were the tool's result.
                outputs.discard(staging)
                notes.append(
                    f"the output filesystem ({plan.output_dir.parent}) is out of space: the "
                    "tool's outputs may be incomplete, so none were exported; free some space "
                    "and call again"
                )
                export = outputs.Export((), ())
            else:
                export = outputs.publish(staging, plan.output_dir, plan.limits.outputs)
            notes.extend(export.notes)
            return RunResult(
                exit_code=exit_code,
                stdout=out.text(),
                stderr=err.text(),
                engine=self.name,
                duration_ms=(time.monotonic() - started) * 1000,
                outputs=export.files,
                output_dir=plan.output_dir if export.files else None,
                stdout_truncated=out.truncated,
                stderr_truncated=err.truncated,
                timed_out=timed_out,
                notes=tuple(notes),
            )
        finally:
            # Shielded: a cancelled call must still kill and remove its container.
            with anyio.CancelScope(shield=True):
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.close()
                if container is not None:
                    await anyio.to_thread.run_sync(self._remove_or_remember, api, container)
                if inputs is not None:
                    shutil.rmtree(inputs, ignore_errors=True)
                if staging is not None:
                    outputs.discard(staging)  # a no-op once published

    async def _supervise(
        self, api: Any, container: str, stream: Any, plan: ExecutionPlan, deadline: float
    ) -> tuple[int, bool, outputs.CappedBuffer, outputs.CappedBuffer]:
        """Read both streams until EOF and wait for the exit, killing it at the timeout."""
        out = outputs.CappedBuffer(plan.limits.stdout)
        err = outputs.CappedBuffer(plan.limits.stderr)
        drained = anyio.Event()
        status: dict[str, Any] = {}
        # An error inside the task group would leave it wrapped in an ExceptionGroup, which
        # run()'s mapping (_sdk_errors) never matches: keep it and raise it bare afterwards.
        failures: list[Exception] = []

        async def drain() -> None:
            try:
                await _thread(_pump, stream, out, err)
            except Exception as exc:
                failures.append(exc)
            finally:
                drained.set()

        timed_out = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            try:
                with anyio.move_on_after(deadline - anyio.current_time()) as limit:
                    await drained.wait()
                    status = await _thread(api.wait, container)
                timed_out = limit.cancelled_caught
                if timed_out:
                    await _thread(_kill, api, container)
                with anyio.move_on_after(DRAIN_AFTER_KILL):
                    await drained.wait()
            except Exception as exc:  # the daemon went away, most likely
                failures.append(exc)
                tg.cancel_scope.cancel()  # stop waiting on the reader too
            if not drained.is_set():  # the daemon kept the stream open; stop reading
                with contextlib.suppress(Exception):
                    stream.close()
        if failures:
            raise failures[0]
        return int(status.get("StatusCode", -1)), timed_out, out, err

    def _container_spec(
        self,
        api: Any,
        plan: ExecutionPlan,
        image: Mapping[str, Any],
        baked: bool,
        inputs: Path,
        staging: Path,
        init: bool,
    ) -> dict[str, Any]:
        from docker.types import LogConfig, Mount, Ulimit

        mounts = [
            Mount(INPUTS, str(inputs), type="bind", read_only=True),
            Mount(OUTPUTS, str(staging), type="bind", read_only=False),
        ]
        if not baked:
            mounts.insert(0, Mount(WORKSPACE, str(plan.bundle), type="bind", read_only=True))
        limits = plan.limits
        host_config = api.create_host_config(
            # "bridge" is Docker's NAT'd default network (Podman maps it to its own): the
            # container gets its own loopback, so the host's 127.0.0.1 services stay out of
            # reach. "host" would hand them over, so it is never used. A dockerd started with
            # --bridge=none (as on our CI) accepts "bridge" and gives only `lo`: a tool
            # allowed the network then has none, which the result says (_has_bridge).
            network_mode="bridge" if plan.network else "none",
            mem_limit=limits.memory,
            memswap_limit=limits.memory,  # equal to the memory limit: no swap on top
            nano_cpus=int(limits.cpus * 1e9) if limits.cpus else None,
            pids_limit=limits.pids,
            read_only=True,
            tmpfs={"/tmp": _tmpfs_options(limits.tmp)},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=init or None,
            ulimits=[Ulimit(name=n, soft=v, hard=v) for n, v in self._ulimits(limits).items()],
            mounts=mounts,
            # Output is read from the attach stream; "none" keeps the daemon from also
            # writing a flood of it to disk.
            log_config=LogConfig(type="none"),
        )
        return {
            "image": image["Id"],
            "entrypoint": [plan.argv[0]],  # argv exactly: no image entrypoint, no shell
            "command": list(plan.argv[1:]),
            "user": self.user,
            "working_dir": WORKSPACE,
            "environment": self._environment(plan, image),
            "labels": self._labels(plan, "run"),
            "host_config": host_config,
            "stdin_open": False,
            "tty": False,
        }

    def _out_of_space(self, staging: Path) -> bool:
        """Whether the filesystem of `staging` is (nearly) full after the tool ran."""
        if os.path.ismount(staging):
            return False  # its own tmpfs, sized to the cap: full means over the cap (publish)
        try:
            st = os.statvfs(staging)
        except OSError:
            return False
        # Root may write into the blocks reserved for it; any other user may not.
        free = st.f_bfree if self._uid == 0 else st.f_bavail
        return free * st.f_frsize < FULL_DISK_MARGIN or bool(st.f_files and not st.f_favail)

    def _remove_or_remember(self, api: Any, container: str) -> None:
        """Remove `container`; if the daemon cannot be asked now, try again later."""
        if not _remove(api, container):
            with self._unremoved_lock:
                self._unremoved.add(container)

    def _remove_unremoved(self, api: Any, containers: Sequence[str]) -> None:
        for container in containers:
            if _remove(api, container):
                with self._unremoved_lock:
                    self._unremoved.discard(container)

    async def _retry_removals(self, api: Any) -> None:
        """Remove the containers whose removal failed earlier (the daemon came back)."""
        with self._unremoved_lock:
            pending = sorted(self._unremoved)
        if pending:
            log.info("docker: retrying the removal of %d container(s)", len(pending))
            await _thread(self._remove_unremoved, api, pending)

    def _staging(self, plan: ExecutionPlan) -> Path:
        """The directory mounted at /outputs, writable by the sandbox user."""
        staging = outputs.staging_dir(
            plan.output_dir, owner_uid=self._uid, cap=plan.limits.outputs
        )
        if os.geteuid() not in (0, self._uid):
            # Not root, so no chown to the sandbox user (or its uid is a name): open it up.
            staging.chmod(0o777)
        return staging

    def _environment(
        self, plan: ExecutionPlan, image: Mapping[str, Any], *, secrets: bool = True
    ) -> dict[str, str]:
        env = {"HOME": "/tmp", "LANG": "C.UTF-8"}
        image_env = (image.get("Config") or {}).get("Env") or []
        if not any(e.startswith("PATH=") for e in image_env):
            env["PATH"] = DEFAULT_PATH  # otherwise the image's own PATH stands
        env.update(plan.env)
        if secrets:
            env.update(plan.secrets)  # into the container's environment only, never logged
        return env

    def _labels(self, plan: ExecutionPlan, role: str) -> dict[str, str]:
        return {
            LABEL: "1",
            LABEL_CALL: plan.call_id,
            LABEL_TOOL: plan.tool,
            LABEL_OWNER: self._owner,
            LABEL_ROLE: role,
        }

    def _check_bundle(self, bundle: Path) -> None:
        """Fail early and clearly when the sandbox user could not even list the bundle."""
        try:
            st = bundle.stat()
        except OSError as exc:
            raise EngineError(self.name, f"bundle {bundle} is not readable: {exc}") from exc
        if self._uid == 0 or (self._uid is not None and st.st_uid == self._uid):
            return
        others = stat.S_IROTH | stat.S_IXOTH
        group = stat.S_IRGRP | stat.S_IXGRP
        if st.st_mode & others == others:
            return
        if self._gid is not None and st.st_gid == self._gid and st.st_mode & group == group:
            return
        raise EngineError(
            self.name,
            f"bundle {bundle} (mode {stat.S_IMODE(st.st_mode):o}) is not readable by the "
            f"sandbox user {self.user}: make it world-readable (chmod -R o+rX) "
            "or set docker.user in the config",
        )

    # -- images -------------------------------------------------------------------------

    async def _image(
        self, api: Any, plan: ExecutionPlan, progress: Progress
    ) -> tuple[dict[str, Any], bool]:
        """The image to run and whether it holds the bundle (built with hooks)."""
        name = plan.image or self.default_image
        image = await _thread(_inspect_image, api, name)
        if image is None:
            await progress(f"pulling {name}")
            image = await _thread(self._pull, api, name)
        if not plan.build_hooks:
            return image, False
        digest = plan.bundle_digest or await _thread(_digest, plan.bundle)
        tag = build_tag(image["Id"], plan.build_hooks, digest)
        built = await _thread(_inspect_image, api, tag)
        if built is None:
            await progress(f"running build hooks ({len(plan.build_hooks)})")
            try:
                built = await _thread(self._build, api, plan, image, tag)
            except BaseException:
                # A cancelled build keeps running in its worker thread: kill it now.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_remove_call, api, plan.call_id)
                raise
        return built, True

    def _pull(self, api: Any, name: str) -> dict[str, Any]:
        from docker.utils import parse_repository_tag

        repo, tag = parse_repository_tag(name)
        problem = ""
        try:
            for event in api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                problem = event.get("error") or problem
        except Exception as exc:
            problem = _short(exc)
        image = _inspect_image(api, name)
        if image is None:
            raise EngineError(
                self.name,
                f"image {name} is not available locally and could not be pulled: "
                f"{problem or 'unknown error'}; build or load it first",
            )
        return image

    def _build(
        self, api: Any, plan: ExecutionPlan, base: Mapping[str, Any], tag: str
    ) -> dict[str, Any]:
        """Run the build hooks once over a copy of the bundle and commit the result as `tag`."""
        import requests.exceptions
        from docker.types import LogConfig

        with self._build_locks.setdefault(tag, threading.Lock()):
            existing = _inspect_image(api, tag)
            if existing is not None:  # another call built it while we waited
                return existing
            config = base.get("Config") or {}
            host_config = api.create_host_config(
                # Hooks fetch dependencies: network on, still no host network.
                network_mode="bridge",
                security_opt=["no-new-privileges"],
                pids_limit=max(plan.limits.pids or 0, 1024),
                init=self._has_init(api, base["Id"]) or None,
                log_config=LogConfig(type="json-file", config={"max-size": "1m"}),
            )
            container = api.create_container(
                base["Id"],
                entrypoint=["sh", "-c", HOOK_SCRIPT, "skillcell-build"],
                command=list(plan.build_hooks),
                working_dir=WORKSPACE,
                labels=self._labels(plan, "build"),
                host_config=host_config,
            )["Id"]
            try:
                with _bundle_tar(plan.bundle) as archive:
                    if not api.put_archive(container, "/", archive):
                        raise EngineError(self.name, f"could not copy {plan.bundle} into the build")
                api.start(container)
                try:
                    code = int(api.wait(container, timeout=BUILD_TIMEOUT).get("StatusCode", -1))
                except requests.exceptions.RequestException as exc:
                    raise EngineError(
                        self.name,
                        f"build hooks of {plan.tool} did not finish within {BUILD_TIMEOUT:g}s",
                    ) from exc
                if code != 0:
                    tail = api.logs(container, stdout=True, stderr=True, tail=40)
                    raise EngineError(
                        self.name,
                        f"a build hook of {plan.tool} failed (exit {code}); nothing was cached. "
                        f"Last lines:\n{tail.decode('utf-8', errors='replace').rstrip()}",
                    )
                repo, _, version = tag.partition(":")
                api.commit(
                    container,
                    repository=repo,
                    tag=version,
                    # Give the image back its own entrypoint and command, not the hook runner.
                    changes=[
                        f"ENTRYPOINT {json.dumps(config.get('Entrypoint') or [])}",
                        f"CMD {json.dumps(config.get('Cmd') or [])}",
                    ],
                )
            finally:
                self._remove_or_remember(api, container)
            built = _inspect_image(api, tag)
            if built is None:
                raise EngineError(self.name, f"the committed build image {tag} vanished")
            return built

    # -- client, sweeping ---------------------------------------------------------------

    def _connect(self, timeout: float) -> Any:
        import docker

        if self.config.docker_host:
            return docker.DockerClient(
                base_url=self.config.docker_host, timeout=timeout, max_pool_size=POOL_SIZE
            )
        return docker.from_env(timeout=timeout, max_pool_size=POOL_SIZE)

    def _api(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import docker  # noqa: F401
                except ImportError as exc:
                    raise EngineUnavailable(self.name, SDK_MISSING) from exc
                try:
                    client = self._connect(API_TIMEOUT)
                    self._product = _product(client.version())
                except Exception as exc:
                    raise EngineUnavailable(
                        self.name, f"no Docker/Podman API at {self.host}: {_short(exc)}"
                    ) from exc
                self._client = client
            return self._client.api

    def _has_bridge(self, api: Any) -> bool:
        if self._bridge is None:
            # Podman's compat API maps "bridge" to its own default network: trust it.
            podman = self._product.lower().startswith("podman")
            self._bridge = podman or any(n.get("Name") == "bridge" for n in api.networks())
        return self._bridge

    def _ulimits(self, limits: Limits) -> dict[str, int]:
        ulimits = {"core": 0, "fsize": _fsize(limits.outputs)}
        if self._product.lower().startswith("podman"):
            ulimits.update(PODMAN_ULIMITS)
        return ulimits

    def _has_init(self, api: Any, image_id: str) -> bool:
        """Whether the daemon can inject an init (docker-init; Podman needs catatonit).

        Without one the tool is pid 1: orphans go unreaped until the container ends, which
        the timeout bounds. Podman fails at create when catatonit is missing, so try once.
        """
        if self._init is None:
            import docker.errors

            if not self._product.lower().startswith("podman"):
                self._init = True
            else:
                try:
                    probe = api.create_container(
                        image_id,
                        entrypoint=["true"],
                        labels={LABEL: "1", LABEL_OWNER: self._owner, LABEL_ROLE: "probe"},
                        host_config=api.create_host_config(init=True, network_mode="none"),
                    )["Id"]
                    self._remove_or_remember(api, probe)
                    self._init = True
                except docker.errors.APIError as exc:
                    log.warning(
                        "docker: no init at %s, running without: %s", self.host, _short(exc)
                    )
                    self._init = False
        return self._init

    def _sweep(self, api: Any) -> None:
        """Remove containers left behind by skillcell processes that no longer exist.

        A process removes its own containers in `finally`; only a crash (SIGKILL, power
        loss) leaves one behind. Each container names its owner process by host, boot,
        pid and that pid's start time, so pid reuse and reboots cannot fool the check,
        and a container of any live process (this one's other engines included, or one
        still reading its exit code) is never touched. Containers of other hosts sharing
        the daemon are left to those hosts.
        """
        try:
            found = api.containers(all=True, filters={"label": f"{LABEL}=1"})
        except Exception as exc:
            log.warning("docker: could not list leftover containers: %s", _short(exc))
            return
        for container in found:
            if owner_alive((container.get("Labels") or {}).get(LABEL_OWNER, ""), self._owner):
                continue
            log.info("docker: removing leftover container %s", container["Id"][:12])
            _remove(api, container["Id"])

    # -- exec, close --------------------------------------------------------------------

    async def interactive(self, plan: ExecutionPlan, command: Sequence[str]) -> int:
        """`skillcell exec`: the docker CLI attached to our terminal, in the plan's sandbox."""
        argv = await _thread(self.exec_argv, plan, command)
        inputs, staging = exec_dirs(plan)
        try:
            done = await anyio.to_thread.run_sync(functools.partial(
                subprocess.run, argv, env={**os.environ, **plan.secrets}, check=False))  # fmt: skip
            outputs.publish(staging, plan.output_dir, plan.limits.outputs)
            return done.returncode
        finally:
            shutil.rmtree(inputs, ignore_errors=True)
            outputs.discard(staging)

    def exec_argv(self, plan: ExecutionPlan, command: Sequence[str]) -> list[str]:
        """`docker run` of `command` in the plan's sandbox, for `skillcell exec`.

        Secrets are passed by name only (`-e NAME`): the caller runs the command with
        plan.secrets in its environment, so no value shows in `ps`. The caller also owns
        the directories made here: publish or discard `staging` and remove `inputs_dir`
        (see `exec_dirs`).
        """
        if not command:
            raise EngineError(self.name, "exec needs a command to run")
        with self._sdk_errors(plan):
            return self._exec_argv(plan, command)

    def _exec_argv(self, plan: ExecutionPlan, command: Sequence[str]) -> list[str]:
        api = self._api()
        name = plan.image or self.default_image
        image = _inspect_image(api, name) or self._pull(api, name)
        baked = False
        if plan.build_hooks:
            tag = build_tag(
                image["Id"], plan.build_hooks, plan.bundle_digest or _digest(plan.bundle)
            )
            image = _inspect_image(api, tag) or self._build(api, plan, image, tag)
            baked = True
        else:
            self._check_bundle(plan.bundle)
        staging = self._staging(plan)
        try:
            inputs = write_inputs(plan)
        except BaseException:
            outputs.discard(staging)  # the caller never learns of it
            raise
        limits = plan.limits
        argv = ["docker"]
        if self.config.docker_host:
            argv += ["--host", self.config.docker_host]
        argv += ["run", "--rm", "-i"]
        if sys.stdin.isatty():
            argv.append("-t")  # -t without a terminal makes the docker CLI refuse to start
        argv += ["--network", "bridge" if plan.network else "none"]
        if limits.memory:
            argv += ["--memory", str(limits.memory), "--memory-swap", str(limits.memory)]
        if limits.cpus:
            argv += ["--cpus", f"{limits.cpus:g}"]
        if limits.pids:
            argv += ["--pids-limit", str(limits.pids)]
        argv += [
            "--read-only",
            "--tmpfs", f"/tmp:{_tmpfs_options(limits.tmp)}",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--log-driver", "none",
            "--user", self.user,
            "--workdir", WORKSPACE,
        ]  # fmt: skip
        for kind, bound in self._ulimits(limits).items():
            argv += ["--ulimit", f"{kind}={bound}:{bound}"]
        if self._has_init(api, image["Id"]):
            argv.append("--init")
        if not baked:
            argv += ["--mount", _mount_flag(plan.bundle, WORKSPACE, read_only=True)]
        argv += ["--mount", _mount_flag(inputs, INPUTS, read_only=True)]
        argv += ["--mount", _mount_flag(staging, OUTPUTS, read_only=False)]
        for key, value in self._environment(plan, image, secrets=False).items():
            argv += ["--env", f"{key}={value}"]
        for key in plan.secrets:
            argv += ["--env", key]
        for key, value in self._labels(plan, "exec").items():
            argv += ["--label", f"{key}={value}"]
        argv += ["--entrypoint", command[0], image["Id"], *command[1:]]
        return argv

    async def aclose(self) -> None:
        with self._lock:
            client = self._client
        if client is not None:
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(RETRY_REMOVALS),
                contextlib.suppress(Exception),
            ):
                await self._retry_removals(client.api)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await anyio.to_thread.run_sync(client.close)


# -- helpers (pure or blocking; the engine calls the blocking ones in worker threads) ------


async def _thread(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking SDK call in a worker thread; cancellation stops waiting at once."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args), abandon_on_cancel=True)


def _pump(stream: Any, out: outputs.CappedBuffer, err: outputs.CappedBuffer) -> None:
    """Copy the demultiplexed attach stream into the capped buffers (chunks, never whole)."""
    with contextlib.suppress(OSError):  # the stream was closed under us: stop reading
        for chunk_out, chunk_err in stream:
            if chunk_out:
                out.write(chunk_out)
            if chunk_err:
                err.write(chunk_err)


def _kill(api: Any, container: str) -> None:
    with contextlib.suppress(Exception):  # already gone or already exited
        api.kill(container)


def _remove(api: Any, container: str) -> bool:
    """Force-remove `container`; whether it is gone (removed now or already)."""
    try:
        api.remove_container(container, force=True, v=True)
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 404:
            return True
        log.warning("docker: could not remove container %s: %s", container[:12], _short(exc))
        return False
    return True


def _remove_call(api: Any, call_id: str) -> None:
    with contextlib.suppress(Exception):
        for container in api.containers(all=True, filters={"label": f"{LABEL_CALL}={call_id}"}):
            _remove(api, container["Id"])


def _inspect_image(api: Any, name: str) -> dict[str, Any] | None:
    import docker.errors

    try:
        return dict(api.inspect_image(name))
    except docker.errors.ImageNotFound:
        return None


def _digest(bundle: Path) -> str:
    from ..catalog import bundle_digest

    return bundle_digest(bundle)


def build_tag(image_id: str, hooks: Sequence[str], bundle_digest: str) -> str:
    """The tag of the image that the build hooks make from `image_id` for this bundle."""
    recipe = json.dumps([image_id, list(hooks), bundle_digest]).encode()
    return f"{BUILD_REPO}/{hashlib.sha256(recipe).hexdigest()[:16]}:latest"


@contextlib.contextmanager
def _bundle_tar(bundle: Path) -> Iterator[Any]:
    """The bundle as /workspace in a tar file: root-owned, readable by every user."""

    def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if SKIP_DIRS.intersection(PurePosixPath(info.name).parts[1:]):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode |= 0o555 if info.isdir() else 0o444
        return info

    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            tar.add(str(bundle), arcname=WORKSPACE.lstrip("/"), filter=normalize)
        archive.seek(0)
        yield archive


def inputs_dir(plan: ExecutionPlan) -> Path:
    """The host directory mounted at /inputs, beside the call's outputs staging directory."""
    return plan.output_dir.parent / outputs.STAGING / f"{plan.output_dir.name}.inputs"


def exec_dirs(plan: ExecutionPlan) -> tuple[Path, Path]:
    """(inputs, staging) that `exec_argv` created and its caller must clean up."""
    return inputs_dir(plan), plan.output_dir.parent / outputs.STAGING / plan.output_dir.name


def write_inputs(plan: ExecutionPlan) -> Path:
    """args.json and copies of the declared input files, readable by the sandbox user.

    Only the very files the planner validated are copied (outputs.copy_input): one swapped
    for a symlink or FIFO since is refused with ArgumentError. On any failure the directory
    is removed before the error propagates.
    """
    root = inputs_dir(plan)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        root.chmod(0o755)
        args = root / "args.json"
        args.write_bytes(plan.args_json)
        args.chmod(0o644)
        for item in plan.input_files:
            rel = PurePosixPath(item.sandbox).relative_to(INPUTS)
            if ".." in rel.parts or not rel.parts:
                raise EngineError("docker", f"input file path {item.sandbox!r} leaves {INPUTS}")
            target = root.joinpath(*rel.parts)
            for parent in reversed(target.relative_to(root).parents):
                (root / parent).mkdir(exist_ok=True)
                (root / parent).chmod(0o755)
            try:
                outputs.copy_input(plan.tool, item, target)
            except OSError as exc:
                raise EngineError(
                    "docker", f"cannot stage input file {item.host}: {exc.strerror or exc}"
                ) from exc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def owner_label(pid: int | None = None) -> str:
    """Who owns a container: host, boot id, pid and the pid's start time."""
    pid = os.getpid() if pid is None else pid
    return "/".join((socket.gethostname(), _boot_id(), str(pid), _start_time(pid)))


def owner_alive(owner: str, me: str) -> bool:
    """Whether the process named by an owner label may still be running a call."""
    parts = owner.split("/")
    mine = me.split("/")
    if len(parts) != 4 or not parts[2].isdigit():
        return False  # not made by a skillcell process we can identify
    host, boot, pid, start = parts
    if host != mine[0]:
        return True  # another machine's process: not ours to judge
    if boot != mine[1]:
        return False  # made before the last reboot
    if start:
        return _start_time(int(pid)) == start
    try:
        os.kill(int(pid), 0)  # no /proc: a bare liveness check
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line[stat_line.rfind(")") + 2 :].split()[19]  # field 22: starttime


def _numeric_id(user: str, index: int) -> int | None:
    parts = user.split(":")
    if index >= len(parts):
        parts = [parts[0], parts[0]]  # "1000" means uid and gid 1000 for our purposes
    return int(parts[index]) if parts[index].isdigit() else None


def _fsize(outputs_cap: int) -> int:
    """The largest file the sandbox may write: one byte over the outputs cap, so that a
    file cut short by the limit is still over the cap and never exported as if complete."""
    return outputs_cap + 1


def _tmpfs_options(size: int) -> str:
    return f"rw,nosuid,nodev,size={size},mode=1777"


def _mount_flag(source: Path, target: str, *, read_only: bool) -> str:
    """A --mount value; csv-quoted so paths with commas or quotes stay one field."""
    fields = ["type=bind", f"source={source}", f"target={target}"]
    if read_only:
        fields.append("readonly")
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    return line.getvalue()


def _exit_note(code: int, oom_killed: bool, plan: ExecutionPlan) -> tuple[int, str]:
    limit = plan.limits.memory
    if oom_killed:
        return 137, f"killed: out of memory (limit {_size(limit) if limit else 'none'})"
    if code == 137:
        # Podman reports OOM kills as 137 with OOMKilled false.
        if limit:
            return code, f"killed (137), probably out of memory (limit {_size(limit)})"
        return code, "killed (137)"
    return code, ""


def _size(n: int) -> str:
    for unit, shift in (("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n} bytes"


def _product(version: Mapping[str, Any]) -> str:
    for component in version.get("Components") or ():
        if "podman" in str(component.get("Name", "")).lower():
            return f"Podman {component.get('Version', '?')}"
    return f"Docker {version.get('Version', '?')}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
