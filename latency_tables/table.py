"""The latency-table file format (``hwnas.latency_table/2``): load, validate, save.

One file per device (and runtime/batch size). Entries are keyed by the op
signatures a search space reports (``SearchSpace.all_op_signatures``); a missing
entry is a named error. Version 2 keys a cell space's tables by the cell as it runs (live,
zero-input and dead-output edges, node sums, pruned network) instead of version 1's
plain (edge, op) pairs, so version 1 files are refused with a hint to re-fit.

An entry may also carry ``energy_mj`` (energy per inference of that op, millijoules)
beside its latency ``mean``; a table predicts energy only when every entry has one.
The device block may declare budgets under ``device.limits`` (see ``LIMIT_KEYS``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_spaces.base import SearchSpace

import numpy as np

FORMAT = "hwnas.latency_table/2"
#: Metrics a table can predict, and the correction key holding each one's intercept.
TABLE_METRICS = {"latency_ms": "intercept_ms", "energy_mj": "intercept_mj"}
#: Budgets a device entry may declare (``device.limits``), all positive numbers, plus
#: ``dtype`` (int8, fp16 or fp32: the precision the memory budgets are meant for).
LIMIT_KEYS = ("sram_kb", "flash_kb", "latency_ms")
LEGACY_FORMATS = ("hwnas.latency_table/1",)


class TableError(ValueError):
    """A latency table that cannot be used; ``entry`` names the part at fault."""

    def __init__(self, message: str, entry: str | None = None):
        super().__init__(message)
        self.entry = entry


class MissingEntry(TableError):
    """An architecture runs an op signature the table has no entry for."""


class NoErrorBand(TableError):
    """The table carries no ``validation.residual_ratio_quantiles``: it states no error band."""


#: Confidence levels of the stored error band (quantiles of measured / predicted).
QUANTILE_LEVELS = (0.025, 0.05, 0.16, 0.5, 0.84, 0.95, 0.975)


@dataclass
class Entry:
    mean: float
    std: float = 0.0
    count: int = 1
    energy_mj: float | None = None


@dataclass
class LatencyTable:
    device: dict[str, Any]
    space: str
    entries: dict[str, Entry]
    metric: str = "latency_ms"
    corrections: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    version: int = 2

    @property
    def device_name(self) -> str:
        return str(self.device["name"])

    @property
    def intercept(self) -> float:
        return float(self.corrections.get("intercept_ms", 0.0))

    @property
    def residual_ratio_quantiles(self) -> dict[float, float] | None:
        """Quantiles of measured / predicted latency on rows the fit did not see, by level
        (``{0.025: r, ..., 0.975: r}``), or None for a table without an error band."""
        raw = self.validation.get("residual_ratio_quantiles")
        if not raw:
            return None
        return dict(sorted((float(k), float(v)) for k, v in raw.items()))

    def ratio_quantile(self, confidence: float) -> float:
        """measured / predicted at ``confidence``, linear between the stored levels.

        NoErrorBand without a band; ValueError outside the stored levels (no extrapolation:
        0.99 of 100 held-out ratios is not known)."""
        quantiles = self.residual_ratio_quantiles
        if quantiles is None:
            raise NoErrorBand(f"table for {self.device_name!r} ({self.space}) has no error band: re-fit it "
                              "with `hwnas tables fit` to get validation.residual_ratio_quantiles",
                              entry="validation.residual_ratio_quantiles")
        levels, ratios = list(quantiles), list(quantiles.values())
        if isinstance(confidence, bool) or not levels[0] <= float(confidence) <= levels[-1]:
            raise ValueError(f"confidence must be between {levels[0]} and {levels[-1]} (the levels the table's "
                             f"error band holds), got {confidence!r}")
        return float(np.interp(float(confidence), levels, ratios))

    def upper_bound(self, predicted_ms: Any, confidence: float) -> Any:
        """Latency not exceeded with probability ``confidence``: predicted x quantile(confidence)
        of measured / predicted. ``predicted_ms`` is a number or an array (same shape back)."""
        ratio = self.ratio_quantile(confidence)
        if isinstance(predicted_ms, (int, float)):
            return float(predicted_ms) * ratio
        return np.asarray(predicted_ms, dtype=float) * ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "device": self.device,
            "space": self.space,
            "metric": self.metric,
            "entries": {k: {"mean": e.mean, "std": e.std, "count": e.count,
                            **({} if e.energy_mj is None else {"energy_mj": e.energy_mj})}
                        for k, e in sorted(self.entries.items())},
            "corrections": self.corrections,
            "provenance": self.provenance,
            "validation": self.validation,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LatencyTable:
        if not isinstance(data, dict):
            raise TableError("a latency table is a JSON object")
        if data.get("format") in LEGACY_FORMATS:
            raise TableError(f"format {data['format']!r} is no longer read: re-fit the table with "
                             f"`hwnas tables fit` to get {FORMAT!r}", entry="format")
        if data.get("format") != FORMAT:
            raise TableError(f"format must be {FORMAT!r}", entry="format")
        device = data.get("device")
        if not isinstance(device, dict) or not isinstance(device.get("name"), str) or not device["name"]:
            raise TableError("device.name is required", entry="device.name")
        space = data.get("space")
        if not isinstance(space, str):
            raise TableError("space is required", entry="space")
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, dict) or not raw_entries:
            raise TableError("entries must be a non-empty object", entry="entries")
        entries: dict[str, Entry] = {}
        for key, raw in raw_entries.items():
            if not isinstance(raw, dict):
                raise TableError(f"entry {key!r} must be an object", entry=f"entries.{key}")
            mean = _finite(raw.get("mean"), f"entries.{key}.mean")
            std = _finite(raw.get("std", 0.0), f"entries.{key}.std")
            if mean < 0 or std < 0:
                raise TableError(f"entry {key!r} is negative", entry=f"entries.{key}")
            count = raw.get("count", 1)
            if not isinstance(count, int) or count < 1:
                raise TableError(f"entry {key!r} count must be a positive integer",
                                 entry=f"entries.{key}.count")
            energy = None
            if raw.get("energy_mj") is not None:
                energy = _finite(raw["energy_mj"], f"entries.{key}.energy_mj")
                if energy < 0:
                    raise TableError(f"entry {key!r} energy is negative", entry=f"entries.{key}.energy_mj")
            entries[key] = Entry(mean, std, count, energy)
        check_limits(device.get("limits"))
        validation = data.get("validation") or {}
        if not isinstance(validation, dict):
            raise TableError("validation must be an object", entry="validation")
        _check_quantiles(validation.get("residual_ratio_quantiles"))
        corrections = data.get("corrections") or {}
        if not isinstance(corrections, dict):
            raise TableError("corrections must be an object", entry="corrections")
        for key, value in corrections.items():
            _finite(value, f"corrections.{key}")
        version = data.get("version", 2)
        if isinstance(version, bool) or not isinstance(version, int) or version != 2:
            raise TableError(f"version must be the integer 2, got {version!r}", entry="version")
        return cls(device=device, space=space, entries=entries,
                   metric=str(data.get("metric", "latency_ms")), corrections=dict(corrections),
                   provenance=dict(data.get("provenance") or {}),
                   validation=dict(validation),
                   version=version)

    def check_covers(self, signatures: list[str]) -> None:
        """Raise MissingEntry naming the first signature this table lacks."""
        for sig in signatures:
            if sig not in self.entries:
                raise MissingEntry(f"table for {self.device_name!r} has no entry {sig!r}",
                                   entry=f"entries.{sig}")

    def check_space(self, space: SearchSpace | None = None) -> None:
        """Raise TableError unless the space is known and every one of its signatures has an entry.
        ``space``: the table's space when it is not a shipped one (a tenant's registered definition)."""
        from search_spaces import SPACES

        if space is not None:
            if space.name != self.space:
                raise TableError(f"the table is for space {self.space!r}, not {space.name!r}", entry="space")
            self.check_covers(space.all_op_signatures())
            return
        if self.space not in SPACES:
            raise TableError(f"unknown search space {self.space!r}; valid: {', '.join(sorted(SPACES))}",
                             entry="space")
        self.check_covers(SPACES[self.space].all_op_signatures())

    def means(self, signatures: list[str]) -> list[float]:
        self.check_covers(signatures)
        return [self.entries[s].mean for s in signatures]

    def has_metric(self, metric: str) -> bool:
        return metric == "latency_ms" or (metric == "energy_mj" and bool(self.entries)
                                          and all(e.energy_mj is not None for e in self.entries.values()))

    def values(self, signatures: list[str], metric: str = "latency_ms") -> list[float]:
        """Per-signature values of ``metric`` (latency means or energies); TableError if absent."""
        if metric not in TABLE_METRICS:
            raise TableError(f"unknown table metric {metric!r}; valid: {', '.join(TABLE_METRICS)}")
        if metric == "latency_ms":
            return self.means(signatures)
        self.check_covers(signatures)
        missing = next((s for s in signatures if self.entries[s].energy_mj is None), None)
        if missing is not None:
            raise MissingEntry(f"table for {self.device_name!r} has no energy_mj for {missing!r}",
                               entry=f"entries.{missing}.energy_mj")
        return [float(self.entries[s].energy_mj) for s in signatures]  # type: ignore[arg-type]

    def intercept_of(self, metric: str) -> float:
        return float(self.corrections.get(TABLE_METRICS.get(metric, ""), 0.0))

    @property
    def limits(self) -> dict[str, Any]:
        return dict(self.device.get("limits") or {})


def check_limits(limits: Any, where: str = "device.limits") -> None:
    """Raise TableError naming the field unless ``limits`` is absent or a valid budget block."""
    if limits is None:
        return
    if not isinstance(limits, dict) or not limits:
        raise TableError(f"{where} must be a non-empty object", entry=where)
    for key, value in limits.items():
        if key == "dtype":
            if value not in ("int8", "fp16", "fp32"):
                raise TableError(f"{where}.dtype must be int8, fp16 or fp32, got {value!r}", entry=f"{where}.dtype")
        elif key in LIMIT_KEYS:
            if _finite(value, f"{where}.{key}") <= 0:
                raise TableError(f"{where}.{key} must be positive", entry=f"{where}.{key}")
        else:
            raise TableError(f"unknown budget {key!r}; valid: {', '.join([*LIMIT_KEYS, 'dtype'])}",
                             entry=f"{where}.{key}")


def _check_quantiles(raw: Any, where: str = "validation.residual_ratio_quantiles") -> None:
    """Raise TableError unless ``raw`` is absent or {"level": ratio} with levels in (0, 1) and
    ratios non-negative and non-decreasing in the level."""
    if raw is None:
        return
    if not isinstance(raw, dict) or not raw:
        raise TableError(f"{where} must be a non-empty object of level -> ratio", entry=where)
    pairs = []
    for key, value in raw.items():
        try:
            level = float(key)
        except ValueError:
            raise TableError(f"{where}: level {key!r} is not a number", entry=f"{where}.{key}") from None
        if not 0 < level < 1:
            raise TableError(f"{where}: level {key!r} must be between 0 and 1", entry=f"{where}.{key}")
        ratio = _finite(value, f"{where}.{key}")
        if ratio < 0:
            raise TableError(f"{where}.{key} must not be negative", entry=f"{where}.{key}")
        pairs.append((level, ratio, key))
    pairs.sort()
    for (_, lo, _), (_, hi, key) in zip(pairs, pairs[1:]):
        if hi < lo:
            raise TableError(f"{where}.{key} is below a lower level's ratio (quantiles must not decrease)",
                             entry=f"{where}.{key}")


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TableError(f"{where} must be a finite number, got {value!r}", entry=where)
    return float(value)


def load_table(path: str | Path) -> LatencyTable:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: not JSON ({exc})") from None
    return LatencyTable.from_dict(data)


def save_table(table: LatencyTable, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(table.to_dict(), indent=1) + "\n")


SHIPPED_DIR = Path(__file__).parent / "data"
PROFILES_DIR = SHIPPED_DIR / "profiles"


def shipped_tables(space: str | None = None) -> list[LatencyTable]:
    """The tables that come with hwnas (``latency_tables/data/<space>__<device>.json``)."""
    pattern = f"{space}__*.json" if space else "*.json"
    return [load_table(p) for p in sorted(SHIPPED_DIR.glob(pattern))]


def shipped_profiles() -> dict[str, dict[str, Any]]:
    """Device entries with budgets that come with hwnas (``latency_tables/data/profiles/*.json``):
    boards without a latency table of their own (microcontrollers), by name."""
    profiles: dict[str, dict[str, Any]] = {}
    for path in sorted(PROFILES_DIR.glob("*.json")):
        device = json.loads(path.read_text())
        check_limits(device.get("limits"), f"{path.name}: limits")
        profiles[str(device["name"])] = device
    return profiles
