"""Per-device latency tables. Imports nothing of the service."""

from latency_tables.estimator import LatencyEstimator
from latency_tables.table import LatencyTable, MissingEntry, TableError, load_table, shipped_tables

__all__ = ["LatencyEstimator", "LatencyTable", "MissingEntry", "TableError", "load_table", "shipped_tables"]
