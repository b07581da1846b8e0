"""A job's trials for the job page, read from the database once per process.

Trials are append-only: ``storage.jobs.record_batch`` inserts them in seq order under the
job's lease, and nothing updates or deletes them. So each job's rows are kept here and a
request reads only the trials stored since the last one (``seq > last``, on the
``(job_id, seq)`` index, checked against the count; a mismatch reads them all again).
A finished job of 10,000 trials is read, checked for degenerate cells and encoded once.

``JobTrials.body`` also keeps the encoded series.json: the trial columns (most of its
bytes) are encoded once per set of rows, and the whole body (and its gzip) is reused while
the small per-request part (job row, tables, hypervolume scale) encodes to the same bytes.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import func, select

from api.dashboard.series import duplicates_of
from nas.spec import JobSpec
from search_spaces.base import SearchSpace
from storage.db import session_scope
from storage.models import Trial

#: Jobs whose rows are kept (a 10,000-trial job is ~10 MB of Python objects).
CACHE_SIZE = 16
#: gzip level of series.json: ~0.33 MB for 10,000 trials; higher levels gain little and cost more.
GZIP_LEVEL = 5


class TrialRow(NamedTuple):
    """The columns of a trial the job page uses (no ORM object: 10,000 of those cost ~0.4 s)."""

    seq: int
    arch: str
    status: str
    metrics: dict[str, Any]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class JobTrials:
    """One job's trials in seq order, with what is derived from them alone (computed once)."""

    rows: list[TrialRow]
    degenerate: list[int]
    keys: list[str]  # every metric key any trial stored, sorted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _columns: bytes | None = field(default=None, repr=False)
    _duplicates: tuple[tuple[int, ...], dict[int, list[int]]] | None = field(default=None, repr=False)
    _body: tuple[bytes, bytes, bytes | None] | None = field(default=None, repr=False)

    def front(self, seqs: Sequence[int]) -> list[TrialRow]:
        members = set(seqs)
        return [r for r in self.rows if r.seq in members]

    def duplicates(self, spec: JobSpec, front: Sequence[int]) -> dict[int, list[int]]:
        """``series.duplicates_of`` for this front, kept until the front changes (a job's spec does not)."""
        key = tuple(sorted(front))
        with self._lock:
            if self._duplicates is not None and self._duplicates[0] == key:
                return self._duplicates[1]
        out = duplicates_of(spec, key, self.rows)
        with self._lock:
            self._duplicates = (key, out)
        return out

    def columns(self) -> bytes:
        """The trial columns of series.json, encoded: ``"seq":[..],"arch":[..],"trial_status":[..],
        "metrics":{key:[..]},"degenerate":[..]`` (no braces, to be joined with the rest)."""
        with self._lock:
            if self._columns is not None:
                return self._columns
        rows = self.rows
        body = {"seq": [r.seq for r in rows], "arch": [r.arch for r in rows],
                "trial_status": [r.status for r in rows],
                "metrics": {k: [r.metrics.get(k) for r in rows] for k in self.keys},
                "degenerate": self.degenerate}
        encoded = _dumps(body)[1:-1]
        with self._lock:
            self._columns = encoded
        return encoded

    def body(self, rest: dict[str, Any], compressed: bool) -> bytes:
        """series.json: ``rest`` (the per-request part, keys other than the columns') joined with
        the columns; the last body and its gzip are reused while ``rest`` encodes the same."""
        small = _dumps(rest)
        with self._lock:
            cached = self._body if self._body is not None and self._body[0] == small else None
        raw = cached[1] if cached else b"{" + self.columns() + b"," + small[1:]  # rest is never empty
        packed = cached[2] if cached else None
        if compressed and packed is None:
            packed = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
        with self._lock:
            self._body = (small, raw, packed)
        return packed if compressed and packed is not None else raw


_cache: OrderedDict[str, JobTrials] = OrderedDict()
_cache_lock = threading.Lock()


def _read(session: Any, job_id: str, after: int) -> list[TrialRow]:
    query = (select(Trial.seq, Trial.arch, Trial.status, Trial.metrics)
             .where(Trial.job_id == job_id, Trial.seq > after).order_by(Trial.seq))
    return [TrialRow(seq, arch, status, metrics or {}) for seq, arch, status, metrics in session.execute(query)]


def job_trials(factory: Any, job_id: str, space: SearchSpace) -> JobTrials:
    """The job's trials now: the kept rows plus those stored since (all of them the first time)."""
    with _cache_lock:
        kept = _cache.get(job_id)
    with session_scope(factory) as s:
        count = s.scalar(select(func.count()).select_from(Trial).where(Trial.job_id == job_id)) or 0
        if kept is not None and len(kept.rows) == count:
            current = kept
        else:
            new = _read(s, job_id, kept.rows[-1].seq if kept and kept.rows else -1)
            if kept is not None and len(kept.rows) + len(new) != count:  # not appended after all: read again
                kept, new = None, _read(s, job_id, -1)
            rows = (kept.rows if kept else []) + new
            degenerate = (kept.degenerate if kept else []) + [r.seq for r in new if space.is_degenerate(r.arch)]
            keys = sorted(set(kept.keys if kept else []).union(*(r.metrics for r in new)))
            current = JobTrials(rows, degenerate, keys)
    with _cache_lock:
        held = _cache.get(job_id)
        if held is None or len(held.rows) <= len(current.rows):  # a slower concurrent request never goes back
            _cache[job_id] = current
        _cache.move_to_end(job_id)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return current
