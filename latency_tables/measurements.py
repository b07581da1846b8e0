"""Reading measurement CSVs: ``arch,latency_ms`` rows, ``arch`` lists, and the shared data sets."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search_spaces.base import InvalidArchitecture, SearchSpace

#: Where the published measurements live, beside the checkout (never inside it).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class MeasurementError(ValueError):
    """A measurements file that cannot be used; the message names the file, row and column."""


@dataclass
class Measurements:
    archs: list[str]
    latencies: np.ndarray


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise MeasurementError(f"{path}: missing column(s) {', '.join(missing)} "
                                       f"(found: {', '.join(reader.fieldnames or []) or 'none'})")
            rows = list(reader)
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read ({exc.strerror})") from None
    if not rows:
        raise MeasurementError(f"{path}: no rows")
    return rows


def _arch(space: SearchSpace, path: Path, line: int, text: str) -> str:
    try:
        return space.normalize(text)
    except InvalidArchitecture as exc:
        raise MeasurementError(f"{path}, line {line}: arch {text!r} is not in space {space.name!r}: {exc}") from None


def read_archs(path: str | Path, space: SearchSpace) -> list[str]:
    path = Path(path)
    return [_arch(space, path, i, r["arch"]) for i, r in enumerate(_rows(path, ("arch",)), start=2)]


def read_measurements(path: str | Path, space: SearchSpace, column: str = "latency_ms") -> Measurements:
    path = Path(path)
    archs, values = [], []
    for line, row in enumerate(_rows(path, ("arch", column)), start=2):
        archs.append(_arch(space, path, line, row["arch"]))
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            raise MeasurementError(f"{path}, line {line}: {column} {row[column]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise MeasurementError(f"{path}, line {line}: {column} must be finite and >= 0, got {value}")
        values.append(value)
    return Measurements(archs, np.asarray(values))


def read_shared(space: SearchSpace, path: str | Path | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """The shared ``<space>_hw.csv``: architectures and one latency array per ``lat_<device>`` column."""
    path = Path(path) if path else SHARED_DATA / f"{space.name}_hw.csv"
    rows = _rows(path, ("arch",))
    devices = [c.removeprefix("lat_") for c in rows[0] if c.startswith("lat_")]
    archs = [space.normalize(r["arch"]) for r in rows]
    return archs, {d: np.array([float(r[f"lat_{d}"]) for r in rows]) for d in devices}
