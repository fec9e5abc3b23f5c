"""User-mode networking for bwrap sandboxes: slirp4netns behind the sandbox's own netns.

An open-world tool gets its own network namespace, like every other tool, plus a tap device
(10.0.2.100, gateway 10.0.2.2, DNS 10.0.2.3) that slirp4netns connects to the outside through
ordinary host sockets. The host's loopback (and 10.0.2.2, its alias) stays out of reach
(--disable-host-loopback), and so do the host's abstract unix sockets, which belong to the
host's network namespace. Addresses of the host on its other interfaces are reachable, as
from a container on a bridge.

This file is also the helper that sets it up, run as a script between the engine's wrapper
(cgroup, rlimits) and bwrap; it imports little, since it runs once per network call:

    python3 -I -S slirp.py --status FILE --at INDEX [--uid UID] [--interactive] -- COMMAND...

COMMAND starts bwrap (through setpriv when running as root); the helper inserts bwrap's
--info-fd and --block-fd at INDEX, reads the sandbox's pid, starts slirp4netns against its
network namespace, and only then lets the sandbox exec the tool. It exits as bwrap did, and
slirp4netns never outlives it (exit fd, parent-death signal, and it is in the call's process
group and cgroup). A failure to set up the network is written to FILE and the sandbox is killed
before the tool starts: the tool never runs without the network it was promised.

slirp4netns runs in the sandbox's user namespace, as its root, which is the sandbox uid on the
host (UID when skillcell runs as root: it then gets a private /dev/net/tun node it may open,
the host's usually being root's alone), with its own sandbox (--enable-sandbox: a mount
namespace with only /etc and /run, no capabilities) and seccomp filter (--enable-seccomp).
"""

from __future__ import annotations

import os
import sys
import time

try:  # the C module behind `signal`: the same numbers and calls, without its enums (7 ms)
    import _signal as signals  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not CPython
    import signal as signals

TUN = "/dev/net/tun"
TAP = "tap0"
MTU = 65520
DNS = "10.0.2.3"  # slirp's DNS forwarder, named in the sandbox's resolv.conf
SETUP_TIMEOUT = 10.0  # seconds for bwrap to report its sandbox and slirp4netns to get ready
SETUP_FAILED = 125  # the helper's exit status when the network could not be set up
INSTALL_HINT = ("network access needs slirp4netns (apt-get install slirp4netns) so that tools "
                "cannot reach the host's own services")  # fmt: skip
NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace
CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
MS_NOSUID, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 8, 0x4000, 1 << 18
PR_SET_PDEATHSIG = 1


def _which(name: str) -> str | None:
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None


def problem() -> str | None:
    """Why open-world sandboxes cannot get their network here, or None (fast, no process)."""
    if _which("slirp4netns") is None:
        return INSTALL_HINT
    try:
        st = os.stat(TUN)
    except OSError:
        return f"network access needs {TUN} (modprobe tun) for slirp4netns"
    if (st.st_mode & 0o170000) != 0o020000:  # not a character device
        return f"network access needs {TUN}, which is not a device here"
    if os.geteuid() != 0 and not os.access(TUN, os.R_OK | os.W_OK):
        return (f"network access needs {TUN} to be readable and writable by this user for "
                "slirp4netns (mode 0666, as most distributions ship it)")  # fmt: skip
    return None


def helper_argv(
    status: str | os.PathLike[str], command: list[str], at: int, uid: int | None,
    interactive: bool = False,
) -> list[str]:  # fmt: skip
    """The command line that runs `command` (which starts bwrap) with its network set up."""
    return [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__),
            "--status", os.fspath(status), "--at", str(at),
            *(["--uid", str(uid)] if uid is not None else []),
            *(["--interactive"] if interactive else []), "--", *command]  # fmt: skip


def read_status(status: str | os.PathLike[str]) -> str | None:
    """The setup failure the helper recorded, if any."""
    try:
        with open(status, "rb") as f:
            text = f.read(8192).decode(errors="replace").strip()
    except OSError:
        return None
    return text or None


# -- the helper ---------------------------------------------------------------------------


class SetupError(Exception):
    pass


def _json_int(data: bytes, key: str) -> int | None:
    """An integer member of bwrap's flat info object (no json module: it costs 15 ms here)."""
    at = data.find(f'"{key}"'.encode())
    if at < 0:
        return None
    rest = data[at + len(key) + 2 :].lstrip(b" \t\r\n")
    if not rest.startswith(b":"):
        return None
    rest = rest[1:].lstrip(b" \t\r\n")
    digits = len(rest) - len(rest.lstrip(b"0123456789"))
    return int(rest[:digits]) if digits else None


def _read_info(fd: int, deadline: float) -> tuple[int, int | None] | None:
    """The sandbox's pid and netns inode from bwrap's --info-fd; None when bwrap ended first."""
    import select

    data = b""
    while b"}" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SetupError(f"bwrap did not report its sandbox within {SETUP_TIMEOUT:g}s")
        if not select.select([fd], [], [], remaining)[0]:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    pid = _json_int(data, "child-pid")
    if pid is None:
        raise SetupError(f"bwrap reported no sandbox pid: {data[:200]!r}")
    return pid, _json_int(data, "net-namespace")


def _wait_for_id_maps(child: int, deadline: float) -> None:
    """Until the sandbox's user namespace has its id maps.

    Unprivileged bwrap writes them from inside, just after reporting the pid; slirp4netns
    becomes that namespace's root, which only works once root is mapped there. A map is
    written once and never changes, so seeing it is enough.
    """
    while True:
        try:
            with open(f"/proc/{child}/gid_map", "rb") as f:
                if f.read().strip():
                    return
        except OSError as exc:
            raise SetupError(f"the sandbox ended before its network was up: {exc}") from None
        if time.monotonic() > deadline:
            raise SetupError(f"the sandbox got no user id map within {SETUP_TIMEOUT:g}s")
        time.sleep(0.0005)


def _libc_call(libc: object, name: str, *args: object) -> None:
    import ctypes

    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _child(libc: object, uid: int | None, rdev: int, userns: int) -> None:
    """In the forked child, before exec: become the sandbox's user namespace root."""
    if uid is not None:
        # As root: a mount namespace of our own whose /dev/net/tun belongs to `uid`, then
        # become `uid` for good. The host's own node (usually 0600 root) stays as it is.
        _libc_call(libc, "unshare", CLONE_NEWNS)
        _libc_call(libc, "mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        _libc_call(libc, "mount", b"tmpfs", os.path.dirname(TUN).encode(), b"tmpfs",
                   MS_NOSUID | MS_NOEXEC, b"size=4k,mode=0755")  # fmt: skip
        os.mknod(TUN, 0o020600, rdev)
        os.chown(TUN, uid, uid)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    # We own the sandbox's (outer) user namespace: entering it makes us its root, with
    # capabilities over the sandbox's namespaces only, not over the host.
    _libc_call(libc, "setns", userns, CLONE_NEWUSER)
    _libc_call(libc, "prctl", PR_SET_PDEATHSIG, signals.SIGKILL, 0, 0, 0)


def _spawn(argv: list[str], keep: list[int], uid: int | None, userns: int, log: int) -> int:
    """Fork and exec slirp4netns; errors before the exec come back as SetupError."""
    import ctypes

    binary = _which("slirp4netns")
    if binary is None:
        raise SetupError(INSTALL_HINT)
    libc = ctypes.CDLL(None, use_errno=True)
    rdev = os.stat(TUN).st_rdev
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    err_r, err_w = os.pipe()  # close-on-exec: EOF without a message means the exec happened
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            _child(libc, uid, rdev, userns)
            for fd in keep:
                os.set_inheritable(fd, True)
            os.execve(binary, argv, env)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(err_w, str(exc).encode(errors="replace")[:1000])
        finally:
            os._exit(127)
    os.close(err_w)
    try:
        message = os.read(err_r, 1000)
    finally:
        os.close(err_r)
    if message:
        os.waitpid(pid, 0)
        raise SetupError(f"could not start slirp4netns: {message.decode(errors='replace')}")
    return pid


def _start_slirp(child: int, netns_inode: int | None, uid: int | None, exit_r: int, log: int,
                 deadline: float) -> int:  # fmt: skip
    """slirp4netns attached to the sandbox's network namespace, ready; returns its pid."""
    import fcntl
    import select

    try:
        netns = os.open(f"/proc/{child}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise SetupError(f"the sandbox's network namespace is gone: {exc}") from None
    fds = [netns]
    try:
        if netns_inode is not None and os.fstat(netns).st_ino != netns_inode:
            raise SetupError("the sandbox's pid now names another process")
        try:
            userns = fcntl.ioctl(netns, NS_GET_USERNS)
        except OSError as exc:
            raise SetupError(f"cannot find the owner of the sandbox's netns: {exc}") from None
        fds.append(userns)
        _wait_for_id_maps(child, deadline)
        ready_r, ready_w = os.pipe()
        fds += [ready_r, ready_w]
        argv = ["slirp4netns", "--configure", f"--mtu={MTU}", "--disable-host-loopback",
                "--enable-sandbox", "--enable-seccomp", f"--ready-fd={ready_w}",
                f"--exit-fd={exit_r}", "--netns-type=path", f"/proc/self/fd/{netns}",
                TAP]  # fmt: skip
        pid = _spawn(argv, [ready_w, exit_r, netns], uid, userns, log)
        fds.remove(ready_w)
        os.close(ready_w)
        while not select.select([ready_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if time.monotonic() >= deadline:
                _stop(pid)
                raise SetupError(f"slirp4netns did not get ready within {SETUP_TIMEOUT:g}s")
        if os.read(ready_r, 1) != b"1":
            _stop(pid)
            os.lseek(log, 0, os.SEEK_SET)
            why = os.read(log, 4000).decode(errors="replace").strip().replace("\n", "; ")
            raise SetupError(f"slirp4netns failed: {why or 'no message'}")
        return pid
    finally:
        for fd in fds:
            os.close(fd)


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signals.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _record(status: str, why: str) -> None:
    try:
        fd = os.open(status, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        os.write(2, f"skillcell: {why}\n".encode(errors="replace"))
        return
    with os.fdopen(fd, "w") as f:
        f.write(why)


def _scratch(near: str) -> int:
    """An anonymous file for slirp4netns's messages (read only when it fails)."""
    directory = os.path.dirname(os.path.abspath(near))
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:
        path = f"{near}.log"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        os.unlink(path)
        return fd


def main(args: list[str]) -> int:
    status, at, uid, interactive = "", -1, None, False
    while args and args[0] != "--":
        if args[0] == "--interactive":
            interactive, args = True, args[1:]
            continue
        flag, value, args = args[0], args[1], args[2:]
        if flag == "--status":
            status = value
        elif flag == "--at":
            at = int(value)
        elif flag == "--uid":
            uid = int(value)
        else:
            raise SystemExit(f"slirp.py: unknown option {flag}")
    command = args[1:]
    if not status or not 0 < at <= len(command):
        raise SystemExit("usage: slirp.py --status FILE --at INDEX [--uid UID] -- COMMAND...")
    handled = (signals.SIGINT, signals.SIGQUIT) if interactive else ()
    for sig in handled:
        # Like a shell waiting for its foreground job: the terminal's signals are the tool's.
        # (A handler, not SIG_IGN, so that bwrap and the tool do not inherit an ignored signal.)
        signals.signal(sig, lambda *_: None)

    deadline = time.monotonic() + SETUP_TIMEOUT
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe()
    exit_r, exit_w = os.pipe()  # slirp4netns exits when this closes, that is when we do
    os.set_inheritable(info_w, True)
    os.set_inheritable(block_r, True)
    command[at:at] = ["--info-fd", str(info_w), "--block-fd", str(block_r)]
    # Python ignores SIGPIPE and SIGXFSZ; the sandbox gets them back at their defaults, as it
    # would from a shell (a tool over the file size limit is killed, not told EFBIG).
    bwrap = os.posix_spawnp(command[0], command, os.environ,
                            setsigdef=(signals.SIGPIPE, signals.SIGXFSZ))  # fmt: skip
    os.close(info_w)
    os.close(block_r)
    import ctypes  # noqa: F401 - loaded while bwrap builds the sandbox, used by _spawn

    slirp = None
    info = None
    try:
        log = _scratch(status)
        try:
            info = _read_info(info_r, deadline)
            if info is not None:  # else bwrap failed on its own, and says why
                slirp = _start_slirp(*info, uid, exit_r, log, deadline)
        except (SetupError, OSError) as exc:
            # Never let the sandbox go on without its network: it would run the tool.
            for pid in ([info[0]] if info else []) + [bwrap]:
                try:
                    os.kill(pid, signals.SIGKILL)
                except OSError:
                    pass
            os.waitpid(bwrap, 0)
            _record(status, str(exc) if isinstance(exc, SetupError)
                    else f"could not set up the network: {exc}")  # fmt: skip
            return SETUP_FAILED
        finally:
            os.close(log)
        try:
            os.write(block_w, b"1")
        except BrokenPipeError:
            pass  # the sandbox is already gone; bwrap's status says how
        os.close(block_w)
        while True:
            try:
                _, wait_status = os.waitpid(bwrap, 0)
                break
            except InterruptedError:  # pragma: no cover - retried by Python already
                continue
    finally:
        _stop(slirp)
        os.close(exit_w)
    if os.WIFSIGNALED(wait_status):
        # Die as bwrap did, so a sandbox killed by a signal reads the same as without us.
        sig = os.WTERMSIG(wait_status)
        if sig in handled:
            signals.signal(sig, signals.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(wait_status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
