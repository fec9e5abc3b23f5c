"""The hostile-skill matrix: each bundle in hostile_skills/, what it attacks, the behaviour that
keeps the promise, and a check run from the host's side of the sandbox.

Run by tests/security/test_hostile_skills.py (one test per attack and engine) and by
benchmarks/security_report.py (the table in docs/security.md). A check never trusts the tool's
word alone: it compares what came back with the host's ground truth (file digests, canary
tokens it planted, listeners it owns, the process table).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from skillcell.catalog import Catalog, bundle_digest, scan
from skillcell.config import Config
from skillcell.errors import SkillcellError
from skillcell.plan import RunResult

from .harness import (
    SANDBOX_UID,
    Listener,
    LoopLag,
    RssPeak,
    config_for,
    copy_bundle,
    host_address,
    leftovers,
    make_runner,
    processes_with,
    sealed_tempdir,
    unblock_fifo_later,
)

LOOP_LAG_LIMIT = 1.0  # seconds the server's event loop may go without running other calls
PROBE_DELAY = {"bwrap": 0.5, "docker": 1.0}  # let the bomb get going before the probe call
PROBE_PROMPT = {"bwrap": 3.0, "docker": 6.0}  # seconds a normal call may take meanwhile
SPARSE_SIZE = 256 << 20
RSS_LIMIT = 128 << 20


@dataclass
class Ctx:
    engine: str
    root: Path
    skills: Path
    bundle: Path
    config: Config
    marker: str
    token: str
    stack: ExitStack
    args: dict[str, Any]
    environ: Mapping[str, str] | None = None
    secret_sources: list[Mapping[str, str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    result: RunResult | None
    error: BaseException | None
    seconds: float
    catalog: Catalog
    probe_seconds: float | None = None
    probe_error: str | None = None
    loop_lag: float = 0.0
    rss_growth: int = 0

    @property
    def text(self) -> str:
        """Everything of the result a model would see."""
        if self.result is None:
            return str(self.error)
        r = self.result
        return "\n".join([r.stdout, r.stderr, *r.notes, *map(str, r.outputs)])

    def report(self) -> dict[str, Any]:
        """The JSON the hostile tool printed on stdout ({} when it printed none)."""
        if self.result is None:
            return {}
        try:
            data = json.loads(self.result.stdout)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


Check = Callable[[Ctx, Outcome], tuple[str, list[str]]]


@dataclass(frozen=True)
class Attack:
    name: str
    attack: str
    expected: str
    check: Check
    prepare: Callable[[Ctx], None] | None = None
    bundle: str = ""
    script: str = "main"
    bombs: bool = False  # a normal call must be served promptly while this one runs
    findings: Mapping[str, str] = field(default_factory=dict)  # engine or "*" -> finding

    @property
    def tool(self) -> str:
        return f"sectest/{self.bundle or self.name}:{self.script}"

    def finding(self, engine: str) -> str | None:
        return self.findings.get(engine) or self.findings.get("*")


@dataclass(frozen=True)
class Verdict:
    attack: Attack
    engine: str
    observed: str
    problems: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return not self.problems

    def explain(self) -> str:
        return f"{self.attack.name} on {self.engine}: {self.observed}; " + "; ".join(self.problems)


# -- ground truth on the host ---------------------------------------------------------------


def _sha256(path: str | Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _shadow_lines() -> list[str]:
    try:
        return [line for line in Path("/etc/shadow").read_text().splitlines() if len(line) > 3]
    except OSError:
        return []


def _leaked(token: str, o: Outcome) -> bool:
    return token in o.text


def _failed(o: Outcome) -> list[str]:
    """A hostile run must end as a RunResult; say so when it did not."""
    if o.result is None:
        return [f"no result: {type(o.error).__name__}: {o.error}"]
    return []


# -- the attacks ----------------------------------------------------------------------------


def check_read_shadow(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    report = o.report()
    problems = _failed(o)
    if not report:
        problems.append("the tool printed no report")
    readable = []
    for path, seen in report.items():
        if "sha256" in seen:
            readable.append(path)
            if seen["sha256"] == _sha256(path):
                problems.append(f"read the host's {path}")
    if any(line in o.text for line in _shadow_lines()):
        problems.append("a line of the host's /etc/shadow is in the result")
    denied = sorted(p for p, seen in report.items() if "error" in seen)
    observed = f"host files unreadable ({len(denied)}/{len(report)} denied or absent)"
    if readable:
        observed += f"; only the sandbox's own {', '.join(readable)}"
    return observed, problems


def prepare_read_home(ctx: Ctx) -> None:
    home = Path.home()
    ssh = home / ".ssh"
    made_ssh = not ssh.exists()
    ssh.mkdir(mode=0o700, exist_ok=True)
    # Named by a different token than they hold: a listing of names is not a read.
    name = uuid.uuid4().hex[:12]
    canaries = [ssh / f"skillcell-canary-{name}", home / f".skillcell-canary-{name}",
                Path("/tmp") / f"skillcell-canary-{name}", ctx.root / "canary"]  # fmt: skip
    for path in canaries:
        path.write_text(f"canary {ctx.token}\n")
        path.chmod(0o644)

    def remove() -> None:
        for path in canaries:
            path.unlink(missing_ok=True)
        if made_ssh:
            with contextlib.suppress(OSError):
                ssh.rmdir()

    ctx.stack.callback(remove)
    ctx.args["paths"] = [str(p) for p in canaries]


def check_read_home(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    if _leaked(ctx.token, o):
        problems.append("read a canary planted in the host's home, ~/.ssh or /tmp")
    listed = o.report().get("listed", {})
    home = listed.get("/root")
    return (f"4 host canaries unreadable; /root in the sandbox: "
            f"{home if isinstance(home, str) else f'{len(home or [])} entries (the image own)'}",
            problems)  # fmt: skip


def prepare_read_environ(ctx: Ctx) -> None:
    keys = {"SKILLCELL_SEC_CANARY": f"canary-{ctx.token}", "API_TOKEN": f"undeclared-{ctx.token}"}
    os.environ.update(keys)

    def restore() -> None:
        for key in keys:
            os.environ.pop(key, None)

    ctx.stack.callback(restore)
    ctx.environ = os.environ  # the server's real environment, as `skillcell serve` passes it


def check_read_environ(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    if _leaked(ctx.token, o):
        problems.append("saw a variable of the server's environment that the skill did not declare")
    env = o.report().get("self", {})
    if env.get("DECLARED_SETTING") != "plain-value":
        problems.append("the declared variable did not arrive (the check is blind)")
    procs = o.report().get("procs", {})
    return (f"own env: {', '.join(sorted(env))}; {len(procs)} /proc/*/environ seen, "
            "none with the host's canary", problems)  # fmt: skip


def prepare_read_other_outputs(ctx: Ctx) -> None:
    victim = ctx.config.output_root / f"victim-{ctx.token[:8]}"
    victim.mkdir(parents=True)
    (victim / "report.txt").write_text(f"another call's result {ctx.token}\n")
    ctx.args["paths"] = [str(ctx.config.output_root), str(victim), str(victim / "report.txt")]


def check_read_other_outputs(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    if _leaked(ctx.token, o):
        problems.append("read another call's exported output")
    seen = o.report()
    return f"{len(seen)} paths walked, none of another call's outputs", problems


def prepare_write_workspace(ctx: Ctx) -> None:
    ctx.state["digest"] = bundle_digest(ctx.bundle)
    ctx.state["passwd"] = _sha256("/etc/passwd")


def check_write_workspace(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    report = o.report()
    if not report:
        problems.append("the tool printed no report")
    for label, outcome in report.items():
        if ("/workspace" in label or "/inputs" in label) and outcome == "ok":
            problems.append(f"allowed: {label}")
    if bundle_digest(ctx.bundle) != ctx.state["digest"]:
        problems.append("the bundle on the host changed")
    if _sha256("/etc/passwd") != ctx.state["passwd"]:
        problems.append("the host's /etc/passwd changed")
    for path in ("/usr/pwned", "/etc/pwned", "/pwned"):
        if os.path.exists(path):
            problems.append(f"{path} appeared on the host")
    allowed = [label.split(" ", 1)[1] for label, v in report.items() if v == "ok"]
    observed = f"{len(report) - len(allowed)}/{len(report)} writes refused; bundle, inputs and host unchanged"
    if allowed:
        observed += f"; {', '.join(allowed)} landed in the sandbox's own root tmpfs (see fill-root)"
    return observed, problems


def prepare_symlink_escape(ctx: Ctx) -> None:
    victim = ctx.config.output_root / f"victim-{ctx.token[:8]}"
    victim.mkdir(parents=True)
    (victim / "report.txt").write_text(f"another call's result {ctx.token}\n")
    (ctx.bundle / "outroot").symlink_to(ctx.config.output_root)
    (ctx.bundle / "victim").symlink_to(victim / "report.txt")


def check_symlink_escape(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    report = o.report()
    if _leaked(ctx.token, o):
        problems.append("read the host's output root through a bundle symlink")
    shadow = report.get("shadow", {})
    if shadow.get("sha256") and shadow["sha256"] == _sha256("/etc/shadow"):
        problems.append("read the host's /etc/shadow through a bundle symlink")
    if any(line in o.text for line in _shadow_lines()):
        problems.append("a line of the host's /etc/shadow is in the result")
    outcome = "; ".join(f"{k} -> {v['target']}: {v.get('error', 'resolved in the sandbox')}"
                        for k, v in report.items())  # fmt: skip
    return f"links resolve inside the sandbox only: {outcome}", problems


def check_symlink_docs(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = []
    published = []
    for skill in o.catalog.skills:
        published += [skill.description, skill.docs]
    for tool in o.catalog.tools.values():
        published.append(json.dumps(getattr(tool, "description", ""), default=str))
    published += [str(p) for p in o.catalog.problems]
    leaked = sum(1 for line in _shadow_lines() if any(line in text for text in published))
    if leaked:
        # Never print what leaked: this is the host's password file.
        problems.append(f"{leaked} lines of the host's /etc/shadow are in the published docs")
    if o.result is not None and _shadow_lines() and any(line in o.text for line in _shadow_lines()):
        problems.append("a line of the host's /etc/shadow is in the result")
    state = "bundle refused" if not o.catalog.skills else "bundle published"
    return f"{state}; {leaked} shadow lines in its published docs", problems


def prepare_net(ctx: Ctx, *, closed: bool) -> None:
    tcp = Listener("tcp", "0.0.0.0" if closed else "127.0.0.1")
    listeners = {"tcp": tcp, "abstract": Listener("abstract", f"skillcell-sec-{ctx.token}")}
    ctx.args.update(tcp_port=tcp.port, abstract=f"skillcell-sec-{ctx.token}")
    if closed:
        listeners["udp"] = Listener("udp", "0.0.0.0")
        ctx.args.update(udp_port=listeners["udp"].port, host_ip=host_address())
    for listener in listeners.values():
        ctx.stack.callback(listener.close)
    ctx.state["listeners"] = listeners


def check_net(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    report = o.report()
    if not report:
        problems.append("the tool printed no report")
    time.sleep(0.3)  # a datagram in flight lands before we count
    for kind, listener in ctx.state["listeners"].items():
        if listener.hits:
            problems.append(f"the host's {kind} listener was reached {len(listener.hits)} times")
    reached = [k for k, v in report.items() if isinstance(v, str) and v.startswith("reached")
               and not k.startswith("udp")]  # fmt: skip
    if reached:
        problems.append(f"reached: {', '.join(reached)}")
    interfaces = report.get("interfaces", [])
    notes = " ".join(o.result.notes) if o.result else ""
    reached_any = any(listener.hits for listener in ctx.state["listeners"].values())
    observed = "host listeners reached" if reached_any else "0 host listeners reached"
    if interfaces:
        observed += f"; interfaces {interfaces}"
    if "no bridge network" in notes:
        observed += "; the daemon has no bridge, so the tool ran with no network at all"
    return observed, problems


def check_bomb(kind: str) -> Check:
    def check(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
        problems = _failed(o)
        r = o.result
        if r is None:
            return "no result", problems
        if r.ok:
            problems.append("the bomb's call succeeded: nothing stopped it")
        if "no limit stopped me" in r.stdout:
            problems.append("allocated 8 GiB under a 128 MiB limit")
        declared = {"fork": 3.0, "cpu": 2.0}.get(kind)
        if declared and o.seconds > declared + 3:
            problems.append(f"took {o.seconds:.1f}s against a {declared:g}s timeout")
        if kind == "memory" and not any("memory" in n for n in r.notes):
            problems.append(
                f"no note says it ran out of memory (exit {r.exit_code}, notes {r.notes})"
            )
        how = "timed out and killed" if r.timed_out else f"exit {r.exit_code}"
        note = f" ({r.notes[0]})" if r.notes else ""
        probe = (f"; a normal call meanwhile took {o.probe_seconds:.2f}s"
                 if o.probe_seconds is not None else "")  # fmt: skip
        return f"{how} after {o.seconds:.1f}s{note}{probe}", problems

    return check


def check_fill_tmp(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    report = o.report()
    cap = ctx.config.limits.tmp
    where = ctx.args.get("dir", "/tmp")
    written = report.get("written")
    if written is None:
        problems.append("the tool printed no report")
    elif written > cap + (1 << 20):
        problems.append(f"wrote {written} bytes to {where} over the {cap}-byte tmp cap")
    return (f"{(written or 0) >> 20} MiB of {where} accepted (tmp cap {cap >> 20} MiB), then "
            f"{report.get('error') or 'the tool stopped'}", problems)  # fmt: skip


def prepare_fill_outputs(ctx: Ctx) -> None:
    ctx.args.update(files=24, file_kib=900)  # each file under the cap, together 21x over it


def check_fill_outputs(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    r = o.result
    if r is None:
        return "no result", problems
    cap = ctx.config.limits.outputs
    plan_dir = r.output_dir
    if r.outputs or plan_dir is not None:
        problems.append(f"{len(r.outputs)} files exported over the cap")
    exported = [p for p in ctx.config.output_root.iterdir() if p.name != ".staging"] \
        if ctx.config.output_root.exists() else []  # fmt: skip
    if exported:
        problems.append(f"output directories exist: {[p.name for p in exported]}")
    if not any("discarded" in n for n in r.notes):
        problems.append("no note says the outputs were discarded")
    written = o.report().get("written", 0)
    return (f"nothing exported (note: {next((n for n in r.notes if 'discarded' in n), '-')}); "
            f"the sandbox wrote {written >> 20} MiB to the host's staging dir, cap {cap >> 20} MiB",
            problems)  # fmt: skip


def check_fill_outputs_disk(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    cap = ctx.config.limits.outputs
    written = o.report().get("written", 0)
    if written > 2 * cap:
        problems.append(f"the host disk took {written >> 20} MiB from one call with a "
                        f"{cap >> 20} MiB outputs cap")  # fmt: skip
    error = o.report().get("error")
    return f"{written >> 20} MiB written before {error or 'the tool stopped'}", problems


def prepare_flood(ctx: Ctx) -> None:
    ctx.args["mb"] = 100


def check_flood(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    r = o.result
    if r is None:
        return "no result", problems
    cap = ctx.config.limits.stdout
    if not (r.stdout_truncated and r.stderr_truncated):
        problems.append("a stream was not marked truncated")
    if len(r.stdout) > cap + 200 or len(r.stderr) > cap + 200:
        problems.append(f"kept {len(r.stdout)} + {len(r.stderr)} characters over a {cap}-byte cap")
    if o.rss_growth > RSS_LIMIT:
        problems.append(f"the server grew by {o.rss_growth >> 20} MiB")
    return (f"capped at {cap >> 20} MiB per stream in {o.seconds:.1f}s; server grew "
            f"{o.rss_growth >> 20} MiB", problems)  # fmt: skip


def prepare_secret(ctx: Ctx) -> None:
    ctx.state["secret"] = f"sk-{ctx.token}"
    ctx.secret_sources = [{"API_TOKEN": ctx.state["secret"]}]
    ctx.args["cap"] = ctx.config.limits.stdout


def check_secret_streams(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    secret = ctx.state["secret"]
    if secret in o.text:
        problems.append("the secret is in stdout, stderr or the notes")
    if o.result is not None and "plain: ***" not in o.result.stdout:
        problems.append("the tool's output is not what the check expects (blind)")
    return "scrubbed to *** in stdout (whole and split across writes) and stderr", problems


def check_secret_file(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    secret = ctx.state["secret"].encode()
    files = o.result.outputs if o.result else ()
    leaking = [p.name for p in files if secret in p.read_bytes()]
    if leaking:
        problems.append(f"exported output files hold the secret: {leaking}")
    if o.result is not None and not files and not o.result.notes:
        problems.append("the file vanished without a note")
    observed = (f"the exported {', '.join(leaking)} holds the secret verbatim" if leaking
                else f"no exported file holds it ({len(files)} files, notes {list(o.result.notes) if o.result else []})")  # fmt: skip
    return observed, problems


def check_secret_boundary(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    secret = ctx.state["secret"]
    head = secret[:6]
    kept = o.result.stdout if o.result else ""
    if head in kept:
        problems.append(
            f"the first {len(head)} characters of the secret survive the cut at the cap"
        )
    return (f"the stdout cap cut the secret; its first {len(head)} characters "
            f"{'are' if head in kept else 'are not'} in the result", problems)  # fmt: skip


def check_daemonize(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    if o.result is not None and not o.result.ok:
        problems.append(f"the call failed (exit {o.result.exit_code}): the check is blind")
    if o.seconds > 10:
        problems.append(f"the call waited {o.seconds:.1f}s for its daemons")
    return f"returned in {o.seconds:.1f}s; both daemons killed with the sandbox", problems


def check_privilege(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    r = o.report()
    if not r:
        return "no report", [*problems, "the tool printed no report"]
    if (
        r.get("uid") != SANDBOX_UID
        or r.get("uid after") != SANDBOX_UID
        or r.get("euid") != SANDBOX_UID
    ):
        problems.append(f"uid {r.get('uid')} -> {r.get('uid after')}")
    if r.get("NoNewPrivs") != "1":
        problems.append("no_new_privs is off: setuid binaries can raise privileges")
    for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        if int(r.get(cap, "1"), 16) != 0:
            problems.append(f"{cap} = {r.get(cap)}")
    for label in ("su root", "unshare user namespace as root",
                  "unshare mount namespace", "mount binary"):  # fmt: skip
        run = r.get(label, {})
        if run.get("rc") == 0:
            problems.append(f"{label} succeeded: {run.get('out', '').strip()!r}")
    for label in ("mount(2) tmpfs", "setuid(0)", "setgid(0)", "chroot(/tmp)",
                  "unshare(2) user", "unshare(2) mount", "unshare(2) net"):  # fmt: skip
        if r.get(label, {}).get("rc") == 0:
            problems.append(f"{label} succeeded")
    traced = []
    for label in ("ptrace parent", "ptrace pid 1"):
        attempt = r.get(label, {})
        if attempt.get("rc") != 0:
            continue
        # Attaching to a process of the sandbox's own uid with no capabilities gains nothing
        # the tool did not have; anything more privileged would be an escalation.
        tracee = attempt.get("tracee", {})
        uids = set(tracee.get("Uid", ["?"]))
        if uids != {str(SANDBOX_UID)} or int(tracee.get("CapPrm", ["1"])[0], 16) != 0:
            problems.append(f"{label} attached to a more privileged process: {tracee}")
        traced.append(f"{label} -> {tracee.get('Name', ['?'])[0]} (uid {SANDBOX_UID}, no caps)")
    escaped = [k for k, v in r.get("leave cgroup", {}).items() if v == "ok"]
    if escaped:
        problems.append(f"moved itself out of its cgroup via {escaped}")
    opened = [k for k, v in r.get("devices", {}).items() if v == "opened" and k != "/dev/tty"]
    if opened:
        problems.append(f"opened host devices {opened}")
    observed = (f"uid {r.get('uid after')}, NoNewPrivs {r.get('NoNewPrivs')}, no capabilities; "
                "su, unshare, mount, setuid, chroot, cgroup moves refused")  # fmt: skip
    if traced:
        observed += "; only its own sandbox's processes traceable: " + ", ".join(traced)
    return observed, problems


def prepare_kill_host(ctx: Ctx) -> None:
    # A host process of the very uid the sandbox runs as: only the pid namespace protects it.
    victim = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_UID}",
            "--clear-groups",
            "sleep",
            ctx.state.setdefault("victim marker", f"120.{int(ctx.token[:8], 16)}"),
        ],  # fmt: skip
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        victim.kill()
        victim.wait()

    ctx.stack.callback(stop)
    ctx.state["victim"] = victim
    ctx.args.update(host_pid=victim.pid)
    ctx.args["target"] = ctx.state["victim marker"]


def check_kill_host(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    victim = ctx.state["victim"]
    if victim.poll() is not None:
        problems.append(f"the host process was killed (status {victim.returncode})")
    found = o.report().get("found by marker")
    if found:
        problems.append(f"the host process was visible as pids {found}")
    return (f"host process of uid {SANDBOX_UID} alive; sandbox saw {len(o.report().get('visible', []))} "
            f"pids, kill(host pid): {o.report().get('kill host pid')}", problems)  # fmt: skip


def check_odd_names(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = _failed(o)
    r = o.result
    if r is None:
        return "no result", problems
    try:
        json.dumps(r.to_json(), ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError) as exc:
        problems.append(f"the result cannot be sent as JSON: {type(exc).__name__}")
    base = ctx.config.output_root.resolve()
    for path in r.outputs:
        if not path.resolve().is_relative_to(base):
            problems.append(f"an output outside the output root: {path!r}")
        if any(ord(c) < 32 for c in str(path)):
            problems.append("an exported name carries control characters")
    return f"{len(r.outputs)} files exported, notes {list(r.notes)}", problems


def prepare_fifo(ctx: Ctx) -> None:
    fifo = ctx.bundle / "pipe"
    os.mkfifo(fifo)
    ctx.state["release"] = unblock_fifo_later(fifo, after=1.5)


def check_server_responsive(ctx: Ctx, o: Outcome) -> tuple[str, list[str]]:
    problems = []
    if o.result is None and not isinstance(o.error, SkillcellError):
        problems.append(f"crashed: {type(o.error).__name__}: {o.error}")
    if o.rss_growth > RSS_LIMIT:
        problems.append(f"the server grew by {o.rss_growth >> 20} MiB reading the bundle")
    how = (f"exit {o.result.exit_code}" if o.result is not None
           else f"refused: {type(o.error).__name__}")  # fmt: skip
    return (f"{how} after {o.seconds:.1f}s; event loop blocked up to {o.loop_lag:.2f}s; "
            f"server grew {o.rss_growth >> 20} MiB", problems)  # fmt: skip


def prepare_sparse(ctx: Ctx) -> None:
    with open(ctx.bundle / "blob.bin", "wb") as f:
        f.truncate(SPARSE_SIZE)


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "read-shadow",
        "read /etc/shadow, gshadow, sudoers, host keys",
        "unreadable: not in the sandbox, or not the host's",
        check_read_shadow,
    ),
    Attack(
        "read-home",
        "read ~/.ssh, /root, /home and canaries in the host's home and /tmp",
        "no canary readable",
        check_read_home,
        prepare_read_home,
    ),
    Attack(
        "read-environ",
        "read os.environ, /proc/1/environ, /proc/<ppid>/environ, all /proc",
        "only declared variables; the server's env invisible",
        check_read_environ,
        prepare_read_environ,
    ),
    Attack(
        "read-other-outputs",
        "read other calls' outputs in the host's output root",
        "the output root is not in the sandbox",
        check_read_other_outputs,
        prepare_read_other_outputs,
    ),
    Attack(
        "write-workspace",
        "write or chmod its bundle, /inputs, /usr, /etc",
        "read-only; the host unchanged",
        check_write_workspace,
        prepare_write_workspace,
    ),
    Attack(
        "symlink-escape",
        "bundle symlinks to /etc/shadow and to the host's output root",
        "links resolve inside the sandbox: nothing of the host",
        check_symlink_escape,
        prepare_symlink_escape,
    ),
    Attack(
        "symlink-docs",
        "SKILL.md is a symlink to /etc/shadow (read by the server)",
        "never read through: the docs stay out of the catalog",
        check_symlink_docs,
    ),
    Attack(
        "net-closed",
        "closed-world: TCP/UDP to the host (loopback and LAN), DNS, 1.1.1.1, "
        "an abstract unix socket",
        "no network at all: every attempt fails",
        check_net,
        lambda ctx: prepare_net(ctx, closed=True),
    ),
    Attack(
        "net-open-loopback",
        "open-world: reach the host's loopback service and abstract socket",
        "the host's loopback stays out of reach",
        check_net,
        lambda ctx: prepare_net(ctx, closed=False),
    ),
    Attack(
        "fork-bomb",
        "fork for ever (pids 64, cpus 0.5, timeout 3s)",
        "bounded by pids, killed at the timeout, others served",
        check_bomb("fork"),
        bombs=True,
    ),
    Attack(
        "memory-bomb",
        "allocate until stopped (memory 128Mi)",
        "killed, with a note saying out of memory",
        check_bomb("memory"),
        bombs=True,
    ),
    Attack(
        "cpu-spin",
        "4 busy processes (cpus 0.5, timeout 2s)",
        "killed at the timeout, others served",
        check_bomb("cpu"),
        bombs=True,
    ),
    Attack("fill-tmp", "fill /tmp", "ENOSPC at the tmp cap (8 MiB)", check_fill_tmp),
    Attack(
        "fill-root",
        "fill / (the sandbox's root, outside /tmp and /outputs)",
        "read-only, as documented (or bounded like /tmp)",
        check_fill_tmp,
        lambda ctx: ctx.args.update(dir="/", limit_mib=64, files=64),
        bundle="fill-tmp",
    ),
    Attack(
        "fill-outputs",
        "24 files of 900 KiB in /outputs (cap 1 MiB)",
        "nothing exported, a note says why",
        check_fill_outputs,
        prepare_fill_outputs,
    ),
    Attack(
        "fill-outputs-disk",
        "the same, counting what reached the host's disk",
        "the host disk takes at most about the cap",
        check_fill_outputs_disk,
        prepare_fill_outputs,
        bundle="fill-outputs",
    ),
    Attack(
        "flood-streams",
        "100 MB on stdout and 100 MB on stderr",
        "capped at 1 MiB each, truncated flag, server memory flat",
        check_flood,
        prepare_flood,
        bombs=True,
    ),
    Attack(
        "leak-secret",
        "print its secret: whole, split across writes, on stderr, in JSON",
        "scrubbed to ***",
        check_secret_streams,
        prepare_secret,
        bundle="leak-secret",
        script="streams",
    ),
    Attack(
        "leak-secret-file",
        "write its secret into an exported output file",
        "not exported verbatim",
        check_secret_file,
        prepare_secret,
        bundle="leak-secret",
        script="file",
    ),
    Attack(
        "leak-secret-at-cap",
        "place its secret across the stdout cap",
        "no part of the secret in the result",
        check_secret_boundary,
        prepare_secret,
        bundle="leak-secret",
        script="boundary",
    ),
    Attack(
        "daemonize",
        "double fork + setsid daemons ignoring SIGHUP/SIGTERM",
        "nothing survives the call",
        check_daemonize,
    ),
    Attack(
        "privilege-escalation",
        "su, unshare -U/-m, mount, setuid(0), chroot, ptrace, leave its cgroup, open /dev/mem",
        "all refused; uid 65534, no capabilities",
        check_privilege,
    ),
    Attack(
        "kill-host",
        "kill a host process of the same uid (by pid, by name, kill -1)",
        "the host process is invisible and survives",
        check_kill_host,
        prepare_kill_host,
    ),
    Attack(
        "odd-output-names",
        "output files named with non-UTF-8 bytes, newlines, escapes",
        "the result stays valid JSON inside the output root",
        check_odd_names,
    ),
    Attack(
        "fifo-in-bundle",
        "a named pipe in a cacheable bundle",
        "the server keeps serving; the call ends",
        check_server_responsive,
        prepare_fifo,
        bombs=True,
    ),
    Attack(
        "sparse-bundle",
        "a 256 MiB sparse file in a cacheable bundle",
        "server memory and event loop unaffected",
        check_server_responsive,
        prepare_sparse,
        bombs=True,
    ),
)


# -- running one attack ---------------------------------------------------------------------


async def run_attack(attack: Attack, engine: str) -> Verdict:
    """One hostile call through a real Runner on `engine`, measured from the host's side."""
    with sealed_tempdir() as root, ExitStack() as stack:
        skills = root / "skills"
        skills.mkdir()
        (root / "inputs").mkdir()
        bundle = copy_bundle(attack.bundle or attack.name, skills)
        copy_bundle("probe", skills)
        token = uuid.uuid4().hex
        marker = f"skillcellsec{token[:16]}"
        ctx = Ctx(engine=engine, root=root, skills=skills, bundle=bundle,
                  config=config_for(engine, root), marker=marker, token=token, stack=stack,
                  args={"marker": marker})  # fmt: skip
        if attack.prepare is not None:
            attack.prepare(ctx)
        catalog = scan([skills])
        runner = make_runner(catalog, ctx.config, ctx.environ)
        try:
            outcome = await _execute(attack, ctx, runner, catalog)
        finally:
            await runner.aclose()
        observed, problems = attack.check(ctx, outcome)
        problems = list(problems)
        if outcome.error is not None and not isinstance(outcome.error, SkillcellError):
            problems.append(
                f"the call crashed: {type(outcome.error).__name__}: {outcome.error!r}"[:300]
            )
        if outcome.loop_lag > LOOP_LAG_LIMIT:
            problems.append(f"the server's event loop was blocked for {outcome.loop_lag:.1f}s")
        if attack.bombs:
            if outcome.probe_error:
                problems.append(f"a normal call meanwhile failed: {outcome.probe_error}")
            elif outcome.probe_seconds is not None and outcome.probe_seconds > PROBE_PROMPT[engine]:
                problems.append(f"a normal call meanwhile took {outcome.probe_seconds:.1f}s")
        problems += leftovers(markers=[marker], call_ids=runner.call_ids, tmp=root,
                              output_root=ctx.config.output_root)  # fmt: skip
        kill_strays(marker)
        return Verdict(attack, engine, observed, tuple(problems))


async def _execute(attack: Attack, ctx: Ctx, runner: Any, catalog: Catalog) -> Outcome:
    lag = LoopLag()
    stop = anyio.Event()
    outcome = Outcome(result=None, error=None, seconds=0.0, catalog=catalog)

    async def hostile() -> None:
        start = time.monotonic()
        try:
            call = await runner.call(attack.tool, ctx.args, secret_sources=ctx.secret_sources)
            outcome.result = call.result
        except Exception as exc:
            outcome.error = exc
        outcome.seconds = time.monotonic() - start

    async def probe() -> None:
        await anyio.sleep(PROBE_DELAY[ctx.engine])
        start = time.monotonic()
        try:
            call = await runner.call("sectest/probe", {})
            if not (call.result.ok and "alive" in call.result.stdout):
                outcome.probe_error = f"exit {call.result.exit_code}: {call.result.stderr[-200:]}"
        except Exception as exc:
            outcome.probe_error = f"{type(exc).__name__}: {exc}"
        outcome.probe_seconds = time.monotonic() - start

    with RssPeak() as memory:
        async with anyio.create_task_group() as outer:
            outer.start_soon(lag.watch, stop)
            async with anyio.create_task_group() as calls:
                calls.start_soon(hostile)
                if attack.bombs:
                    calls.start_soon(probe)
            stop.set()
    outcome.loop_lag = lag.worst
    outcome.rss_growth = memory.growth
    return outcome


def kill_strays(marker: str) -> None:
    """Last resort for a failed containment: never leave a hostile process to the next test."""
    for pid in processes_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
