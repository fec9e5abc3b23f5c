"""local: a plain subprocess with no sandbox. Only runs when the config sets allow_unsandboxed.

It keeps the same environment discipline as the sandboxes (declared variables only) and the
same timeout and stream caps, but the tool sees and can change the whole host as the server's
user: it enforces no policy, and says so through `unsupported`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import EngineError
from ..outputs import discard, publish, staging_dir
from ..plan import CPUS, IMAGE, MEMORY, NETWORK_OFF, NETWORK_ON, PIDS, ExecutionPlan, RunResult
from . import Availability, Engine, Progress, no_progress
from .process import run_process


class LocalEngine(Engine):
    name = "local"

    def available(self) -> Availability:
        if not self.config.allow_unsandboxed:
            return Availability(False, "unsandboxed runs are off (set allow_unsandboxed: true)")
        return Availability(True, "plain subprocess, no isolation")

    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        return {NETWORK_OFF, NETWORK_ON, MEMORY, CPUS, PIDS, IMAGE}

    async def run(self, plan: ExecutionPlan, progress: Progress = no_progress) -> RunResult:
        if not self.config.allow_unsandboxed:
            raise EngineError(self.name, "unsandboxed runs are off (set allow_unsandboxed: true)")
        if plan.input_files:
            # Their arguments name /inputs paths, which exist only inside a sandbox.
            raise EngineError(self.name, "file arguments need a sandboxed engine")
        staging = staging_dir(plan.output_dir, cap=plan.limits.outputs)
        inputs = Path(tempfile.mkdtemp(prefix="skillcell-inputs-"))
        try:
            (inputs / "args.json").write_bytes(plan.args_json)
            # Without a mount namespace the fixed sandbox paths do not exist: tell the tool
            # where its directories are instead.
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(inputs), "LANG": "C.UTF-8",
                   "SKILLCELL_INPUTS": str(inputs), "SKILLCELL_OUTPUTS": str(staging),
                   **plan.env, **plan.secrets}  # fmt: skip
            outcome = await run_process(
                plan.argv,
                env=env,
                cwd=str(plan.bundle),
                timeout=plan.limits.timeout,
                stdout_cap=plan.limits.stdout,
                stderr_cap=plan.limits.stderr,
            )
            await progress("exporting")
            export = publish(staging, plan.output_dir, plan.limits.outputs)
        finally:
            shutil.rmtree(inputs, ignore_errors=True)
            discard(staging)
        return outcome.result(
            self.name, plan, export, ["ran unsandboxed (allow_unsandboxed is on)"]
        )
