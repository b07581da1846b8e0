"""What several benchmarks share: a throw-away PostgreSQL database, seeded with the shipped tables
and the nb201 benchmark, and a trivial objective."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from nas.evaluators.base import Evaluation, Evaluator
from nas.spec import JobSpec
from search_spaces import SearchSpace

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_hw.csv"
#: An interpreter a sandboxed command evaluator can run: a root worker runs commands as
#: ``nobody``, who cannot enter a virtualenv under /root (stdlib-only scripts need no more).
SANDBOX_PYTHON = sys.executable if os.geteuid() != 0 else next(
    (p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), sys.executable)


def sandbox_readable(folder: Path) -> Path:
    """``folder`` opened to the sandbox's user (a temporary folder is 0700), for evaluator scripts."""
    folder.chmod(0o755)
    return folder


@contextmanager
def fresh_database(server: str, prefix: str) -> Iterator[str]:
    """A new database named ``hwnas_<prefix>_…`` on ``server``, dropped afterwards; yields its URL."""
    name = f"hwnas_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seeded_database(url: str):  # -> sessionmaker
    """Migrates ``url``, registers the shipped latency tables and imports the nb201 benchmark
    (``../shared/data/nb201_hw.csv``) as table ``nb201``; returns a session factory."""
    from nas.evaluators import read_benchmark_csv
    from nas.service import register_shipped_tables
    from search_spaces import get_space
    from storage import catalog as catalog_q
    from storage.db import make_engine, make_session_factory, session_scope
    from storage.migrate import upgrade

    upgrade(url)
    factory = make_session_factory(make_engine(url))
    register_shipped_tables(factory)
    data = read_benchmark_csv(NB201_CSV, get_space("nb201"), "nb201")
    with session_scope(factory) as s:
        catalog_q.replace_benchmark(s, name="nb201", space="nb201", columns=data.columns, rows=data.rows,
                                    source=str(NB201_CSV))
    return factory


class CodeSum(Evaluator):
    """A trivial objective: the sum of the architecture's choice indices."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [Evaluation({"accuracy": float(self.space.encode(a).sum())}) for a in archs]


def code_sum_spec(evaluations: int, batch: int) -> JobSpec:
    """A random search on fbnet (more distinct architectures than nb201 has) scored by ``CodeSum``.

    The spec's evaluator is a placeholder: the benchmark replaces ``search.evaluator`` with ``CodeSum``.
    """
    return JobSpec.model_validate({
        "space": "fbnet", "strategy": {"name": "random"}, "budget": {"evaluations": evaluations},
        "batch_size": batch,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "command", "command": "unused: replaced by CodeSum"}})
