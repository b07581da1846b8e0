"""Architecture views: the space's diagram of an architecture and its predicted latencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from latency_tables import estimator_for, LatencyTable, TableError
from search_spaces import SearchSpace


def diagram_svg(space: SearchSpace, arch: str) -> str:
    """The space's own drawing of ``arch`` (its ``diagram`` hook: SVG markup)."""
    return space.diagram(arch)


@dataclass
class Prediction:
    device: str
    kind: str
    runtime: str
    latency_ms: float | None
    error: str | None = None


def predicted_latencies(space: SearchSpace, arch: str, tables: Sequence[dict[str, Any]]) -> list[Prediction]:
    """Predicted latency of ``arch`` from each stored latency table of ``space``.

    A table that cannot price the architecture is reported with its error, not skipped.
    """
    out: list[Prediction] = []
    for raw in tables:
        device = raw.get("device", {})
        name, kind, runtime = str(device.get("name", "?")), str(device.get("kind", "")), str(device.get("runtime", ""))
        try:
            estimator = estimator_for(LatencyTable.from_dict(raw), space)
            out.append(Prediction(name, kind, runtime, float(estimator.predict([arch])[0])))
        except (TableError, ValueError) as exc:
            out.append(Prediction(name, kind, runtime, None, str(exc)))
    return out
