"""Agents as real processes beside the stack's API and worker (tests/conftest.py ``Stack``)."""

from __future__ import annotations

import atexit
import functools
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import hwnas_cmd, start_process

HERE = Path(__file__).parent
FAKE_DEVICE = HERE / "fake_device.py"
FAKE_ACCURACY = HERE / "fake_accuracy.py"
#: Short heartbeats so "offline" is seen within seconds.
AGENT_ENV = {"HWNAS_AGENT_HEARTBEAT_S": "0.5", "HWNAS_AGENT_OFFLINE_AFTER_S": "3", "HWNAS_ALLOW_COMMAND_EVALUATOR": "true",
             "HWNAS_AGENT_WAIT_TIMEOUT_S": "120"}


def fake_command(model: bool = False) -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_DEVICE))} {{arch}}" + (" {model}" if model else "")


@functools.cache
def _readable_copy(script: Path) -> Path:
    """``script`` copied into a folder every user can read: the command evaluator runs it as the
    sandbox user (``nobody`` under a root worker), who cannot read a checkout inside a 0700 folder."""
    folder = Path(tempfile.mkdtemp(prefix="hwnas-test-scripts-"))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, True)
    copy = folder / script.name
    shutil.copyfile(script, copy)
    copy.chmod(0o644)
    return copy


def accuracy_command() -> str:
    """Run as the worker's command user (stdlib only, so the system python3 on its PATH will do)."""
    return f"python3 {shlex.quote(str(_readable_copy(FAKE_ACCURACY)))} {{arch}}"


def start_agent(stack: Any, name: str, *extra: str, device: str = "fakedev",
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    args = hwnas_cmd("agent", "--device", device, "--space", "nb201", "--runtime", "command",
                     "--command", fake_command(), *extra)
    proc, _ = start_process(name, args, {**stack.env, **(env or {})}, stack.log_dir)
    stack.workers.append(proc)  # stopped with the stack
    return proc


def headers(stack: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}"}


def wait_for(what: str, check: Callable[[], Any], stack: Any, timeout: float = 180.0, poll: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what} not reached in {timeout}s\n{stack.logs()}")


def get(stack: Any, path: str, **params: Any) -> Any:
    response = httpx.get(f"{stack.url}{path}", headers=headers(stack), params=params or None, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def post(stack: Any, path: str, body: dict[str, Any], status: int = 202) -> Any:
    response = httpx.post(f"{stack.url}{path}", headers=headers(stack), json=body, timeout=30)
    assert response.status_code == status, response.text
    return response.json()


def agent_online(stack: Any, device: str = "fakedev") -> bool:
    dead = [p for p in stack.workers if p.poll() is not None and p.returncode not in (-9,)]
    assert not dead, f"a process exited early\n{stack.logs()}"
    response = httpx.get(f"{stack.url}/v1/devices/{device}", headers=headers(stack), timeout=10)
    return response.status_code == 200 and bool((response.json()[0].get("agent") or {}).get("online"))
