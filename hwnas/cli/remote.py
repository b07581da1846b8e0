"""Client commands against a running server: submit, status, wait, pareto, cancel, jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from hwnas_client import ApiError, Client, Job, JobFailed, WaitTimeout

from hwnas.cli.render import console, fail, front_table, progress_bar

Url = Annotated[str, typer.Option("--url", envvar="HWNAS_URL", help="Server base URL")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="HWNAS_API_KEY", help="API key")]
DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def connect(url: str, api_key: str | None) -> Iterator[Client]:
    client = Client(url, api_key=api_key)
    try:
        yield client
    except ApiError as exc:
        lines = [f"{exc.status} {exc.title}: {exc.detail}"]
        lines += [f"  {e.get('field')}: {e.get('message')}" for e in exc.errors]
        fail("\n".join(lines))
    except httpx.TransportError as exc:
        fail(f"cannot reach {url}: {exc}", "start a server with `hwnas serve --embedded` or pass --url")
    finally:
        client.close()


def _print_job(job: Job) -> None:
    best = job.best["metrics"] if job.best else None
    console.print(f"[bold]{job.id}[/] {job.name!r} [bold]{job.status}[/] "
                  f"{job.evaluated}/{job.budget} evaluated ({job.failed} failed), "
                  f"hypervolume {job.hypervolume}, best {best}" + (f"\n  error: {job.error}" if job.error else ""))


def print_front(client: Client, job_id: str) -> None:
    front = client.pareto(job_id)
    keys = [o["key"] for o in front.objectives]
    rows = [{"id": t.id, "seq": t.seq, "arch": t.arch, "metrics": t.metrics} for t in front.trials]
    console.print(front_table(rows, keys, f"Pareto front of {job_id}: {len(rows)} architectures, "
                              f"best {keys[0]} first", [o["goal"] == "maximize" for o in front.objectives]))
    console.print(f"export one: hwnas export {job_id} TRIAL_ID --format torch|onnx|json")
    console.print(f"hypervolume {front.hypervolume:.4g} (reference {front.reference_point})")


def wait_with_bar(client: Client, job_id: str, timeout: float | None, poll: float) -> Job:
    with progress_bar() as bar:
        task = bar.add_task("waiting", total=None, status="")

        def update(job: Job) -> None:
            bar.update(task, total=job.budget, completed=job.evaluated,
                       status=f"{job.status}  hv {job.hypervolume or 0:.4g}")

        return client.wait(job_id, timeout=timeout, poll=poll, on_update=update, raise_on_failure=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def submit(spec: Annotated[Path, typer.Argument(help="Job spec JSON file")], url: Url = DEFAULT_URL,
               api_key: ApiKey = None, wait: bool = typer.Option(False, help="Wait and print the front")) -> None:
        """Submit a job spec to the server; with --wait, exits 1 unless the job succeeded."""
        try:
            body: dict[str, Any] = json.loads(spec.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"cannot read {spec}: {exc}")
        with connect(url, api_key) as client:
            job = client.submit(body)
            _print_job(job)
            if wait:
                job = wait_with_bar(client, job.id, None, 1.0)
                _print_job(job)
                print_front(client, job.id)
                if job.status != "succeeded":
                    raise typer.Exit(1)

    @app.command()
    def status(job_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
        """Show a job's status and progress."""
        with connect(url, api_key) as client:
            _print_job(client.get(job_id))

    @app.command()
    def jobs(url: Url = DEFAULT_URL, api_key: ApiKey = None, status: str | None = None) -> None:
        """List jobs, newest first."""
        with connect(url, api_key) as client:
            for job in client.list_jobs(status=status):
                _print_job(job)

    @app.command("wait")
    def wait_cmd(job_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None,
                 timeout: float | None = None, poll: float = 1.0) -> None:
        """Wait for a job to end, with a progress bar; exits 1 unless it succeeded."""
        with connect(url, api_key) as client:
            try:
                job = wait_with_bar(client, job_id, timeout, poll)
            except (WaitTimeout, JobFailed) as exc:
                fail(str(exc))
            _print_job(job)
            if job.status != "succeeded":
                raise typer.Exit(1)

    @app.command()
    def pareto(job_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None,
               json_out: Annotated[bool, typer.Option("--json", help="Print the raw JSON")] = False) -> None:
        """Print a job's Pareto front."""
        with connect(url, api_key) as client:
            if json_out:
                console.print_json(json.dumps(client.pareto(job_id).__dict__, default=lambda o: o.__dict__))
            else:
                print_front(client, job_id)

    @app.command()
    def cancel(job_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
        """Cancel a job; a running job stops before its next evaluation."""
        with connect(url, api_key) as client:
            _print_job(client.cancel(job_id))


