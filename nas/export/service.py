"""Exports of a job's trials for the API: tenant-scoped lookups, every device in the database."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from latency_tables import LatencyTable, TableError
from nas.export.core import export_architecture
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
        tables = []
        pins = job.table_pins or {}
        for device in catalog_q.list_devices(s, spec.space, tenant_id=tenant_id):
            pinned = pins.get(f"{spec.space}/{device.name}")  # the version the job ran with
            data = (catalog_q.table_version(s, pinned) if pinned else None) or device.table
            try:
                tables.append(LatencyTable.from_dict(data))
            except TableError:
                continue  # stored tables were checked on upload; a broken one is left out, not fatal
        info = {"id": job.id, "name": job.name, "trial_id": trial.id, "trial_seq": trial.seq,
                "trial_status": trial.status, "metrics": trial.metrics}
        arch = trial.arch
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        result = export_architecture(spec.space, arch, fmt, Path(tmp), tables=tables,
                                     tables_source="every device table this tenant may use (the job's pinned versions for its devices)",
                                     seed=spec.seed, used_devices=spec.devices(), job=info)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in result.files:
                zf.write(result.out_dir / name, name)
    name = f"hwnas-{spec.space}-{result.manifest['canonical_hash']}-{fmt}.zip"
    return Archive(name, buffer.getvalue())
