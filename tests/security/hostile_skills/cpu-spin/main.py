"""Four busy processes and no exit: only the timeout ends it."""

import os

for _ in range(3):
    if os.fork() == 0:
        break
while True:
    pass
