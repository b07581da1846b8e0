"""Trials as CSV or JSON downloads (the JSON is the API's TrialPublic, one list)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from api.routers.jobs import trial_public
from storage.models import Trial

FIXED = ("seq", "arch", "arch_hash", "status")
TAIL = ("error", "duration_s", "started_at", "finished_at")


def trials_csv(trials: Sequence[Trial]) -> str:
    """One row per trial, one column per metric key any trial has (empty where it has none)."""
    keys = sorted({k for t in trials for k in t.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED, *keys, *TAIL])
    for t in trials:
        writer.writerow([t.seq, t.arch, t.arch_hash, t.status, *(t.metrics.get(k, "") for k in keys),
                         t.error or "", f"{t.duration_s:.6g}", t.started_at.isoformat(), t.finished_at.isoformat()])
    return out.getvalue()


def trials_json(trials: Sequence[Trial]) -> str:
    return json.dumps([trial_public(t).model_dump(mode="json") for t in trials])
