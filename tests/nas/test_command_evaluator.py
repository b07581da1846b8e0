"""The command evaluator: no shell, the service's sandbox, process groups, bounded output (real processes)."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.evaluators import CommandEvaluator
from nas.evaluators.command import CommandPolicy, command_argv
from tests.conftest import EVAL_PYTHON, ROOT

PY = sys.executable
SANDBOX = CommandPolicy(env_allow=("HWNAS_TEST_ALLOWED",), cpu_seconds=30, memory_bytes=2 << 30, open_files=64,
                        max_processes=256, output_tail_bytes=4096)


def write(tmp_path: Path, body: str, name: str = "ev.py") -> Path:
    script = tmp_path / name
    script.write_text(body)
    return script


def processes_matching(marker: str) -> list[int]:
    """Pids whose command line is exactly ``marker`` (e.g. 'sleep 31.25')."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip() == marker:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def wait_until_gone(marker: str, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_matching(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_metrics_from_last_line_and_arch_is_one_argument(tmp_path: Path) -> None:
    script = write(tmp_path, "import json, os, sys\nprint('noise')\n"
                             "print(json.dumps({'argc': len(sys.argv), 'accuracy': len(sys.argv[1]), "
                             "'env': int(os.environ['HWNAS_ARCH'] == sys.argv[1])}))\n")
    arch = "|a b~0|+|c'd~0|;touch pwned|"
    for template in (f"{PY} {script} {{arch}}", f"{PY} {script} '{{arch}}'", f'{PY} {script} "{{arch}}"'):
        (result,) = CommandEvaluator(template).evaluate([arch])
        assert result.metrics == {"argc": 2.0, "accuracy": float(len(arch)), "env": 1.0}, template
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert command_argv("train --arch={arch} --x 'a b'", "|x~0|") == ["train", "--arch=|x~0|", "--x", "a b"]


def test_failures_are_recorded_not_raised(tmp_path: Path) -> None:
    crash = write(tmp_path, "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    (r,) = CommandEvaluator(f"{PY} {crash}").evaluate(["x"])
    assert not r.ok and "exit status 3" in r.error and "boom" in r.error
    (r,) = CommandEvaluator("echo not-json").evaluate(["x"])
    assert not r.ok and "not JSON" in r.error
    (r,) = CommandEvaluator("echo '{\"accuracy\": \"high\"}'").evaluate(["x"])
    assert not r.ok and "finite number" in r.error
    (r,) = CommandEvaluator("echo '{\"accuracy\": NaN}'").evaluate(["x"])
    assert not r.ok and "finite number" in r.error
    (r,) = CommandEvaluator("sh -c 'kill -SEGV $$'").evaluate(["x"])
    assert not r.ok and "SIGSEGV" in r.error
    (r,) = CommandEvaluator("no-such-program-here {arch}").evaluate(["x"])
    assert not r.ok and "not found" in r.error
    with pytest.raises(ValueError, match="argument list"):
        CommandEvaluator("python3 'unterminated")


def test_timeout_kills_the_whole_process_group() -> None:
    started = time.monotonic()
    (r,) = CommandEvaluator("sh -c 'sleep 301.25 & sleep 301.25; echo {}'", timeout_s=0.5,
                            policy=SANDBOX).evaluate(["x"])
    assert not r.ok and "timed out" in r.error
    # a group left alive holds the pipes for 300 s: 60 s is room for a loaded machine, not a speed bar
    # (benchmarks/command_timeout.py prints how soon it returns)
    assert time.monotonic() - started < 60
    assert wait_until_gone("sleep 301.25") == []


def test_background_children_do_not_outlive_a_finished_trial() -> None:
    started = time.monotonic()
    (r,) = CommandEvaluator("sh -c 'sleep 302.5 & echo {\\\"accuracy\\\": 1}'", timeout_s=200,
                            policy=SANDBOX).evaluate(["x"])
    # the pipes held by the background sleep (300 s) do not stall it; 60 s is room for a loaded machine
    assert r.ok and time.monotonic() - started < 60
    assert wait_until_gone("sleep 302.5") == []


def test_retries_until_success(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = write(tmp_path, f"import pathlib, sys\np = pathlib.Path({str(counter)!r})\n"
                             "n = int(p.read_text()) + 1 if p.exists() else 1\np.write_text(str(n))\n"
                             "sys.exit(1) if n < 3 else print('{\"accuracy\": 1}')\n")
    (r,) = CommandEvaluator(f"{PY} {script}", retries=2).evaluate(["x"])
    assert r.ok and counter.read_text() == "3"


def test_sandbox_environment_user_and_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's sandbox: only HWNAS_ARCH, PATH, HOME and the allow-list; never the worker's secrets."""
    monkeypatch.setenv("HWNAS_DATABASE_URL", "postgresql://hwnas:s3cret@db/hwnas")
    monkeypatch.setenv("HWNAS_BROKER_URL", "redis://:s3cret@redis:6379/0")
    monkeypatch.setenv("HWNAS_TEST_ALLOWED", "visible")
    secret = tmp_path / "root-only"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    script = write(tmp_path, f"""import json, os, resource, sys
out = {{"env": dict(os.environ), "uid": os.getuid(), "home_writable": os.access(os.environ["HOME"], os.W_OK)}}
try:
    os.setuid(0); out["setuid"] = "worked"
except PermissionError:
    out["setuid"] = "refused"
try:
    open({str(secret)!r}).read(); out["secret"] = "read"
except PermissionError:
    out["secret"] = "refused"
out["limits"] = [resource.getrlimit(r)[0] for r in (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NOFILE)]
print(json.dumps(out), file=sys.stderr)
sys.exit(9)
""")
    (r,) = CommandEvaluator(f"{EVAL_PYTHON} {script} {{arch}}", policy=SANDBOX).evaluate(["|a~0|"])
    seen = json.loads(r.error.split("\n", 1)[1])
    given = {"HWNAS_ARCH", "PATH", "HOME", "HWNAS_TEST_ALLOWED"}
    assert given <= set(seen["env"]) and set(seen["env"]) - given <= {"PWD", "LC_CTYPE", "SHLVL", "_"}, seen["env"]
    assert "s3cret" not in r.error and seen["env"]["HWNAS_ARCH"] == "|a~0|"
    assert seen["home_writable"] and not Path(seen["env"]["HOME"]).exists()  # a fresh HOME, removed after
    assert seen["limits"] == [30, 2 << 30, 64]
    if os.geteuid() == 0:
        assert seen["uid"] == 65534 and seen["setuid"] == "refused" and seen["secret"] == "refused"


@pytest.mark.skipif(os.geteuid() != 0, reason="the user switch happens only when the worker is root")
def test_a_sandbox_never_runs_commands_as_root() -> None:
    (r,) = CommandEvaluator("true", policy=CommandPolicy(run_as="root")).evaluate(["x"])
    assert not r.ok and "refusing to run a command evaluator as root" in r.error
    (r,) = CommandEvaluator("true", policy=CommandPolicy(run_as="no-such-user-here")).evaluate(["x"])
    assert not r.ok and "HWNAS_COMMAND_USER" in r.error
    # the user's own machine (hwnas search): whoever runs hwnas, root included
    (r,) = CommandEvaluator("sh -c 'echo {\\\"uid\\\": $(id -u)}'", policy=CommandPolicy.local()).evaluate(["x"])
    assert r.metrics == {"uid": 0.0}
    (r,) = CommandEvaluator("sh -c 'echo {\\\"uid\\\": $(id -u)}'", policy=CommandPolicy()).evaluate(["x"])
    assert r.metrics == {"uid": 65534.0}


def test_200_mb_of_output_keeps_only_the_tail_and_the_worker_small(tmp_path: Path) -> None:
    """The evaluator runs in a process of its own here, so its peak memory (VmHWM) is the evaluator's."""
    noisy = write(tmp_path, "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(200 * 1024):\n"
                            "    sys.stdout.write(line)\nprint('{\"accuracy\": 7}')\n", "noisy.py")
    probe = ("import json, sys, time\nfrom nas.evaluators.command import CommandEvaluator, CommandPolicy\n"
             "t = time.perf_counter()\n"
             f"(r,) = CommandEvaluator({f'{EVAL_PYTHON} {noisy}'!r}, policy=CommandPolicy(output_tail_bytes=65536))"
             ".evaluate(['x'])\n"
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
             "print(json.dumps({'metrics': r.metrics, 'error': r.error, 'hwm_kb': int(hwm), "
             "'seconds': time.perf_counter() - t}))\n")
    done = subprocess.run([PY, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"200 MiB of stdout: evaluator process peak RSS {result['hwm_kb'] / 1024:.1f} MiB, "
          f"{result['seconds']:.2f}s")
    assert result["metrics"] == {"accuracy": 7.0}
    assert result["hwm_kb"] < 120 * 1024  # the output is 200 MiB; the evaluator's peak stays small


def test_the_group_dies_with_its_worker(tmp_path: Path) -> None:
    """kill -9 of the worker: the kernel tells the supervisor (PR_SET_PDEATHSIG), which kills the group."""
    started = tmp_path / "started"
    worker = ("import sys\nfrom nas.evaluators.command import CommandEvaluator, CommandPolicy\n"
              f"CommandEvaluator(\"sh -c 'touch {started}; sleep 33.75 & sleep 33.75'\", timeout_s=60, "
              "policy=CommandPolicy.local()).evaluate(['x'])\n")
    proc = subprocess.Popen([PY, "-c", worker], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists() and len(processes_matching("sleep 33.75")) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_until_gone("sleep 33.75") == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_local_policy_keeps_the_users_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_LOCAL_ONLY", "42")
    (r,) = CommandEvaluator("sh -c 'echo {\\\"accuracy\\\": $HWNAS_LOCAL_ONLY}'").evaluate(["x"])
    assert r.metrics == {"accuracy": 42.0}
    assert resource.getrlimit(resource.RLIMIT_CPU)[0] == resource.RLIM_INFINITY  # limits apply to the child only


@pytest.mark.skipif(os.geteuid() != 0, reason="escapes are caught for commands run as another user (a root worker's)")
def test_a_process_that_leaves_the_group_with_setsid_does_not_outlive_its_trial() -> None:
    """In a process of its own (the evaluator makes its process the orphans' reaper): a command
    whose child calls setsid and whose own parent then ends leaves nothing behind."""
    probe = ("from nas.evaluators.command import CommandEvaluator, CommandPolicy\n"
             "(r,) = CommandEvaluator(\"sh -c 'setsid sh -c \\\"sleep 303.75 & sleep 303.75\\\" & "
             "sleep 0.3; echo {}'\", policy=CommandPolicy()).evaluate(['x'])\n"
             "assert r.ok, r.error\n")
    subprocess.run([PY, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert wait_until_gone("sleep 303.75") == []
