"""Every classic way up from an unprivileged uid; report what each one did."""

import ctypes
import ctypes.util
import json
import os
import subprocess
from pathlib import Path

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
report = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}
with open("/proc/self/status") as f:
    for line in f:
        key = line.split(":")[0]
        if key in ("NoNewPrivs", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp"):
            report[key] = line.split(":", 1)[1].strip()


def run(label, argv):
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        report[label] = {
            "rc": done.returncode,
            "out": done.stdout.decode(errors="replace")[-200:],
            "err": done.stderr.decode(errors="replace")[-200:],
        }
    except (OSError, subprocess.TimeoutExpired) as exc:
        report[label] = {"rc": None, "err": str(exc)}


def call(label, fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    report[label] = {"rc": rc, "errno": os.strerror(ctypes.get_errno()) if rc != 0 else ""}


run("su root", ["su", "-c", "id -u", "root"])
run("unshare user namespace as root", ["unshare", "-U", "-r", "id", "-u"])
run("unshare mount namespace", ["unshare", "-m", "true"])
run("mount binary", ["mount", "-t", "tmpfs", "none", "/tmp"])
os.makedirs("/tmp/mnt", exist_ok=True)
call("mount(2) tmpfs", libc.mount, b"none", b"/tmp/mnt", b"tmpfs", 0, None)
call("setuid(0)", libc.setuid, 0)
call("setgid(0)", libc.setgid, 0)
call("chroot(/tmp)", libc.chroot, b"/tmp")
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
for label, pid in (("ptrace parent", os.getppid()), ("ptrace pid 1", 1)):
    call(label, libc.ptrace, PTRACE_ATTACH, pid, None, None)
    if report[label]["rc"] == 0:
        # Attached: say what was gained (the tracee's identity, capabilities and open
        # files), then let it go so the sandbox can finish.
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        report[label]["tracee"] = {
            line.split(":")[0]: line.split(":", 1)[1].split()
            for line in status
            if line.startswith(("Name", "Uid", "CapPrm", "CapEff", "NoNewPrivs"))
        }
        report[label]["tracee fds"] = sorted(
            {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        )
        os.waitpid(pid, WALL)
        libc.ptrace(PTRACE_DETACH, pid, None, None)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
call("unshare(2) user", libc.unshare, CLONE_NEWUSER)
call("unshare(2) mount", libc.unshare, CLONE_NEWNS)
call("unshare(2) net", libc.unshare, CLONE_NEWNET)
cgroup_escapes = {}
for procs in (
    "/sys/fs/cgroup/cgroup.procs",
    "/sys/fs/cgroup/memory/cgroup.procs",
    "/sys/fs/cgroup/pids/cgroup.procs",
):
    try:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
        cgroup_escapes[procs] = "ok"
    except OSError as exc:
        cgroup_escapes[procs] = f"error: {exc.strerror}"
report["leave cgroup"] = cgroup_escapes
devices = {}
for dev in ("/dev/mem", "/dev/kmem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/tty"):
    try:
        os.close(os.open(dev, os.O_RDONLY))
        devices[dev] = "opened"
    except OSError as exc:
        devices[dev] = f"error: {exc.strerror}"
report["devices"] = devices
report["uid after"] = os.getuid()
print(json.dumps(report))
