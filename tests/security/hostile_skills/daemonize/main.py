"""Start two classic daemons that outlive this process, then exit 0 at once."""

import os
import signal
import sys

marker = sys.argv[1]


def daemon(tag):
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.execvp("sleep", ["sleep", f"300.{marker}{tag}"])


daemon("1")
daemon("2")
print("daemons started; exiting")
