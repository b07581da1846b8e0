"""Authentication is decided on its own (issue 15, finding 2), and the live server's limits (finding 14).

Embedded (no-auth) mode only when asked for and only on a loopback address; leaving out the broker
URL refuses to start instead of turning authentication off.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from hwnas_client import Client
from typer.testing import CliRunner

from api.app import create_app
from hwnas.cli.main import app as cli
from hwnas_settings import Settings, UnsafeSettings
from tests.conftest import EVAL_PYTHON, ROOT, Service, hwnas_cmd


def test_embedded_mode_on_a_public_address_is_refused_at_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "HWNAS_EMBEDDED": "true", "HWNAS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    env.pop("HWNAS_BROKER_URL", None)
    done = subprocess.run(hwnas_cmd("serve", "--host", "0.0.0.0"), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done
    assert "refusing to start" in done.stderr and "HWNAS_HOST=127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "env", "says"), [
    (["serve", "--embedded", "--host", "0.0.0.0"], {}, "HWNAS_HOST=127.0.0.1"),
    (["serve", "--embedded", "--host", "192.168.1.10"], {}, "loopback"),
    (["serve", "--host", "0.0.0.0"], {"HWNAS_DATABASE_URL": "postgresql://db/hwnas"}, "HWNAS_BROKER_URL"),
    (["serve"], {}, "HWNAS_EMBEDDED=true"),
])
def test_unsafe_combinations_refuse_with_what_to_set(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                     env: dict[str, str], says: str) -> None:
    for name in ("HWNAS_BROKER_URL", "HWNAS_EMBEDDED", "HWNAS_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "refusing to start" in result.output and says in result.output, result.output


def test_the_app_itself_refuses_unsafe_settings() -> None:
    with pytest.raises(UnsafeSettings, match="HWNAS_BROKER_URL"):
        create_app(Settings(database_url="sqlite://"))  # no broker, not embedded: never silently no-auth
    with pytest.raises(UnsafeSettings, match="loopback"):
        create_app(Settings(database_url="sqlite://", embedded=True, host="0.0.0.0"))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        Settings(embedded=True, host=host).check_serving()
    Settings(broker_url="redis://127.0.0.1:6379/0", host="0.0.0.0").check_serving()  # authenticated


def test_docker_and_compose_run_authenticated() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "HWNAS_EMBEDDED=false" in dockerfile and "--embedded" not in dockerfile
    assert 'HWNAS_EMBEDDED: "false"' in compose and "HWNAS_BROKER_URL: redis://" in compose
    assert "HWNAS_EMBEDDED=true" in (ROOT / "Makefile").read_text()  # the demo says it is embedded


def chunked_post(url: str, path: str, chunks: list[bytes]) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for chunk in chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        reply = b""
        while b"\r\n\r\n" not in reply or b"}" not in reply.split(b"\r\n\r\n", 1)[1]:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            reply += data
    return int(reply.split(b" ", 2)[1]), reply


def test_live_server_chunked_body_over_the_limit_and_submit_wait(embedded_server: Service, tmp_path: Path) -> None:
    """A chunked body past HWNAS_MAX_BODY_BYTES is a 413 (was a 400); ``submit --wait`` on a job whose
    every trial failed exits 1 and the job ends failed (was: succeeded with an empty front)."""
    status, reply = chunked_post(embedded_server.url, "/v1/jobs", [b"[" + b"1," * 60_000] * 20)
    assert status == 413 and b"Request body too large" in reply, reply[:300]
    status, _ = chunked_post(embedded_server.url, "/v1/jobs", [b'{"space": "nb201"}'])
    assert status == 422  # a small chunked body still reaches validation
    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.exit('no GPU here')\n")
    spec = {"space": "nb201", "budget": {"evaluations": 3}, "strategy": {"name": "random"},
            "objectives": [{"metric": "accuracy", "goal": "maximize"},
                           {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": f"{EVAL_PYTHON} {script} {{arch}}"}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(hwnas_cmd("submit", str(tmp_path / "spec.json"), "--wait", "--url", embedded_server.url),
                          env=embedded_server.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    with Client(embedded_server.url) as client:
        (job,) = client.list_jobs()
    assert job.status == "failed" and job.evaluated == 3 and job.failed == 3
    assert "all 3 trials failed" in job.error and "no GPU here" in job.error
