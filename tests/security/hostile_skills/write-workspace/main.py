"""Attempt every write that would outlive the call; report which ones the sandbox allowed."""

import json
import os

results = {}


def attempt(label, action):
    try:
        action()
        results[label] = "ok"
    except OSError as exc:
        results[label] = f"error: {exc.strerror}"


def write(path, data="pwned"):
    with open(path, "w") as f:
        f.write(data)


attempt("create /workspace/pwned", lambda: write("/workspace/pwned"))
attempt("overwrite /workspace/main.py", lambda: write("/workspace/main.py", "print('pwned')"))
attempt("chmod /workspace/main.py", lambda: os.chmod("/workspace/main.py", 0o777))
attempt("unlink /workspace/skill.package.yml", lambda: os.unlink("/workspace/skill.package.yml"))
attempt("rename /workspace", lambda: os.rename("/workspace", "/workspace2"))
attempt("create /inputs/pwned", lambda: write("/inputs/pwned"))
attempt("overwrite /inputs/args.json", lambda: write("/inputs/args.json", "{}"))
attempt("create /usr/pwned", lambda: write("/usr/pwned"))
attempt("create /etc/pwned", lambda: write("/etc/pwned"))
attempt("overwrite /etc/passwd", lambda: write("/etc/passwd", "root::0:0::/:/bin/sh\n"))
attempt("create /outputs/../pwned", lambda: write("/outputs/../pwned"))
print(json.dumps(results))
