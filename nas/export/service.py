"""Exports of a job's trials for the API: tenant-scoped lookups, every device in the database."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from latency_tables import LatencyTable, TableError
from nas.export.core import ExportError, export_architecture
from nas.service import DbCatalog
from nas.spec import JobSpec
from storage import catalog as catalog_q
from storage import jobs as jobs_q
from storage.db import session_scope


class NotFound(LookupError):
    """No such job for this tenant, or no such trial in that job."""


@dataclass
class Archive:
    filename: str
    content: bytes


def export_trial(factory: sessionmaker[Session], *, tenant_id: int, job_id: str, trial_id: int,
                 fmt: str) -> Archive:
    """The zip of one trial's export. Raises NotFound, or ExportError for a bad format or arch."""
    with session_scope(factory) as s:
        job = jobs_q.get_job(s, job_id, tenant_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        trial = jobs_q.get_trial_by_id(s, job.id, trial_id)
        if trial is None:
            raise NotFound(f"job {job_id} has no trial {trial_id}")
        spec = JobSpec.model_validate(job.spec)
        tenant = job.tenant_id
        tables = []
        for device in catalog_q.list_devices(s, spec.space):
            try:
                tables.append(LatencyTable.from_dict(device.table))
            except TableError:
                continue  # stored tables were checked on upload; a broken one is left out, not fatal
        info = {"id": job.id, "name": job.name, "trial_id": trial.id, "trial_seq": trial.seq,
                "trial_status": trial.status, "metrics": trial.metrics}
        arch = trial.arch
    # the definition the job ran on (pinned by hash), whatever the tenant registered since
    space = DbCatalog(factory, tenant).space(spec.space, spec.space_hash)
    if space is None:
        raise ExportError(f"the job's search space {spec.space!r} (content hash {spec.space_hash}) is not known here")
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        result = export_architecture(space, arch, fmt, Path(tmp), tables=tables,
                                     tables_source="every device registered on this server",
                                     seed=spec.seed, used_devices=spec.devices(), job=info)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in result.files:
                zf.write(result.out_dir / name, name)
    name = f"hwnas-{spec.space}-{result.manifest['canonical_hash']}-{fmt}.zip"
    return Archive(name, buffer.getvalue())
