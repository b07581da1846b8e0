"""Per-device latency tables. Imports nothing of the service."""

from latency_tables.estimator import LatencyEstimator, check_predictions, estimator_for
from latency_tables.table import LatencyTable, MissingEntry, TableError, load_table, shipped_tables

__all__ = ["LatencyEstimator", "check_predictions", "estimator_for", "LatencyTable", "MissingEntry", "TableError", "load_table", "shipped_tables"]
