"""hwnas-client: submit hardware-aware NAS jobs and fetch their Pareto fronts."""

from hwnas_client.client import Client
from hwnas_client.errors import ApiError, HwnasError, JobFailed, WaitTimeout
from hwnas_client.models import Export, Job, ParetoFront, Trial

__all__ = ["ApiError", "Client", "Export", "HwnasError", "Job", "JobFailed", "ParetoFront", "Trial", "WaitTimeout"]
