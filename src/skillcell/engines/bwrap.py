"""bubblewrap: a sandbox on the host's own root, no daemon and no image.

The policy, line by line (each is a flag below, and each is tested):
- only /usr (and the merged-usr links), a few /etc files and a synthetic passwd are visible,
  read-only; not /root, /home, /var, /run, the project checkout or any socket;
- the bundle read-only at /workspace (the workdir), inputs read-only under /inputs, /tmp a
  size-capped tmpfs, /outputs the only host directory that can be written;
- every namespace unshared, the network too: a tool the plan lets on the network gets its own
  namespace with user-mode networking (slirp4netns, see slirp.py), never the host's, so the
  host's loopback services and abstract unix sockets stay out of reach; no further user
  namespaces, all capabilities dropped, a new session (no TIOCSTI into our terminal);
- the root and /dev read-only (remounted after the mounts): nothing lands outside /tmp,
  /dev/shm (a tmpfs as small as /tmp) and /outputs;
- the process runs as an unprivileged uid, also when skillcell runs as root (setpriv drops to
  it before bwrap starts);
- environment: PATH, HOME, LANG, TMPDIR plus the declared variables and secrets, nothing else;
- memory, pids and CPU through a per-call cgroup; core dumps off; no file larger than the
  outputs cap; the timeout kills the whole tree, and bwrap dies with us.
The manifest's `from` image cannot be honoured on the host's root: the result says so, and a
config with strict_images refuses this engine for such tools.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from ..errors import EngineError
from ..outputs import copy_input, discard, publish, staging_dir
from ..plan import CPUS, IMAGE, INPUTS, NETWORK_ON, OUTPUTS, WORKSPACE, ExecutionPlan, RunResult
from . import Availability, Engine, Progress, no_progress, slirp
from .cgroups import Cgroup, Cgroups
from .process import run_process

ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates",
    "ca-certificates.conf", "hosts", "nsswitch.conf", "localtime", "timezone",
    "mime.types", "python3", "python3.11",
)  # fmt: skip
ROOT_DIRS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
# A policy of open-world plans this engine cannot enforce without slirp4netns: network access
# that does not include the host's own loopback services. (Selection skips bwrap for it once
# the planner lists it in ExecutionPlan.required for network plans; until then run() refuses.)
PATH = "/usr/local/bin:/usr/bin:/bin"

# Runs first, as the caller: join the call's cgroups, set rlimits, then exec the sandbox.
# Arguments: fsize-blocks, as-kbytes (or ""), procs files..., "--", command...
_WRAPPER = (
    'fsize=$1; as=$2; shift 2; '
    'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; '
    'ulimit -c 0; ulimit -f "$fsize"; [ -z "$as" ] || ulimit -v "$as"; '
    'exec "$@"'
)


HOOK_FORMAT = 1
HOOK_TIMEOUT = 900.0  # seconds for one build hook: installs are slow, and they run once


def _lock_file(path: Path) -> Any:
    """An exclusive lock across processes; released when the returned file is closed."""
    f = open(path, "a+")  # noqa: SIM115 - the caller closes it
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def _chown_tree(path: Path, uid: int) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, uid)
        for name in [*dirnames, *filenames]:
            os.lchown(Path(dirpath) / name, uid, uid)


def _copy_readable(data: bytes, target: Path) -> None:
    target.write_bytes(data)
    target.chmod(0o644)


def _resolv_conf() -> str:
    """Names slirp4netns's DNS forwarder; keeps the host's search domains and options."""
    try:
        host = Path("/etc/resolv.conf").read_text(errors="replace").splitlines()
    except OSError:
        host = []
    kept = [line for line in host if line.split()[:1] in (["search"], ["domain"], ["options"])]
    return "".join(f"{line}\n" for line in [f"nameserver {slirp.DNS}", *kept])


def _world_traversable(path: Path) -> bool:
    """Every ancestor searchable by others and the directory itself readable by them."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


class BwrapEngine(Engine):
    name = "bwrap"

    def __init__(self, config) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config)
        self._status: Availability | None = None
        self._cgroups: Cgroups | None = None
        self._etc: Path | None = None

    def available(self) -> Availability:
        if self._status is None:
            self._status = self._probe()
        return self._status

    def _probe(self) -> Availability:
        if not shutil.which("bwrap"):
            return Availability(False, "bubblewrap is not installed (apt-get install bubblewrap)")
        if os.geteuid() == 0 and not shutil.which("setpriv"):
            return Availability(False, "running as root needs setpriv (util-linux) to drop to an "
                                       "unprivileged uid")  # fmt: skip
        probe = [*self._drop_privileges(), "bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr",
                 *self._root_links(), "--die-with-parent", "true"]  # fmt: skip
        try:
            done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Availability(False, f"bubblewrap does not start: {exc}")
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip()
            return Availability(False, f"bubblewrap cannot create a sandbox here: {why}")
        self._cgroups = Cgroups.detect()
        limits = f"cgroup v{self._cgroups.version}" if self._cgroups else "rlimits only, no cgroups"
        network = "network-allowed tools refused" if slirp.problem() else "network via slirp4netns"
        return Availability(True, f"bubblewrap, {limits}, {network}")

    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        missing = {IMAGE}
        if self.available() and self._cgroups is None:
            missing.add(CPUS)
        if plan.network and slirp.problem():
            missing.add(NETWORK_ON)
        return missing

    async def run(self, plan: ExecutionPlan, progress: Progress = no_progress) -> RunResult:
        if not self.available():
            raise EngineError(self.name, self.available().reason)
        notes = []
        if plan.build_hooks:
            await progress("preparing dependencies")
            prepared = await self._prepared_workspace(plan)
            plan = replace(plan, bundle=prepared)
        if plan.image:
            notes.append(f"bwrap ran on the host's root filesystem, not the image {plan.image}")
        with self._sandbox(plan) as (argv, env, group, staging):
            await progress("sandbox ready")
            outcome = await run_process(
                [*argv, *plan.argv],
                env=env,
                timeout=plan.limits.timeout,
                stdout_cap=plan.limits.stdout,
                stderr_cap=plan.limits.stderr,
                kill=group.kill if group else None,
            )
            if group is not None and group.oom_killed():
                notes.append(f"killed: out of memory (limit {plan.limits.memory} bytes)")
            if outcome.timed_out:
                notes.append(f"killed: timed out after {plan.limits.timeout:g}s")
            await progress("exporting")
            export = publish(staging, plan.output_dir, plan.limits.outputs)
        return outcome.result(self.name, plan, export, notes)

    async def interactive(self, plan: ExecutionPlan, command: Sequence[str]) -> int:
        """Run `command` in the plan's sandbox with our terminal attached (skillcell exec)."""
        interactive_plan = replace(plan, argv=tuple(command))
        with self._sandbox(interactive_plan, new_session=False) as (argv, env, _, staging):
            process = await anyio.to_thread.run_sync(
                lambda: subprocess.run([*argv, *command], env=env, check=False)
            )
            publish(staging, plan.output_dir, plan.limits.outputs)
        return process.returncode

    async def _prepared_workspace(self, plan: ExecutionPlan) -> Path:
        """The bundle after its build hooks ran, built once per (bundle, hooks) and reused.

        Hooks run with the network and a writable copy of the bundle at /workspace (so
        `pip install --target deps` or `npm ci` land there); later calls mount the result
        read-only. A failed hook is reported with its log and nothing is kept.
        """
        from ..catalog import bundle_digest

        runtime = self._runtime_dir()
        deps = runtime / "deps"
        deps.mkdir(mode=0o711, exist_ok=True)
        material = json.dumps([plan.bundle_digest or bundle_digest(plan.bundle),
                               list(plan.build_hooks), HOOK_FORMAT])  # fmt: skip
        key = hashlib.sha256(material.encode()).hexdigest()[:32]
        target = deps / key
        if target.is_dir():
            return target
        lock = await anyio.to_thread.run_sync(_lock_file, deps / f"{key}.lock")
        try:
            if target.is_dir():  # built by a concurrent call or process while we waited
                return target
            work = deps / f".{key}.{plan.call_id}"
            try:
                shutil.copytree(plan.bundle, work, symlinks=True)
                _chown_tree(work, self.config.bwrap_uid)
            except OSError as exc:
                shutil.rmtree(work, ignore_errors=True)
                raise EngineError(self.name, f"could not copy the bundle of {plan.tool} for its "
                                             f"build hooks: {exc}") from exc  # fmt: skip
            try:
                for hook in plan.build_hooks:
                    build = replace(plan, bundle=work, network=True, argv=("sh", "-c", hook),
                                    input_files=(), limits=replace(plan.limits, timeout=HOOK_TIMEOUT))  # fmt: skip
                    with self._sandbox(build, writable_workspace=True) as (argv, env, group, _):
                        outcome = await run_process(
                            [*argv, *build.argv], env=env, timeout=HOOK_TIMEOUT,
                            stdout_cap=64 << 10, stderr_cap=64 << 10,
                            kill=group.kill if group else None,
                        )  # fmt: skip
                    if outcome.exit_code != 0:
                        log = (outcome.stdout.text() + outcome.stderr.text())[-4000:]
                        raise EngineError(self.name, f"build hook {hook!r} failed with exit "
                                                     f"{outcome.exit_code}:\n{log}")  # fmt: skip
                os.rename(work, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        finally:
            lock.close()
        return target

    @contextmanager
    def _sandbox(
        self, plan: ExecutionPlan, *, new_session: bool = True, writable_workspace: bool = False
    ) -> Iterator[tuple[list[str], dict[str, str], Cgroup | None, Path]]:
        """The host command line (without the tool's argv), its env, cgroup and staging dir.

        Raises EngineError when the sandbox cannot be prepared (the bundle gone, the disk full,
        no way to give a network plan its own network), and after the body when the network
        could not be set up (the tool did not run then).
        """
        if plan.network and (why := slirp.problem()):
            raise EngineError(self.name, why)
        if not plan.bundle.is_dir():
            raise EngineError(self.name, f"the bundle of {plan.tool} is gone: "
                                         f"{plan.bundle} is no directory any more")  # fmt: skip
        uid = self.config.bwrap_uid
        try:
            runtime = self._runtime_dir()
            staging = staging_dir(plan.output_dir, owner_uid=uid, base=runtime / "outputs",
                                  cap=plan.limits.outputs)  # fmt: skip
        except OSError as exc:
            raise EngineError(self.name, f"could not prepare the sandbox of {plan.tool}: "
                                         f"{exc}") from exc  # fmt: skip
        inputs: Path | None = None
        status: Path | None = None
        group = None
        try:
            try:
                inputs = Path(tempfile.mkdtemp(prefix="inputs-", dir=runtime))
                os.chmod(inputs, 0o755)
                _copy_readable(plan.args_json, inputs / "args.json")
                for item in plan.input_files:
                    # A copy, not a bind: the sandbox uid may not traverse to the original, and
                    # only the very file that was validated is copied (never a swapped-in link).
                    target = inputs / item.sandbox.removeprefix(INPUTS + "/")
                    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                    copy_input(plan.tool, item, target)
                bundle = self._visible_bundle(plan, runtime)
                if plan.network:
                    fd, name = tempfile.mkstemp(prefix="net-", dir=runtime)
                    os.close(fd)
                    status = Path(name)
                if self._cgroups is not None:
                    group = self._cgroups.create(f"call-{plan.call_id}", plan.limits)
            except OSError as exc:
                raise EngineError(self.name, f"could not prepare the sandbox of {plan.tool}: "
                                             f"{exc}") from exc  # fmt: skip
            # One block over the cap: a file cut short by the limit is then over it and discarded.
            fsize = plan.limits.outputs // 512 + 1
            address_space = "" if group or not plan.limits.memory else str(plan.limits.memory // 1024)
            flags = self._flags(plan, bundle, inputs, staging, new_session, writable_workspace)
            command = [*self._drop_privileges(), "bwrap", *flags]
            if status is not None:
                # Between the wrapper (cgroup, rlimits) and bwrap: slirp4netns is the call's too.
                at = len(self._drop_privileges()) + 1
                as_uid = uid if os.geteuid() == 0 else None
                command = slirp.helper_argv(status, command, at, as_uid, not new_session)
            argv = [
                "/bin/sh", "-c", _WRAPPER, "sh", str(fsize), address_space,
                *(group.procs_files if group else []), "--", *command,
            ]  # fmt: skip
            env = {"PATH": PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
                   **plan.env, **plan.secrets}  # fmt: skip
            yield argv, env, group, staging
            if status is not None and (failure := slirp.read_status(status)):
                raise EngineError(self.name, f"no network for {plan.tool}, so it did not run: "
                                             f"{failure}")  # fmt: skip
        finally:
            if group is not None:
                group.remove()
            if inputs is not None:
                shutil.rmtree(inputs, ignore_errors=True)
            if status is not None:
                status.unlink(missing_ok=True)
            discard(staging)

    def _flags(
        self,
        plan: ExecutionPlan,
        bundle: Path,
        inputs: Path,
        staging: Path,
        new_session: bool,
        writable_workspace: bool = False,
    ) -> list[str]:
        uid = str(self.config.bwrap_uid)
        flags = [
            "--unshare-all", "--unshare-user", "--disable-userns", "--uid", uid, "--gid", uid,
            "--die-with-parent", *(["--new-session"] if new_session else []),
            "--cap-drop", "ALL", "--hostname", "skillcell",
            "--ro-bind", "/usr", "/usr", *self._root_links(),
            *self._etc_binds(),
            "--proc", "/proc", "--dev", "/dev",
            # bwrap's /dev is a tmpfs of the sandbox uid's with no size: only /dev/shm stays
            # writable there (below), bounded like /tmp.
            "--size", str(plan.limits.tmp), "--tmpfs", "/dev/shm",
            "--size", str(plan.limits.tmp), "--tmpfs", "/tmp",
            "--bind" if writable_workspace else "--ro-bind", str(bundle), WORKSPACE,
            "--ro-bind", str(inputs), INPUTS,
            "--bind", str(staging), OUTPUTS,
            # Last of the mounts: the root and /dev tmpfs read-only (nothing lands outside /tmp,
            # /dev/shm and /outputs); the mounts on them keep their own mode.
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--chdir", WORKSPACE,
        ]  # fmt: skip
        return [*flags, "--"]

    def _runtime_dir(self) -> Path:
        """Where sandbox-visible host directories live: traversable by the sandbox uid, and
        not listable, so per-call names cannot be guessed by other local users."""
        path = Path(tempfile.gettempdir()) / f"skillcell-{os.geteuid()}"
        path.mkdir(mode=0o711, exist_ok=True)
        if path.is_symlink() or path.stat().st_uid != os.geteuid():
            raise EngineError(self.name, f"{path} is not ours; remove it and retry")
        path.chmod(0o711)
        return path

    def _visible_bundle(self, plan: ExecutionPlan, runtime: Path) -> Path:
        """The bundle itself when the sandbox uid can reach it, else a readable copy."""
        if os.geteuid() != 0 or _world_traversable(plan.bundle) or plan.bundle.is_relative_to(runtime):
            return plan.bundle
        from ..catalog import bundle_digest

        copy = runtime / "bundles" / (plan.bundle_digest or bundle_digest(plan.bundle))
        if not copy.is_dir():
            tmp = runtime / "bundles" / f".{plan.call_id}"
            shutil.copytree(plan.bundle, tmp, symlinks=True)
            for dirpath, _dirnames, filenames in os.walk(tmp):
                os.chmod(dirpath, 0o755)
                for name in filenames:
                    path = Path(dirpath) / name
                    if not path.is_symlink():
                        path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
            os.chmod(runtime / "bundles", 0o711)
            try:
                os.rename(tmp, copy)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # a concurrent call made it first
        return copy

    def _drop_privileges(self) -> list[str]:
        if os.geteuid() != 0:
            return []  # bwrap maps our uid to the sandbox uid in its user namespace
        uid = str(self.config.bwrap_uid)
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip

    @staticmethod
    def _root_links() -> list[str]:
        flags = []
        for name in ROOT_DIRS:
            path = Path("/") / name
            if path.is_symlink():
                flags += ["--symlink", os.readlink(path), f"/{name}"]
            elif path.is_dir():
                flags += ["--ro-bind", str(path), f"/{name}"]
        return flags

    def _etc_binds(self) -> list[str]:
        flags = []
        for name in ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                flags += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        etc = self._synthetic_etc()
        return [*flags, "--ro-bind", str(etc / "passwd"), "/etc/passwd",
                "--ro-bind", str(etc / "group"), "/etc/group",
                "--ro-bind", str(etc / "resolv.conf"), "/etc/resolv.conf"]  # fmt: skip

    def _synthetic_etc(self) -> Path:
        """passwd and group naming only root and the sandbox user: the host's stay hidden; and a
        resolv.conf naming slirp's DNS forwarder, with the host's search domains and options.

        Named by a hash of its contents in the runtime dir, so every engine shares one copy and
        none is left behind per process."""
        if self._etc is None or not self._etc.exists():
            uid = self.config.bwrap_uid
            files = {
                "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                          f"sandbox:x:{uid}:{uid}::/tmp:/bin/sh\n",
                "group": f"root:x:0:\nsandbox:x:{uid}:\n",
                "resolv.conf": _resolv_conf(),
            }  # fmt: skip
            digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
            etc = self._runtime_dir() / f"etc-{digest}"
            if not etc.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=".etc-", dir=etc.parent))
                for name, text in files.items():
                    (tmp / name).write_text(text)
                    (tmp / name).chmod(0o644)
                os.chmod(tmp, 0o755)
                try:
                    os.rename(tmp, etc)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)  # another process made it first
            self._etc = etc
        return self._etc

    async def aclose(self) -> None:
        self._etc = None  # shared by content; stays for the next engine
