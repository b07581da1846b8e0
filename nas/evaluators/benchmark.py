"""Look accuracy up in a registered benchmark table (e.g. NAS-Bench-201's)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nas.evaluators.base import Evaluation, Evaluator
from search_spaces.base import InvalidArchitecture, SearchSpace


class BenchmarkError(ValueError):
    pass


@dataclass
class BenchmarkData:
    """Rows of a benchmark table keyed by normalised architecture string."""

    name: str
    space: str
    columns: list[str]
    rows: dict[str, dict[str, float]]
    _by_hash: dict[str, str] = field(default_factory=dict, repr=False)

    def lookup(self, space: SearchSpace, arch: str) -> dict[str, float] | None:
        row = self.rows.get(arch)
        if row is not None:
            return row
        if not self._by_hash:
            for key in self.rows:
                self._by_hash.setdefault(space.canonical_hash(key), key)
        key = self._by_hash.get(space.canonical_hash(arch))
        return self.rows[key] if key else None


def read_benchmark_csv(path: str | Path, space: SearchSpace, name: str | None = None) -> BenchmarkData:
    """Read a CSV with an ``arch`` column and numeric metric columns (others are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: no such file")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "arch" not in reader.fieldnames:
            raise BenchmarkError(f"{path}: needs an 'arch' column")
        candidates = [c for c in reader.fieldnames if c not in ("arch", "index")]
        rows: dict[str, dict[str, float]] = {}
        numeric = set(candidates)
        for line, record in enumerate(reader, start=2):
            try:
                arch = space.normalize(record["arch"])
            except InvalidArchitecture as exc:
                raise BenchmarkError(f"{path}:{line}: {exc}") from None
            values: dict[str, float] = {}
            for col in candidates:
                try:
                    value = float(record[col])
                except (TypeError, ValueError):
                    numeric.discard(col)
                    continue
                if math.isfinite(value):
                    values[col] = value
            rows[arch] = values
    columns = [c for c in candidates if c in numeric]
    if not rows or not columns:
        raise BenchmarkError(f"{path}: no rows or no numeric metric columns")
    return BenchmarkData(name=name or path.stem, space=space.name, columns=columns,
                         rows={a: {c: v[c] for c in columns if c in v} for a, v in rows.items()})


class BenchmarkEvaluator(Evaluator):
    def __init__(self, data: BenchmarkData, metric: str, space: SearchSpace):
        if metric not in data.columns:
            raise BenchmarkError(f"benchmark {data.name!r} has no column {metric!r}; "
                                 f"valid: {', '.join(data.columns)}")
        self.data, self.metric, self.space = data, metric, space

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        out = []
        for arch in archs:
            row = self.data.lookup(self.space, arch)
            if row is None or self.metric not in row:
                out.append(Evaluation(None, f"{arch} has no {self.metric!r} in benchmark {self.data.name!r}"))
            else:
                out.append(Evaluation({"accuracy": row[self.metric]}))
        return out
