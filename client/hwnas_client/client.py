from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from hwnas_client.errors import ApiError, HwnasError, JobFailed, WaitTimeout
from hwnas_client.models import Export, Job, ParetoFront, Trial


class Client:
    """Talks to an hwnas server: ``Client("http://127.0.0.1:8000", api_key=...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:500]}
            raise ApiError(response.status_code, problem)
        return response

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> Job:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Job.from_json(self._request("POST", "/v1/jobs", json=spec, headers=headers))

    def get(self, job_id: str) -> Job:
        return Job.from_json(self._request("GET", f"/v1/jobs/{job_id}"))

    def list_jobs(self, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Job]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return [Job.from_json(j) for j in self._request("GET", "/v1/jobs", params=params)["items"]]

    def trials(self, job_id: str, sort: str = "seq", page_size: int = 500) -> list[Trial]:
        return list(self.iter_trials(job_id, sort=sort, page_size=page_size))

    def iter_trials(self, job_id: str, sort: str = "seq", page_size: int = 500) -> Iterator[Trial]:
        offset = 0
        while True:
            page = self._request("GET", f"/v1/jobs/{job_id}/trials",
                                 params={"sort": sort, "limit": page_size, "offset": offset})
            for item in page["items"]:
                yield Trial.from_json(item)
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def pareto(self, job_id: str) -> ParetoFront:
        return ParetoFront.from_json(self._request("GET", f"/v1/jobs/{job_id}/pareto"))

    def export(self, job_id: str, trial_id: int, format: str = "torch", out_dir: str | Path = ".") -> Export:
        """Download a trial's export (torch, onnx or json) and unpack it into ``out_dir``."""
        response = self._send("GET", f"/v1/jobs/{job_id}/trials/{trial_id}/export", params={"format": format})
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = []
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            for name in archive.namelist():
                member = PurePosixPath(name)
                if member.is_absolute() or ".." in member.parts or len(member.parts) != 1:
                    raise HwnasError(f"refusing to unpack {name!r} outside {out}")
                (out / name).write_bytes(archive.read(name))
                files.append(out / name)
        return Export(out_dir=out, files=files, manifest=json.loads((out / "manifest.json").read_text()))

    def cancel(self, job_id: str) -> Job:
        return Job.from_json(self._request("POST", f"/v1/jobs/{job_id}/cancel"))

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 1.0,
             on_update: Callable[[Job], None] | None = None, raise_on_failure: bool = True) -> Job:
        """Poll until the job ends; raises WaitTimeout, or JobFailed when it failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if on_update:
                on_update(job)
            if job.done:
                if raise_on_failure and job.status == "failed":
                    raise JobFailed(job)
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} still {job.status} after {timeout}s")
            time.sleep(poll)

    def device(self, name: str, space: str | None = None) -> list[dict[str, Any]]:
        """The device's tables (one per space) and its agent (``agent``: online, last_seen, ...)."""
        return self._request("GET", f"/v1/devices/{name}", params={"space": space} if space else None)

    def onboard(self, name: str, space: str, samples: int = 20, validate: int = 30, seed: int = 0) -> dict[str, Any]:
        """Start onboarding the device from its agent's measurements; returns the operation."""
        return self._request("POST", f"/v1/devices/{name}/onboard",
                             json={"space": space, "samples": samples, "validate": validate, "seed": seed})

    def operation(self, device: str, op_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/devices/{device}/operations/{op_id}")

    def verify(self, job_id: str, device: str, top_k: int = 5) -> dict[str, Any]:
        """Measure the job's best ``top_k`` front members on the device's agent; returns the operation."""
        return self._request("POST", f"/v1/jobs/{job_id}/verify", json={"device": device, "top_k": top_k})

    def wait_operation(self, device: str, op_id: str, timeout: float | None = None, poll: float = 1.0,
                       on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll an onboarding/verification until it ends (succeeded, failed or cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            op = self.operation(device, op_id)
            if on_update:
                on_update(op)
            if op["status"] in ("succeeded", "failed", "cancelled"):
                return op
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"operation {op_id} still {op['status']} after {timeout}s")
            time.sleep(poll)

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/v1/health")

    def register_space(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Register a search space definition (hwnas.space/1) for your tenant: {name, content_hash, version, ...}.
        A bad definition raises ApiError (422) whose ``problem["errors"]`` name each JSON path."""
        return self._request("POST", "/v1/search-spaces", json=definition)

    def search_spaces(self) -> list[dict[str, Any]]:
        """The shipped spaces and your tenant's registered ones."""
        return self._request("GET", "/v1/search-spaces")

    def search_space(self, name: str) -> dict[str, Any]:
        """One space: its definition, op signatures and (registered) versions."""
        return self._request("GET", f"/v1/search-spaces/{name}")
