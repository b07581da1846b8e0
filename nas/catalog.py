"""Where a job's named resources come from: search spaces, device tables and benchmark tables.

The service's catalog reads PostgreSQL/SQLite (storage.catalog); the CLI's reads files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from latency_tables.table import LatencyTable, shipped_tables
from nas.evaluators.benchmark import BenchmarkData
from search_spaces import SPACES, SearchSpace


class SpecError(ValueError):
    """A job spec that names something that does not exist; ``field`` is the JSON path at fault."""

    def __init__(self, field: str, message: str, choices: Sequence[str] | None = None):
        if choices is not None:
            message = f"{message}; valid: {', '.join(choices) if choices else '(none registered)'}"
        super().__init__(message)
        self.field = field
        self.message = message
        self.choices = list(choices) if choices is not None else None


@dataclass
class BenchmarkInfo:
    name: str
    space: str
    columns: list[str]


class Catalog(Protocol):
    def space(self, name: str, content_hash: str | None = None) -> SearchSpace | None:
        """The space a job names: shipped, or registered (a tenant's, a file given to the CLI).
        With ``content_hash``, exactly that definition (None when it is not known)."""
    def space_names(self) -> list[str]: ...
    def latency_table(self, space: str, device: str) -> LatencyTable | None: ...
    def device_names(self, space: str) -> list[str]: ...
    def benchmark_info(self, name: str) -> BenchmarkInfo | None: ...
    def benchmark(self, name: str) -> BenchmarkData | None: ...
    def benchmark_names(self) -> list[str]: ...


@dataclass
class MemoryCatalog:
    """Tables and benchmarks held in memory: the shipped tables plus what the caller adds."""

    tables: list[LatencyTable] = field(default_factory=shipped_tables)
    benchmarks: dict[str, BenchmarkData] = field(default_factory=dict)
    #: Spaces besides the shipped ones (``hwnas search --space FILE.json``), by name.
    spaces: dict[str, SearchSpace] = field(default_factory=dict)

    def add_space(self, space: SearchSpace) -> None:
        self.spaces[space.name] = space

    def space(self, name: str, content_hash: str | None = None) -> SearchSpace | None:
        found = self.spaces.get(name) or SPACES.get(name)
        if found is None or (content_hash is not None and found.content_hash != content_hash):
            return None
        return found

    def space_names(self) -> list[str]:
        return sorted({*SPACES, *self.spaces})

    def add_table(self, table: LatencyTable) -> None:
        self.tables = [t for t in self.tables
                       if (t.space, t.device_name) != (table.space, table.device_name)] + [table]

    def latency_table(self, space: str, device: str) -> LatencyTable | None:
        return next((t for t in self.tables if t.space == space and t.device_name == device), None)

    def device_names(self, space: str) -> list[str]:
        return sorted(t.device_name for t in self.tables if t.space == space)

    def benchmark_info(self, name: str) -> BenchmarkInfo | None:
        data = self.benchmarks.get(name)
        return BenchmarkInfo(data.name, data.space, data.columns) if data else None

    def benchmark(self, name: str) -> BenchmarkData | None:
        return self.benchmarks.get(name)

    def benchmark_names(self) -> list[str]:
        return sorted(self.benchmarks)
