"""Run the user's command once per candidate (see README, "The command evaluator's sandbox").

No shell: the template is split with ``shlex.split`` and ``{arch}`` is replaced inside each
argument, so the architecture is always one argument however the template quotes it (a
template that wants a shell says ``sh -c '… "$HWNAS_ARCH"'``).

A :class:`CommandPolicy` says how the command runs. ``CommandPolicy.local()`` is the user's
own machine (``hwnas search --evaluator-cmd``): their environment and user. The service's
policy (``nas.service.command_policy``) is a sandbox: a clean environment, an unprivileged
user when the worker is root, resource limits. Both run the command in a process group of
its own under a small ``sh`` supervisor that kills the whole group when the worker dies
(``PR_SET_PDEATHSIG``); the worker kills the group after every run (exit, timeout, error),
and keeps only the last ``output_tail_bytes`` of stdout and stderr, read as they come.
A command run as another user that leaves its group with ``setsid`` is caught too: the
worker is its orphans' reaper (``PR_SET_CHILD_SUBREAPER``), so such a process comes back
to the worker when its parent ends, and every session it leads is killed after the run.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import pwd
import resource
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nas.evaluators.base import Evaluation, Evaluator

ERROR_TAIL = 2000
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
#: The process group's leader: forwards nothing, waits for the command, and on SIGTERM (sent
#: by the kernel when the worker dies) kills the whole group, itself included.
_SUPERVISOR = 'trap "kill -KILL 0" TERM HUP; "$@" & wait $!'


class CommandNotAllowed(RuntimeError):
    """The policy refuses to run commands here (e.g. it would run them as root)."""


@dataclass(frozen=True)
class CommandPolicy:
    #: Environment names passed through from this process; None passes the whole environment.
    env_allow: tuple[str, ...] | None = ()
    path: str = "/usr/local/bin:/usr/bin:/bin"
    #: Who runs the command when this process is root (never root itself); ignored otherwise.
    run_as: str | None = "nobody"
    #: Local runs (the user's own command on their machine) may run as whoever runs hwnas.
    allow_root: bool = False
    #: Per-process limits of the command (None: unchanged).
    cpu_seconds: int | None = 3600
    memory_bytes: int | None = 8 << 30
    open_files: int | None = 256
    max_processes: int | None = 512
    output_tail_bytes: int = 64 << 10
    #: Extra environment for every run (tests, operators); never the worker's credentials.
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def local(cls) -> CommandPolicy:
        """The user's own machine: their environment, their user, no limits but the timeout."""
        return cls(env_allow=None, run_as=None, allow_root=True, cpu_seconds=None, memory_bytes=None,
                   open_files=None, max_processes=None)

    @property
    def sandboxed(self) -> bool:
        return self.env_allow is not None

    def identity(self) -> tuple[int, int] | None:
        """(uid, gid) to switch to, or None to run as this process. Raises CommandNotAllowed."""
        if os.geteuid() != 0:
            return None
        if self.run_as:
            try:
                entry = pwd.getpwnam(self.run_as)
            except KeyError:
                raise CommandNotAllowed(f"the command evaluator's user {self.run_as!r} does not exist "
                                        "(set HWNAS_COMMAND_USER to an unprivileged user)") from None
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
        if self.allow_root:
            return None
        raise CommandNotAllowed("refusing to run a command evaluator as root: set HWNAS_COMMAND_USER "
                                "to an unprivileged user (default: nobody)")

    def limits(self) -> list[tuple[int, int]]:
        wanted = [(resource.RLIMIT_CPU, self.cpu_seconds), (resource.RLIMIT_AS, self.memory_bytes),
                  (resource.RLIMIT_NOFILE, self.open_files), (resource.RLIMIT_NPROC, self.max_processes)]
        return [(which, value) for which, value in wanted if value is not None]


def protect_this_process() -> None:
    """Make this process non-dumpable: a command running as the same user then cannot read its
    memory or /proc/PID/environ (where the database and broker URLs live)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class _Tail:
    """The last ``limit`` bytes written to a stream, and how many there were in all."""

    def __init__(self, limit: int):
        self.limit, self.total, self.data = limit, 0, bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def note(self, name: str) -> str:
        if self.total <= len(self.data):
            return ""
        return f"({name}: last {len(self.data)} of {self.total} bytes kept)"


def command_argv(template: str, arch: str) -> list[str]:
    """The argument vector: ``shlex.split`` of the template, ``{arch}`` replaced in each argument."""
    return [part.replace("{arch}", arch) for part in shlex.split(template)]


class CommandEvaluator(Evaluator):
    def __init__(self, command: str, timeout_s: float = 600.0, retries: int = 0, cwd: str | None = None,
                 policy: CommandPolicy | None = None):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"the command is not a valid argument list: {exc}") from None
        if not argv:
            raise ValueError("the command is empty")
        self.command, self.timeout_s, self.retries, self.cwd = command, timeout_s, retries, cwd
        self.policy = policy or CommandPolicy.local()
        if self.policy.sandboxed and os.geteuid() != 0:
            protect_this_process()

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [self._evaluate_one(a) for a in archs]

    def _evaluate_one(self, arch: str) -> Evaluation:
        result = Evaluation(None, "not run")
        for _ in range(self.retries + 1):
            result = self._attempt(arch)
            if result.ok:
                break
        return result

    def _environment(self, arch: str, home: str | None) -> dict[str, str]:
        policy = self.policy
        if policy.env_allow is None:
            return {**os.environ, **dict(policy.extra_env), "HWNAS_ARCH": arch}
        env = {name: os.environ[name] for name in policy.env_allow if name in os.environ}
        env.update(dict(policy.extra_env))
        env.update(PATH=policy.path, HOME=home or "/nonexistent", HWNAS_ARCH=arch)
        return env

    def _attempt(self, arch: str) -> Evaluation:
        try:
            identity = self.policy.identity()
        except CommandNotAllowed as exc:
            return Evaluation(None, str(exc))
        home = None
        try:
            if self.policy.sandboxed:
                home = tempfile.mkdtemp(prefix="hwnas-eval-")
                if identity:
                    os.chown(home, *identity)
            return self._run(command_argv(self.command, arch), self._environment(arch, home), identity)
        finally:
            if home:
                shutil.rmtree(home, ignore_errors=True)

    def _run(self, argv: list[str], env: dict[str, str], identity: tuple[int, int] | None) -> Evaluation:
        user: dict[str, object] = {}
        if identity:
            user = {"user": identity[0], "group": identity[1], "extra_groups": []}
            _adopt_orphans()
        try:
            with _LIVE_LOCK:  # started and listed at once: another run's sweep never takes it for an orphan
                proc = subprocess.Popen(["/bin/sh", "-c", _SUPERVISOR, "hwnas-evaluator", *argv],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, cwd=self.cwd, start_new_session=True, close_fds=True,
                                        preexec_fn=_child_setup(os.getpid(), self.policy.limits()),
                                        **user)  # type: ignore[call-overload]
                _LIVE.add(proc.pid)
        except (OSError, subprocess.SubprocessError) as exc:
            return Evaluation(None, f"cannot start the command: {exc}")
        out, err = _Tail(self.policy.output_tail_bytes), _Tail(self.policy.output_tail_bytes)
        sweep = (lambda: _kill_escaped(identity[0])) if identity else (lambda: None)
        try:
            timed_out = _collect(proc, {proc.stdout: out, proc.stderr: err},  # type: ignore[dict-item]
                                 time.monotonic() + self.timeout_s, sweep)
        finally:
            _kill_group(proc)
            with _LIVE_LOCK:
                _LIVE.discard(proc.pid)
            sweep()
        stderr = "\n".join(x for x in (err.text()[-ERROR_TAIL:], err.note("stderr"), out.note("stdout")) if x)
        if timed_out:
            return Evaluation(None, f"timed out after {self.timeout_s:g}s\n{stderr}".strip())
        if proc.returncode != 0:
            code = proc.returncode
            reason = (f"killed by signal {code - 128} ({_signal_name(code - 128)})" if code > 128
                      else f"exit status {code}")
            return Evaluation(None, f"{reason}\n{stderr}".strip())
        return _parse_metrics(out.text(), stderr)


#: Supervisors of this process's runs in progress (commands may run on several threads).
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()
_REAPER_OF: list[int] = []  # the pid that made itself a subreaper (not inherited across fork)


def _adopt_orphans() -> None:
    """Make this process the parent of its descendants' orphans (once per process)."""
    if _REAPER_OF != [os.getpid()]:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _REAPER_OF[:] = [os.getpid()]


def _processes() -> list[tuple[int, int, int, int]]:
    """(pid, parent pid, session id, uid) of every process, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            uid = os.stat(f"/proc/{entry.name}").st_uid
        except OSError:
            continue
        found.append((int(entry.name), int(fields[1]), int(fields[3]), uid))
    return found


def _kill_escaped(uid: int) -> None:
    """SIGKILL every session led by an orphan of ``uid`` that came back to this process (a
    command's process that left its group with ``setsid``), and reap those orphans. Orphans of
    another run of this process at the same time go too: no command may leave processes."""
    me = os.getpid()
    for _ in range(5):  # a session's members become orphans in turn as their parents die
        procs = _processes()
        with _LIVE_LOCK:
            orphans = [(pid, sid) for pid, ppid, sid, owner in procs
                       if ppid == me and owner == uid and pid not in _LIVE]
        if not orphans:
            return
        sessions = {sid for _, sid in orphans}
        for pid, _ppid, sid, owner in procs:
            if sid in sessions and owner == uid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid, _ in orphans:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _child_setup(parent: int, limits: list[tuple[int, int]]) -> Callable[[], None]:
    """Runs in the child between fork and exec (after the user switch): parent-death signal, limits.

    The parent-death signal must be set after the user switch (changing credentials clears it).
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the worker died before the signal was armed
            os._exit(70)
        for which, value in limits:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

    return setup


def _collect(proc: subprocess.Popen[bytes], tails: dict[object, _Tail], deadline: float,
             sweep: Callable[[], None]) -> bool:
    """Read both pipes into their tails until they close or the deadline passes. True on timeout.

    Once the supervisor has exited, its group is killed and ``sweep`` kills what escaped the
    group, so a background child still holding the pipes cannot keep the trial waiting.
    """
    with selectors.DefaultSelector() as sel:
        for stream in tails:
            sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            for key, _ in sel.select(min(remaining, 0.2)):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    tails[key.fileobj].add(chunk)
                else:
                    sel.unregister(key.fileobj)
            if sel.get_map() and _exited(proc):
                _kill_group(proc, reap=False)
                sweep()
    remaining = deadline - time.monotonic()
    try:
        proc.wait(timeout=max(remaining, 0.01))
    except subprocess.TimeoutExpired:
        return True
    return False


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the supervisor has exited, without reaping it (its pid, so its group id, stays ours)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(proc: subprocess.Popen[bytes], reap: bool = True) -> None:
    """SIGKILL every process of the command's group; the unreaped leader keeps the group id ours."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if reap:
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


def _parse_metrics(stdout: str, stderr: str) -> Evaluation:
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    if not lines:
        return Evaluation(None, f"no output; the last stdout line must be a JSON object\n{stderr}".strip())
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        return Evaluation(None, f"last stdout line is not JSON: {lines[-1][:200]!r}")
    if not isinstance(data, dict):
        return Evaluation(None, f"last stdout line must be a JSON object, got {lines[-1][:200]!r}")
    metrics: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return Evaluation(None, f"metric {key!r} is not a finite number: {value!r}")
        metrics[str(key)] = float(value)
    return Evaluation(metrics)
